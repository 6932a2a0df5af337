//! A zoo's page: one self-contained HTML file (styles, figure and a small sorting script
//! inline, no network) with the models' table — sortable by any column, each row linking to
//! the model's layers — the distribution of α over the models, and what changed since the
//! previous run highlighted.
use std::fmt::Write;

use crate::error::Result;
use crate::report::html::{layer_table, STYLE};
use crate::report::plots::series::HistogramFigure;
use crate::report::plots::to_svg;
use crate::report::{counted, escape, format_optional};
use crate::workflows::health::Rule;
use crate::workflows::zoo::history::Change;
use crate::workflows::zoo::{Verdict, ZooReport};

/// Sorts the models' table by a column when its header is clicked (again: the other way), or
/// on load by the column the address names (`#sort=alpha` ascending, `#sort=alpha-desc`).
/// Numbers sort by their `data-value`, missing ones last.
const SORT_SCRIPT: &str = r#"
(function () {
  var table = document.getElementById("models");
  function sort(column, descending) {
    var headers = table.tHead.rows[0].cells, index = -1;
    for (var i = 0; i < headers.length; i++) if (headers[i].dataset.column === column) index = i;
    if (index < 0) return;
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    function key(row) {
      var cell = row.cells[index], value = cell.dataset.value;
      return value === undefined ? cell.textContent : (value === "" ? null : parseFloat(value));
    }
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      if (x === null) return y === null ? 0 : 1;
      if (y === null) return -1;
      var order = x < y ? -1 : x > y ? 1 : 0;
      return descending ? -order : order;
    });
    rows.forEach(function (row) { table.tBodies[0].appendChild(row); });
    table.dataset.sorted = column + (descending ? "-desc" : "");
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
    cell.addEventListener("click", function () {
      sort(cell.dataset.column, table.dataset.sorted === cell.dataset.column);
    });
  });
  var wanted = /#sort=([a-z_]+?)(-desc)?$/.exec(location.hash);
  if (wanted) sort(wanted[1], !!wanted[2]);
})();
"#;

/// The zoo page of `report`.
pub fn zoo_html(report: &ZooReport) -> Result<String> {
    let mut html = String::with_capacity(1 << 18);
    let title = format!(
        "rmt-torch zoo: {}",
        counted(report.models.len(), "model", "models")
    );
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{0}</title>\n<style>{STYLE}th[data-column]{{cursor:pointer}}\
         tr.drifted td{{background:#fff4d6}}</style>\n</head>\n<body>\n<h1>{0}</h1>\n",
        escape(&title)
    );
    let policy = if report.rules.is_empty() {
        "no policy, so none is judged".to_string()
    } else {
        let rules: Vec<String> = report.rules.iter().map(Rule::to_string).collect();
        format!(
            "{} healthy, {} violate the policy ({})",
            report.healthy,
            report.violated,
            rules.join(", ")
        )
    };
    let _ = writeln!(
        html,
        "<p>Ranked by {}: {policy}; {} could not be analysed, {} are not models. Click a \
         column's header to sort by it.</p>",
        report.rank_by, report.errors, report.not_models
    );
    if let Some(history) = &report.history {
        let _ = writeln!(
            html,
            "<p id=\"history\">Since {}: {} new, {} removed, {} changed, {} unchanged; new, \
             changed and drifted models are highlighted.</p>",
            escape(&history.since),
            history.new,
            history.removed,
            history.changed,
            history.unchanged
        );
    }
    let alphas: Vec<f64> = report
        .models
        .iter()
        .filter_map(|m| m.summary.as_ref()?.alpha)
        .filter(|a| a.is_finite())
        .collect();
    if !alphas.is_empty() {
        let (lo, hi) = alphas
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &a| {
                (lo.min(a), hi.max(a))
            });
        let pad = ((hi - lo) * 0.05).max(0.25);
        let figure = HistogramFigure {
            title: "mean α of each model".into(),
            x_desc: "mean power-law exponent α".into(),
            name: counted(alphas.len(), "model", "models"),
            range: (lo - pad, hi + pad),
            bins: ((alphas.len() as f64).sqrt().ceil() as usize).clamp(5, 30),
            values: alphas,
            curves: Vec::new(),
        };
        let _ = writeln!(html, "<figure>{}</figure>", to_svg(&figure)?);
    }
    html.push_str(&models_table(report));
    html.push_str("<h2 id=\"details\">Models</h2>\n");
    for (index, entry) in report.models.iter().enumerate() {
        let _ = write!(
            html,
            "<details id=\"model-{index}\">\n<summary><h3>{} <small>{}</small></h3></summary>\n",
            escape(&entry.path),
            escape(&verdict_text(entry))
        );
        match &entry.analysis {
            Some(analysis) => html.push_str(&layer_table(&analysis.layers, false)),
            None => {
                let _ = writeln!(
                    html,
                    "<p>{}</p>",
                    escape(entry.error.as_deref().unwrap_or("not analysed"))
                );
            }
        }
        html.push_str("</details>\n");
    }
    if let Some(history) = &report.history {
        let removed: Vec<&str> = history
            .models
            .iter()
            .filter(|m| m.change == Change::Removed)
            .map(|m| m.path.as_str())
            .collect();
        if !removed.is_empty() {
            html.push_str("<h2 id=\"removed\">Removed since</h2>\n<ul>\n");
            for path in removed {
                let _ = writeln!(html, "<li>{}</li>", escape(path));
            }
            html.push_str("</ul>\n");
        }
    }
    let _ = write!(html, "<script>{SORT_SCRIPT}</script>\n</body>\n</html>\n");
    Ok(html)
}

