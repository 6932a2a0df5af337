//! Summaries over a model's layer records: the model's means and label counts, and a
//! transformer's blocks.
use serde::{Deserialize, Serialize};

use super::record::LayerReport;
use crate::model::roles::{Part, Sublayer};
use crate::option_names::{option_names, serde_as_text};
use crate::stats::heavy_tail::quality::QualityLabel;

/// One transformer block: the mean α of its attention and of its MLP weights whose fit
/// succeeded — α against depth, the picture drawn for LLMs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockSummary {
    /// The block's number.
    pub block: usize,
    /// Mean α of the query, key, value (or fused) and output projections.
    pub attention_alpha: Option<f64>,
    /// Attention weights analysed.
    pub attention_layers: usize,
    /// Mean α of the gate, up and down projections.
    pub mlp_alpha: Option<f64>,
    /// MLP weights analysed.
    pub mlp_layers: usize,
    /// Its experts, in a mixture-of-experts block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experts: Option<ExpertSummary>,
}

/// The mean α of the layers whose fit succeeded; `None` when none did.
fn mean_alpha<'a>(layers: impl IntoIterator<Item = &'a LayerReport>) -> Option<f64> {
    let alphas: Vec<f64> = layers
        .into_iter()
        .filter_map(|l| l.power_law.as_ref().map(|fit| fit.alpha))
        .collect();
    (!alphas.is_empty()).then(|| alphas.iter().sum::<f64>() / alphas.len() as f64)
}

/// A mixture-of-experts block's experts: α over them, and the one furthest from the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpertSummary {
    /// Experts with at least one analysed projection.
    pub experts: usize,
    /// Mean over experts of each expert's mean α (over its gate, up and down projections).
    pub alpha_mean: Option<f64>,
    /// Standard deviation of the experts' mean α (population).
    pub alpha_spread: Option<f64>,
    /// The expert whose mean α is furthest from the block's mean.
    pub outlier: Option<usize>,
    /// Its mean α.
    pub outlier_alpha: Option<f64>,
}

impl ExpertSummary {
    /// The experts among a block's `members`; `None` when none is an expert.
    fn of(members: &[&LayerReport]) -> Option<Self> {
        let mut experts: Vec<usize> = members.iter().filter_map(|l| l.expert).collect();
        experts.sort_unstable();
        experts.dedup();
        if experts.is_empty() {
            return None;
        }
        let means: Vec<(usize, f64)> = experts
            .iter()
            .filter_map(|&expert| {
                let alpha =
                    mean_alpha(members.iter().copied().filter(|l| l.expert == Some(expert)));
                alpha.map(|alpha| (expert, alpha))
            })
            .collect();
        let count = means.len() as f64;
        let mean = (!means.is_empty()).then(|| means.iter().map(|m| m.1).sum::<f64>() / count);
        let spread = mean
            .map(|mean| (means.iter().map(|m| (m.1 - mean).powi(2)).sum::<f64>() / count).sqrt());
        let outlier = mean.and_then(|mean| {
            means
                .iter()
                .copied()
                .max_by(|a, b| (a.1 - mean).abs().total_cmp(&(b.1 - mean).abs()))
        });
        Some(Self {
            experts: experts.len(),
            alpha_mean: mean,
            alpha_spread: spread,
            outlier: outlier.map(|o| o.0),
            outlier_alpha: outlier.map(|o| o.1),
        })
    }
}

