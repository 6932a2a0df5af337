//! `rmt-torch theory dyson`.
use clap::Args;

use crate::choice;
use crate::report::format_number;
use crate::report::plots::theory::dyson_figures;
use crate::report::plots::write_formats;
use crate::theory::dyson::{run_case, DysonCase, DysonOptions};

use super::emit;
use crate::cli::{finite_number, OutputArgs, PlotArgs};

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
pub struct DysonArgs {
    /// pair, degenerate, two-width or semicircle.
    #[arg(long, value_parser = choice::<DysonCase>(), default_value = "pair")]
    case: DysonCase,
    /// Repulsion β (1 or 2 have surmises to compare with).
    #[arg(value_parser = finite_number, long, default_value_t = 1.0)]
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
    #[arg(value_parser = finite_number, long)]
    dt: Option<f64>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    plots: PlotArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// One Dyson Brownian motion case against its theory.
pub fn run(args: DysonArgs) -> anyhow::Result<()> {
    let case = args.case;
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
