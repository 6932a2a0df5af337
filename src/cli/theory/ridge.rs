//! `rmt-torch theory ridge`.
use clap::Args;

use crate::analysis::Lengths;
use crate::report::plots::theory::ridge_figure;
use crate::report::plots::write_formats;
use crate::report::{format_number, format_optional};
use crate::theory::ridge::{risk_sweep, RidgeSimulation};

use super::emit;
use crate::cli::{finite_number, OutputArgs, PlotArgs};

#[derive(Debug, Args)]
#[command(
    after_long_help = "EXAMPLE:\n  rmt-torch theory ridge --gamma 0.1:3:0.1 --lambda 1e-5 --lambda 0.1"
)]
pub struct RidgeArgs {
    /// γ = p/n: a list `0.5,2` or a range START:END[:STEP].
    #[arg(long, default_value = "0.1:3:0.1", value_name = "GAMMAS")]
    gamma: Lengths,
    /// Ridge penalties λ ≥ 0 (repeatable; 0 = ridgeless).
    #[arg(value_parser = finite_number, long, default_values_t = [1e-5, 0.1])]
    lambda: Vec<f64>,
    /// Signal strength ‖β‖².
    #[arg(value_parser = finite_number, long, default_value_t = 1.0)]
    r2: f64,
    /// Label-noise variance.
    #[arg(value_parser = finite_number, long, default_value_t = 1.0)]
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

/// The ridge risk sweep, with simulations when asked.
pub fn run(args: RidgeArgs) -> anyhow::Result<()> {
    let gammas = &args.gamma.0;
    let simulation = args.simulate.map(|p| RidgeSimulation {
        p,
        trials: args.trials,
        seed: args.seed,
    });
    let rows = risk_sweep(args.r2, args.sigma2, gammas, &args.lambda, simulation)?;
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
