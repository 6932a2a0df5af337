//! `rmt-torch theory hermite`.
use clap::Args;

use crate::theory::hermite::{hermite_coefficients, Activation};
use crate::{described_choice, OptionNames};

use super::emit;
use crate::cli::OutputArgs;

#[derive(Debug, Args)]
#[command(
    after_long_help = "EXAMPLE:\n  rmt-torch theory hermite --activation relu --activation tanh --order 4"
)]
pub struct HermiteArgs {
    /// relu, leaky_relu, tanh, sigmoid, erf, gelu, silu (repeatable; default all).
    #[arg(long, value_parser = described_choice::<Activation>(&Activation::FORMULAS))]
    activation: Vec<Activation>,
    /// Highest k.
    #[arg(long, default_value_t = 3)]
    order: usize,
    #[command(flatten)]
    output: OutputArgs,
}

/// Hermite coefficients of each activation (all of them when none is named).
pub fn run(args: HermiteArgs) -> anyhow::Result<()> {
    let activations: Vec<Activation> = if args.activation.is_empty() {
        Activation::NAMES
            .iter()
            .map(|name| name.parse())
            .collect::<crate::Result<_>>()?
    } else {
        args.activation.clone()
    };
    let results = activations
        .iter()
        .map(|&activation| hermite_coefficients(activation, args.order))
        .collect::<crate::Result<Vec<_>>>()?;
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
