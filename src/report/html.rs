//! The HTML report: one self-contained file (figures inline as SVG, styles inline, no network)
//! that a person opens in a browser and sends to a colleague.
use std::fmt::Write;

use crate::analysis::{Analysis, LayerReport, ModelSummary};
use crate::environment::Environment;
use crate::error::Result;
use crate::report::compare::comparison_cells;
use crate::report::plots::compare::compare_figure;
use crate::report::plots::jacobian::JacobianFigure;
use crate::report::plots::model::{blocks_figure, model_figure};
use crate::report::plots::text::html_scripts;
use crate::report::plots::{layer::layer_figures, to_svg};
use crate::report::{
    counted, escape, format_number, format_optional, format_p_value, setting_rows,
};
use crate::stats::heavy_tail::quality::QualityLabel;
use crate::workflows::compare::Comparison;
use crate::workflows::jacobian::JacobianAnalysis;

/// Which layers' sections carry figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayerFigures {
    /// Every layer's (a 5.5 MB page for ResNet18).
    #[default]
    All,
    /// Only the K worst layers' ([`worst_layers`]); the others keep their verdict.
    Worst(usize),
}

/// Sections open when the page is loaded, at most: beyond, they start collapsed.
const OPEN_SECTIONS: usize = 12;

/// What a report holds beside the model's own analysis.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportSections<'a> {
    /// A second model whose ESDs are overlaid on the layers' figures.
    pub baseline: Option<&'a Analysis>,
    /// The input-output Jacobians: a section of their own.
    pub jacobian: Option<&'a JacobianAnalysis>,
    /// The model compared with the one it derives from: a section on what changed.
    pub comparison: Option<&'a Comparison>,
}

/// The report of `analysis` (its options must have kept eigenvalues and spacings:
/// [`crate::AnalysisRequest::figure_data`]) with the `sections` given: a baseline's ESDs
/// overlaid, the input-output Jacobians, what changed since a base model. A table of contents
/// stays at the top of the window; each layer is a collapsible section (open when the page has
/// at most 12 sections with figures), with figures for the layers `figures` names.
pub fn html_report(
    analysis: &Analysis,
    sections: ReportSections<'_>,
    environment: &Environment,
    figures: LayerFigures,
) -> Result<String> {
    let ReportSections {
        baseline,
        jacobian,
        comparison,
    } = sections;
    crate::report::plots::require_figure_data(analysis)?;
    let mut html = String::with_capacity(1 << 20);
    let title = format!("rmt-torch report: {}", analysis.model);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    html.push_str(&table_of_contents(
        !analysis.blocks.is_empty(),
        jacobian.is_some(),
        comparison.is_some(),
    ));
    html.push_str("<h2 id=\"summary\">Summary</h2>\n");
    html.push_str(&overview(analysis, baseline));
    html.push_str("<h2 id=\"layers\">Layers</h2>\n");
    html.push_str(&layer_table(&analysis.layers, true));
    html.push_str("<h2 id=\"across\">Across layers</h2>\n<figure>");
    html.push_str(&to_svg(&model_figure(analysis))?);
    html.push_str("</figure>\n");
    html.push_str(&blocks_section(analysis)?);
    if let Some(comparison) = comparison {
        html.push_str(&changes_section(comparison)?);
    }
    if let Some(jacobian) = jacobian {
        html.push_str(&jacobian_section(jacobian)?);
    }
    let drawn: Vec<usize> = match figures {
        LayerFigures::All => analysis.layers.iter().map(|l| l.layer_id).collect(),
        LayerFigures::Worst(count) => worst_layers(&analysis.layers, count),
    };
    html.push_str("<h2 id=\"details\">Layer by layer</h2>\n");
    if drawn.len() < analysis.layers.len() {
        let _ = writeln!(
            html,
            "<p>Figures for the {} worst of {} layers (over-trained first, then under-trained, \
             failed fits, well-trained; the farthest α from 2 ≤ α ≤ 6 first); the others keep \
             their verdict.</p>",
            drawn.len(),
            analysis.layers.len()
        );
    }
    let open = drawn.len() <= OPEN_SECTIONS;
    let mut current_block = None;
    for layer in &analysis.layers {
        if layer.block.is_some() && layer.block != current_block {
            let block = layer.block.unwrap_or_default();
            let _ = writeln!(html, "<h3 id=\"block-{block}\">Block {block}</h3>");
        }
        current_block = layer.block;
        let with_figures = drawn.contains(&layer.layer_id);
        let _ = write!(
            html,
            "<details id=\"layer-{}\"{}>\n<summary><h3>{} <small>{} {:?} · {}</small></h3></summary>\n<p>{}</p>\n",
            layer.layer_id,
            if open && with_figures { " open" } else { "" },
            escape(&layer.name),
            layer.kind,
            layer.shape,
            layer.quality,
            escape(&verdict(layer))
        );
        if with_figures {
            let base = baseline.and_then(|b| b.layers.iter().find(|l| l.name == layer.name));
            html.push_str("<div class=\"figures\">\n");
            for figure in layer_figures(layer, base) {
                let _ = writeln!(
                    html,
                    "<figure id=\"layer-{}-{}\">{}</figure>",
                    layer.layer_id,
                    figure.suffix(),
                    &to_svg(&figure)?
                );
            }
            html.push_str("</div>\n");
        }
        html.push_str("</details>\n");
    }
    html.push_str("<h2 id=\"settings\">Settings and versions</h2>\n");
    let mut rows: Vec<(String, String)> = vec![
        ("model".into(), analysis.model.clone()),
        ("format".into(), analysis.format.to_string()),
        ("computed on".into(), analysis.device.clone()),
    ];
    if let Some(base) = baseline {
        rows.push(("baseline".into(), base.model.clone()));
    }
    if let Some(comparison) = comparison {
        rows.push(("compared with".into(), comparison.base.clone()));
    }
    rows.extend(setting_rows(&analysis.settings));
    rows.extend(setting_rows(environment));
    rows.push((
        "timing".into(),
        format!(
            "spectra {:.2} s, statistics {:.2} s",
            analysis.timing.spectra_seconds, analysis.timing.statistics_seconds
        ),
    ));
    html.push_str("<table class=\"settings\">\n");
    for (key, value) in rows {
        let _ = writeln!(
            html,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(&key),
            escape(&value)
        );
    }
    html.push_str("</table>\n");
    html.push_str(GLOSSARY);
    html.push_str("</body>\n</html>\n");
    Ok(html)
}

