//! Policies: rules over a model's summary and its layers that mark a model unhealthy. One implementation for
//! `zoo --fail-if`/`--policy` and for a service that gates a deployment on its model's spectra
//! ([`check`]).
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::analysis::{
    analyze, Analysis, AnalyzeOptions, LayerReport, ModelSummary, SummaryField, LAYER_FIELDS,
};
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

/// Layer fields that hold no single number, which per-layer rules cannot compare.
const NOT_NUMBERS: &[&str] = &[
    "name",
    "kind",
    "role",
    "shape",
    "dtype",
    "fit_method",
    "quality",
    "warning",
    "porter_thomas",
    "eigenvalues",
    "number_variance",
    "unit_spacings",
    "small_samples",
];

/// A layer record's numeric field (one of [`LAYER_FIELDS`] holding a number), by its JSON name.
fn layer_field(name: &str) -> Option<&'static str> {
    LAYER_FIELDS
        .iter()
        .copied()
        .find(|field| *field == name && !NOT_NUMBERS.contains(field))
}

/// `FIELD OP VALUE` on one layer's field: the condition of `any(…)` and `count(…)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerCondition {
    /// The layer record's field, its JSON name.
    pub field: &'static str,
    /// The comparison.
    pub comparison: Comparison,
    /// The threshold.
    pub value: f64,
}

impl LayerCondition {
    /// Whether `layer` meets the condition (a layer without the field does not).
    fn holds(&self, layer: &serde_json::Value) -> bool {
        layer[self.field]
            .as_f64()
            .is_some_and(|value| self.comparison.holds(value, self.value))
    }
}

/// What a rule measures on a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// A field of the summary of the layers in scope (a mean or a count): `alpha`, `under_trained`.
    Summary(SummaryField),
    /// The largest value of a layer field over the layers in scope: `max_alpha`.
    Max(&'static str),
    /// The smallest: `min_alpha`.
    Min(&'static str),
    /// How many layers in scope meet a condition: `count(alpha>6)`.
    Count(LayerCondition),
    /// Whether any layer in scope meets it: `any(alpha>6)`, which is `count(alpha>6)>=1`.
    Any(LayerCondition),
    /// How much a summary field of the layers in scope changed since the model's previous
    /// analysis (now − before; `zoo --since`): `delta_alpha`. Absent without one.
    Delta(SummaryField),
}

/// The layers a rule reads: those whose name the regular expression matches (`layers=REGEX:`).
#[derive(Debug, Clone)]
pub struct LayerScope(regex::Regex);

impl LayerScope {
    /// Whether the scope reads the layer `name`.
    fn admits(&self, name: &str) -> bool {
        self.0.is_match(name)
    }
}

impl PartialEq for LayerScope {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// A policy rule, violated when it holds. Written and read as text (in policy files, on the
/// command line, in JSON):
/// - `alpha>6`: a field of the model's summary (means and counts over its layers);
/// - `max_alpha>6`, `min_stable_rank<2`: the largest or smallest value of a layer field;
/// - `any(alpha>6)`: some layer has α > 6; `count(alpha>6)>=2`: at least two do;
/// - `delta_alpha>0.5`: a summary field rose by more than 0.5 since the model's previous
///   analysis (`zoo --since`; never violated without one);
/// - `layers=REGEX:` before any of them reads only the layers whose name matches, e.g.
///   `layers=attention:any(alpha>6)` or `layers=mlp:under_trained>=1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The layers it reads; `None`: all of them.
    pub scope: Option<LayerScope>,
    /// What it measures.
    pub measure: Measure,
    /// The comparison of the measure with the threshold.
    pub comparison: Comparison,
    /// The threshold, a finite number.
    pub value: f64,
}

/// `FIELD OP VALUE` split into its parts, the field still text; errors say what is missing.
fn split_comparison(text: &str) -> std::result::Result<(&str, Comparison, f64), String> {
    let at = text.find(['>', '<', '=', '!']).ok_or_else(|| {
        format!(
            "needs an operator: FIELD OP VALUE with OP one of {}",
            Comparison::NAMES.join(" ")
        )
    })?;
    let (field, rest) = text.split_at(at);
    let operator_length = rest
        .chars()
        .take_while(|c| matches!(c, '>' | '<' | '=' | '!'))
        .count();
    let (operator, value) = rest.split_at(operator_length);
    let comparison = operator.parse().map_err(|_| {
        format!(
            "unknown operator '{operator}' (one of {})",
            Comparison::NAMES.join(" ")
        )
    })?;
    match value.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok((field.trim(), comparison, value)),
        _ => Err(format!("'{}' is not a finite number", value.trim())),
    }
}

