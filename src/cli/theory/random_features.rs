//! `rmt-torch theory random-features`.
use clap::Args;

use crate::analysis::Lengths;
use crate::described_choice;
use crate::report::plots::theory::random_features_figure;
use crate::report::plots::write_formats;
use crate::report::{format_number, format_optional};
use crate::theory::hermite::Activation;
use crate::theory::random_features::{feature_sweep, FeatureMap, Task};

use super::emit;
use crate::cli::{finite_number, OutputArgs, PlotArgs};

#[derive(Debug, Args)]
#[command(
    after_long_help = "EXAMPLE:\n  rmt-torch theory random-features --features 64:1024:64 --simulate 10 --plots figures/"
)]
pub struct RandomFeaturesArgs {
    /// relu or erf (their kernels Φ are known in closed form).
    #[arg(long, value_parser = described_choice::<Activation>(&Activation::FORMULAS), default_value = "relu")]
    activation: Activation,
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
    #[arg(long, default_value = "32:1024:32", value_name = "COUNTS")]
    features: Lengths,
    /// Ridge γ > 0.
    #[arg(value_parser = finite_number, long, default_value_t = 1e-3)]
    ridge: f64,
    /// Label-noise variance of the linear teacher.
    #[arg(value_parser = finite_number, long, default_value_t = 0.1)]
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

/// Random-features errors against their deterministic equivalents.
pub fn run(args: RandomFeaturesArgs) -> anyhow::Result<()> {
    let map = FeatureMap::of(args.activation)?;
    let counts: Vec<usize> = args.features.0.iter().map(|f| f.round() as usize).collect();
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
