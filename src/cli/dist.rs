//! `rmt-torch dist`: evaluate the library's distributions directly, so they can be used and
//! checked without writing Rust.

use clap::Args;
use serde::Serialize;

use crate::report::{json_rows, table::Table, Render};
use crate::stats::rmt::marchenko_pastur::MarchenkoPastur;
use crate::stats::rmt::number_variance::goe_number_variance;
use crate::stats::rmt::tracy_widom::TracyWidom;
use crate::stats::rmt::wigner::{Semicircle, SpacingLaw};

use super::OutputArgs;

/// Arguments of `dist`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
DISTRIBUTIONS:
  mp                  Marchenko-Pastur law of the eigenvalues of WᵀW/N (--q N/M, --sigma2;
                      Q < 1 adds an atom of mass 1 − Q at 0)
  tw1, tw2            Tracy-Widom laws of the largest eigenvalue (β = 1 real, β = 2 complex)
  goe, gue, poisson   nearest-neighbour spacing laws: the Wigner surmises and Poisson
  semicircle          Wigner's semicircle of radius 2σ (--sigma2)
  goe-number-variance the exact GOE level number variance Σ²(L) (Mehta); use --at L

EXAMPLES:
  rmt-torch dist tw1 --cdf -1.5
  rmt-torch dist tw1 --quantile 0.95 --moments
  rmt-torch dist mp --q 2 --sigma2 1 --pdf 1 --cdf 1 --moments
  rmt-torch dist goe --cdf 0.5 --cdf 1 -f json
  rmt-torch dist goe-number-variance --at 1 --at 10")]
pub struct DistArgs {
    /// mp, tw1, tw2, goe, gue, poisson, semicircle or goe-number-variance.
    #[arg(value_parser = ["mp", "tw1", "tw2", "goe", "gue", "poisson", "semicircle", "goe-number-variance"])]
    name: String,
    /// Aspect ratio Q = N/M > 0 (mp; Q < 1 has an atom 1 − Q at 0).
    #[arg(value_parser = super::finite_number, long, default_value_t = 1.0)]
    q: f64,
    /// Variance σ² (mp, semicircle).
    #[arg(value_parser = super::finite_number, long, default_value_t = 1.0)]
    sigma2: f64,
    /// Evaluate the density at X (repeatable).
    #[arg(value_parser = super::finite_number, long, value_name = "X", allow_negative_numbers = true)]
    pdf: Vec<f64>,
    /// Evaluate the CDF at X (repeatable).
    #[arg(value_parser = super::finite_number, long, value_name = "X", allow_negative_numbers = true)]
    cdf: Vec<f64>,
    /// The P-quantile (repeatable).
    #[arg(value_parser = super::finite_number, long, value_name = "P")]
    quantile: Vec<f64>,
    /// Mean and variance (and raw moments 1–4 for mp).
    #[arg(long)]
    moments: bool,
    /// Σ²(L) for goe-number-variance (repeatable).
    #[arg(value_parser = super::finite_number, long, value_name = "L")]
    at: Vec<f64>,
    #[command(flatten)]
    output: OutputArgs,
}

/// One evaluated quantity.
#[derive(Debug, Serialize)]
struct Value {
    distribution: String,
    function: &'static str,
    argument: Option<f64>,
    value: f64,
}

/// Every quantity evaluated, in the order asked for.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Values(Vec<Value>);

impl Render for Values {
    fn table(&self) -> String {
        let mut table = Table::new(["distribution", "function", "argument", "value"]);
        for value in &self.0 {
            table.push(vec![
                value.distribution.clone(),
                value.function.to_string(),
                value.argument.map_or_else(String::new, |a| a.to_string()),
                format!("{:.15}", value.value),
            ]);
        }
        table.render()
    }

    fn csv_rows(&self) -> crate::Result<Vec<serde_json::Value>> {
        json_rows(&self.0)
    }
}

/// The distributions behind a common face.
enum Law {
    MarchenkoPastur(MarchenkoPastur),
    TracyWidom(TracyWidom),
    Spacing(SpacingLaw),
    Semicircle(Semicircle),
    NumberVariance,
}

impl Law {
    fn pdf(&self, x: f64) -> Option<f64> {
        match self {
            Self::MarchenkoPastur(law) => Some(law.density(x)),
            Self::TracyWidom(law) => Some(law.density(x)),
            Self::Spacing(law) => Some(law.density(x)),
            Self::Semicircle(law) => Some(law.density(x)),
            Self::NumberVariance => None,
        }
    }