/// What rules may name: the numeric fields of the records they read per layer, and whether
/// the target has a model summary (`alpha`, `over_trained`, …) to compare.
#[derive(Debug, Clone, Copy)]
pub struct RuleFields {
    /// The per-layer field `name`, when it is one.
    pub layer: fn(&str) -> Option<&'static str>,
    /// Names of a few of them, for the error that lists what a field could be.
    pub examples: &'static str,
    /// Whether summary fields may be named.
    pub summary: bool,
}

/// The fields of a model's analysis: `analyze`'s layer records and its summary.
pub const ANALYSIS_FIELDS: RuleFields = RuleFields {
    layer: layer_field,
    examples: "analyze's JSON names: alpha, alpha_weighted, stable_rank, num_spikes_tw, …",
    summary: true,
};

impl Rule {
    /// The rule `text` over the fields of `fields` (see [`Rule`] for the forms).
    pub fn parse(text: &str, fields: RuleFields) -> Result<Self> {
        let text = text.trim();
        let parse_layer_field = |name: &str| -> std::result::Result<&'static str, String> {
            (fields.layer)(name).ok_or_else(|| {
                format!(
                    "'{name}' is not a numeric layer field ({})",
                    fields.examples
                )
            })
        };
        let invalid = |reason: String| Error::InvalidOption(format!("rule '{text}': {reason}"));
        let (scope, body) = match text.strip_prefix("layers=") {
            Some(rest) => {
                let colon = rest
                    .rfind(':')
                    .ok_or_else(|| invalid("layers=REGEX: needs a colon before the rule".into()))?;
                let pattern = regex::Regex::new(&rest[..colon])
                    .map_err(|err| invalid(format!("layers={}: {err}", &rest[..colon])))?;
                (Some(LayerScope(pattern)), rest[colon + 1..].trim())
            }
            None => (None, text),
        };
        let condition = |inner: &str| -> std::result::Result<LayerCondition, String> {
            let (field, comparison, value) = split_comparison(inner)?;
            Ok(LayerCondition {
                field: parse_layer_field(field)?,
                comparison,
                value,
            })
        };
        let parsed = if let Some(inner) = body.strip_prefix("any(") {
            let inner = inner
                .strip_suffix(')')
                .ok_or_else(|| "any(FIELD OP VALUE) takes nothing after its ')'".to_string());
            inner
                .and_then(condition)
                .map(|c| (Measure::Any(c), Comparison::GreaterOrEqual, 1.0))
        } else if let Some(inner) = body.strip_prefix("count(") {
            match inner.find(')') {
                Some(close) => condition(&inner[..close]).and_then(|c| {
                    let (rest, comparison, value) = split_comparison(&inner[close + 1..])?;
                    if rest.is_empty() {
                        Ok((Measure::Count(c), comparison, value))
                    } else {
                        Err(format!("unexpected '{rest}' after count(…)"))
                    }
                }),
                None => Err("count( needs its ')'".into()),
            }
        } else {
            split_comparison(body).and_then(|(field, comparison, value)| {
                let summary_field = |name: &str| -> std::result::Result<SummaryField, String> {
                    name.parse().map_err(|_| {
                        format!(
                            "unknown field '{field}' (a summary field: {}; max_FIELD or min_FIELD of a layer field; delta_FIELD of a summary field; any(…) or count(…))",
                            SummaryField::NAMES.join(", ")
                        )
                    })
                };
                let measure = if let Some(name) = field.strip_prefix("max_") {
                    Measure::Max(parse_layer_field(name)?)
                } else if let Some(name) = field.strip_prefix("min_") {
                    Measure::Min(parse_layer_field(name)?)
                } else if !fields.summary {
                    return Err(format!(
                        "unknown field '{field}' (per layer: max_FIELD or min_FIELD, any(FIELD OP VALUE) or count(FIELD OP VALUE) OP N, FIELD one of {})",
                        fields.examples
                    ));
                } else if let Some(name) = field.strip_prefix("delta_") {
                    Measure::Delta(summary_field(name)?)
                } else {
                    Measure::Summary(summary_field(field)?)
                };
                Ok((measure, comparison, value))
            })
        };
        let (measure, comparison, value) = parsed.map_err(invalid)?;
        Ok(Self {
            scope,
            measure,
            comparison,
            value,
        })
    }
}

impl std::str::FromStr for Rule {
    type Err = Error;

