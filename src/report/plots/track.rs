//! Spectra over training: each metric against the step with one line per layer, and ESD
//! snapshots of a layer overlaid (density of log₁₀ λ, so bulk and tail show on one axis).
//!
//! Records are JSON objects as `rmt-torch track` and `SpectralMonitor` write them: `step`,
//! `name`, the layer record's fields, and `eigenvalues` when they were kept.
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::series::{Mark, Series, SeriesFigure, CYCLE};
use super::{create_directory, density_curve, file_stem, write_formats, FigureFiles};
use crate::error::Result;

/// How a metric is named on an axis: the field's symbol where the field has one.
pub fn metric_label(metric: &str) -> String {
    match metric {
        "alpha" => "power-law exponent α".into(),
        "alpha_weighted" => "α̂ = α·log₁₀ λmax".into(),
        "lambda_max" => "λmax".into(),
        "num_spikes_tw" => "Tracy-Widom spikes".into(),
        "num_spikes" => "eigenvalues above λ₊".into(),
        "bulk_sigma2" => "bulk σ² (MP fit)".into(),
        "mmp_fraction" => "share of the ESD in the MP bulk".into(),
        "spacing_p_goe" => "spacing KS p-value (GOE)".into(),
        "log_norm" => "log₁₀ ‖W‖²_{F}".into(),
        "stable_rank" => "stable rank".into(),
        other => other.into(),
    }
}

