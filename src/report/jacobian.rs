//! Jacobian spectra for people and machines.
use serde::Serialize;

use super::table::Table;
use super::{
    format_number, format_optional, format_p_value, json_rows, small_samples_cell,
    small_samples_note, Render,
};
use crate::error::Result;
use crate::stats::rmt::bulk_outliers::BulkShape;
use crate::workflows::jacobian::{JacobianAnalysis, JacobianLanczosAnalysis, JacobianSummary};

/// The Jacobians' singular values and the RMT suite, one row per sample.
impl Render for JacobianAnalysis {
    fn table(&self) -> String {
        let flagged = self.samples.iter().any(|s| !s.rmt.small_samples.is_empty());
        let mut headers = vec![
            "sample",
            "sigma_max",
            "sigma_min",
            "mean_sigma2",
            "var_sigma2",
            "condition_number",
            "isometry_fraction",
            "num_spikes_tw",
            "tw_p_value",
            "spacing_p_goe",
        ];
        if flagged {
            headers.push("small_samples");
        }
        let mut table = Table::new(headers);
        for sample in &self.samples {
            let mut row = vec![
                sample.sample.to_string(),
                format_number(sample.sigma_max),
                format_number(sample.sigma_min),
                format_number(sample.mean_sigma2),
                format_number(sample.var_sigma2),
                format_optional(sample.condition_number),
                format_number(sample.isometry_fraction),
                sample
                    .rmt
                    .bulk
                    .as_ref()
                    .map_or_else(|| "-".into(), |b| b.num_spikes_tw.to_string()),
                format_p_value(sample.rmt.bulk.as_ref().map(|b| b.tw_p_value)),
                format_p_value(sample.rmt.spacing.as_ref().map(|s| s.spacing_p_goe)),
            ];
            if flagged {
                row.push(small_samples_cell(&sample.rmt.small_samples));
            }
            table.push(row);
        }
        let summary = &self.summary;
        let coverage = if summary.samples < self.setup.samples_in_file {
            format!(
                "the first {} of {} samples (--samples all for every one)",
                summary.samples, self.setup.samples_in_file
            )
        } else {
            format!("{} samples", summary.samples)
        };
        format!(
            "{}: Jacobians {} outputs × {} inputs (input {:?}) on {}, {}, {} rows per pass\nmean over {}: mean σ² {}, var σ² {}, isometry fraction {} (|σ − 1| ≤ {}); largest σ {}, median condition number {}\n{}\n\n{}",
            self.setup.model,
            self.setup.outputs,
            self.setup.inputs,
            self.setup.input_shape,
            self.setup.device,
            self.setup.dtype,
            self.chunk,
            coverage,
            format_number(summary.mean_sigma2),
            format_number(summary.var_sigma2),
            format_number(summary.isometry_fraction),
            self.isometry_tolerance,
            format_number(summary.sigma_max),
            format_optional(summary.median_condition_number),
            reading(summary),
            table.render(),
        ) + &if flagged { small_samples_note() } else { String::new() }
    }

    fn csv_rows(&self) -> Result<Vec<serde_json::Value>> {
        json_rows(&self.samples)
    }
}

/// One plain sentence on what χ = mean σ² and the isometry fraction say of the map
/// differentiated (Pennington, Schoenholz & Ganguli 2017; Schoenholz et al. 2017).
fn reading(summary: &JacobianSummary) -> String {
    let chi = summary.mean_sigma2;
    let state = if (chi - 1.0).abs() <= 0.1 && summary.isometry_fraction >= 0.5 {
        "χ = mean σ² ≈ 1 and most singular values near 1: close to dynamical isometry, so signals \
         and gradients keep their size and their directions through it"
            .to_string()
    } else if (chi - 1.0).abs() <= 0.1 {
        format!(
            "χ = mean σ² ≈ 1, so signals keep their size on average, but the singular values are \
             spread (var σ² = {}): some directions are amplified and others lost, not isometric",
            format_number(summary.var_sigma2)
        )
    } else if chi > 1.0 {
        format!(
            "χ = mean σ² = {} > 1: it stretches inputs on average; at initialisation that is the \
             chaotic phase, where gradients grow with depth",
            format_number(chi)
        )
    } else {
        format!(
            "χ = mean σ² = {} < 1: it shrinks inputs on average; at initialisation that is the \
             ordered phase, where gradients vanish with depth",
            format_number(chi)
        )
    };
    format!("reading: {state} (Pennington, Schoenholz & Ganguli 2017; Schoenholz et al. 2017)")
}