/// A model's verdict in words.
fn verdict_text(entry: &crate::workflows::zoo::ZooEntry) -> String {
    match entry.verdict {
        Verdict::Healthy => "healthy".into(),
        Verdict::NoPolicy => "no policy".into(),
        Verdict::Violated => {
            let rules: Vec<String> = entry.violations.iter().map(Rule::to_string).collect();
            format!("violates {}", rules.join(", "))
        }
        Verdict::Error => "error".into(),
        Verdict::NotAModel => "not a model".into(),
    }
}

/// The models' table: a row per model, its summary's columns (numbers sortable by their
/// `data-value`), its verdict, and with a history its change and α's drift.
fn models_table(report: &ZooReport) -> String {
    use crate::analysis::SummaryField as Field;
    let columns = [
        ("alpha", Field::Alpha),
        ("alpha_weighted", Field::AlphaWeighted),
        ("log_norm", Field::LogNorm),
        ("stable_rank", Field::StableRank),
        ("num_spikes_tw", Field::NumSpikesTw),
        ("layers", Field::Layers),
        ("random_like", Field::RandomLike),
        ("over_trained", Field::OverTrained),
        ("under_trained", Field::UnderTrained),
    ];
    let mut html = String::from(
        "<div class=\"wide\"><table id=\"models\">\n<thead><tr><th data-column=\"rank\">rank</th>\
         <th data-column=\"path\" class=\"name\">model</th>",
    );
    for (name, _) in columns {
        let _ = write!(html, "<th data-column=\"{name}\">{name}</th>");
    }
    html.push_str("<th data-column=\"verdict\">verdict</th>");
    if report.history.is_some() {
        html.push_str(
            "<th data-column=\"change\">change</th><th data-column=\"delta_alpha\">delta_alpha</th>",
        );
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for (index, entry) in report.models.iter().enumerate() {
        let history = report
            .history
            .as_ref()
            .and_then(|h| h.models.iter().find(|m| m.path == entry.path));
        let drifted = history.is_some_and(|m| m.change != Change::Unchanged || !m.drift.is_empty());
        let _ = write!(
            html,
            "<tr{}><td data-value=\"{}\">{}</td><td class=\"name\"><a href=\"#model-{index}\">{}</a></td>",
            if drifted { " class=\"drifted\"" } else { "" },
            index + 1,
            index + 1,
            escape(&entry.path)
        );
        for (_, field) in columns {
            let value = entry.summary.as_ref().and_then(|s| s.get(field));
            let shown = match value {
                Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => (v as i64).to_string(),
                other => format_optional(other),
            };
            let _ = write!(
                html,
                "<td data-value=\"{}\">{shown}</td>",
                value.map_or_else(String::new, |v| v.to_string())
            );
        }
        let _ = write!(html, "<td>{}</td>", escape(&verdict_text(entry)));
        if report.history.is_some() {
            let change = history.map_or("unchanged", |m| m.change.name());
            let delta = history
                .and_then(|m| m.drift.iter().find(|d| d.field == "alpha"))
                .map(|d| d.delta);
            let _ = write!(
                html,
                "<td>{change}</td><td data-value=\"{}\">{}</td>",
                delta.map_or_else(String::new, |d| d.to_string()),
                format_optional(delta)
            );
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody></table></div>\n");
    html
}