    fn cdf(&self, x: f64) -> Option<f64> {
        match self {
            Self::MarchenkoPastur(law) => Some(law.cdf(x)),
            Self::TracyWidom(law) => Some(law.cdf(x)),
            Self::Spacing(law) => Some(law.cdf(x)),
            Self::Semicircle(law) => Some(law.cdf(x)),
            Self::NumberVariance => None,
        }
    }

    fn quantile(&self, p: f64) -> anyhow::Result<Option<f64>> {
        if !(0.0..=1.0).contains(&p) {
            anyhow::bail!("--quantile needs 0 ≤ P ≤ 1, got {p}");
        }
        Ok(match self {
            Self::MarchenkoPastur(law) => Some(law.quantile(p)?),
            Self::TracyWidom(law) => Some(law.quantile(p)?),
            Self::Spacing(law) => Some(law.quantile(p)),
            Self::Semicircle(law) => Some(law.quantile(p)),
            Self::NumberVariance => None,
        })
    }

    /// (name, value) pairs of its moments.
    fn moments(&self) -> Vec<(&'static str, f64)> {
        use std::f64::consts::PI;
        match self {
            Self::MarchenkoPastur(law) => {
                let m1 = law.moment(1).unwrap_or(f64::NAN);
                let m2 = law.moment(2).unwrap_or(f64::NAN);
                vec![
                    ("mean", m1),
                    ("variance", m2 - m1 * m1),
                    ("moment1", m1),
                    ("moment2", m2),
                    ("moment3", law.moment(3).unwrap_or(f64::NAN)),
                    ("moment4", law.moment(4).unwrap_or(f64::NAN)),
                ]
            }
            Self::TracyWidom(law) => {
                let (mean, variance) = law.mean_and_variance();
                vec![("mean", mean), ("variance", variance)]
            }
            Self::Spacing(law) => {
                let variance = match law {
                    SpacingLaw::Goe => 4.0 / PI - 1.0,
                    SpacingLaw::Gue => 3.0 * PI / 8.0 - 1.0,
                    SpacingLaw::Poisson => 1.0,
                };
                vec![
                    ("mean", 1.0),
                    ("variance", variance),
                    ("mean_spacing_ratio", law.mean_spacing_ratio()),
                ]
            }
            Self::Semicircle(law) => vec![("mean", 0.0), ("variance", law.sigma2)],
            Self::NumberVariance => Vec::new(),
        }
    }
}

/// Evaluates what was asked and prints it.
pub fn run(args: DistArgs) -> anyhow::Result<u8> {
    let law = match args.name.as_str() {
        "mp" => Law::MarchenkoPastur(MarchenkoPastur::new(args.q, args.sigma2)?),
        "tw1" => Law::TracyWidom(TracyWidom::Beta1),
        "tw2" => Law::TracyWidom(TracyWidom::Beta2),
        "semicircle" if args.sigma2 > 0.0 && args.sigma2.is_finite() => {
            Law::Semicircle(Semicircle {
                sigma2: args.sigma2,
            })
        }
        "semicircle" => anyhow::bail!("--sigma2 must be positive, got {}", args.sigma2),
        "goe-number-variance" => Law::NumberVariance,
        spacing => Law::Spacing(spacing.parse()?),
    };
    let mut values = Vec::new();
    let mut push = |function, argument, value| {
        values.push(Value {
            distribution: args.name.clone(),
            function,
            argument,
            value,
        })
    };
    let unsupported = |what: &str| anyhow::anyhow!("{} has no {what}; see --help", args.name);
    for &x in &args.pdf {
        push(
            "pdf",
            Some(x),
            law.pdf(x).ok_or_else(|| unsupported("density"))?,
        );
    }
    for &x in &args.cdf {
        push(
            "cdf",
            Some(x),
            law.cdf(x).ok_or_else(|| unsupported("CDF"))?,
        );
    }
    for &p in &args.quantile {
        push(
            "quantile",
            Some(p),
            law.quantile(p)?.ok_or_else(|| unsupported("quantile"))?,
        );
    }
    if args.moments {
        let moments = law.moments();
        if moments.is_empty() {
            return Err(unsupported("moments"));
        }
        for (name, value) in moments {
            push(name, None, value);
        }
    }
    for &length in &args.at {
        if !matches!(law, Law::NumberVariance) {
            return Err(unsupported("--at (only goe-number-variance takes it)"));
        }
        if length.is_nan() || length <= 0.0 {
            anyhow::bail!("--at needs L > 0, got {length}");
        }
        push("number_variance", Some(length), goe_number_variance(length));
    }
    if values.is_empty() {
        anyhow::bail!("nothing to evaluate: give --pdf, --cdf, --quantile, --moments or --at");
    }
    args.output.emit(&Values(values))?;
    Ok(0)
}