/// What changed since the base model: the comparison's figure, its table (the largest updates
/// first, the CLI's columns) and the layers left out with the reason.
fn changes_section(comparison: &Comparison) -> Result<String> {
    let summary = &comparison.summary;
    let mut html = format!(
        "<h2 id=\"changes\">Changes since {}</h2>\n<p>{} matched by name: {} changed, {} with \
         another label; {} left out. Each update ΔW = W − W_base is analysed with the whole \
         suite: few eigenvalues beyond the Tracy-Widom edge mean a low-rank update, a \
         random-like label noise.</p>\n<figure>",
        escape(&comparison.base),
        counted(summary.layers, "layer", "layers"),
        summary.changed,
        summary.relabelled,
        summary.unmatched
    );
    html.push_str(&to_svg(&compare_figure(comparison))?);
    html.push_str("</figure>\n<div class=\"wide\"><table>\n<tr>");
    let (columns, rows) = comparison_cells(comparison);
    for column in &columns {
        let _ = write!(html, "<th>{}</th>", escape(column));
    }
    html.push_str("</tr>\n");
    for row in rows {
        html.push_str("<tr>");
        for cell in row {
            let _ = write!(html, "<td>{}</td>", escape(&cell));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table></div>\n");
    if !comparison.violations.is_empty() {
        let _ = writeln!(
            html,
            "<p>Violates {}.</p>",
            escape(&comparison.violations.join(", "))
        );
    }
    if !comparison.unmatched.is_empty() {
        html.push_str("<p>Left out:</p>\n<ul>\n");
        for layer in &comparison.unmatched {
            let _ = writeln!(
                html,
                "<li>{} ({:?}): {}</li>",
                escape(&layer.name),
                layer.side,
                escape(&layer.reason)
            );
        }
        html.push_str("</ul>\n");
    }
    Ok(html)
}

/// A transformer's blocks: attention against MLP α block by block (figure and table), each
/// block's labels, and links to its layers' sections. Empty for other models.
fn blocks_section(analysis: &Analysis) -> Result<String> {
    let Some(figure) = blocks_figure(analysis) else {
        return Ok(String::new());
    };
    let mut html = String::from(
        "<h2 id=\"blocks\">Blocks</h2>\n<p>Mean α of each block's attention (query, key, value, \
         output) and MLP (gate, up, down) weights: a block whose halves part ways, or whose α \
         leaves 2 ≤ α ≤ 6, is where to look first.</p>\n<figure>",
    );
    html.push_str(&to_svg(&figure)?);
    html.push_str(
        "</figure>\n<table>\n<tr><th>block</th><th>attention α</th><th>MLP α</th>\
         <th>labels</th><th class=\"name\">layers</th></tr>\n",
    );
    for block in &analysis.blocks {
        let layers: Vec<&LayerReport> = analysis
            .layers
            .iter()
            .filter(|l| l.block == Some(block.block))
            .collect();
        let mut labels: Vec<(QualityLabel, usize)> = Vec::new();
        for layer in &layers {
            match labels.iter_mut().find(|(label, _)| *label == layer.quality) {
                Some((_, count)) => *count += 1,
                None => labels.push((layer.quality, 1)),
            }
        }
        let labels: Vec<String> = labels
            .iter()
            .map(|(label, count)| format!("{count} {label}"))
            .collect();
        let links: Vec<String> = layers
            .iter()
            .map(|l| {
                format!(
                    "<a href=\"#layer-{}\">{}</a>",
                    l.layer_id,
                    escape(&l.role.map_or_else(|| l.name.clone(), |r| r.to_string()))
                )
            })
            .collect();
        let _ = writeln!(
            html,
            "<tr><td><a href=\"#block-{0}\">{0}</a></td><td>{1}</td><td>{2}</td><td>{3}</td><td class=\"name\">{4}</td></tr>",
            block.block,
            format_optional(block.attention_alpha),
            format_optional(block.mlp_alpha),
            labels.join(", "),
            links.join(" ")
        );
    }
    html.push_str("</table>\n");
    Ok(html)
}

/// The links of the sticky table of contents.
fn table_of_contents(with_blocks: bool, with_jacobian: bool, with_changes: bool) -> String {
    let mut entries = vec![
        ("summary", "Summary"),
        ("layers", "Layers"),
        ("across", "Across layers"),
    ];
    if with_blocks {
        entries.push(("blocks", "Blocks"));
    }
    if with_changes {
        entries.push(("changes", "Changes"));
    }
    if with_jacobian {
        entries.push(("jacobian", "Jacobian"));
    }
    entries.extend([
        ("details", "Layer by layer"),
        ("settings", "Settings"),
        ("glossary", "Reading the figures"),
    ]);
    let links: Vec<String> = entries
        .iter()
        .map(|(id, text)| format!("<a href=\"#{id}\">{text}</a>"))
        .collect();
    format!("<nav class=\"toc\">{}</nav>\n", links.join(""))
}

/// The ids of the `count` worst layers, in the model's order: over-trained first, then
/// under-trained, failed fits, well-trained and random-like; within each, the farthest α from
/// the well-trained range 2 ≤ α ≤ 6 first (then the model's order).
pub fn worst_layers(layers: &[LayerReport], count: usize) -> Vec<usize> {
    let severity = |layer: &LayerReport| match layer.quality {
        QualityLabel::OverTrained => 0,
        QualityLabel::UnderTrained => 1,
        QualityLabel::FitFailed => 2,
        QualityLabel::WellTrained => 3,
        QualityLabel::RandomLike => 4,
    };
    let distance = |layer: &LayerReport| {
        layer
            .power_law
            .as_ref()
            .map_or(0.0, |fit| (2.0 - fit.alpha).max(fit.alpha - 6.0).max(0.0))
    };
    let mut ranked: Vec<&LayerReport> = layers.iter().collect();
    ranked.sort_by(|a, b| {
        severity(a)
            .cmp(&severity(b))
            .then(distance(b).total_cmp(&distance(a)))
    });
    let mut ids: Vec<usize> = ranked.iter().take(count).map(|l| l.layer_id).collect();
    ids.sort_unstable();
    ids
}

pub(crate) const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1180px;margin:0 auto;\
padding:1.5rem;color:#222;line-height:1.45}\
h1{font-size:1.5rem;margin-bottom:.3rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}\
h2 small,h3 small{font-weight:normal;color:#666;font-size:.8rem}\
div.wide{overflow-x:auto}\
nav.toc{position:sticky;top:0;z-index:1;background:#fff;border-bottom:1px solid #ddd;\
padding:.45rem 0;display:flex;flex-wrap:wrap;gap:1rem;font-size:.9rem}\
nav.toc a{color:#0b57d0;text-decoration:none}h2{scroll-margin-top:3rem}\
details{border-bottom:1px solid #eee;scroll-margin-top:3rem}details>summary{cursor:pointer;padding:.3rem 0}\
details>summary h3{display:inline;font-size:1.05rem}\
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}\
th,td{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:right}\
th{background:#f6f6f6}td.name,th.name,.settings th,.settings td{text-align:left}\
.label{padding:.1rem .45rem;border-radius:.6rem;font-size:.78rem;white-space:nowrap}\
.well-trained{background:#d8f0d8}.over-trained{background:#f7d4d4}\
.under-trained{background:#fde4c8}.fit-failed{background:#e4e4e4}.random-like{background:#e8def3}\
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:.5rem}\
figure{margin:0}svg{max-width:100%;height:auto}\
.summary{display:flex;flex-wrap:wrap;gap:.6rem}.summary div{background:#f6f6f6;padding:.4rem .8rem;border-radius:.4rem}\
.summary b{display:block;font-size:1.1rem}";

const GLOSSARY: &str = "<h2 id=\"glossary\">Reading the figures</h2>\n<ul>\n\
<li><b>ESD</b>: the eigenvalues of WᵀW (in the report's convention) against the Marchenko-Pastur \
density of a random matrix with the bulk's variance; eigenvalues past the Tracy-Widom threshold are \
spikes, directions the weights have learned.</li>\n\
<li><b>Power-law tail</b>: the complementary CDF on log-log axes; a straight line from xmin is a \
power law of exponent α (Martin &amp; Mahoney: 2 ≤ α ≤ 6 well-trained, α &lt; 2 over-trained, \
α &gt; 6 under-trained).</li>\n\
<li><b>Labels</b>: a layer is <i>random-like</i> when the RMT suite cannot tell its spectrum from \
noise (no eigenvalue beyond the Tracy-Widom edge and a bulk the KS test accepts as \
Marchenko-Pastur), whatever its α; otherwise the label of its α above. Tables, cards and figures \
all show this one label (the JSON's <code>quality</code>); WeightWatcher's α-only label is the \
JSON's <code>warning</code>.</li>\n\
<li><b>Level spacings</b>: nearest-neighbour spacings of the unfolded singular values; random \
weights follow the GOE Wigner surmise, uncorrelated levels the Poisson law.</li>\n\
<li><b>Number variance</b>: Σ²(L) grows like log L for random-matrix levels (GOE) and like L for \
uncorrelated ones.</li>\n\
<li><b>Porter-Thomas</b>: a random singular vector's entries are Gaussian; p-values below 5 % mark \
vectors that carry structure, usually at the top of the spectrum.</li>\n</ul>\n";

/// Each quality label with the number of layers that carry it: the label cards, which add up
/// to the layers analysed.
fn label_counts(summary: &ModelSummary) -> impl Iterator<Item = (QualityLabel, usize)> {
    [
        (QualityLabel::RandomLike, summary.random_like),
        (QualityLabel::WellTrained, summary.well_trained),
        (QualityLabel::OverTrained, summary.over_trained),
        (QualityLabel::UnderTrained, summary.under_trained),
        (QualityLabel::FitFailed, summary.fit_failed),
    ]
    .into_iter()
}

/// The report's summary cards and layer table without figures, as one HTML fragment: what a
/// notebook shows for an analysis (Python's `Analysis._repr_html_`).
pub fn summary_html(analysis: &Analysis) -> String {
    format!(
        "<div class=\"rmt-torch\">{}{}</div>",
        overview(analysis, None),
        layer_table(&analysis.layers, false)
    )
}

fn overview(analysis: &Analysis, baseline: Option<&Analysis>) -> String {
    let summary = &analysis.summary;
    let tiles = [
        ("layers".to_string(), analysis.layers.len().to_string()),
        ("mean α".into(), format_optional(summary.alpha)),
        ("mean α̂".into(), format_optional(summary.alpha_weighted)),
        (
            "mean log₁₀‖W‖²_{F}".into(),
            format_optional(summary.log_norm),
        ),
        (
            "mean stable rank".into(),
            format_optional(summary.stable_rank),
        ),
        (
            "layers with TW spikes".into(),
            summary.layers_with_tw_spikes.to_string(),
        ),
    ]
    .into_iter()
    .chain(label_counts(summary).map(|(label, count)| (label.to_string(), count.to_string())));
    let mut html = format!(
        "<p>{} ({}), {} analysed on {}{}.</p>\n<div class=\"summary\">",
        escape(&analysis.model),
        analysis.format,
        counted(analysis.layers.len(), "layer", "layers"),
        escape(&analysis.device),
        baseline.map_or_else(String::new, |b| format!(
            "; baseline {} drawn in orange",
            escape(&b.model)
        )),
    );
    for (name, value) in tiles {
        let _ = write!(
            html,
            "<div>{}<b>{}</b></div>",
            html_scripts(&name),
            escape(&value)
        );
    }
    html.push_str("</div>\n");
    html
}

/// The Jacobians' summary and singular-value figure.
fn jacobian_section(jacobian: &JacobianAnalysis) -> Result<String> {
    let summary = &jacobian.summary;
    let rows = [
        ("input", jacobian.setup.input.clone()),
        ("samples", summary.samples.to_string()),
        (
            "J (outputs × inputs)",
            format!("{} × {}", jacobian.setup.outputs, jacobian.setup.inputs),
        ),
        ("mean σ²", format_number(summary.mean_sigma2)),
        ("var σ²", format_number(summary.var_sigma2)),
        (
            "isometry fraction",
            format!(
                "{} (|σ − 1| ≤ {})",
                format_number(summary.isometry_fraction),
                format_number(jacobian.isometry_tolerance)
            ),
        ),
        ("largest σ", format_number(summary.sigma_max)),
        (
            "median σmax/σmin",
            format_optional(summary.median_condition_number),
        ),
    ];
    let mut html = String::from(
        "<h2 id=\"jacobian\">Input-output Jacobian</h2>\n<p>Dynamical isometry: the singular \
         values of ∂f/∂x concentrate at 1 when signals neither grow nor fade through the \
         network.</p>\n<table class=\"settings\">\n",
    );
    for (key, value) in rows {
        let _ = writeln!(
            html,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(key),
            escape(&value)
        );
    }
    html.push_str("</table>\n<figure>");
    let figure = JacobianFigure {
        title: format!(
            "{} — Jacobian singular values",
            crate::report::plots::model_title(&jacobian.setup.model)
        ),
        analysis: jacobian,
    };
    html.push_str(&to_svg(&figure)?);
    html.push_str("</figure>\n");
    Ok(html)
}

/// The layers' table; names link to their sections when `linked` (the report has them).
pub(crate) fn layer_table(layers: &[LayerReport], linked: bool) -> String {
    let mut html = String::from(
        "<table>\n<tr><th>#</th><th class=\"name\">layer</th><th>N × M</th><th>rf</th>\
         <th>λmax</th><th>α</th><th>α̂</th><th>TW spikes</th><th>MP soft rank</th>\
         <th>spacing p (GOE)</th><th>label</th></tr>\n",
    );
    for layer in layers {
        let bulk = layer.rmt.bulk.as_ref();
        let name = if linked {
            format!(
                "<a href=\"#layer-{}\">{}</a>",
                layer.layer_id,
                escape(&layer.name)
            )
        } else {
            escape(&layer.name)
        };
        let _ = writeln!(
            html,
            "<tr><td>{id}</td><td class=\"name\">{name}</td><td>{} × {}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td><span class=\"label {label}\">{label}</span></td></tr>",
            layer.n,
            layer.m,
            layer.rf,
            format_number(layer.metrics.lambda_max),
            format_optional(layer.power_law.as_ref().map(|f| f.alpha)),
            format_optional(layer.alpha_metrics.as_ref().map(|m| m.alpha_weighted)),
            bulk.map_or_else(|| "-".into(), |b| b.num_spikes_tw.to_string()),
            format_optional(bulk.map(|b| b.mp_softrank)),
            format_p_value(layer.rmt.spacing.as_ref().map(|s| s.spacing_p_goe)),
            id = layer.layer_id,
            label = layer.quality,
        );
    }
    html.push_str("</table>\n");
    html
}

/// One plain-language sentence on what the statistics say about a layer.
fn verdict(layer: &LayerReport) -> String {
    let mut parts = Vec::new();
    parts.push(match &layer.power_law {
        Some(fit) => format!(
            "α = {} ± {} ({})",
            format_number(fit.alpha),
            format_number(fit.sigma),
            layer.quality
        ),
        None => "no power law could be fitted".into(),
    });
    if let Some(bulk) = &layer.rmt.bulk {
        parts.push(match bulk.num_spikes_tw {
            0 => format!(
                "no eigenvalue beyond the Tracy-Widom edge (p = {}): the spectrum is that of noise",
                format_p_value(Some(bulk.tw_p_value))
            ),
            k => format!(
                "{k} eigenvalue{} beyond the Tracy-Widom edge: learned structure",
                if k == 1 { "" } else { "s" }
            ),
        });
    }
    if let Some(spacing) = &layer.rmt.spacing {
        parts.push(format!(
            "level spacings {} the GOE surmise (p = {})",
            if spacing.spacing_p_goe >= 0.05 {
                "agree with"
            } else {
                "depart from"
            },
            format_p_value(Some(spacing.spacing_p_goe))
        ));
    }
    let mut sentence = parts.join("; ");
    sentence.push('.');
    sentence
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
