//! `rmt-torch theory`: the closed forms and quadratures behind the spectra.
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;

use rmt_torch::report::{format_number, table::Table, to_json, OutputFormat};
use rmt_torch::theory::hermite::{hermite_coefficients, Activation};
use rmt_torch::theory::kernel::compare_with_linear_equivalent;
use rmt_torch::theory::ridge::{simulate_risk, RidgeProblem};

use super::output::write_output;
use super::OutputArgs;

/// Arguments of `theory`.
#[derive(Debug, Args)]
pub struct TheoryArgs {
    #[command(subcommand)]
    command: TheoryCommand,
}

#[derive(Debug, Subcommand)]
enum TheoryCommand {
    /// Hermite coefficients aₖ = E[φ(ξ)Heₖ(ξ)]/√k! and ν = E[φ(ξ)²] of activations (seed 002's
    /// linear equivalent of a random layer's conjugate kernel).
    Hermite(HermiteArgs),
    /// The conjugate kernel K = φ(WX)ᵀφ(WX)/d of a random layer against its Hermite linear
    /// equivalent K̃: the relative operator-norm error ‖K − K̃‖/‖K‖.
    Kernel(KernelArgs),
    /// Deterministic-equivalent prediction risk of ridge regression with isotropic features
    /// (Hastie et al.): double descent in γ = p/n, its peak at γ = 1 for a small ridge λ.
    Ridge(RidgeArgs),
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
    #[arg(long, default_values_t = [1e-5, 0.1])]
    lambda: Vec<f64>,
    /// Signal strength ‖β‖².
    #[arg(long, default_value_t = 1.0)]
    r2: f64,
    /// Label-noise variance.
    #[arg(long, default_value_t = 1.0)]
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
    #[arg(long, default_values_t = [64, 128, 256])]
    n: Vec<usize>,
    /// Layer width d as a multiple of n.
    #[arg(long, default_value_t = 32)]
    width_ratio: usize,
    /// Seed of X and W.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, Serialize)]
struct RiskRow {
    gamma: f64,
    lambda: f64,
    risk: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    simulated: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    simulated_stderr: Option<f64>,
}

/// Evaluates and prints.
pub fn run(args: TheoryArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TheoryCommand::Hermite(args) => {
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
            let text = match args.output.format.parse()? {
                OutputFormat::Json => to_json(&results)?,
                format => {
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
                    render(format, headers, rows)
                }
            };
            write_output(&args.output, &text)?;
        }
        TheoryCommand::Kernel(args) => {
            let activation: Activation = args.activation.parse()?;
            let rows = args
                .n
                .iter()
                .map(|&n| {
                    compare_with_linear_equivalent(
                        activation,
                        n,
                        n,
                        n * args.width_ratio.max(1),
                        args.seed,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            let text = match args.output.format.parse()? {
                OutputFormat::Json => to_json(&rows)?,
                format => render(
                    format,
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
                ),
            };
            write_output(&args.output, &text)?;
        }
        TheoryCommand::Ridge(args) => {
            let gammas = super::parse_lengths(&args.gamma).map_err(|err| {
                anyhow::anyhow!(
                    "{}",
                    err.to_string().replace("--number-variance", "--gamma")
                )
            })?;
            let mut rows = Vec::new();
            for &lambda in &args.lambda {
                for &gamma in &gammas {
                    let problem = RidgeProblem::new(gamma, args.r2, args.sigma2)?;
                    let simulated = args
                        .simulate
                        .map(|p| simulate_risk(&problem, lambda, p, args.trials, args.seed))
                        .transpose()?;
                    rows.push(RiskRow {
                        gamma,
                        lambda,
                        risk: problem.risk(lambda)?,
                        simulated: simulated.map(|s| s.0),
                        simulated_stderr: simulated.map(|s| s.1),
                    });
                }
            }
            let text = match args.output.format.parse()? {
                OutputFormat::Json => to_json(&rows)?,
                format => {
                    let optional =
                        |v: Option<f64>| v.map_or_else(|| "-".to_string(), format_number);
                    render(
                        format,
                        ["gamma", "lambda", "risk", "simulated", "stderr"]
                            .map(String::from)
                            .to_vec(),
                        rows.iter()
                            .map(|r| {
                                vec![
                                    format_number(r.gamma),
                                    r.lambda.to_string(),
                                    format_number(r.risk),
                                    optional(r.simulated),
                                    optional(r.simulated_stderr),
                                ]
                            })
                            .collect(),
                    )
                }
            };
            write_output(&args.output, &text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A table, or CSV with the same columns.
fn render(format: OutputFormat, headers: Vec<String>, rows: Vec<Vec<String>>) -> String {
    if format == OutputFormat::Csv {
        let mut out = headers.join(",") + "\n";
        for row in rows {
            out.push_str(&(row.join(",") + "\n"));
        }
        return out;
    }
    let mut table = Table::new(headers);
    for row in rows {
        table.push(row);
    }
    table.render()
}
