//! `rmt-torch hessian`: the loss Hessian's top eigenvalues, trace and spectral density by
//! Lanczos, without forming it.
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::report::plots::write_hessian_figures;
use crate::workflows::hessian::{analyze_hessian, HessianOptions, Loss};
use crate::workflows::lanczos::{DensityOptions, Reorthogonalisation};
use crate::DeviceChoice;

use super::output::progress_bar;
use super::{choice, finite_number, OutputArgs, PlotArgs};

/// Arguments of `hessian`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
H = ∇²L(θ), the Hessian of the mean loss over the batch with respect to the model's parameters
(or those --layers names: that block of H), in eval mode. H is never formed: each product Hv is
one more backward pass through the gradient (double backward), as PyHessian (Yao et al. 2020)
computes them. Random vectors are seeded (--seed).

  top_eigenvalues    the --top-k largest eigenvalues, descending, by Lanczos with full
                     reorthogonalisation from a Gaussian start; each with its residual
                     ‖Hy − λy‖, a bound on its error (never below the products' own
                     precision); restarted on H deflated by the eigenvectors found, so that
                     repeated eigenvalues are found as often as they occur; stopped when every
                     residual is below --tolerance·|λ| or after --max-iterations steps per
                     run (`converged` says which)
  trace              --trace N: Hutchinson's estimate, the mean of vᵀHv over N Rademacher
                     vectors, with its standard error (trace_stderr)
  density            --density R: stochastic Lanczos quadrature, R runs of --density-steps
                     each (Ubaru, Chen & Saad 2017): each run's nodes (Ritz values) and weights
                     in the JSON, and their average broadened by Gaussians of variance
                     1e-5·max(1, range) on 1000 points, integrating to 1

  bulk               with --density: the density's bulk fitted by its first two moments (the
                     top eigenvalues above the edge taken out) to a semicircle and to a
                     Marchenko-Pastur law (with its atom at 0 when Q < 1), each judged by its
                     Kolmogorov distance from the quadrature's measure; the better one's upper
                     edge is the bulk edge, and the top eigenvalues above it are the outliers.
                     Pennington & Bahri (2017) model H as a Wishart part (the Gauss-Newton
                     matrix, Marchenko-Pastur) plus a Wigner part (semicircle)

Outliers above the bulk are the learned structure (Ghorbani, Krishnan & Xiao 2019; Papyan
2020): for a K-class classifier about K of them (ask --top-k above K to see where they end).

EXAMPLES:
  rmt-torch hessian model.pt --input x.pt --target labels.pt
  rmt-torch hessian model.pt --input x.npy --target y.npy --loss mse --f64 --trace 100 -f json
  rmt-torch hessian model.pt --input x.pt --target labels.pt --layers 'fc\\.' --density 3")]
