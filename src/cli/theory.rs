//! `rmt-torch theory`: the closed forms and quadratures behind the spectra.
use std::process::ExitCode;

use clap::{Args, Subcommand};

use rmt_torch::random::SeededNormal;
use rmt_torch::report::plots::theory::{
    depth_figures, dyson_figures, kernel_figure, preactivation_figure, random_features_figure,
    ridge_figure,
};
use rmt_torch::report::plots::write_formats;
use rmt_torch::report::{format_number, format_optional, table::Table, to_json, OutputFormat};
use rmt_torch::theory::dyson::{run_case, DysonCase, DysonOptions};
use rmt_torch::theory::hermite::{hermite_coefficients, Activation};
use rmt_torch::theory::kernel::{compare_with_linear_equivalent, depth_profile};
use rmt_torch::theory::preactivation::{kernel_recursion, measured_kernels, Ensemble};
use rmt_torch::theory::random_features::{feature_sweep, FeatureMap, Task};
use rmt_torch::theory::ridge::{risk_sweep, RidgeSimulation};

use super::output::write_output;
use super::{parse_positive_list, OutputArgs, PlotArgs};

/// Arguments of `theory`.
#[derive(Debug, Args)]
pub struct TheoryArgs {
    #[command(subcommand)]
    command: TheoryCommand,
}

