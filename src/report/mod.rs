//! Writing results for people (aligned tables) and machines (JSON, CSV).
mod compare;
pub mod csv;
mod hessian;
#[cfg(feature = "plots")]
pub mod html;
pub mod jacobian;
#[cfg(feature = "plots")]
pub mod plots;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod table;
mod track;
pub mod weightwatcher;
mod zoo;
#[cfg(feature = "plots")]
pub mod zoo_html;

use crate::error::{Error, Result};
use crate::option_names::option_names;
use crate::stats::heavy_tail::estimator::Estimator;

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

/// An optional count for a table cell, or `-` when absent.
/// `count` and the noun that counts it, singular or plural as English wants: "1 layer",
/// "3 layers", "1 weight matrix".
pub fn counted(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// A resolved setting's value, `-` when absent.
fn shown<T: std::fmt::Display>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "-".into(), ToString::to_string)
}

fn count_cell(value: Option<usize>) -> String {
    value.map_or_else(|| "-".to_string(), |n| n.to_string())
}

/// A p-value for people: four decimals, and `<1e-4` below that rather than a `0.0000` that
/// reads as impossible.
pub fn format_p_value(p: Option<f64>) -> String {
    match p {
        None => "-".into(),
        Some(p) if p < 1e-4 => "<1e-4".into(),
        Some(p) => format!("{p:.4}"),
    }
}

/// An optional number for a table cell: [`format_number`], or `-` when absent.
pub fn format_optional(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), format_number)
}

/// Text safe inside HTML elements and attribute values (the HTML report, SVG text).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `text` as it may be printed on one line of a terminal: control characters (newlines and
/// escape sequences among them) and bidirectional-override marks, which a hostile tensor name could carry to recolour or
/// rewrite the screen, shown as `\u{…}` escapes.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let hostile =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(hostile) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if hostile(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

use crate::analysis::Analysis;

/// A result that renders itself for people and machines: what every command's `--format`
/// chooses between, written once per result type (ripgrep's one printer, many sinks).
pub trait Render: serde::Serialize {
    /// The table a person reads.
    fn table(&self) -> String;

    /// The CSV rows: JSON objects whose scalar fields become the columns.
    fn csv_rows(&self) -> Result<Vec<serde_json::Value>>;

    /// The result in `format`: [`Render::table`], the whole record as JSON ([`to_json`]), or
    /// CSV of [`Render::csv_rows`].
    fn render(&self, format: OutputFormat) -> Result<String> {
        match format {
            OutputFormat::Table => Ok(self.table()),
            OutputFormat::Json => to_json(self),
            OutputFormat::Csv => csv::to_csv(&self.csv_rows()?),
        }
    }
}

/// Results a command lays out itself (the theory subcommands): the JSON is `results`, the
/// table and the CSV the same cells, `rows` under `headers`.
#[derive(Debug)]
pub struct Tabulated<'a, T> {
    /// What the JSON holds.
    pub results: &'a T,
    /// The columns.
    pub headers: Vec<String>,
    /// The cells, one row per line.
    pub rows: Vec<Vec<String>>,
}

impl<T: serde::Serialize> serde::Serialize for Tabulated<'_, T> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        self.results.serialize(serializer)
    }
}

impl<T: serde::Serialize> Render for Tabulated<'_, T> {
    fn table(&self) -> String {
        let mut table = table::Table::new(self.headers.clone());
        for row in &self.rows {
            table.push(row.clone());
        }
        table.render()
    }

    fn csv_rows(&self) -> Result<Vec<serde_json::Value>> {
        Ok(self
            .rows
            .iter()
            .map(|row| {
                let cells = self
                    .headers
                    .iter()
                    .cloned()
                    .zip(row.iter().cloned().map(Into::into));
                serde_json::Value::Object(cells.collect())
            })
            .collect())
    }
}