pub struct HessianArgs {
    /// TorchScript model (torch.jit.script or torch.jit.trace, saved with .save()). Running it
    /// executes its code, as torch.jit.load does: its tensor records are checked by rmt-torch's
    /// own reader first, and loading is given up after 120 s.
    model: PathBuf,
    /// Input batch, first dimension = samples: torch.save(tensor) (or a dict of tensors with
    /// --input-key), a NumPy .npy array, or a safetensors file.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// The tensor to use when the input file holds several.
    #[arg(long, value_name = "NAME")]
    input_key: Option<String>,
    /// Targets, one per sample: class indices [B] for cross-entropy, values with the model's
    /// output size for mse; the same formats as --input.
    #[arg(long, value_name = "FILE")]
    target: PathBuf,
    /// The tensor to use when the target file holds several.
    #[arg(long, value_name = "NAME")]
    target_key: Option<String>,
    /// The loss, averaged over samples as PyTorch's reduction="mean": `cross-entropy` (the
    /// model returns logits) or `mse` (mean over every output element).
    #[arg(long, value_parser = choice::<Loss>(), default_value_t = Loss::CrossEntropy)]
    loss: Loss,
    /// Only parameters whose dotted name matches this regular expression: the Hessian block of
    /// those layers (e.g. 'fc' or 'layer4\.'). Default: every floating-point parameter.
    #[arg(long, value_name = "REGEX")]
    layers: Option<regex::Regex>,
    /// Samples per forward pass: stream the batch (a whole dataset) in mini-batches; every
    /// product then reruns the forward pass of each. Default: the whole batch at once.
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// How many of the largest eigenvalues (0: none).
    #[arg(long, default_value_t = HessianOptions::default().top_k, value_name = "K")]
    top_k: usize,
    /// Also the eigenvectors of the top eigenvalues (JSON: `top[i].eigenvector`, in the order of
    /// `parameters`).
    #[arg(long)]
    eigenvectors: bool,
    /// Stop when every top eigenvalue's residual ‖Hy − λy‖ ≤ TOL·|λ|, or has reached the
    /// precision of the products (float32: 1.2e-7·λmax; --f64 for more).
    #[arg(long, value_parser = finite_number, default_value_t = HessianOptions::default().tolerance, value_name = "TOL")]
    tolerance: f64,
    /// Lanczos steps at most per run for the top eigenvalues (each one Hessian-vector product;
    /// the vectors are kept, allocated up front: 4 bytes per parameter each for a float32
    /// model, 8 with --f64).
    #[arg(long, default_value_t = HessianOptions::default().max_iterations, value_name = "N")]
    max_iterations: usize,
    /// Hutchinson's trace from N Rademacher vectors (N products), with its standard error.
    #[arg(long, value_name = "N", default_value_t = 0)]
    trace: usize,
    /// The spectral density by stochastic Lanczos quadrature from R runs.
    #[arg(long, value_name = "R", default_value_t = 0)]
    density: usize,
    /// Lanczos steps per density run.
    #[arg(long, default_value_t = HessianOptions::default().density.steps, value_name = "N")]
    density_steps: usize,
    /// How Lanczos keeps its vectors orthogonal: `partial` (Simon 1984: against the basis only
    /// when the estimated loss of orthogonality passes √ε; the same eigenvalues, a fraction of
    /// the passes over the kept vectors) or `full` (every step, as PyHessian's density does).
    #[arg(long, value_parser = choice::<Reorthogonalisation>(), default_value_t = Reorthogonalisation::default())]
    reorthogonalisation: Reorthogonalisation,
    /// Seed of the random vectors.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run the model in float64: products exact to round-off, about twice the cost on a CPU.
    #[arg(long)]
    f64: bool,
    /// Device: `auto` (the first GPU if any, else CPU), `cpu`, `cuda`, `cuda:N`.
    #[arg(long, default_value_t = DeviceChoice::default())]
    device: DeviceChoice,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    plots: PlotArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Computes and writes the Hessian report.
pub fn run(args: HessianArgs) -> anyhow::Result<u8> {
    let options = HessianOptions {
        device: args.device,
        float64: args.f64,
        loss: args.loss,
        parameters: args.layers.clone(),
        batch_size: args.batch_size,
        top_k: args.top_k,
        eigenvectors: args.eigenvectors,
        tolerance: args.tolerance,
        max_iterations: args.max_iterations,
        trace_samples: args.trace,
        density: DensityOptions {
            runs: args.density,
            steps: args.density_steps,
        },
        reorthogonalisation: args.reorthogonalisation,
        seed: args.seed,
    };
    options.check()?;
    args.output
        .prepare(&[&args.model, &args.input, &args.target])?;
    args.plots.prepare()?;
    if args.plots.plots.is_some() && args.density == 0 {
        anyhow::bail!("--plots draws the spectral density: add --density R (e.g. --density 3)");
    }
    let bar = progress_bar(args.quiet, "Hessian-vector products");
    let analysis = analyze_hessian(
        &args.model,
        (&args.input, args.input_key.as_deref()),
        (&args.target, args.target_key.as_deref()),
        &options,
        |done, planned| {
            bar.set_length(planned.max(done) as u64);
            bar.set_position(done as u64);
        },
    )
    .with_context(|| {
        format!(
            "Hessian of {} on {} with targets {}",
            args.model.display(),
            args.input.display(),
            args.target.display()
        )
    })?;
    bar.finish_and_clear();
    args.output.emit(&analysis)?;
    args.plots.write(args.quiet, |directory, files| {
        write_hessian_figures(&analysis, directory, files)
    })?;
    Ok(0)
}
