//! What `analyze` reports for one layer, and where its time went.
use serde::{Deserialize, Serialize};

use crate::model::layers::LayerKind;
use crate::model::roles::Part;
use crate::stats::heavy_tail::alternatives::TailAlternatives;
use crate::stats::heavy_tail::hill::HillEstimate;
use crate::stats::heavy_tail::power_law::PowerLawFit;
use crate::stats::heavy_tail::quality::{AlphaMetrics, QualityLabel};
use crate::stats::heavy_tail::randomization::Randomization;
use crate::stats::spectral_metrics::SpectralMetrics;
use crate::stats::suite::RmtReport;

/// Every field a layer record of `analyze`'s JSON can carry (those of opt-in results and of
/// statistics a small layer cannot have included), in the order they appear: what `track
/// --metrics` and other consumers of the records may name.
pub const LAYER_FIELDS: &[&str] = &[
    "layer_id",
    "name",
    "kind",
    "block",
    "role",
    "shape",
    "dtype",
    "N",
    "M",
    "Q",
    "rf",
    "rank",
    "num_evals",
    "lambda_min",
    "lambda_max",
    "norm",
    "log_norm",
    "spectral_norm",
    "log_spectral_norm",
    "stable_rank",
    "matrix_rank",
    "sv_max",
    "sv_min",
    "rank_loss",
    "weak_rank_loss",
    "condition_number",
    "entropy",
    "alpha",
    "xmin",
    "xmax",
    "D",
    "sigma",
    "num_pl_spikes",
    "fit_method",
    "num_fingers",
    "raw_alpha",
    "farms_groups",
    "exponential_lambda",
    "llr_exponential",
    "p_exponential",
    "lognormal_mu",
    "lognormal_sigma",
    "llr_lognormal",
    "p_lognormal",
    "tpl_alpha",
    "tpl_lambda",
    "llr_truncated_power_law",
    "p_truncated_power_law",
    "alpha_weighted",
    "log_alpha_norm",
    "quality",
    "warning",
    "hill_alpha",
    "hill_k_min",
    "hill_k_max",
    "hill_plateau_cv",
    "rand_lambda_max",
    "rand_distance",
    "num_traps",
    "sigma2",
    "mp_lambda_minus",
    "mp_lambda_plus",
    "num_spikes",
    "bulk_sigma2",
    "bulk_lambda_plus",
    "bulk_fraction",
    "bulk_ks",
    "bulk_ks_p",
    "tw_threshold",
    "tw_statistic",
    "tw_p_value",
    "num_spikes_tw",
    "mp_softrank",
    "mmp_sigma2",
    "mmp_lambda_minus",
    "mmp_lambda_plus",
    "mmp_fraction",
    "mmp_num_spikes",
    "mmp_ks",
    "mmp_ks_p",
    "porter_thomas",
    "eigenvalues",
    "spacing_count",
    "spacing_ks_goe",
    "spacing_p_goe",
    "spacing_p_gue",
    "spacing_p_poisson",
    "spacing_ratio",
    "number_variance",
    "semicircle_sigma2",
    "semicircle_ks",
    "semicircle_ks_p",
    "semicircle2_sigma2_narrow",
    "semicircle2_sigma2_wide",
    "semicircle2_ks_p",
    "unit_spacings",
    "small_samples",
];

/// Everything reported for one weight layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// Position among the analysed layers, from 0.
    pub layer_id: usize,
    /// The tensor's dotted name.
    pub name: String,
    /// Dense, conv1d or conv2d.
    pub kind: LayerKind,
    /// The transformer block the weight belongs to, read from its name; `None` outside blocks
    /// and in models that are not transformers.
    pub block: Option<usize>,
    /// Its part of a transformer ([`crate::model::roles::role_of`]); `None` when its name is not one.
    pub role: Option<Part>,
    /// The expert it is, in a mixture-of-experts block (`…experts.7.up`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert: Option<usize>,
    /// The attention head whose block of its projection it is (`--split-heads`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<usize>,
    /// The tensor's shape as stored.
    pub shape: Vec<i64>,
    /// The stored dtype (the spectrum is always f64).
    pub dtype: String,
    /// Rows of each matrix after orientation (the larger side).
    #[serde(rename = "N")]
    pub n: usize,
    /// Columns of each matrix (the smaller side).
    #[serde(rename = "M")]
    pub m: usize,
    /// Aspect ratio N/M.
    #[serde(rename = "Q")]
    pub q: f64,
    /// Matrices pooled into the ESD (kernel positions in slices mode; WeightWatcher's `rf`).
    pub rf: usize,
    /// For a low-rank update analysed from its factors (a LoRA adapter's s·B·A): its rank r.
    /// Its ESD is r eigenvalues per matrix and M − r zeros, so there is no bulk: the RMT suite
    /// (Marchenko-Pastur, Tracy-Widom, spacings) is not computed, and α is fitted to at most r
    /// values per matrix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<usize>,
    /// Norms, ranks, entropy.
    #[serde(flatten)]
    pub metrics: SpectralMetrics,
    /// The power-law fit of the ESD's tail; absent when it failed (see `warning`).
    #[serde(flatten)]
    pub power_law: Option<PowerLawFit>,
    /// Likelihood ratios of the power law against the exponential, log-normal and truncated
    /// power law on the fitted tail; absent when the fit failed.
    #[serde(flatten)]
    pub alternatives: Option<TailAlternatives>,
    /// α̂ and the α-norm; absent when the fit failed.
    #[serde(flatten)]
    pub alpha_metrics: Option<AlphaMetrics>,
    /// The layer's label from both readings ([`QualityLabel::of`]): `random-like` when the
    /// RMT suite cannot tell its spectrum from noise, else the α label.
    pub quality: QualityLabel,
    /// The label from α alone, WeightWatcher's `warning` column ([`QualityLabel::from_alpha`]).
    pub warning: QualityLabel,
    /// The Hill estimator's plateau, a fit-free estimate of α; absent for tiny layers.
    #[serde(flatten)]
    pub hill: Option<HillEstimate>,
    /// The shuffled-entries comparison, when asked for.
    #[serde(flatten)]
    pub randomization: Option<Randomization>,
    /// The universal RMT suite's fits and tests.
    #[serde(flatten)]
    pub rmt: RmtReport,
    /// The ESD, ascending, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eigenvalues: Option<Vec<f64>>,
}
/// Wall time of an analysis, split between the eigensolver work and everything computed from
/// the eigenvalues (fits, metrics), so the cost of the statistics is measured, not assumed.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Timing {
    /// Gram products and eigensolves (shuffled spectra included), seconds.
    pub spectra_seconds: f64,
    /// Power-law fits, Hill, metrics and the rest of each layer's statistics, seconds.
    pub statistics_seconds: f64,
}