impl BlockSummary {
    /// The blocks of `layers`, in order of block number; single heads' blocks of a projection
    /// (`--split-heads`) are left out, their matrix is counted whole.
    pub fn of(layers: &[LayerReport]) -> Vec<Self> {
        let layers: Vec<&LayerReport> = layers.iter().filter(|l| l.head.is_none()).collect();
        let mut blocks: Vec<usize> = layers.iter().filter_map(|l| l.block).collect();
        blocks.sort_unstable();
        blocks.dedup();
        blocks
            .into_iter()
            .map(|block| {
                let of = |sublayer| {
                    let members: Vec<&LayerReport> = layers
                        .iter()
                        .copied()
                        .filter(|l| {
                            l.block == Some(block)
                                && l.role.and_then(Part::sublayer) == Some(sublayer)
                        })
                        .collect();
                    (mean_alpha(members.iter().copied()), members.len())
                };
                let (attention_alpha, attention_layers) = of(Sublayer::Attention);
                let (mlp_alpha, mlp_layers) = of(Sublayer::Mlp);
                let members: Vec<&LayerReport> = layers
                    .iter()
                    .copied()
                    .filter(|l| l.block == Some(block))
                    .collect();
                Self {
                    block,
                    attention_alpha,
                    attention_layers,
                    mlp_alpha,
                    mlp_layers,
                    experts: ExpertSummary::of(&members),
                }
            })
            .collect()
    }
}

/// The model-level summary WeightWatcher reports: means over the layers whose fit succeeded
/// (α-based metrics) or over every layer (the others), and how many layers carry each label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// Layers analysed.
    pub layers: usize,
    /// Mean α over fitted layers.
    pub alpha: Option<f64>,
    /// Mean α̂ over fitted layers.
    pub alpha_weighted: Option<f64>,
    /// Mean log₁₀ Σλ^α over fitted layers.
    pub log_alpha_norm: Option<f64>,
    /// Mean log₁₀ ‖W‖²_F.
    pub log_norm: Option<f64>,
    /// Mean log₁₀ λmax.
    pub log_spectral_norm: Option<f64>,
    /// Mean stable rank.
    pub stable_rank: Option<f64>,
    /// Mean λ₊/λmax of the Marchenko-Pastur bulk fit.
    pub mp_softrank: Option<f64>,
    /// Eigenvalues beyond the Tracy-Widom edge, over all layers.
    pub num_spikes_tw: usize,
    /// Layers with at least one such spike: those that are not pure noise.
    pub layers_with_tw_spikes: usize,
    /// Layers whose spectrum the RMT suite cannot tell from noise (quality `random-like`).
    pub random_like: usize,
    /// Other layers with 2 ≤ α ≤ 6.
    pub well_trained: usize,
    /// Other layers with α < 2.
    pub over_trained: usize,
    /// Other layers with α > 6.
    pub under_trained: usize,
    /// Other layers whose power-law fit failed.
    pub fit_failed: usize,
}

/// A [`ModelSummary`] field by its JSON name: what zoo rankings and policy rules name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryField {
    /// [`ModelSummary::layers`].
    Layers,
    /// [`ModelSummary::alpha`].
    Alpha,
    /// [`ModelSummary::alpha_weighted`].
    AlphaWeighted,
    /// [`ModelSummary::log_alpha_norm`].
    LogAlphaNorm,
    /// [`ModelSummary::log_norm`].
    LogNorm,
    /// [`ModelSummary::log_spectral_norm`].
    LogSpectralNorm,
    /// [`ModelSummary::stable_rank`].
    StableRank,
    /// [`ModelSummary::mp_softrank`].
    MpSoftrank,
    /// [`ModelSummary::num_spikes_tw`].
    NumSpikesTw,
    /// [`ModelSummary::layers_with_tw_spikes`].
    LayersWithTwSpikes,
    /// [`ModelSummary::random_like`].
    RandomLike,
    /// [`ModelSummary::well_trained`].
    WellTrained,
    /// [`ModelSummary::over_trained`].
    OverTrained,
    /// [`ModelSummary::under_trained`].
    UnderTrained,
    /// [`ModelSummary::fit_failed`].
    FitFailed,
}

