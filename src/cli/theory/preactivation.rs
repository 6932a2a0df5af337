//! `rmt-torch theory preactivation`.
use clap::Args;

use crate::described_choice;
use crate::random::SeededNormal;
use crate::report::format_number;
use crate::report::plots::theory::preactivation_figure;
use crate::report::plots::write_formats;
use crate::theory::hermite::Activation;
use crate::theory::preactivation::{kernel_recursion, measured_kernels, Ensemble};

use super::emit;
use crate::cli::{finite_number, OutputArgs, PlotArgs};

#[derive(Debug, Args)]
#[command(
    after_long_help = "EXAMPLE:\n  rmt-torch theory preactivation --activation relu --sigma-w2 2 --layers 8"
)]
pub struct PreactivationArgs {
    /// relu, leaky_relu, tanh, sigmoid, erf, gelu, silu.
    #[arg(long, value_parser = described_choice::<Activation>(&Activation::FORMULAS), default_value = "tanh")]
    activation: Activation,
    /// σ_W²: weights are N(0, σ_W²/fan-in).
    #[arg(value_parser = finite_number, long, default_value_t = 1.0)]
    sigma_w2: f64,
    /// Layers.
    #[arg(long, default_value_t = 6)]
    layers: usize,
    /// Input dimension n₀ of the two Gaussian inputs.
    #[arg(long, default_value_t = 64)]
    input_dim: usize,
    /// Correlation of the two inputs.
    #[arg(value_parser = finite_number, long, default_value_t = 0.5)]
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

/// The pre-activation kernel recursion against random networks.
pub fn run(args: PreactivationArgs) -> anyhow::Result<()> {
    let activation = args.activation;
    if !(-1.0..=1.0).contains(&args.correlation) || args.input_dim == 0 {
        anyhow::bail!("--correlation must be in [−1, 1] and --input-dim at least 1");
    }
    let mut rng = SeededNormal::new(args.seed);
    crate::theory::budget::check(
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