    /// A rule over a model's analysis ([`ANALYSIS_FIELDS`]).
    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text, ANALYSIS_FIELDS)
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(LayerScope(pattern)) = &self.scope {
            write!(f, "layers={}:", pattern.as_str())?;
        }
        let condition = |c: &LayerCondition| format!("{}{}{}", c.field, c.comparison, c.value);
        match &self.measure {
            Measure::Any(c) => return write!(f, "any({})", condition(c)),
            Measure::Count(c) => write!(f, "count({})", condition(c))?,
            Measure::Max(field) => write!(f, "max_{field}")?,
            Measure::Min(field) => write!(f, "min_{field}")?,
            Measure::Summary(field) => write!(f, "{field}")?,
            Measure::Delta(field) => write!(f, "delta_{field}")?,
        }
        write!(f, "{}{}", self.comparison, self.value)
    }
}

serde_as_text!(Rule);

impl Rule {
    /// Whether `analysis` violates the rule. A measure over no layer (a mean, a maximum) is
    /// absent and violates nothing; a count over no layer is 0.
    pub fn violated_by(&self, analysis: &Analysis) -> bool {
        self.violated_since(analysis, None)
    }

    /// Whether `analysis` violates the rule, drifts measured from the `previous` analysis of
    /// the same model (none: a `delta_` rule is not violated).
    pub fn violated_since(&self, analysis: &Analysis, previous: Option<&Analysis>) -> bool {
        self.measure_since(analysis, previous)
            .is_some_and(|value| self.comparison.holds(value, self.value))
    }

    /// The rule's measure on `analysis`, `None` when it has none (a `delta_` measure has none
    /// without a previous analysis: [`Rule::measure_since`]).
    pub fn measure_of(&self, analysis: &Analysis) -> Option<f64> {
        self.measure_since(analysis, None)
    }

    /// The summary `field` of `analysis`'s layers in the rule's scope.
    fn summary_in_scope(&self, analysis: &Analysis, field: SummaryField) -> Option<f64> {
        match &self.scope {
            None => analysis.summary.get(field),
            Some(scope) => {
                let layers: Vec<LayerReport> = analysis
                    .layers
                    .iter()
                    .filter(|layer| scope.admits(&layer.name))
                    .cloned()
                    .collect();
                ModelSummary::of(&layers).get(field)
            }
        }
    }

    /// The rule's measure on `analysis`, a `delta_` measure against `previous`.
    pub fn measure_since(&self, analysis: &Analysis, previous: Option<&Analysis>) -> Option<f64> {
        match self.measure {
            Measure::Summary(field) => return self.summary_in_scope(analysis, field),
            Measure::Delta(field) => {
                let before = self.summary_in_scope(previous?, field)?;
                return Some(self.summary_in_scope(analysis, field)? - before);
            }
            _ => {}
        }
        let records: Vec<serde_json::Value> = analysis
            .layers
            .iter()
            .filter_map(|layer| serde_json::to_value(layer).ok())
            .collect();
        self.measure_over(&records)
    }

    /// The rule's per-layer measure over `records` (JSON objects with a `name`, the rule's
    /// fields at their top level), those of its scope only; `None` for a summary field.
    pub fn measure_over(&self, records: &[serde_json::Value]) -> Option<f64> {
        let records: Vec<&serde_json::Value> = records
            .iter()
            .filter(|record| {
                self.scope.as_ref().is_none_or(|scope| {
                    record["name"]
                        .as_str()
                        .is_some_and(|name| scope.admits(name))
                })
            })
            .collect();
        let values = |field: &'static str| records.iter().filter_map(move |r| r[field].as_f64());
        match self.measure {
            Measure::Summary(_) | Measure::Delta(_) => None,
            Measure::Max(field) => values(field).reduce(f64::max),
            Measure::Min(field) => values(field).reduce(f64::min),
            Measure::Count(c) | Measure::Any(c) => {
                Some(records.iter().filter(|r| c.holds(r)).count() as f64)
            }
        }
    }

