//! A comparison of two models for people and machines.
use serde_json::{Map, Value};

use super::table::Table;
use super::{counted, format_optional, Render};
use crate::analysis::LayerReport;
use crate::error::Result;
use crate::workflows::compare::{Comparison, LayerComparison};

/// The scalar fields of a layer comparison as the table and the CSV show them: its own, then
/// `base.`, `other.` and `update.` fields of the three layer records.
const COLUMNS: [&str; 15] = [
    "name",
    "relative_frobenius",
    "relative_spectral",
    "cka",
    "esd_ks",
    "esd_wasserstein",
    "delta_alpha",
    "base.alpha",
    "other.alpha",
    "base.quality",
    "other.quality",
    "update.alpha",
    "update.num_spikes_tw",
    "update.stable_rank",
    "update.quality",
];

/// The value of `column` for `layer`: one of its own fields, or `side.field` of a record.
fn cell(layer: &LayerComparison, record: &Map<String, Value>, column: &str) -> Value {
    let field = |report: Option<&LayerReport>, name: &str| {
        report
            .and_then(|report| serde_json::to_value(report).ok())
            .and_then(|value| value.get(name).cloned())
            .unwrap_or(Value::Null)
    };
    match column.split_once('.') {
        Some(("base", name)) => field(Some(&layer.base), name),
        Some(("other", name)) => field(Some(&layer.other), name),
        Some(("update", name)) => field(layer.update.as_ref(), name),
        _ => record.get(column).cloned().unwrap_or(Value::Null),
    }
}

impl Comparison {
    /// The layers, the largest update (relative to its layer) first.
    fn by_update_size(&self) -> Vec<&LayerComparison> {
        let mut layers: Vec<&LayerComparison> = self.layers.iter().collect();
        layers.sort_by(|a, b| b.relative_frobenius.total_cmp(&a.relative_frobenius));
        layers
    }

    /// One flat row per matched layer, in the model's order: [`COLUMNS`].
    fn rows(&self) -> Vec<Map<String, Value>> {
        self.layers
            .iter()
            .map(|layer| {
                let record = match serde_json::to_value(layer) {
                    Ok(Value::Object(record)) => record,
                    _ => Map::new(),
                };
                COLUMNS
                    .iter()
                    .map(|column| (column.to_string(), cell(layer, &record, column)))
                    .collect()
            })
            .collect()
    }
}

/// The matched layers, the largest update first, and the layers left out.
impl Render for Comparison {
    fn table(&self) -> String {
        let mut table = Table::new(COLUMNS);
        let rows = self.rows();
        for layer in self.by_update_size() {
            let row = rows
                .iter()
                .find(|row| row["name"] == layer.name.as_str())
                .cloned()
                .unwrap_or_default();
            table.push(
                COLUMNS
                    .iter()
                    .map(|column| match &row[*column] {
                        Value::Number(number) if number.is_u64() || number.is_i64() => {
                            number.to_string()
                        }
                        Value::Number(number) => format_optional(number.as_f64()),
                        Value::String(text) => text.clone(),
                        Value::Null => "-".into(),
                        other => other.to_string(),
                    })
                    .collect(),
            );
        }
        let changed = self
            .layers
            .iter()
            .filter(|l| l.base.quality != l.other.quality)
            .count();
        let mut out = format!(
            "{} against {}: {} matched, {} with another label\n\n{}",
            self.other,
            self.base,
            counted(self.layers.len(), "layer", "layers"),
            changed,
            table.render()
        );
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
