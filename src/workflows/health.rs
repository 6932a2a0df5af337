//! Policies: rules over a [`ModelSummary`] that mark a model unhealthy. One implementation for
//! `zoo --fail-if`/`--policy` and for a service that gates a deployment on its model's spectra
//! ([`check`]).
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::analysis::{analyze, Analysis, AnalyzeOptions, ModelSummary, SummaryField};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::option_names::{option_names, serde_as_text, OptionNames};

/// How a rule compares a summary field with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
}

option_names!(Comparison, "operator", {
    GreaterOrEqual => ">=",
    LessOrEqual => "<=",
    Equal => "==",
    NotEqual => "!=",
    Greater => ">",
    Less => "<",
});

impl Comparison {
    /// Whether `value` compares so with `threshold`.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Greater => value > threshold,
            Self::GreaterOrEqual => value >= threshold,
            Self::Less => value < threshold,
            Self::LessOrEqual => value <= threshold,
            Self::Equal => value == threshold,
            Self::NotEqual => value != threshold,
        }
    }
}

/// A policy rule `FIELD OP VALUE`, e.g. `alpha>6`: violated when it holds. Written and read as
/// that text (in policy files, on the command line, in JSON).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// The summary field compared.
    pub field: SummaryField,
    /// The comparison.
    pub comparison: Comparison,
    /// The threshold, a finite number.
    pub value: f64,
}

impl std::str::FromStr for Rule {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let text = text.trim();
        let invalid = |reason: String| Error::InvalidOption(format!("rule '{text}': {reason}"));
        let at = text.find(['>', '<', '=', '!']).ok_or_else(|| {
            invalid(format!(
                "needs an operator: FIELD OP VALUE with OP one of {}",
                Comparison::NAMES.join(" ")
            ))
        })?;
        let (field, rest) = text.split_at(at);
        let operator_length = rest
            .chars()
            .take_while(|c| matches!(c, '>' | '<' | '=' | '!'))
            .count();
        let (operator, value) = rest.split_at(operator_length);
        let field = field.trim().parse().map_err(|_| {
            invalid(format!(
                "unknown field '{}' (one of {})",
                field.trim(),
                SummaryField::NAMES.join(", ")
            ))
        })?;
        let comparison = operator.parse().map_err(|_| {
            invalid(format!(
                "unknown operator '{operator}' (one of {})",
                Comparison::NAMES.join(" ")
            ))
        })?;
        let value = match value.trim().parse::<f64>() {
            Ok(value) if value.is_finite() => value,
            _ => {
                return Err(invalid(format!(
                    "'{}' is not a finite number",
                    value.trim()
                )))
            }
        };
        Ok(Self {
            field,
            comparison,
            value,
        })
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.field, self.comparison, self.value)
    }
}

serde_as_text!(Rule);

impl Rule {
    /// Whether `summary` violates the rule; a mean over no layer violates nothing.
    pub fn violated_by(&self, summary: &ModelSummary) -> bool {
        summary
            .get(self.field)
            .is_some_and(|value| self.comparison.holds(value, self.value))
    }
}

/// A policy: the rules a healthy model violates none of.
///
/// ```
/// let policy: rmt_torch::workflows::health::Policy = "alpha>6\nover_trained>=1".parse()?;
/// assert_eq!(policy.rules.len(), 2);
/// # Ok::<(), rmt_torch::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    /// The rules, in the order written.
    pub rules: Vec<Rule>,
}

impl std::str::FromStr for Policy {
    type Err = Error;

    /// One `FIELD OP VALUE` per line; `#` comments and blank lines ignored. Errors name the line.
    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text, "")
    }
}