/// Layer names in order of first appearance.
fn layer_names(records: &[Value]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for name in records.iter().filter_map(|r| r["name"].as_str()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn step(record: &Value) -> Option<f64> {
    record["step"].as_f64()
}

/// `metric` against the step, one line per layer; `None` when no record has it as a number.
pub fn metric_figure(records: &[Value], metric: &str) -> Option<SeriesFigure> {
    let series: Vec<Series> = layer_names(records)
        .into_iter()
        .enumerate()
        .map(|(index, name)| Series {
            name: name.to_string(),
            points: records
                .iter()
                .filter(|r| r["name"].as_str() == Some(name))
                .filter_map(|r| Some((step(r)?, r[metric].as_f64()?)))
                .collect(),
            mark: Mark::Line,
            color: CYCLE[index % CYCLE.len()],
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    (!series.is_empty()).then(|| SeriesFigure {
        title: format!("{} over training", metric_label(metric)),
        x_desc: "training step".into(),
        y_desc: metric_label(metric),
        series,
        integer_x: true,
        ..SeriesFigure::default()
    })
}

/// Snapshots shown in an ESD overlay at most: the first, the last and evenly between.
pub const SNAPSHOTS: usize = 5;

/// The ESDs of `layer` at up to [`SNAPSHOTS`] steps as densities of log₁₀ λ; `None` when its
/// records carry no eigenvalues.
pub fn esd_snapshots(records: &[Value], layer: &str) -> Option<SeriesFigure> {
    let with_spectra: Vec<(f64, Vec<f64>)> = records
        .iter()
        .filter(|r| r["name"].as_str() == Some(layer))
        .filter_map(|r| {
            let logs: Vec<f64> = r["eigenvalues"]
                .as_array()?
                .iter()
                .filter_map(Value::as_f64)
                .filter(|&l| l > 0.0)
                .map(f64::log10)
                .collect();
            Some((step(r)?, logs)).filter(|(_, logs)| !logs.is_empty())
        })
        .collect();
    if with_spectra.is_empty() {
        return None;
    }
    let count = with_spectra.len();
    let mut chosen: Vec<usize> = (0..SNAPSHOTS.min(count))
        .map(|i| i * (count - 1) / (SNAPSHOTS.min(count) - 1).max(1))
        .collect();
    chosen.dedup();
    let all = || {
        with_spectra
            .iter()
            .flat_map(|(_, logs)| logs.iter().copied())
    };
    let lo = all().fold(f64::INFINITY, f64::min);
    let hi = all().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if hi > lo {
        (lo, hi + (hi - lo) * 1e-9)
    } else {
        (lo - 0.5, hi + 0.5)
    };
    let curves: Vec<(f64, Vec<(f64, f64)>)> = chosen
        .iter()
        .map(|&i| {
            let (step, logs) = &with_spectra[i];
            // √n bins: enough to show the shape, few enough that each holds several levels.
            let bins = ((logs.len() as f64).sqrt().ceil() as usize).clamp(8, 60);
            (*step, density_curve(logs, lo, hi, bins))
        })
        .collect();
    // On the logarithmic density axis a lone spike (one level in its bin) stands out from the
    // empty bins, drawn at a third of the smallest density any bin has.
    let floor = curves
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .filter(|&y| y > 0.0)
        .fold(f64::INFINITY, f64::min)
        / 3.0;
    let series = curves
        .into_iter()
        .enumerate()
        .map(|(index, (step, points))| Series {
            name: format!("step {step}"),
            points: points.into_iter().map(|(x, y)| (x, y.max(floor))).collect(),
            mark: Mark::Line,
            color: CYCLE[index % CYCLE.len()],
        })
        .collect();
    Some(SeriesFigure {
        title: format!("{layer} — ESD over training"),
        x_desc: "log₁₀ λ".into(),
        y_desc: "density of log₁₀ λ (log scale)".into(),
        series,
        log_y: true,
        ..SeriesFigure::default()
    })
}

/// Every metric's figure (`METRIC.EXT`) and every layer's ESD snapshots
/// (`esd_LAYER.EXT`, when eigenvalues were kept) in `directory`.
pub fn write_track_figures(
    records: &[Value],
    metrics: &[String],
    directory: &Path,
    files: &FigureFiles,
) -> Result<Vec<PathBuf>> {
    create_directory(directory)?;
    let mut written = Vec::new();
    for metric in metrics {
        if let Some(figure) = metric_figure(records, metric) {
            written.extend(write_formats(
                &figure,
                directory,
                &file_stem(metric),
                files,
            )?);
        }
    }
    for layer in layer_names(records) {
        if let Some(figure) = esd_snapshots(records, layer) {
            let stem = format!("esd_{}", file_stem(layer));
            written.extend(write_formats(&figure, directory, &stem, files)?);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn records() -> Vec<Value> {
        (0..7)
            .flat_map(|step| {
                ["fc1", "fc2"].map(|name| {
                    json!({
                        "step": step * 100,
                        "name": name,
                        "alpha": 6.0 - step as f64 * 0.5,
                        "eigenvalues": [0.1, 0.2, 1.0 + step as f64],
                    })
                })
            })
            .collect()
    }

    #[test]
    fn a_metric_becomes_one_line_per_layer_in_step_order() {
        let figure = metric_figure(&records(), "alpha").unwrap();
        assert_eq!(figure.series.len(), 2);
        assert_eq!(figure.series[0].name, "fc1");
        assert_eq!(figure.series[1].points[6], (600.0, 3.0));
        assert!(metric_figure(&records(), "no_such_field").is_none());
    }

    #[test]
    fn snapshots_are_the_first_the_last_and_evenly_between() {
        let figure = esd_snapshots(&records(), "fc2").unwrap();
        let names: Vec<&str> = figure.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["step 0", "step 100", "step 300", "step 400", "step 600"]
        );
        // Each snapshot is a density of log₁₀ λ on a log axis: its occupied bins integrate to
        // 1, its empty ones sit at one floor below every occupied one.
        assert!(figure.log_y);
        let points = &figure.series[0].points;
        let width = points[1].0 - points[0].0;
        let floor = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let occupied: Vec<f64> = points.iter().map(|p| p.1).filter(|&y| y > floor).collect();
        let area: f64 = occupied.iter().map(|y| y * width).sum();
        assert!((area - 1.0).abs() < 1e-9, "{area}");
        assert!(occupied.len() < points.len() && occupied.iter().all(|&y| y >= 3.0 * floor));
    }
}