/// The fields of a record as (name, value) text, in order: strings as they are, an absent value
/// as `none`, anything else as its JSON. The settings of an analysis and the environment are
/// shown so, in the HTML report and by `doctor`.
pub fn setting_rows(record: &impl serde::Serialize) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(record) else {
        return Vec::new();
    };
    fields
        .into_iter()
        .map(|(name, value)| {
            let text = match value {
                serde_json::Value::String(text) => text,
                serde_json::Value::Null => "none".into(),
                other => other.to_string(),
            };
            (name, text)
        })
        .collect()
}

/// The environment, one setting per row.
impl Render for crate::environment::Environment {
    fn table(&self) -> String {
        let mut table = table::Table::new(["setting", "value"]);
        for (name, value) in setting_rows(self) {
            table.push(vec![name, value]);
        }
        table.render()
    }

    fn csv_rows(&self) -> Result<Vec<serde_json::Value>> {
        Ok(setting_rows(self)
            .into_iter()
            .map(|(setting, value)| serde_json::json!({"setting": setting, "value": value}))
            .collect())
    }
}

/// Every item of `records` as a JSON value.
pub fn json_rows<T: serde::Serialize>(records: &[T]) -> Result<Vec<serde_json::Value>> {
    records
        .iter()
        .map(|record| serde_json::to_value(record).map_err(|err| Error::serialize("a row", err)))
        .collect()
}

/// An analysis: a table of the main columns, the full JSON, or CSV of the layer records (with
/// WeightWatcher's columns under `ww_compat`).
impl Render for Analysis {
    fn table(&self) -> String {
        analysis_table(self, Columns::Compact)
    }

    fn csv_rows(&self) -> Result<Vec<serde_json::Value>> {
        if self.settings.selection.ww_compat {
            Ok(weightwatcher::details(self))
        } else {
            json_rows(&self.layers)
        }
    }
}

/// Pretty-printed JSON with a trailing newline.
pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map(|text| text + "\n")
        .map_err(|err| Error::serialize("results", err))
}

/// The statistics of a row read from too few values, as `tw_p_value(9),alpha(8)`.
fn small_samples_cell(flags: &[crate::stats::suite::SmallSample]) -> String {
    let names: Vec<String> = flags
        .iter()
        .map(|flag| format!("{}({})", flag.statistic, flag.values))
        .collect();
    names.join(",")
}

/// The line under a table with a `small_samples` column saying what it means.
fn small_samples_note() -> String {
    format!(
        "small_samples: statistics read from fewer than {} values (the count in brackets), rough \
         guides rather than measurements\n",
        crate::stats::suite::FEW_VALUES
    )
}

/// A table column: its header (the JSON field's name) and how a layer fills its cell.
type Column = (&'static str, fn(&crate::analysis::LayerReport) -> String);

/// How many columns `analyze`'s table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Columns {
    /// The shape, α, the Tracy-Widom edge test and the label, plus what was asked for
    /// (`--randomize`, `--vectors`, …): a table that fits a terminal.
    #[default]
    Compact,
    /// Every scalar the default table leaves out as well (`--wide`).
    Wide,
}