#[derive(Debug, Subcommand)]
enum TheoryCommand {
    /// Hermite coefficients aₖ = E[φ(ξ)Heₖ(ξ)]/√k! and ν = E[φ(ξ)²] of activations (Liao & Mahoney's (2025)
    /// linear equivalent of a random layer's conjugate kernel).
    Hermite(HermiteArgs),
    /// The conjugate kernel K = φ(WX)ᵀφ(WX)/d of a random layer against its Hermite linear
    /// equivalent K̃: the relative operator-norm error ‖K − K̃‖/‖K‖.
    Kernel(KernelArgs),
    /// Deterministic-equivalent prediction risk of ridge regression with isotropic features
    /// (Hastie et al.): double descent in γ = p/n, its peak at γ = 1 for a small ridge λ.
    Ridge(RidgeArgs),
    /// Ridge regression on N random features (Louart, Liao & Couillet): training and test
    /// error against their deterministic equivalents; the test error peaks at N = n.
    RandomFeatures(RandomFeaturesArgs),
    /// Dyson Brownian motion of eigenvalues and its Coulomb gas: spacings against the Wigner
    /// surmise, densities against the semicircle and Favoni, Aarts, Lucini & Park's (2024) two-width pair density.
    Dyson(DysonArgs),
    /// The curse of depth: the conjugate kernel K_L of a deep random network forgets its input
    /// as b^{2L} (b the normalised activation's a₁); ‖K_L − I‖_F against the prediction.
    Depth(DepthArgs),
    /// Pre-activation statistics at initialisation (Aarts (2025), eq. 32): the recursion for
    /// E[z⁽ˡ⁾(x_α)z⁽ˡ⁾(x_β)] against random networks.
    Preactivation(PreactivationArgs),
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
CASES:
  pair        N = 2 in one well: spacings follow the Wigner surmise exactly (GOE for β = 1, GUE
              for β = 2); the density is Favoni, Aarts, Lucini & Park's (2024) pair density (β = 1)
  degenerate  N = 10 with four doubly degenerate pairs: each pair still follows the surmise
  two-width   N = 2 in wells of widths 0.5 and 1.5: Favoni, Aarts, Lucini & Park's (2024) two-component density (β = 1)
  semicircle  N eigenvalues in one well: Wigner's semicircle of radius √(2βN)

The motion dxᵢ = −(xᵢ − κᵢ)/σᵢ² dt + β Σ 1/(xᵢ − xⱼ) dt + √2 dBᵢ is integrated by Euler-Maruyama
steps accepted by Metropolis-Hastings against the Coulomb gas (and refused when eigenvalues would
cross), so the stationary law is exact and the ordering kept.

EXAMPLES:
  rmt-torch theory dyson --case pair --beta 2
  rmt-torch theory dyson --case semicircle --n 60 --plots figures/")]
struct DysonArgs {
    /// pair, degenerate, two-width or semicircle.
    #[arg(long, default_value = "pair")]
    case: String,
    /// Repulsion β (1 or 2 have surmises to compare with).
    #[arg(value_parser = super::finite_number, long, default_value_t = 1.0)]
    beta: f64,
    /// Eigenvalues of the semicircle case.
    #[arg(long, default_value_t = 40)]
    n: usize,
    /// Independent chains (default: the case's).
    #[arg(long)]
    chains: Option<usize>,
    /// Configurations recorded per chain (default: the case's).
    #[arg(long)]
    samples: Option<usize>,
    /// Time step in units of 1/g² (default: the case's).
    #[arg(value_parser = super::finite_number, long)]
    dt: Option<f64>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    plots: PlotArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "EXAMPLE:\n  rmt-torch theory depth --activation tanh --depths 1,2,5,10 --plots figures/"
)]
struct DepthArgs {
    /// relu, leaky_relu, tanh, sigmoid, erf, gelu, silu (used centred and normalised).
    #[arg(long, default_value = "tanh")]
    activation: String,
    /// Samples n (K is n × n).
    #[arg(long, default_value_t = 512)]
    n: usize,
    /// Input dimension p.
    #[arg(long, default_value_t = 512)]
    p: usize,
    /// Width of every layer (the finite-width noise is n²/width per layer).
    #[arg(long, default_value_t = 2048)]
    width: usize,
    /// Depths to report.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 5, 10])]
    depths: Vec<usize>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    plots: PlotArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "EXAMPLE:\n  rmt-torch theory preactivation --activation relu --sigma-w2 2 --layers 8"
)]
struct PreactivationArgs {
    /// relu, leaky_relu, tanh, sigmoid, erf, gelu, silu.
    #[arg(long, default_value = "tanh")]
    activation: String,
    /// σ_W²: weights are N(0, σ_W²/fan-in).
    #[arg(value_parser = super::finite_number, long, default_value_t = 1.0)]
    sigma_w2: f64,
    /// Layers.
    #[arg(long, default_value_t = 6)]
    layers: usize,
    /// Input dimension n₀ of the two Gaussian inputs.
    #[arg(long, default_value_t = 64)]
    input_dim: usize,
    /// Correlation of the two inputs.
    #[arg(value_parser = super::finite_number, long, default_value_t = 0.5)]
    correlation: f64,
    /// Width of the random networks.
    #[arg(long, default_value_t = 256)]
    width: usize,
    /// Random networks averaged.
    #[arg(long, default_value_t = 100)]
    networks: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    plots: PlotArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "EXAMPLE:\n  rmt-torch theory random-features --features 64:1024:64 --simulate 10 --plots figures/"
)]
struct RandomFeaturesArgs {
    /// relu or erf (their kernels Φ are known in closed form).
    #[arg(long, default_value = "relu")]
    activation: String,
    /// Training samples n.
    #[arg(long, default_value_t = 256)]
    n: usize,
    /// Input dimension p.
    #[arg(long, default_value_t = 128)]
    p: usize,
    /// Test samples.
    #[arg(long, default_value_t = 512)]
    n_test: usize,
    /// Feature counts N: a list or START:END[:STEP].
    #[arg(long, default_value = "32:1024:32")]
    features: String,
    /// Ridge γ > 0.
    #[arg(value_parser = super::finite_number, long, default_value_t = 1e-3)]
    ridge: f64,
    /// Label-noise variance of the linear teacher.
    #[arg(value_parser = super::finite_number, long, default_value_t = 0.1)]
    noise: f64,
    /// Also simulate, averaging this many draws of the features per point.
    #[arg(long, value_name = "TRIALS")]
    simulate: Option<usize>,
    /// Seed of the data and the features.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    plots: PlotArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "EXAMPLE:\n  rmt-torch theory hermite --activation relu --activation tanh --order 4"
)]
struct HermiteArgs {
    /// relu, leaky_relu, tanh, sigmoid, erf, gelu, silu (repeatable; default all).
    #[arg(long)]
    activation: Vec<String>,
    /// Highest k.
    #[arg(long, default_value_t = 3)]
    order: usize,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "EXAMPLE:\n  rmt-torch theory ridge --gamma 0.1:3:0.1 --lambda 1e-5 --lambda 0.1"
)]
struct RidgeArgs {
    /// γ = p/n: a list `0.5,2` or a range START:END[:STEP].
    #[arg(long, default_value = "0.1:3:0.1")]
    gamma: String,
    /// Ridge penalties λ ≥ 0 (repeatable; 0 = ridgeless).
    #[arg(value_parser = super::finite_number, long, default_values_t = [1e-5, 0.1])]
    lambda: Vec<f64>,
    /// Signal strength ‖β‖².
    #[arg(value_parser = super::finite_number, long, default_value_t = 1.0)]
    r2: f64,
    /// Label-noise variance.
    #[arg(value_parser = super::finite_number, long, default_value_t = 1.0)]
    sigma2: f64,
    /// Also simulate ridge regression at this dimension p (n = p/γ samples), beside the curve.
    #[arg(long, value_name = "P")]
    simulate: Option<usize>,
    /// Simulated draws per point.
    #[arg(long, default_value_t = 10)]
    trials: usize,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    plots: PlotArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "EXAMPLE:\n  rmt-torch theory kernel --activation tanh --n 64 --n 256 --width-ratio 128"
)]
struct KernelArgs {
    /// relu, leaky_relu, tanh, sigmoid, erf, gelu, silu.
    #[arg(long, default_value = "relu")]
    activation: String,
    /// Sample counts n (= input dimension p), repeatable.
    #[arg(long, default_values_t = [32, 64, 128, 256, 512])]
    n: Vec<usize>,
    /// Layer width d as a multiple of n.
    #[arg(long, default_value_t = 32)]
    width_ratio: usize,
    /// Seed of X and W.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    plots: PlotArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Evaluates and prints: each subcommand computes, then writes through the one output path
/// ([`emit`]) and its figures.
pub fn run(args: TheoryArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TheoryCommand::Hermite(args) => hermite(args)?,
        TheoryCommand::Kernel(args) => kernel(args)?,
        TheoryCommand::Ridge(args) => ridge(args)?,
        TheoryCommand::RandomFeatures(args) => random_features(args)?,
        TheoryCommand::Dyson(args) => dyson(args)?,
        TheoryCommand::Depth(args) => depth(args)?,
        TheoryCommand::Preactivation(args) => preactivation(args)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Hermite coefficients of each activation (all of them when none is named).
fn hermite(args: HermiteArgs) -> anyhow::Result<()> {
    let names: Vec<String> = if args.activation.is_empty() {
        [
            "relu",
            "leaky_relu",
            "tanh",
            "sigmoid",
            "erf",
            "gelu",
            "silu",
        ]
        .map(String::from)
        .to_vec()
    } else {
        args.activation.clone()
    };
    let results = names
        .iter()
        .map(|name| {
            Ok(hermite_coefficients(
                name.parse::<Activation>()?,
                args.order,
            )?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut headers = vec!["activation".to_string()];
    headers.extend((0..=args.order).map(|k| format!("a{k}")));
    headers.push("nu".into());
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let mut row = vec![r.activation.to_string()];
            // Coefficients that vanish by symmetry print as 0, not −0.
            let clean = |a: f64| if a.abs() < 5e-13 { 0.0 } else { a };
            row.extend(r.coefficients.iter().map(|&a| format!("{:.12}", clean(a))));
            row.push(format!("{:.12}", r.nu));
            row
        })
        .collect();
    emit(&args.output, &results, headers, rows)?;
    Ok(())
}

/// A random layer's conjugate kernel against its linear equivalent, for each n.
fn kernel(args: KernelArgs) -> anyhow::Result<()> {
    let activation: Activation = args.activation.parse()?;
    let rows = args
        .n
        .iter()
        .map(|&n| {
            compare_with_linear_equivalent(activation, n, n, n * args.width_ratio.max(1), args.seed)
        })
        .collect::<Result<Vec<_>, _>>()?;
    emit(
        &args.output,
        &rows,
        ["n", "p", "d", "relative_error", "kernel_norm"]
            .map(String::from)
            .to_vec(),
        rows.iter()
            .map(|r| {
                vec![
                    r.n.to_string(),
                    r.p.to_string(),
                    r.d.to_string(),
                    format_number(r.relative_error),
                    format_number(r.kernel_norm),
                ]
            })
            .collect(),
    )?;
    args.plots.write(false, |directory, files| {
        let figure = kernel_figure(&rows, &args.activation);
        write_formats(&figure, directory, "kernel", files)
    })?;
    Ok(())
}

/// The ridge risk sweep, with simulations when asked.
fn ridge(args: RidgeArgs) -> anyhow::Result<()> {
    let gammas = parse_positive_list(&args.gamma, "--gamma")?;
    let simulation = args.simulate.map(|p| RidgeSimulation {
        p,
        trials: args.trials,
        seed: args.seed,
    });
    let rows = risk_sweep(args.r2, args.sigma2, &gammas, &args.lambda, simulation)?;
    emit(
        &args.output,
        &rows,
        [
            "gamma",
            "lambda",
            "risk",
            "simulated",
            "stderr",
            "rel_error",
        ]
        .map(String::from)
        .to_vec(),
        rows.iter()
            .map(|r| {
                vec![
                    format_number(r.gamma),
                    r.lambda.to_string(),
                    format_number(r.risk),
                    format_optional(r.simulated),
                    format_optional(r.simulated_stderr),
                    format_optional(r.simulated.map(|s| s / r.risk - 1.0)),
                ]
            })
            .collect(),
    )?;
    args.plots.write(false, |directory, files| {
        write_formats(&ridge_figure(&rows), directory, "ridge", files)
    })?;
    Ok(())
}

/// Random-features errors against their deterministic equivalents.
fn random_features(args: RandomFeaturesArgs) -> anyhow::Result<()> {
    let map = FeatureMap::of(args.activation.parse()?)?;
    let counts: Vec<usize> = parse_positive_list(&args.features, "--features")?
        .into_iter()
        .map(|f| f.round() as usize)
        .collect();
    if args.n == 0 || args.p == 0 || args.n_test == 0 {
        anyhow::bail!("--n, --p and --n-test must be at least 1");
    }
    let task = Task::linear_teacher(args.p, args.n, args.n_test, args.noise, args.seed)?;
    let simulation = args.simulate.map(|trials| (trials, args.seed + 1));
    let points = feature_sweep(map, &task, &counts, args.ridge, simulation)?;
    emit(
        &args.output,
        &points,
        [
            "features",
            "train",
            "test",
            "train_simulated",
            "test_simulated",
            "test_stderr",
            "test_rel_error",
        ]
        .map(String::from)
        .to_vec(),
        points
            .iter()
            .map(|p| {
                let simulated = p.simulated;
                vec![
                    p.features.to_string(),
                    format_number(p.train_theory),
                    format_number(p.test_theory),
                    format_optional(simulated.map(|s| s.train)),
                    format_optional(simulated.map(|s| s.test)),
                    format_optional(simulated.map(|s| s.test_stderr)),
                    format_optional(simulated.map(|s| s.test / p.test_theory - 1.0)),
                ]
            })
            .collect(),
    )?;
    args.plots.write(false, |directory, files| {
        let figure = random_features_figure(&points, args.n);
        write_formats(&figure, directory, "random_features", files)
    })?;
    Ok(())
}

/// One Dyson Brownian motion case against its theory.
fn dyson(args: DysonArgs) -> anyhow::Result<()> {
    let case: DysonCase = args.case.parse()?;
    let defaults = case.default_options();
    let options = DysonOptions {
        dt: args.dt.unwrap_or(defaults.dt),
        chains: args.chains.unwrap_or(defaults.chains),
        samples_per_chain: args.samples.unwrap_or(defaults.samples_per_chain),
        seed: args.seed,
        ..defaults
    };
    let report = run_case(case, args.beta, args.n, &options)?;
    let mut rows = vec![
        vec!["eigenvalues N".into(), report.n.to_string()],
        vec!["configurations".into(), report.configurations.to_string()],
        vec!["acceptance".into(), format_number(report.acceptance)],
    ];
    if let Some(spacing) = &report.spacing {
        for (name, test) in [
            ("spacing KS p, GOE surmise", spacing.goe),
            ("spacing KS p, GUE surmise", spacing.gue),
            ("spacing KS p, Poisson", spacing.poisson),
        ] {
            rows.push(vec![name.into(), format_number(test.p_value)]);
        }
    }
    if let Some(law) = report.expected_surmise {
        rows.push(vec!["expected".into(), law.to_string()]);
    }
    if let Some(test) = &report.density {
        rows.push(vec![
            "density KS distance".into(),
            format_number(test.statistic),
        ]);
        rows.push(vec!["density KS p".into(), format_number(test.p_value)]);
    }
    emit(
        &args.output,
        &report,
        vec!["statistic".into(), "value".into()],
        rows,
    )?;
    let gas = case.gas(args.beta, args.n)?;
    args.plots.write(false, |directory, files| {
        let mut written = Vec::new();
        for (stem, figure) in dyson_figures(&report, &gas) {
            written.extend(write_formats(&figure, directory, &stem, files)?);
        }
        Ok(written)
    })?;
    Ok(())
}

/// The conjugate kernel's distance to the identity over depth.
fn depth(args: DepthArgs) -> anyhow::Result<()> {
    let profile = depth_profile(
        args.activation.parse()?,
        args.n,
        args.p,
        args.width,
        &args.depths,
        args.seed,
    )?;
    emit(
        &args.output,
        &profile,
        [
            "depth",
            "distance",
            "predicted",
            "rel_error",
            "input_part",
            "eig_min",
            "eig_max",
        ]
        .map(String::from)
        .to_vec(),
        profile
            .points
            .iter()
            .map(|p| {
                vec![
                    p.depth.to_string(),
                    format_number(p.distance),
                    format_number(p.predicted),
                    format_number(p.distance / p.predicted - 1.0),
                    format_number(p.signal),
                    format_number(p.eigenvalue_min),
                    format_number(p.eigenvalue_max),
                ]
            })
            .collect(),
    )?;
    args.plots.write(false, |directory, files| {
        let (distance, spectra) = depth_figures(&profile);
        let mut written = write_formats(&distance, directory, "depth_distance", files)?;
        written.extend(write_formats(&spectra, directory, "depth_spectra", files)?);
        Ok(written)
    })?;
    Ok(())
}

/// The pre-activation kernel recursion against random networks.
fn preactivation(args: PreactivationArgs) -> anyhow::Result<()> {
    let activation: Activation = args.activation.parse()?;
    if !(-1.0..=1.0).contains(&args.correlation) || args.input_dim == 0 {
        anyhow::bail!("--correlation must be in [−1, 1] and --input-dim at least 1");
    }
    let mut rng = SeededNormal::new(args.seed);
    rmt_torch::theory::budget::check(
        format!("input dimension {}", args.input_dim),
        24.0 * args.input_dim as f64,
        10.0 * args.input_dim as f64,
    )?;
    let x_a = rng.normals(args.input_dim);
    let orthogonal = (1.0 - args.correlation.powi(2)).sqrt();
    let x_b: Vec<f64> = x_a
        .iter()
        .map(|v| args.correlation * v + orthogonal * rng.normal())
        .collect();
    let theory = kernel_recursion(activation, args.sigma_w2, &x_a, &x_b, args.layers)?;
    let ensemble = Ensemble {
        width: args.width,
        networks: args.networks,
        seed: args.seed + 1,
    };
    let measured = measured_kernels(
        activation,
        args.sigma_w2,
        (&x_a, &x_b),
        args.layers,
        ensemble,
    )?;
    emit(
        &args.output,
        &serde_json::json!({
            "recursion": theory,
            "random_networks": measured,
        }),
        [
            "layer",
            "K_aa",
            "K_aa_mc",
            "K_ab",
            "K_ab_mc",
            "K_bb",
            "K_bb_mc",
            "stderr_ab",
        ]
        .map(String::from)
        .to_vec(),
        theory
            .iter()
            .zip(&measured)
            .map(|(t, m)| {
                vec![
                    t.layer.to_string(),
                    format_number(t.k_aa),
                    format_number(m.mean.k_aa),
                    format_number(t.k_ab),
                    format_number(m.mean.k_ab),
                    format_number(t.k_bb),
                    format_number(m.mean.k_bb),
                    format_number(m.stderr[1]),
                ]
            })
            .collect(),
    )?;
    args.plots.write(false, |directory, files| {
        let figure = preactivation_figure(&theory, &measured);
        write_formats(&figure, directory, "preactivation", files)
    })?;
    Ok(())
}

/// The one output path of every theory subcommand: `results` as JSON, or the table (CSV with
/// the same columns) of `rows` under `headers`.
fn emit(
    output: &OutputArgs,
    results: &impl serde::Serialize,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
) -> anyhow::Result<()> {
    let text = match output.format {
        OutputFormat::Json => to_json(results)?,
        OutputFormat::Csv => {
            let mut out = rmt_torch::report::csv::line(&headers);
            for row in rows {
                out.push_str(&rmt_torch::report::csv::line(&row));
            }
            out
        }
        OutputFormat::Table => {
            let mut table = Table::new(headers);
            for row in rows {
                table.push(row);
            }
            table.render()
        }
    };
    write_output(output, &text)
}
