//! The per-model overview: α, α̂, log-norm and Tracy-Widom spikes against layer index, each
//! layer coloured by its quality label (WeightWatcher's layer plots, in one figure).
use plotters::style::RGBColor;

use super::palette::{ALTERNATIVE, BASELINE, MARKER, THEORY};
use super::series::{Mark, PanelsFigure, Series, SeriesFigure};
use crate::analysis::{Analysis, LayerReport};
use crate::heavy_tail::quality::QualityLabel;

const LABELS: [(QualityLabel, RGBColor); 4] = [
    (QualityLabel::WellTrained, ALTERNATIVE),
    (QualityLabel::UnderTrained, BASELINE),
    (QualityLabel::OverTrained, THEORY),
    (QualityLabel::FitFailed, MARKER),
];

/// The four panels of a model's layers.
pub fn model_figure(analysis: &Analysis) -> PanelsFigure {
    let panel = |y_desc: &str, value: &dyn Fn(&LayerReport) -> Option<f64>| SeriesFigure {
        title: y_desc.to_string(),
        x_desc: "layer index".into(),
        y_desc: y_desc.to_string(),
        series: LABELS
            .iter()
            .map(|&(label, color)| Series {
                name: label.to_string(),
                points: analysis
                    .layers
                    .iter()
                    .filter(|l| l.warning == label)
                    .filter_map(|l| Some((l.layer_id as f64, value(l)?)))
                    .collect(),
                mark: Mark::Points,
                color,
            })
            .filter(|s| !s.points.is_empty())
            .collect(),
        integer_x: true,
        ..SeriesFigure::default()
    };
    let mut alpha = panel("power-law exponent α", &|l| {
        l.power_law.as_ref().map(|f| f.alpha)
    });
    alpha.band = Some((2.0, 6.0, "2 ≤ α ≤ 6".into()));
    PanelsFigure {
        title: format!("{} — layers", analysis.model),
        panels: vec![
            alpha,
            panel("α̂ = α·log₁₀ λmax", &|l| {
                l.alpha_metrics.as_ref().map(|m| m.alpha_weighted)
            }),
            panel("log₁₀ ‖W‖²_F", &|l| Some(l.metrics.log_norm)),
            panel("Tracy-Widom spikes", &|l| {
                l.rmt.bulk.as_ref().map(|b| b.num_spikes_tw as f64)
            }),
        ],
        columns: 2,
    }
}
