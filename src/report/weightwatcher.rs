//! An analysis as WeightWatcher 0.7.7's `details` DataFrame: its columns, in its order, with its
//! spellings, so that `analyze --ww-compat -f csv` can be diffed against `details.to_csv()`.
//!
//! Two columns cannot be WeightWatcher's own: `layer_id` is the layer's position here (it counts
//! every module of the `nn.Module`, containers included, which a weights file does not record;
//! join on `longname`), and `layer_type` tells an embedding from a dense layer by its name (it
//! reads the module's class).
use serde_json::{Map, Value};

use crate::analysis::{Analysis, LayerReport};
use crate::model::layers::LayerKind;
use crate::model::roles::Part;
use crate::stats::heavy_tail::quality::QualityLabel;

/// WeightWatcher's columns in the order of its CSV; `num_fingers` and `raw_alpha` only appear
/// when fingers were clipped.
const COLUMNS: [&str; 34] = [
    "layer_id",
    "name",
    "D",
    "M",
    "N",
    "Q",
    "alpha",
    "alpha_weighted",
    "entropy",
    "has_esd",
    "lambda_max",
    "layer_type",
    "log_alpha_norm",
    "log_norm",
    "log_spectral_norm",
    "longname",
    "matrix_rank",
    "norm",
    "num_evals",
    "num_fingers",
    "num_pl_spikes",
    "rank_loss",
    "raw_alpha",
    "rf",
    "sigma",
    "spectral_norm",
    "stable_rank",
    "status",
    "sv_max",
    "sv_min",
    "warning",
    "weak_rank_loss",
    "xmax",
    "xmin",
];

/// One row per analysed layer, keyed by WeightWatcher's column names, in its column order.
pub fn details(analysis: &Analysis) -> Vec<Value> {
    let clipped = analysis.layers.iter().any(|layer| {
        layer
            .power_law
            .as_ref()
            .is_some_and(|fit| fit.raw_alpha.is_some())
    });
    analysis
        .layers
        .iter()
        .map(|layer| {
            let cells = row(layer);
            let row: Map<String, Value> = COLUMNS
                .iter()
                .filter(|column| clipped || !matches!(**column, "num_fingers" | "raw_alpha"))
                .map(|column| {
                    let value = cells
                        .iter()
                        .find(|(name, _)| name == column)
                        .map_or(Value::Null, |(_, value)| value.clone());
                    ((*column).to_string(), value)
                })
                .collect();
            Value::Object(row)
        })
        .collect()
}

/// WeightWatcher's cells of one layer.
fn row(layer: &LayerReport) -> Vec<(&'static str, Value)> {
    let longname = layer
        .name
        .strip_suffix(".weight")
        .unwrap_or(&layer.name)
        .to_string();
    let short_name = longname.rsplit('.').next().unwrap_or_default().to_string();
    let metrics = &layer.metrics;
    let fit = layer.power_law.as_ref();
    let number = |value: Option<f64>| value.map_or(Value::Null, Value::from);
    let count = |value: Option<usize>| value.map_or(Value::Null, Value::from);
    let warning = match layer.warning {
        QualityLabel::OverTrained | QualityLabel::UnderTrained => layer.warning.to_string(),
        _ => String::new(),
    };
    vec![
        ("layer_id", layer.layer_id.into()),
        ("name", short_name.into()),
        ("longname", longname.into()),
        ("layer_type", layer_type(layer).into()),
        ("N", layer.n.into()),
        ("M", layer.m.into()),
        ("Q", layer.q.into()),
        ("rf", layer.rf.into()),
        ("num_evals", metrics.num_evals.into()),
        ("has_esd", "True".into()),
        (
            "status",
            if fit.is_some() { "success" } else { "failed" }.into(),
        ),
        ("lambda_max", metrics.lambda_max.into()),
        ("spectral_norm", metrics.spectral_norm.into()),
        ("log_spectral_norm", metrics.log_spectral_norm.into()),
        ("norm", metrics.norm.into()),
        ("log_norm", metrics.log_norm.into()),
        ("stable_rank", metrics.stable_rank.into()),
        ("matrix_rank", metrics.matrix_rank.into()),
        ("entropy", number(metrics.entropy)),
        ("sv_max", metrics.sv_max.into()),
        ("sv_min", metrics.sv_min.into()),
        ("rank_loss", metrics.rank_loss.into()),
        ("weak_rank_loss", metrics.weak_rank_loss.into()),
        ("alpha", number(fit.map(|f| f.alpha))),
        ("xmin", number(fit.map(|f| f.xmin))),
        ("xmax", number(fit.map(|f| f.xmax))),
        ("D", number(fit.map(|f| f.ks_distance))),
        ("sigma", number(fit.map(|f| f.sigma))),
        ("num_pl_spikes", count(fit.map(|f| f.num_pl_spikes))),
        ("num_fingers", count(fit.map(|f| f.num_fingers))),
        ("raw_alpha", number(fit.and_then(|f| f.raw_alpha))),
        (
            "alpha_weighted",
            number(layer.alpha_metrics.as_ref().map(|a| a.alpha_weighted)),
        ),
        (
            "log_alpha_norm",
            number(layer.alpha_metrics.as_ref().map(|a| a.log_alpha_norm)),
        ),
        ("warning", warning.into()),
    ]
}

/// WeightWatcher's `layer_type`: `embedding` for a dense weight named as one, else the kind.
fn layer_type(layer: &LayerReport) -> String {
    let embedding = layer.kind == LayerKind::Dense
        && (layer.role == Some(Part::Embedding)
            || layer.name.to_ascii_lowercase().contains("embed"));
    if embedding {
        "embedding".into()
    } else {
        layer.kind.to_string()
    }
}