impl Policy {
    /// A policy file (see `Policy::from_str`); errors name the file and the line.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &format!("{} ", path.display()))
    }

    /// The rules of `text`; errors start with `origin` (a file name and a space, or nothing).
    fn parse(text: &str, origin: &str) -> Result<Self> {
        let rules = text
            .lines()
            .enumerate()
            .map(|(number, line)| (number, line.split('#').next().unwrap_or("").trim()))
            .filter(|(_, line)| !line.is_empty())
            .map(|(number, line)| {
                line.parse().map_err(|err: Error| {
                    Error::InvalidOption(format!("{origin}line {}: {err}", number + 1))
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { rules })
    }

    /// The rules `summary` violates, as written.
    pub fn violations(&self, summary: &ModelSummary) -> Vec<Rule> {
        self.rules
            .iter()
            .copied()
            .filter(|rule| rule.violated_by(summary))
            .collect()
    }

    /// The verdict on `summary` and the rules it violates.
    pub fn judge(&self, summary: &ModelSummary) -> (Verdict, Vec<Rule>) {
        let violations = self.violations(summary);
        let verdict = if violations.is_empty() {
            Verdict::Healthy
        } else {
            Verdict::Violated
        };
        (verdict, violations)
    }
}

/// A model's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No rule violated.
    Healthy,
    /// At least one rule violated.
    Violated,
    /// The file could not be analysed.
    Error,
    /// The file holds no model: one bare tensor (`torch.save(tensor)`, an input batch, say).
    /// Listed, not ranked, and no reason for a non-zero exit.
    NotAModel,
}

/// What [`check`] found: the verdict, the rules violated, and the analysis behind them.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// [`Verdict::Healthy`] or [`Verdict::Violated`].
    pub verdict: Verdict,
    /// The rules the model violates, as written.
    pub violations: Vec<Rule>,
    /// The analysis the verdict rests on (its `summary` is what the rules read).
    pub analysis: Analysis,
    /// Wall time of the check, seconds.
    pub seconds: f64,
}

impl HealthReport {
    /// True when no rule is violated: a service may serve the model.
    pub fn is_healthy(&self) -> bool {
        self.verdict == Verdict::Healthy
    }
}

/// Analyses `model` with `options` and judges it by `policy`: the deployment gate a service
/// runs at start-up (0.06 s for the shipped models and 1.6 s for ResNet50 on two CPU cores:
/// the README's "Using rmt-torch from a Rust service"). The same rules and verdicts as
/// `zoo --fail-if`/`--policy`.
///
/// ```
/// use rmt_torch::workflows::health::{check, Policy};
/// let model = rmt_torch::Model::load("models/digits_mlp_trained.pt")?;
/// let options = rmt_torch::AnalyzeOptions::default().on_device(rmt_torch::DeviceChoice::Cpu);
/// let report = check(&model, &"alpha>5\nunder_trained>=1".parse::<Policy>()?, &options)?;
/// assert!(report.is_healthy(), "{:?}", report.violations);
/// let report = check(&model, &"alpha<2.5".parse::<Policy>()?, &options)?;
/// assert_eq!(report.violations[0].to_string(), "alpha<2.5");
/// # Ok::<(), rmt_torch::Error>(())
/// ```
pub fn check(model: &Model, policy: &Policy, options: &AnalyzeOptions) -> Result<HealthReport> {
    let started = std::time::Instant::now();
    let analysis = analyze(model, options)?;
    let (verdict, violations) = policy.judge(&analysis.summary);
    Ok(HealthReport {
        verdict,
        violations,
        analysis,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(alpha: Option<f64>) -> ModelSummary {
        ModelSummary {
            alpha,
            ..ModelSummary::of(&[])
        }
    }

    #[test]
    fn rules_parse_print_and_judge() {
        let rule: Rule = "alpha>6".parse().unwrap();
        assert_eq!(rule.to_string(), "alpha>6");
        let at_least: Rule = " over_trained >= 1 ".parse().unwrap();
        assert_eq!(at_least.comparison, Comparison::GreaterOrEqual);
        assert!(rule.violated_by(&summary(Some(6.5))));
        assert!(!rule.violated_by(&summary(Some(6.0))));
        assert!(!rule.violated_by(&summary(None)));
        assert!(!at_least.violated_by(&summary(Some(6.5))));
        let cases = [
            ("alpha<=2", 2.0, true),
            ("alpha<2", 2.0, false),
            ("alpha==2", 2.0, true),
            ("alpha!=2", 2.0, false),
            ("alpha>=2", 1.5, false),
        ];
        for (text, alpha, violated) in cases {
            let rule: Rule = text.parse().unwrap();
            assert_eq!(rule.violated_by(&summary(Some(alpha))), violated, "{text}");
            assert_eq!(rule.to_string(), text);
        }
    }

    #[test]
    fn malformed_rules_are_refused() {
        for bad in [
            "alpha",
            "alpha_mean>6",
            "alpha=>6",
            "alpha=6",
            "alpha<>6",
            "alpha>six",
            "alpha>nan",
            "alpha>inf",
            ">6",
        ] {
            assert!(bad.parse::<Rule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rules_round_trip_through_json() {
        let rules: Vec<Rule> = vec!["alpha>6".parse().unwrap(), "fit_failed!=0".parse().unwrap()];
        let json = serde_json::to_string(&rules).unwrap();
        assert_eq!(json, r#"["alpha>6","fit_failed!=0"]"#);
        assert_eq!(serde_json::from_str::<Vec<Rule>>(&json).unwrap(), rules);
    }
}
