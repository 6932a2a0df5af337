//! The per-model overview: α, α̂, log-norm and Tracy-Widom spikes against the layers, each
//! layer coloured by its quality label (WeightWatcher's layer plots, in one figure); and for a
//! transformer, α by block, attention against MLP.
use plotters::style::RGBColor;

use super::palette::{ALTERNATIVE, BASELINE, EXTRA, MARKER, THEORY};
use super::series::{Mark, PanelsFigure, Series, SeriesFigure};
use crate::analysis::{Analysis, BlockSummary, LayerReport};
use crate::stats::heavy_tail::quality::QualityLabel;

/// Each layer's colour: its quality label, the one every table and card shows.
const LABELS: [(QualityLabel, RGBColor); 5] = [
    (QualityLabel::RandomLike, EXTRA),
    (QualityLabel::WellTrained, ALTERNATIVE),
    (QualityLabel::UnderTrained, BASELINE),
    (QualityLabel::OverTrained, THEORY),
    (QualityLabel::FitFailed, MARKER),
];

/// The four panels of a model's layers, each against the layers' names.
pub fn model_figure(analysis: &Analysis) -> PanelsFigure {
    let mut names = vec![String::new(); analysis.layers.len()];
    for layer in &analysis.layers {
        if let Some(slot) = names.get_mut(layer.layer_id) {
            slot.clone_from(&layer.name);
        }
    }
    let panel = |y_desc: &str, value: &dyn Fn(&LayerReport) -> Option<f64>| SeriesFigure {
        title: y_desc.to_string(),
        x_desc: "layer".into(),
        x_names: names.clone(),
        y_desc: y_desc.to_string(),
        series: LABELS
            .iter()
            .map(|&(label, color)| Series {
                name: label.to_string(),
                points: analysis
                    .layers
                    .iter()
                    .filter(|l| l.quality == label)
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
        title: format!("{} — layers", super::model_title(&analysis.model)),
        panels: vec![
            alpha,
            panel("α̂ = α·log₁₀ λmax", &|l| {
                l.alpha_metrics.as_ref().map(|m| m.alpha_weighted)
            }),
            panel("log₁₀ ‖W‖²_{F}", &|l| Some(l.metrics.log_norm)),
            panel("Tracy-Widom spikes", &|l| {
                l.rmt.bulk.as_ref().map(|b| b.num_spikes_tw as f64)
            }),
        ],
        columns: 2,
    }
}

/// A transformer's α by depth: the mean α of each block's attention and of its MLP weights
/// against the block number; `None` for models without blocks.
pub fn blocks_figure(analysis: &Analysis) -> Option<SeriesFigure> {
    if analysis.blocks.is_empty() {
        return None;
    }
    let half = |name: &str, color, mean: fn(&BlockSummary) -> Option<f64>| {
        let points: Vec<(f64, f64)> = analysis
            .blocks
            .iter()
            .filter_map(|b| Some((b.block as f64, mean(b)?)))
            .collect();
        [Mark::Line, Mark::Points].map(|mark| Series {
            name: if mark == Mark::Line {
                name.to_string()
            } else {
                String::new()
            },
            points: points.clone(),
            mark,
            color,
        })
    };
    let series = half("attention (q, k, v, o)", ALTERNATIVE, |b| b.attention_alpha)
        .into_iter()
        .chain(half("MLP (gate, up, down)", THEORY, |b| b.mlp_alpha))
        .filter(|s| !s.points.is_empty())
        .collect();
    Some(SeriesFigure {
        title: format!(
            "{} — α by transformer block",
            super::model_title(&analysis.model)
        ),
        x_desc: "block".into(),
        y_desc: "mean power-law exponent α".into(),
        series,
        integer_x: true,
        band: Some((2.0, 6.0, "2 ≤ α ≤ 6".into())),
        ..SeriesFigure::default()
    })
}
