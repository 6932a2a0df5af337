//! Writing results for people (aligned tables) and machines (JSON, CSV).
pub mod csv;
#[cfg(feature = "plots")]
pub mod html;
#[cfg(feature = "plots")]
pub mod plots;
pub mod table;

use crate::error::{Error, Result};
use crate::option_names::option_names;

/// Output formats of the reporting commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// An aligned text table.
    #[default]
    Table,
    /// The full record as pretty-printed JSON.
    Json,
    /// One row per layer, scalar fields only, JSON's field names as the header.
    Csv,
}

option_names!(OutputFormat, "format", { Table => "table", Json => "json", Csv => "csv" });

/// A number for a table cell: four significant digits, scientific when very large or small.
pub fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-3..1e5).contains(&magnitude) {
        format!("{value:.3e}")
    } else {
        let decimals = if magnitude >= 1000.0 {
            1
        } else if magnitude >= 10.0 {
            2
        } else {
            4
        };
        format!("{value:.decimals$}")
    }
}

/// An optional number for a table cell: [`format_number`], or `-` when absent.
pub fn format_optional(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), format_number)
}

use crate::analysis::Analysis;

/// An analysis in the chosen format: a table of the main columns, the full JSON, or CSV.
pub fn render_analysis(analysis: &Analysis, format: OutputFormat) -> Result<String> {
    match format {
        OutputFormat::Json => to_json(analysis),
        OutputFormat::Csv => csv::to_csv(&analysis.layers),
        OutputFormat::Table => Ok(analysis_table(analysis)),
    }
}

/// Pretty-printed JSON with a trailing newline.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map(|text| text + "\n")
        .map_err(|err| Error::InvalidOption(format!("cannot serialise to JSON: {err}")))
}

fn analysis_table(analysis: &Analysis) -> String {
    let mut table = table::Table::new([
        "layer",
        "kind",
        "N",
        "M",
        "rf",
        "lambda_max",
        "log_norm",
        "alpha",
        "alpha_w",
        "D",
        "stable_rank",
        "entropy",
        "spikes",
        "spikes_tw",
        "tw_p",
        "mmp_frac",
        "p_goe",
        "warning",
    ]);
    for layer in &analysis.layers {
        let metrics = &layer.metrics;
        let mp = layer.marchenko_pastur.as_ref();
        let fit = layer.power_law.as_ref();
        let bulk = layer.rmt.bulk.as_ref();
        table.push(vec![
            layer.name.clone(),
            layer.kind.to_string(),
            layer.n.to_string(),
            layer.m.to_string(),
            layer.rf.to_string(),
            format_number(metrics.lambda_max),
            format_number(metrics.log_norm),
            format_optional(fit.map(|f| f.alpha)),
            format_optional(layer.alpha_metrics.as_ref().map(|m| m.alpha_weighted)),
            format_optional(fit.map(|f| f.ks_distance)),
            format_number(metrics.stable_rank),
            format_optional(metrics.entropy),
            mp.map_or_else(|| "-".to_string(), |mp| mp.num_spikes.to_string()),
            bulk.map_or_else(|| "-".to_string(), |b| b.num_spikes_tw.to_string()),
            format_optional(bulk.map(|b| b.tw_p_value)),
            format_optional(layer.rmt.modified.as_ref().map(|m| m.mmp_fraction)),
            format_optional(layer.rmt.spacing.as_ref().map(|s| s.spacing_p_goe)),
            layer.warning.to_string(),
        ]);
    }
    let mut out = format!(
        "{} ({}): {} layers on {}, ESD convention {}, conv {}, precision {}\n\n",
        analysis.model,
        analysis.format,
        analysis.layers.len(),
        analysis.device,
        analysis.convention,
        analysis.conv_mode,
        analysis.precision,
    );
    out.push_str(&table.render());
    let summary = &analysis.summary;
    out.push_str(&format!(
        "\nmean alpha {}, alpha_weighted {}, log_norm {}, stable_rank {}, mp_softrank {}; layers: {} well-trained, {} over-trained, {} under-trained, {} fit failed\n{} of {} layers have spikes beyond the Tracy-Widom edge ({} in all)\n",
        format_optional(summary.alpha),
        format_optional(summary.alpha_weighted),
        format_optional(summary.log_norm),
        format_optional(summary.stable_rank),
        format_optional(summary.mp_softrank),
        summary.well_trained,
        summary.over_trained,
        summary.under_trained,
        summary.fit_failed,
        summary.layers_with_tw_spikes,
        analysis.layers.len(),
        summary.num_spikes_tw,
    ));
    if !analysis.skipped.is_empty() {
        out.push_str(&format!(
            "\n{} tensors skipped (rmt-torch info lists why)\n",
            analysis.skipped.len()
        ));
    }
    out
}
