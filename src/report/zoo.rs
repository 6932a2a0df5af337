//! The zoo's report for people and machines.
use super::table::Table;
use super::{counted, format_optional, Render};
use crate::analysis::{ModelSummary, SummaryField};
use crate::error::Result;
use crate::option_names::OptionNames;
use crate::workflows::health::Rule;
use crate::workflows::zoo::{History, Verdict, ZooReport};

/// A zoo: one row per model, ranked, with the policy's verdict.
/// What changed since the previous run: the counts, then each model that is new, removed,
/// changed or drifted, with the drift of α, α̂ and the Tracy-Widom spikes and how many summary
/// fields moved (the JSON holds every one).
fn history_table(history: &History) -> String {
    let mut out = format!(
        "\nsince {}: {} new, {} removed, {} changed, {} unchanged\n",
        history.since, history.new, history.removed, history.changed, history.unchanged
    );
    if history.models.is_empty() {
        return out;
    }
    let mut table = Table::new([
        "path",
        "change",
        "alpha",
        "delta_alpha",
        "delta_alpha_weighted",
        "delta_num_spikes_tw",
        "drifted",
    ]);
    for model in &history.models {
        let drift = |field: &str| model.drift.iter().find(|d| d.field == field);
        let delta = |field: &str| {
            drift(field).map_or_else(
                || "-".to_string(),
                |d| {
                    let sign = if d.delta > 0.0 { "+" } else { "" };
                    if d.delta.fract() == 0.0 && d.delta.abs() < 1e15 {
                        format!("{sign}{}", d.delta as i64)
                    } else {
                        format!("{sign}{}", format_optional(Some(d.delta)))
                    }
                },
            )
        };
        let change = model.change.name().to_string();
        table.push(vec![
            model.path.clone(),
            change,
            drift("alpha").map_or_else(
                || "-".to_string(),
                |d| {
                    format!(
                        "{} → {}",
                        format_optional(Some(d.before)),
                        format_optional(Some(d.after))
                    )
                },
            ),
            delta("alpha"),
            delta("alpha_weighted"),
            delta("num_spikes_tw"),
            model.drift.len().to_string(),
        ]);
    }
    out.push_str(&table.render());
    out
}

/// Entries shown by name before the rest are counted (all are in the JSON's `skipped`).
const SKIPPED_SHOWN: usize = 10;

/// The entries of the searched directories passed over, one line each (the first few).
fn skipped_lines(skipped: &[crate::model::discovery::Skipped]) -> String {
    if skipped.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "passed over {}:\n",
        counted(skipped.len(), "entry", "entries")
    );
    for entry in skipped.iter().take(SKIPPED_SHOWN) {
        out.push_str(&format!("  {}: {}\n", entry.path.display(), entry.reason));
    }
    if skipped.len() > SKIPPED_SHOWN {
        out.push_str(&format!(
            "  … and {} more (every one in the JSON report's skipped)\n",
            skipped.len() - SKIPPED_SHOWN
        ));
    }
    out
}

impl Render for ZooReport {
    fn table(&self) -> String {
        let mut table = Table::new([
            "rank",
            "path",
            "layers",
            "random_like",
            "alpha",
            "alpha_weighted",
            "log_norm",
            "over_trained",
            "under_trained",
            "fit_failed",
            "num_spikes_tw",
            "verdict",
        ]);
        for (rank, entry) in self.models.iter().enumerate() {
            let verdict = match entry.verdict {
                Verdict::Healthy => "healthy".to_string(),
                Verdict::NoPolicy => "no policy".to_string(),
                Verdict::Violated => {
                    let violations: Vec<String> =
                        entry.violations.iter().map(Rule::to_string).collect();
                    format!("violates {}", violations.join(", "))
                }
                Verdict::Error => format!("error: {}", entry.error.as_deref().unwrap_or("")),
                Verdict::NotAModel => format!("skipped: {}", entry.error.as_deref().unwrap_or("")),
            };
            let summary = entry.summary.as_ref();
            let count = |f: fn(&ModelSummary) -> usize| {
                summary.map_or("-".to_string(), |s| f(s).to_string())
            };
            table.push(vec![
                (rank + 1).to_string(),
                entry.path.clone(),
                count(|s| s.layers),
                count(|s| s.random_like),
                format_optional(summary.and_then(|s| s.alpha)),
                format_optional(summary.and_then(|s| s.alpha_weighted)),
                format_optional(summary.and_then(|s| s.log_norm)),
                count(|s| s.over_trained),
                count(|s| s.under_trained),
                count(|s| s.fit_failed),
                count(|s| s.num_spikes_tw),
                verdict,
            ]);
        }
        let judged = if self.rules.is_empty() {
            "no policy (--fail-if, --policy), so none judged healthy or not".to_string()
        } else {
            format!(
                "{} healthy, {} violate the policy",
                self.healthy, self.violated
            )
        };
        format!(
            "{}{} ranked by {}{}: {judged}, {} could not be analysed, {} not models{}\n",
            table.render(),
            counted(self.models.len(), "model", "models"),
            self.rank_by,
            if self.descending { " (descending)" } else { "" },
            self.errors,
            self.not_models,
            self.shard
                .map_or(String::new(), |s| format!(" (shard {s})")),
        ) + &skipped_lines(&self.skipped)
            + &self
                .history
                .as_ref()
                .map_or_else(String::new, history_table)
    }

    /// One flat row per model: rank, path, verdict and the summary fields.
    fn csv_rows(&self) -> Result<Vec<serde_json::Value>> {
        Ok(self
            .models
            .iter()
            .enumerate()
            .map(|(rank, entry)| {
                let mut row = serde_json::Map::new();
                row.insert("rank".into(), (rank + 1).into());
                row.insert("path".into(), entry.path.clone().into());
                row.insert(
                    "verdict".into(),
                    serde_json::to_value(entry.verdict).unwrap_or_default(),
                );
                let violations: Vec<String> =
                    entry.violations.iter().map(Rule::to_string).collect();
                row.insert("violations".into(), violations.join(" ").into());
                row.insert(
                    "error".into(),
                    entry.error.clone().unwrap_or_default().into(),
                );
                let summary = entry
                    .summary
                    .as_ref()
                    .map(serde_json::to_value)
                    .transpose()
                    .unwrap_or_default();
                for field in SummaryField::NAMES {
                    let value = summary
                        .as_ref()
                        .map_or(serde_json::Value::Null, |s| s[*field].clone());
                    row.insert((*field).into(), value);
                }
                serde_json::Value::Object(row)
            })
            .collect())
    }
}