    /// Whether the records violate the rule ([`Rule::measure_over`]).
    pub fn violated_over(&self, records: &[serde_json::Value]) -> bool {
        self.measure_over(records)
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

    /// The rules `analysis` violates, as written.
    pub fn violations(&self, analysis: &Analysis) -> Vec<Rule> {
        self.rules
            .iter()
            .filter(|rule| rule.violated_by(analysis))
            .cloned()
            .collect()
    }

    /// The verdict on `analysis` and the rules it violates: [`Verdict::NoPolicy`] when there
    /// are no rules, so that an unjudged model is never called healthy.
    pub fn judge(&self, analysis: &Analysis) -> (Verdict, Vec<Rule>) {
        self.judge_since(analysis, None)
    }

    /// [`Policy::judge`] with drifts (`delta_` rules) measured from `previous`, the same
    /// model's previous analysis.
    pub fn judge_since(
        &self,
        analysis: &Analysis,
        previous: Option<&Analysis>,
    ) -> (Verdict, Vec<Rule>) {
        if self.rules.is_empty() {
            return (Verdict::NoPolicy, Vec::new());
        }
        let violations: Vec<Rule> = self
            .rules
            .iter()
            .filter(|rule| rule.violated_since(analysis, previous))
            .cloned()
            .collect();
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
    /// Analysed, not judged: the policy has no rules.
    NoPolicy,
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
    /// True when no rule is violated: a service may serve the model (a policy without rules
    /// violates nothing, so it passes too, with [`Verdict::NoPolicy`]).
    pub fn is_healthy(&self) -> bool {
        matches!(self.verdict, Verdict::Healthy | Verdict::NoPolicy)
    }
}

/// Analyses `model` with `options` and judges it by `policy`: the deployment gate a service
/// runs at start-up (0.06 s for the shipped models and 1.6 s for ResNet50 on two CPU cores:
/// docs/library.md, "Using rmt-torch from a Rust service"). The same rules and verdicts as
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
/// let report = check(&model, &"layers=fc:any(alpha>1)".parse::<Policy>()?, &options)?;
/// assert!(!report.is_healthy());
/// # Ok::<(), rmt_torch::Error>(())
/// ```
pub fn check(model: &Model, policy: &Policy, options: &AnalyzeOptions) -> Result<HealthReport> {
    let started = std::time::Instant::now();
    let analysis = analyze(model, options)?;
    let (verdict, violations) = policy.judge(&analysis);
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

    #[test]
    fn rules_parse_and_print_as_written() {
        let rule: Rule = " over_trained >= 1 ".parse().unwrap();
        assert_eq!(rule.comparison, Comparison::GreaterOrEqual);
        assert_eq!(rule.to_string(), "over_trained>=1");
        for text in [
            "alpha>6",
            "alpha<=2",
            "alpha==2",
            "alpha!=2",
            "max_alpha>6",
            "min_stable_rank<2.5",
            "any(alpha>6)",
            "count(alpha>6)>=2",
            "layers=attention:any(alpha>6)",
            "layers=(?:query|key):max_alpha>6",
            "layers=mlp:under_trained>=1",
            "delta_alpha>0.5",
            "layers=attn:delta_num_spikes_tw>=3",
        ] {
            let rule: Rule = text.parse().unwrap_or_else(|err| panic!("{text}: {err}"));
            assert_eq!(rule.to_string(), text);
        }
        let delta: Rule = "delta_alpha>0.5".parse().unwrap();
        assert_eq!(delta.measure, Measure::Delta(SummaryField::Alpha));
        assert!("delta_max_alpha>1".parse::<Rule>().is_err());
        let any: Rule = "any(alpha>6)".parse().unwrap();
        assert_eq!(
            any.measure,
            Measure::Any(LayerCondition {
                field: "alpha",
                comparison: Comparison::Greater,
                value: 6.0
            })
        );
    }

    #[test]
    fn malformed_rules_are_refused_with_the_reason() {
        for (bad, reason) in [
            ("alpha", "needs an operator"),
            ("alpha_mean>6", "unknown field"),
            ("alpha=>6", "unknown operator"),
            ("alpha=6", "unknown operator"),
            ("alpha<>6", "unknown operator"),
            ("alpha>six", "not a finite number"),
            ("alpha>nan", "not a finite number"),
            ("alpha>inf", "not a finite number"),
            (">6", "unknown field"),
            ("max_quality>1", "not a numeric layer field"),
            ("max_nonsense>1", "not a numeric layer field"),
            ("any(alpha>6)>1", "nothing after"),
            ("count(alpha>6)", "needs an operator"),
            ("count(alpha>6", "needs its ')'"),
            ("layers=[:alpha>6", "layers=["),
            ("layers=attention", "needs a colon"),
        ] {
            let err = bad.parse::<Rule>().unwrap_err().to_string();
            assert!(err.contains(reason), "{bad}: {err}");
        }
    }

    #[test]
    fn rules_round_trip_through_json() {
        let rules: Vec<Rule> = vec![
            "alpha>6".parse().unwrap(),
            "fit_failed!=0".parse().unwrap(),
            "layers=fc:count(alpha>6)>=2".parse().unwrap(),
        ];
        let json = serde_json::to_string(&rules).unwrap();
        assert_eq!(
            json,
            r#"["alpha>6","fit_failed!=0","layers=fc:count(alpha>6)>=2"]"#
        );
        assert_eq!(serde_json::from_str::<Vec<Rule>>(&json).unwrap(), rules);
    }
}
