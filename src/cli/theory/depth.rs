//! `rmt-torch theory depth`.
use clap::Args;

use crate::described_choice;
use crate::report::format_number;
use crate::report::plots::theory::depth_figures;
use crate::report::plots::write_formats;
use crate::theory::hermite::Activation;
use crate::theory::kernel::depth_profile;

use super::emit;
use crate::cli::{OutputArgs, PlotArgs};

#[derive(Debug, Args)]
#[command(
    after_long_help = "EXAMPLE:\n  rmt-torch theory depth --activation tanh --depths 1,2,5,10 --plots figures/"
)]
pub struct DepthArgs {
    /// relu, leaky_relu, tanh, sigmoid, erf, gelu, silu (used centred and normalised).
    #[arg(long, value_parser = described_choice::<Activation>(&Activation::FORMULAS), default_value = "tanh")]
    activation: Activation,
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

/// The conjugate kernel's distance to the identity over depth.
pub fn run(args: DepthArgs) -> anyhow::Result<()> {
    let profile = depth_profile(
        args.activation,
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
