//! `rmt-torch theory kernel`.
use clap::Args;

use crate::described_choice;
use crate::report::format_number;
use crate::report::plots::theory::kernel_figure;
use crate::report::plots::write_formats;
use crate::theory::hermite::Activation;
use crate::theory::kernel::compare_with_linear_equivalent;

use super::emit;
use crate::cli::{OutputArgs, PlotArgs};

#[derive(Debug, Args)]
#[command(
    after_long_help = "EXAMPLE:\n  rmt-torch theory kernel --activation tanh --n 64 --n 256 --width-ratio 128"
)]
pub struct KernelArgs {
    /// relu, leaky_relu, tanh, sigmoid, erf, gelu, silu.
    #[arg(long, value_parser = described_choice::<Activation>(&Activation::FORMULAS), default_value = "relu")]
    activation: Activation,
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

/// A random layer's conjugate kernel against its linear equivalent, for each n.
pub fn run(args: KernelArgs) -> anyhow::Result<()> {
    let activation = args.activation;
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
        let figure = kernel_figure(&rows, &activation.to_string());
        write_formats(&figure, directory, "kernel", files)
    })?;
    Ok(())
}
