//! A comparison of two models for people and machines.
use serde_json::Value;

use super::table::Table;
use super::{counted, format_optional, Render};
use crate::error::Result;
use crate::workflows::compare::Comparison;

/// The comparison's table as text cells: its columns (the JSON names of
/// [`Comparison::rows`]) and one row per matched layer, the largest update first.
pub(crate) fn comparison_cells(comparison: &Comparison) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rows = comparison.rows();
    let size = |row: &serde_json::Map<String, Value>| {
        row["relative_frobenius"].as_f64().unwrap_or(f64::NAN)
    };
    rows.sort_by(|a, b| size(b).total_cmp(&size(a)));
    let columns: Vec<String> = rows
        .first()
        .map_or_else(Vec::new, |row| row.keys().cloned().collect());
    let cells = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|column| match &row[column] {
                    Value::Number(number) if number.is_u64() || number.is_i64() => {
                        number.to_string()
                    }
                    Value::Number(number) => format_optional(number.as_f64()),
                    Value::String(text) => text.clone(),
                    Value::Null => "-".into(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    (columns, cells)
}

/// The matched layers, the largest update first, and the layers left out.
impl Render for Comparison {
    fn table(&self) -> String {
        let (columns, rows) = comparison_cells(self);
        let mut table = Table::new(columns);
        for row in rows {
            table.push(row);
        }
        let summary = &self.summary;
        let mut out = format!(
            "{} against {}: {} matched, {} changed, {} with another label\n\n{}",
            self.other,
            self.base,
            counted(summary.layers, "layer", "layers"),
            summary.changed,
            summary.relabelled,
            table.render()
        );
        if let (Some(name), Some(size)) = (&summary.most_changed, summary.max_relative_frobenius) {
            out.push_str(&format!(
                "\nmean delta_alpha {}, smallest cka {}; largest update {name} (relative_frobenius {})\n",
                format_optional(summary.mean_delta_alpha),
                format_optional(summary.min_cka),
                format_optional(Some(size)),
            ));
        }
        if !self.rules.is_empty() {
            out.push_str(&if self.violations.is_empty() {
                format!("\nno rule violated ({})\n", self.rules.join(", "))
            } else {
                format!("\nviolates {}\n", self.violations.join(", "))
            });
        }
        if !self.unmatched.is_empty() {
            out.push_str(&format!(
                "\n{} left out:\n",
                counted(self.unmatched.len(), "layer", "layers")
            ));
            for layer in &self.unmatched {
                out.push_str(&format!(
                    "  {} ({:?}): {}\n",
                    layer.name, layer.side, layer.reason
                ));
            }
        }
        out
    }

    fn csv_rows(&self) -> Result<Vec<Value>> {
        Ok(self.rows().into_iter().map(Value::Object).collect())
    }
}
