//! `rmt-torch jacobian`: input-output Jacobians of a model and the RMT of their spectra.
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::report::jacobian::EachOutput;
use crate::report::plots::write_jacobian_figures;
use crate::workflows::jacobian::{
    analyze_each_output, analyze_jacobians, analyze_top_singular_values, JacobianOptions,
    LanczosOptions, SampleCount, DEFAULT_ISOMETRY_TOLERANCE, DEFAULT_SAMPLES,
};

use crate::workflows::lanczos::DensityOptions;
use crate::DeviceChoice;

use super::output::progress_bar;
use crate::analysis::RmtRequest;

use super::{OutputArgs, PlotArgs};

/// Arguments of `jacobian`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
For each sample x of the batch, J(x) = ∂f(x)/∂x (outputs × inputs, the input flattened) through
autograd, in eval mode, and the statistics of its singular values σ:

  sigma_max, sigma_min   largest and smallest of the min(outputs, inputs) singular values
  mean_sigma2            mean of σ² (χ of dynamical isometry for an end-to-end Jacobian)
  var_sigma2             variance of σ² (0 for a perfectly isometric network)
  condition_number       σmax/σmin (cond)
  isometry_fraction      share of σ with |σ − 1| ≤ --isometry-tolerance (iso)
  bulk_*, tw_*, mmp_*, spacing_*
                         the RMT suite on σ² (see `rmt-torch analyze --help`)
  singular_values        JSON only: each sample's σ, descending

EXAMPLES:
  rmt-torch jacobian model.pt --input batch.pt
  rmt-torch jacobian model.pt --input batch.npy --samples all --f64 -f json -o jac.json
  rmt-torch jacobian detector.pt --input images.safetensors --input-key images --output-index 0")]
pub struct JacobianArgs {
    /// TorchScript model (torch.jit.script or torch.jit.trace, saved with .save()). Running it
    /// executes its code, as torch.jit.load does: its tensor records are checked by rmt-torch's
    /// own reader first, and loading is given up after 120 s.
    model: PathBuf,
    /// Input batch, first dimension = batch: torch.save(tensor) (or a dict of tensors with
    /// --input-key), a NumPy .npy array, or a safetensors file.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// The tensor to use when the input file holds several.
    #[arg(long, value_name = "NAME")]
    input_key: Option<String>,
    /// For models that return a tuple: the element to differentiate.
    #[arg(long, value_name = "K")]
    output_index: Option<usize>,
    /// Device: `auto` (the first GPU if any, else CPU), `cpu`, `cuda`, `cuda:N`.
    #[arg(long, default_value_t = DeviceChoice::default())]
    device: DeviceChoice,
    /// Rows of J per backward pass (each replicates one sample); default: from available
    /// memory, assuming activations take ≤ 256× the input per sample, at most 128 on a CPU
    /// (faster: smaller passes stay in cache) and 512 on a GPU.
    #[arg(long, value_name = "N")]
    chunk: Option<usize>,
    /// Run the model in float64: exact Jacobians, about twice the cost on a CPU.
    #[arg(long)]
    f64: bool,
    /// The first N samples of the batch, or `all`.
    #[arg(long, value_name = "N|all", default_value_t = SampleCount::First(DEFAULT_SAMPLES))]
    samples: SampleCount,
    /// A singular value is isometric when |σ − 1| ≤ this.
    #[arg(value_parser = super::finite_number, long, default_value_t = DEFAULT_ISOMETRY_TOLERANCE, value_name = "EPS")]
    isometry_tolerance: f64,
    /// For a model returning a tuple of activations (h₁, …, h_L): the Jacobian ∂h_l/∂x of
    /// every one, the partial products of the layer chain, to see at which depth isometry
    /// breaks (JSON: an array of reports; CSV: an `output` column).
    #[arg(long, conflicts_with = "output_index")]
    each_output: bool,
    /// Also the eigenvalues of the batch-mean JᵀJ (JSON: mean_gram_eigenvalues).
    #[arg(long)]
    mean_gram: bool,
    /// Only the K largest singular values of each J, by Lanczos on JJᵀ or JᵀJ (the smaller)
    /// from products with J and Jᵀ (two backward passes each), never forming J: for inputs too
    /// large to form it (an ImageNet model's J is 1000 × 150528 per sample). Reports σ with
    /// residuals (JSON schema rmt-torch/jacobian-lanczos/v1), not the full-spectrum statistics.
    #[arg(long, value_name = "K", conflicts_with_all = ["each_output", "mean_gram", "chunk", "plots"])]
    lanczos: Option<usize>,
    /// With --lanczos: stop when every σ²'s residual is ≤ TOL·σ² (or at the precision of the
    /// model's dtype).
    #[arg(long, value_parser = super::finite_number, default_value_t = LanczosOptions::default().tolerance, value_name = "TOL", requires = "lanczos")]
    lanczos_tolerance: f64,
    /// With --lanczos: also the density of each J's σ² by stochastic Lanczos quadrature, R
    /// runs per sample (pooled over the batch in the JSON's `density`), and each sample's bulk
    /// against Marchenko-Pastur and a semicircle with its top σ² above the bulk edge counted
    /// as outliers (as `hessian --density` reads the Hessian).
    #[arg(long, value_name = "R", default_value_t = 0, requires = "lanczos")]
    lanczos_density: usize,
    /// Lanczos steps per density run (at most the operator's order).
    #[arg(long, value_name = "N", default_value_t = LanczosOptions::default().density.steps, requires = "lanczos")]
    lanczos_density_steps: usize,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    plots: PlotArgs,
    #[command(flatten)]
    rmt: RmtRequest,
    #[command(flatten)]
    output: OutputArgs,
}

