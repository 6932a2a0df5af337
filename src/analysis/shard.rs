//! One model's layers over several machines: share I of N analyses a deterministic,
//! cost-balanced part of the selected layers (by the estimated cost of forming and solving each
//! layer's Gram matrices, not by count), and [`Analysis::merge`] joins the shares into exactly
//! the single run's analysis (its timing aside).
use serde::{Deserialize, Serialize};

use super::{Analysis, BlockSummary, ModelSummary, Timing};
use crate::error::{Error, Result};
use crate::model::layers::WeightLayer;
use crate::option_names::serde_as_text;

/// Share `index` of `count` (0 ≤ index < count), written `I/N`: of a zoo's models or of one
/// model's layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Shard {
    /// This shard, from 0.
    pub index: usize,
    /// How many shards the zoo is split into.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        text.split_once('/')
            .and_then(|(i, n)| {
                Some(Self {
                    index: i.trim().parse().ok()?,
                    count: n.trim().parse().ok()?,
                })
            })
            .filter(|shard| shard.count > 0 && shard.index < shard.count)
            .ok_or_else(|| {
                Error::parameter("shard", format!("must be I/N with 0 ≤ I < N, got '{text}'"))
            })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

serde_as_text!(Shard);

/// What a share's analysis says of its place in the whole: enough to merge the shares back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharePart {
    /// Which share.
    pub shard: Shard,
    /// Layers the whole model's selection holds.
    pub selected: usize,
    /// Tensors the selection itself skipped (the first entries of `skipped`, the same in
    /// every share).
    pub selection_skipped: usize,
    /// Position among the selected layers of each layer this share found nothing to analyse in
    /// (a zero matrix, a spectrum outside float64's range): the rest of `skipped`, in order.
    pub skipped_positions: Vec<usize>,
}

/// Estimated cost of a layer: forming WᵀW (n·m² per matrix) and solving it (m³).
fn cost(layer: &WeightLayer<'_>) -> f64 {
    let (n, m) = (layer.shape.n as f64, layer.shape.m as f64);
    layer.shape.slices as f64 * m * m * (n + m)
}

/// The share of each of `layers`, balancing the estimated costs over `count` shares: the
/// costliest first, each to the share with the least so far (ties to the first layer and the
/// lowest share), so the same selection always splits the same way.
pub fn assign(layers: &[WeightLayer<'_>], count: usize) -> Vec<usize> {
    let costs: Vec<f64> = layers.iter().map(cost).collect();
    let mut order: Vec<usize> = (0..layers.len()).collect();
    order.sort_by(|&a, &b| costs[b].total_cmp(&costs[a]).then(a.cmp(&b)));
    let mut loads = vec![0.0f64; count.max(1)];
    let mut shares = vec![0; layers.len()];
    for index in order {
        let share = (0..loads.len())
            .min_by(|&a, &b| loads[a].total_cmp(&loads[b]).then(a.cmp(&b)))
            .unwrap_or(0);
        loads[share] += costs[index];
        shares[index] = share;
    }
    shares
}

impl Analysis {
    /// The analysis in the JSON file `path`, as `analyze -f json` writes it (another schema
    /// is refused by name, not half-read).
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let not_analysis = |message: String| Error::UnsupportedFormat {
            path: path.to_path_buf(),
            message,
        };
        let (file, _) = crate::model::open_regular(path)?;
        let value: serde_json::Value = serde_json::from_reader(std::io::BufReader::new(file))
            .map_err(|err| not_analysis(format!("not an analysis in JSON: {err}")))?;
        match value["schema"].as_str() {
            Some(super::ANALYSIS_SCHEMA) => {}
            Some(other) => {
                return Err(not_analysis(format!(
                    "a {other} file; this version merges {} analyses",
                    super::ANALYSIS_SCHEMA
                )))
            }
            None => return Err(not_analysis("not an analysis in JSON: no schema".into())),
        }
        serde_json::from_value(value)
            .map_err(|err| not_analysis(format!("not an analysis in JSON: {err}")))
    }

    /// The shares of one model's analysis as the single run's: refused unless they are a
    /// complete set of the same model, format and settings, each share once. Layer records
    /// are put back in the selection's order and numbered again; the summaries are recomputed;
    /// the timings are added up.
    pub fn merge(parts: Vec<Analysis>) -> Result<Analysis> {
        let invalid = |message: String| Err(Error::InvalidInput(message));
        let Some(first) = parts.first() else {
            return invalid("nothing to merge".into());
        };
        let Some(share) = first.share.clone() else {
            return invalid(format!(
                "the analysis of {} covers the whole model (made without --shard): there is \
                 nothing to merge it with",
                first.model
            ));
        };
        let count = share.shard.count;
        let mut seen = vec![false; count];
        for part in &parts {
            let Some(this) = &part.share else {
                return invalid("an analysis of the whole model among the shares".into());
            };
            if part.model != first.model
                || part.format != first.format
                || part.settings != first.settings
                || part.schema != first.schema
            {
                return invalid(format!(
                    "the shares are of different models or settings ({} beside {})",
                    part.model, first.model
                ));
            }
            if this.shard.count != count || this.selected != share.selected {
                return invalid(format!(
                    "the shares split the model differently: share {} beside share {}",
                    this.shard, share.shard
                ));
            }
            if std::mem::replace(&mut seen[this.shard.index], true) {
                return invalid(format!("share {} is given twice", this.shard));
            }
        }
        let missing: Vec<String> = (0..count)
            .filter(|&index| !seen[index])
            .map(|index| Shard { index, count }.to_string())
            .collect();
        if !missing.is_empty() {
            return invalid(format!(
                "incomplete set of shares: {} missing ({} of {count} given)",
                missing.join(", "),
                parts.len()
            ));
        }
        let mut merged = first.clone();
        let mut layers = Vec::new();
        let mut late_skipped = Vec::new();
        let mut timing = Timing {
            spectra_seconds: 0.0,
            statistics_seconds: 0.0,
        };
        for part in parts {
            let this = part.share.expect("checked above");
            layers.extend(part.layers);
            late_skipped.extend(
                this.skipped_positions
                    .into_iter()
                    .zip(part.skipped.into_iter().skip(this.selection_skipped)),
            );
            timing.spectra_seconds += part.timing.spectra_seconds;
            timing.statistics_seconds += part.timing.statistics_seconds;
        }
        layers.sort_by_key(|layer| layer.layer_id);
        for (id, layer) in layers.iter_mut().enumerate() {
            layer.layer_id = id;
        }
        late_skipped.sort_by_key(|(position, _)| *position);
        merged.skipped.truncate(share.selection_skipped);
        merged
            .skipped
            .extend(late_skipped.into_iter().map(|(_, s)| s));
        merged.summary = ModelSummary::of(&layers);
        merged.blocks = BlockSummary::of(&layers);
        merged.layers = layers;
        merged.timing = timing;
        merged.share = None;
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_parse_and_refuse_nonsense() {
        assert_eq!(
            "1/3".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 3 }
        );
        for bad in ["3/3", "1/0", "x/2", "2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
