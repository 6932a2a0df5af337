//! A comparison's figure: α of each matched layer before and after, and how large the update
//! is, against the layers.
use super::palette::{ALTERNATIVE, THEORY};
use super::series::{Mark, PanelsFigure, Series, SeriesFigure};
use crate::workflows::compare::{Comparison, LayerComparison};

/// Two panels against the matched layers: α of the base and of the other model, and the
/// update's size relative to the layer (‖ΔW‖_F/‖W‖_F and ‖ΔW‖₂/‖W‖₂).
pub fn compare_figure(comparison: &Comparison) -> PanelsFigure {
    let names: Vec<String> = comparison.layers.iter().map(|l| l.name.clone()).collect();
    let series =
        |name: &str, color, mark, value: &dyn Fn(&LayerComparison) -> Option<f64>| Series {
            name: name.to_string(),
            points: comparison
                .layers
                .iter()
                .enumerate()
                .filter_map(|(x, layer)| Some((x as f64, value(layer)?)))
                .collect(),
            mark,
            color,
        };
    let panel = |title: &str, y_desc: &str, series: Vec<Series>| SeriesFigure {
        title: title.to_string(),
        x_desc: "layer".into(),
        x_names: names.clone(),
        y_desc: y_desc.to_string(),
        series,
        integer_x: true,
        ..SeriesFigure::default()
    };
    let alpha = |report: &crate::analysis::LayerReport| report.power_law.as_ref().map(|f| f.alpha);
    let mut alphas = panel(
        "α before and after",
        "power-law exponent α",
        vec![
            series("base", ALTERNATIVE, Mark::Points, &|l| alpha(&l.base)),
            series("other", THEORY, Mark::Points, &|l| alpha(&l.other)),
        ],
    );
    alphas.band = Some((2.0, 6.0, "2 ≤ α ≤ 6".into()));
    let sizes = panel(
        "the update's size",
        "‖ΔW‖ / ‖W_{base}‖",
        vec![
            series("Frobenius", ALTERNATIVE, Mark::Points, &|l| {
                Some(l.relative_frobenius)
            }),
            series("spectral", THEORY, Mark::Points, &|l| {
                Some(l.relative_spectral)
            }),
        ],
    );
    PanelsFigure {
        title: format!(
            "{} against {}",
            super::model_title(&comparison.other),
            super::model_title(&comparison.base)
        ),
        panels: vec![alphas, sizes],
        columns: 2,
    }
}