impl JacobianArgs {
    /// What every error of the command is prefixed with: the files it read.
    fn context(&self) -> String {
        format!(
            "Jacobians of {} on {}",
            self.model.display(),
            self.input.display()
        )
    }
}

/// Computes and writes the Jacobian report.
pub fn run(args: JacobianArgs) -> anyhow::Result<u8> {
    if args.rmt.vectors || args.rmt.semicircle {
        anyhow::bail!(
            "jacobian tests the singular values of J, not its singular vectors (--vectors) or a symmetric part (--semicircle): those are analyze's"
        );
    }
    let options = JacobianOptions {
        device: args.device,
        output_index: args.output_index,
        chunk: args.chunk,
        float64: args.f64,
        samples: args.samples,
        isometry_tolerance: args.isometry_tolerance,
        mean_gram: args.mean_gram,
        keep_singular_values: true,
        rmt: args.rmt.resolve()?,
        ..JacobianOptions::default()
    };
    options.check()?;
    args.output.prepare(&[&args.model, &args.input])?;
    args.plots.prepare()?;
    if let Some(k) = args.lanczos {
        return run_lanczos(&args, &options, k);
    }
    let bar = progress_bar(args.quiet, "rows of J");
    let analyses = if args.each_output {
        analyze_each_output(
            &args.model,
            &args.input,
            args.input_key.as_deref(),
            &options,
            |output, done, total| {
                bar.set_message(format!("output {output}"));
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            },
        )
    } else {
        analyze_jacobians(
            &args.model,
            &args.input,
            args.input_key.as_deref(),
            &options,
            |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            },
        )
        .map(|analysis| vec![analysis])
    }
    .with_context(|| args.context())?;
    bar.finish_and_clear();
    if args.each_output {
        args.output.emit(&EachOutput(&analyses))?;
    } else {
        args.output.emit(&analyses[0])?;
    }
    args.plots.write(args.quiet, |directory, files| {
        write_jacobian_figures(&analyses, directory, files)
    })?;
    Ok(0)
}

/// `--lanczos K`: the top singular values of each sample's J by products alone.
fn run_lanczos(args: &JacobianArgs, options: &JacobianOptions, k: usize) -> anyhow::Result<u8> {
    let bar = progress_bar(args.quiet, "products with J");
    let lanczos = LanczosOptions {
        k,
        tolerance: args.lanczos_tolerance,
        density: DensityOptions {
            runs: args.lanczos_density,
            steps: args.lanczos_density_steps,
        },
        ..LanczosOptions::default()
    };
    let analysis = analyze_top_singular_values(
        &args.model,
        &args.input,
        args.input_key.as_deref(),
        options,
        lanczos,
        |sample, products| {
            bar.set_message(format!("sample {sample}"));
            bar.set_position(products as u64);
        },
    )
    .with_context(|| args.context())?;
    bar.finish_and_clear();
    args.output.emit(&analysis)?;
    Ok(0)
}