option_names!(SummaryField, "summary field", {
    Layers => "layers",
    Alpha => "alpha",
    AlphaWeighted => "alpha_weighted",
    LogAlphaNorm => "log_alpha_norm",
    LogNorm => "log_norm",
    LogSpectralNorm => "log_spectral_norm",
    StableRank => "stable_rank",
    MpSoftrank => "mp_softrank",
    NumSpikesTw => "num_spikes_tw",
    LayersWithTwSpikes => "layers_with_tw_spikes",
    RandomLike => "random_like",
    WellTrained => "well_trained",
    OverTrained => "over_trained",
    UnderTrained => "under_trained",
    FitFailed => "fit_failed",
});

serde_as_text!(SummaryField);

impl ModelSummary {
    /// A field's value; `None` for a mean over no layer.
    pub fn get(&self, field: SummaryField) -> Option<f64> {
        let count = |n: usize| Some(n as f64);
        match field {
            SummaryField::Layers => count(self.layers),
            SummaryField::Alpha => self.alpha,
            SummaryField::AlphaWeighted => self.alpha_weighted,
            SummaryField::LogAlphaNorm => self.log_alpha_norm,
            SummaryField::LogNorm => self.log_norm,
            SummaryField::LogSpectralNorm => self.log_spectral_norm,
            SummaryField::StableRank => self.stable_rank,
            SummaryField::MpSoftrank => self.mp_softrank,
            SummaryField::NumSpikesTw => count(self.num_spikes_tw),
            SummaryField::LayersWithTwSpikes => count(self.layers_with_tw_spikes),
            SummaryField::RandomLike => count(self.random_like),
            SummaryField::WellTrained => count(self.well_trained),
            SummaryField::OverTrained => count(self.over_trained),
            SummaryField::UnderTrained => count(self.under_trained),
            SummaryField::FitFailed => count(self.fit_failed),
        }
    }

    /// Summarises layer reports: every layer once, its single heads' blocks (`--split-heads`)
    /// left out as they are views of a layer already counted.
    pub fn of(layers: &[LayerReport]) -> Self {
        let layers: Vec<&LayerReport> = layers.iter().filter(|l| l.head.is_none()).collect();
        let mean = |values: Vec<f64>| {
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        let fitted = || {
            layers
                .iter()
                .filter_map(|l| l.power_law.as_ref().zip(l.alpha_metrics.as_ref()))
        };
        let count = |label| layers.iter().filter(|l| l.quality == label).count();
        let bulk = || layers.iter().filter_map(|l| l.rmt.bulk.as_ref());
        Self {
            layers: layers.len(),
            alpha: mean(fitted().map(|(fit, _)| fit.alpha).collect()),
            alpha_weighted: mean(fitted().map(|(_, m)| m.alpha_weighted).collect()),
            log_alpha_norm: mean(fitted().map(|(_, m)| m.log_alpha_norm).collect()),
            log_norm: mean(layers.iter().map(|l| l.metrics.log_norm).collect()),
            log_spectral_norm: mean(layers.iter().map(|l| l.metrics.log_spectral_norm).collect()),
            stable_rank: mean(layers.iter().map(|l| l.metrics.stable_rank).collect()),
            mp_softrank: mean(bulk().map(|b| b.mp_softrank).collect()),
            num_spikes_tw: bulk().map(|b| b.num_spikes_tw).sum(),
            layers_with_tw_spikes: bulk().filter(|b| b.num_spikes_tw > 0).count(),
            random_like: count(QualityLabel::RandomLike),
            well_trained: count(QualityLabel::WellTrained),
            over_trained: count(QualityLabel::OverTrained),
            under_trained: count(QualityLabel::UnderTrained),
            fit_failed: count(QualityLabel::FitFailed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::option_names::OptionNames;

    #[test]
    fn summary_fields_are_the_json_names() {
        let summary = ModelSummary::of(&[]);
        let json = serde_json::to_value(&summary).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, SummaryField::NAMES);
        for name in SummaryField::NAMES {
            let field: SummaryField = name.parse().unwrap();
            assert_eq!(summary.get(field), json[*name].as_f64(), "{name}");
        }
    }
}