/// The analysis as a table of `columns`, headed by the JSON field names, with the model
/// summary under it.
pub fn analysis_table(analysis: &Analysis, columns: Columns) -> String {
    use crate::analysis::LayerReport;
    let wide = columns == Columns::Wide;
    let mut columns: Vec<Column> = vec![
        ("name", |l| l.name.clone()),
        ("kind", |l| l.kind.to_string()),
        ("N", |l| l.n.to_string()),
        ("M", |l| l.m.to_string()),
    ];
    if wide {
        columns.extend::<[Column; 3]>([
            ("rf", |l| l.rf.to_string()),
            ("lambda_max", |l| format_number(l.metrics.lambda_max)),
            ("log_norm", |l| format_number(l.metrics.log_norm)),
        ]);
    }
    columns.extend::<[Column; 2]>([
        ("alpha", |l| {
            format_optional(l.power_law.as_ref().map(|f| f.alpha))
        }),
        ("alpha_weighted", |l| {
            format_optional(l.alpha_metrics.as_ref().map(|m| m.alpha_weighted))
        }),
    ]);
    if wide {
        columns.extend::<[Column; 4]>([
            ("D", |l| {
                format_optional(l.power_law.as_ref().map(|f| f.ks_distance))
            }),
            ("stable_rank", |l| format_number(l.metrics.stable_rank)),
            ("entropy", |l| format_optional(l.metrics.entropy)),
            ("num_spikes", |l| {
                count_cell(l.rmt.marchenko_pastur.as_ref().map(|mp| mp.num_spikes))
            }),
        ]);
    }
    columns.extend::<[Column; 2]>([
        ("num_spikes_tw", |l| {
            count_cell(l.rmt.bulk.as_ref().map(|b| b.num_spikes_tw))
        }),
        ("tw_p_value", |l| {
            format_p_value(l.rmt.bulk.as_ref().map(|b| b.tw_p_value))
        }),
    ]);
    if wide {
        columns.extend::<[Column; 2]>([
            ("mmp_fraction", |l| {
                format_optional(l.rmt.modified.as_ref().map(|m| m.mmp_fraction))
            }),
            ("spacing_p_goe", |l| {
                format_p_value(l.rmt.spacing.as_ref().map(|s| s.spacing_p_goe))
            }),
        ]);
    }
    let any = |has: fn(&LayerReport) -> bool| analysis.layers.iter().any(has);
    if any(|l| l.randomization.is_some()) {
        columns.push(("rand_distance", |l| {
            format_optional(l.randomization.as_ref().map(|r| r.rand_distance))
        }));
        columns.push(("num_traps", |l| {
            count_cell(l.randomization.as_ref().map(|r| r.num_traps))
        }));
    }
    if any(|l| l.power_law.as_ref().is_some_and(|f| f.raw_alpha.is_some())) {
        columns.push(("num_fingers", |l| {
            count_cell(l.power_law.as_ref().map(|f| f.num_fingers))
        }));
        columns.push(("raw_alpha", |l| {
            format_optional(l.power_law.as_ref().and_then(|f| f.raw_alpha))
        }));
    }
    if any(|l| l.rmt.porter_thomas.is_some()) {
        columns.push(("porter_thomas", |l| {
            l.rmt.porter_thomas.as_ref().map_or_else(
                || "-".to_string(),
                |pt| format!("{}/{} rejected", pt.rejected, pt.p_values.len()),
            )
        }));
    }
    if any(|l| l.rmt.semicircle.is_some()) {
        columns.push(("semicircle_ks_p", |l| {
            format_p_value(l.rmt.semicircle.as_ref().map(|s| s.semicircle_ks_p))
        }));
    }
    if any(|l| l.rank.is_some()) {
        let after_m = columns
            .iter()
            .position(|(h, _)| *h == "M")
            .map_or(0, |i| i + 1);
        columns.insert(after_m, ("rank", |l| count_cell(l.rank)));
    }
    if any(|l| l.role.is_some()) {
        columns.insert(
            2,
            ("role", |l| {
                l.role.map_or_else(|| "-".into(), |r| r.to_string())
            }),
        );
    }
    columns.push(("quality", |l| l.quality.to_string()));
    let flagged = any(|l| !l.rmt.small_samples.is_empty());
    if flagged {
        columns.push(("small_samples", |l| {
            small_samples_cell(&l.rmt.small_samples)
        }));
    }
    let mut table = table::Table::new(columns.iter().map(|(header, _)| *header));
    for layer in &analysis.layers {
        table.push(columns.iter().map(|(_, cell)| cell(layer)).collect());
    }
    let estimator = match analysis.settings.estimator {
        Some(estimator) if estimator != Estimator::Ww => format!(", alpha by {estimator}"),
        _ => String::new(),
    };
    let mut out = format!(
        "{} ({}): {} on {}, ESD convention {}, conv {}, precision {}{}\n\n",
        analysis.model,
        analysis.format,
        counted(analysis.layers.len(), "layer", "layers"),
        analysis.device,
        shown(&analysis.settings.convention),
        shown(&analysis.settings.selection.conv),
        shown(&analysis.settings.precision),
        estimator,
    );
    out.push_str(&table.render());
    let summary = &analysis.summary;
    out.push_str(&format!(
        "\nmean alpha {}, alpha_weighted {}, log_norm {}, stable_rank {}, mp_softrank {}; layers: {} random-like, {} well-trained, {} over-trained, {} under-trained, {} fit failed\n{} of {} {} spikes beyond the Tracy-Widom edge ({} in all)\n",
        format_optional(summary.alpha),
        format_optional(summary.alpha_weighted),
        format_optional(summary.log_norm),
        format_optional(summary.stable_rank),
        format_optional(summary.mp_softrank),
        summary.random_like,
        summary.well_trained,
        summary.over_trained,
        summary.under_trained,
        summary.fit_failed,
        summary.layers_with_tw_spikes,
        analysis.layers.len(),
        if analysis.layers.len() == 1 { "layer has" } else { "layers have" },
        summary.num_spikes_tw,
    ));
    out.push_str(if wide {
        "num_spikes counts eigenvalues above the Marchenko-Pastur edge of the entries' variance \
         (sigma2); num_spikes_tw those beyond the Tracy-Widom threshold of the bulk's own variance \
         (bulk_sigma2), the test behind quality\n"
    } else {
        "num_spikes_tw: eigenvalues beyond the Tracy-Widom edge of the bulk (tw_p_value: that λmax \
         is that edge); --wide for every column\n"
    });
    if flagged {
        out.push_str(&small_samples_note());
    }
    if any(|l| l.rank.is_some()) {
        out.push_str(
            "rank: a low-rank update read from its factors: its ESD is rank values and M − rank \
             zeros, no bulk for the Marchenko-Pastur and Tracy-Widom tests (-)\n",
        );
    }
    if !analysis.blocks.is_empty() {
        let with_experts = analysis.blocks.iter().any(|b| b.experts.is_some());
        let mut header = vec!["block", "attention alpha", "layers", "mlp alpha", "layers"];
        if with_experts {
            header.extend(["experts", "expert alpha", "spread", "outlier expert"]);
        }
        let mut blocks = table::Table::new(header);
        for block in &analysis.blocks {
            let mut row = vec![
                block.block.to_string(),
                format_optional(block.attention_alpha),
                block.attention_layers.to_string(),
                format_optional(block.mlp_alpha),
                block.mlp_layers.to_string(),
            ];
            if with_experts {
                let experts = block.experts.as_ref();
                row.extend([
                    experts.map_or("-".into(), |e| e.experts.to_string()),
                    format_optional(experts.and_then(|e| e.alpha_mean)),
                    format_optional(experts.and_then(|e| e.alpha_spread)),
                    experts
                        .and_then(|e| Some(format!("{} (α {:.3})", e.outlier?, e.outlier_alpha?)))
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
            blocks.push(row);
        }
        out.push_str("\nper transformer block (mean alpha of the fitted weights):\n");
        out.push_str(&blocks.render());
        if with_experts {
            out.push_str(
                "experts: α of each expert (mean over its projections), their mean and spread \
                 over the block, and the expert furthest from the mean\n",
            );
        }
    }
    if !analysis.skipped.is_empty() {
        out.push_str(&format!(
            "\n{} skipped (rmt-torch info lists why)\n",
            counted(analysis.skipped.len(), "tensor", "tensors")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{format_p_value, printable};

    #[test]
    fn tiny_p_values_read_as_bounds() {
        assert_eq!(format_p_value(Some(3e-9)), "<1e-4");
        assert_eq!(format_p_value(Some(0.0)), "<1e-4");
        assert_eq!(format_p_value(Some(0.04321)), "0.0432");
        assert_eq!(format_p_value(Some(1e-4)), "0.0001");
        assert_eq!(format_p_value(None), "-");
    }

    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        assert_eq!(printable("fc1.weight"), "fc1.weight");
        assert_eq!(printable("\u{1b}[2Jevil\u{7}"), "\\u{1b}[2Jevil\\u{7}");
        assert_eq!(printable("a\u{202e}b"), "a\\u{202e}b");
    }
}
