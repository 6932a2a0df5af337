//! Statistics over training for people and machines.
use serde_json::Value;

use super::table::Table;
use super::{format_number, Render};
use crate::error::Result;
use crate::workflows::track::TrackSeries;

/// One row per layer and step: the step, the layer and the metrics followed.
impl Render for TrackSeries {
    fn table(&self) -> String {
        let mut headers = vec!["step".to_string(), "layer".to_string()];
        headers.extend(self.metrics.iter().cloned());
        let mut table = Table::new(headers);
        for record in &self.records {
            let mut row = vec![
                record["step"].to_string(),
                record["name"].as_str().unwrap_or("").to_string(),
            ];
            row.extend(
                self.metrics
                    .iter()
                    .map(|metric| match &record[metric.as_str()] {
                        Value::Number(n) if n.is_f64() => {
                            n.as_f64().map_or_else(|| n.to_string(), format_number)
                        }
                        Value::Number(n) => n.to_string(),
                        Value::String(text) => text.clone(),
                        Value::Null => "-".to_string(),
                        other => other.to_string(),
                    }),
            );
            table.push(row);
        }
        table.render()
    }

    /// Step, source, layer name and the metrics followed, for each record.
    fn csv_rows(&self) -> Result<Vec<Value>> {
        Ok(self
            .records
            .iter()
            .map(|record| {
                let mut row = serde_json::Map::new();
                for key in ["step", "source", "name"] {
                    row.insert(key.into(), record[key].clone());
                }
                for metric in &self.metrics {
                    row.insert(metric.clone(), record[metric.as_str()].clone());
                }
                Value::Object(row)
            })
            .collect())
    }
}