/// The analyses of every output of a model (`jacobian --each-output`), in output order.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct EachOutput<'a>(pub &'a [JacobianAnalysis]);

impl Render for EachOutput<'_> {
    fn table(&self) -> String {
        self.0
            .iter()
            .enumerate()
            .map(|(output, analysis)| format!("output {output}: {}", analysis.table()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The samples of every output's analysis, each row with its `output` index first.
    fn csv_rows(&self) -> Result<Vec<serde_json::Value>> {
        Ok(self
            .0
            .iter()
            .enumerate()
            .flat_map(|(output, analysis)| {
                analysis.samples.iter().filter_map(move |sample| {
                    let mut row = serde_json::Map::new();
                    row.insert("output".into(), output.into());
                    row.extend(serde_json::to_value(sample).ok()?.as_object()?.clone());
                    Some(serde_json::Value::Object(row))
                })
            })
            .collect())
    }
}

/// The top singular values found by Lanczos, one row per sample.
impl Render for JacobianLanczosAnalysis {
    fn table(&self) -> String {
        let shown = self.k.min(5);
        let mut header = vec!["sample".to_string()];
        header.extend((1..=shown).map(|i| format!("sigma_{i}")));
        header.extend(["products".to_string(), "converged".to_string()]);
        let with_bulk = self.density.is_some();
        if with_bulk {
            header.extend(["bulk", "bulk_edge", "outliers"].map(String::from));
        }
        let mut table = Table::new(header);
        for sample in &self.samples {
            let mut row = vec![sample.sample.to_string()];
            row.extend((0..shown).map(|i| {
                sample
                    .top_singular_values
                    .get(i)
                    .map_or_else(|| "-".into(), |&v| format_number(v))
            }));
            row.extend([sample.products.to_string(), sample.converged.to_string()]);
            if with_bulk {
                row.extend(match &sample.bulk {
                    Some(bulk) => [
                        match bulk.shape {
                            BulkShape::Fitted => bulk.law.to_string(),
                            BulkShape::NoLawFits => "no law fits".into(),
                            BulkShape::AtZero => "at 0".into(),
                        },
                        format_number(bulk.bulk_edge),
                        format!(
                            "{}{}",
                            bulk.outliers.len(),
                            if bulk.more_outliers_possible { "+" } else { "" }
                        ),
                    ],
                    None => ["-".into(), "-".into(), "-".into()],
                });
            }
            table.push(row);
        }
        format!(
            "{}: top {} singular values of J ({} outputs × {} inputs, input {:?}) by Lanczos on {} on {}, {}{}; {} s per product\n\n{}",
            self.setup.model,
            self.k,
            self.setup.outputs,
            self.setup.inputs,
            self.setup.input_shape,
            self.operator,
            self.setup.device,
            self.setup.dtype,
            if shown < self.k {
                format!(" (the first {shown} shown; JSON: all)")
            } else {
                String::new()
            },
            format_number(self.seconds_per_product),
            table.render()
        ) + if with_bulk {
            "bulk: the law the bulk of σ² fits (Kolmogorov distance ≤ 0.1), `no law fits`, or `at 0` \
             (numerically zero: J of low rank); outliers: top σ² above bulk_edge, + when all K \
             are (raise --lanczos)\n"
        } else {
            ""
        }
    }

    /// One row per sample: its products, whether it converged and its top singular values
    /// (`sigma_1` the largest).
    fn csv_rows(&self) -> Result<Vec<serde_json::Value>> {
        Ok(self
            .samples
            .iter()
            .map(|sample| {
                let mut row = serde_json::Map::new();
                row.insert("sample".into(), sample.sample.into());
                row.insert("products".into(), sample.products.into());
                row.insert("converged".into(), sample.converged.into());
                for (rank, value) in sample.top_singular_values.iter().enumerate() {
                    row.insert(format!("sigma_{}", rank + 1), (*value).into());
                }
                serde_json::Value::Object(row)
            })
            .collect())
    }
}
