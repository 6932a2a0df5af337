//! The universal RMT suite applied to one layer: is this weight matrix noise, and where is it
//! not? Thamm, Staats & Rosenow's (2022) zero-information hypothesis, with p-values.
//!
//! Spectra arrive as squared singular values (per matrix and pooled); everything here is
//! arithmetic on them through [`crate::stats::rmt`]. Eigenvalue-valued fields are in the report's ESD
//! convention ([`EsdScale`] converts from the RMT one); σ² is always the weights' variance.
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::stats::esd::EsdScale;
use crate::stats::rmt::bulk_fit::{modified_fit, noise_edge_fit};
use crate::stats::rmt::goodness_of_fit::ks_test;
use crate::stats::rmt::marchenko_pastur::MarchenkoPastur;
use crate::stats::rmt::number_variance::{number_variance, NumberVariance};
use crate::stats::rmt::porter_thomas::{porter_thomas, PorterThomas};
use crate::stats::rmt::spacing::{mean_spacing_ratio, spacing_statistics, unit_mean_spacings};
use crate::stats::rmt::unfolding::{Unfolding, DEFAULT_GAUSSIAN_WINDOW};
use crate::stats::rmt::wigner::{Semicircle, TwoComponentSemicircle};

/// Default false-positive rate of the Tracy-Widom spike count per layer.
pub const DEFAULT_TW_LEVEL: f64 = 0.05;
/// Default window of the Porter-Thomas moving average (Thamm, Staats & Rosenow 2022 use 15).
pub const DEFAULT_PORTER_THOMAS_WINDOW: usize = 15;
/// Interval lengths L of Σ²(L) when figures ask for the number variance and none were chosen.
pub const FIGURE_NUMBER_VARIANCE_LENGTHS: [f64; 20] = [
    0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5,
    10.0,
];
/// At most this many number-variance lengths (each costs a pass over every unfolded matrix).
pub const MAX_NUMBER_VARIANCE_LENGTHS: usize = 10_000;

/// Which RMT statistics to compute, and their parameters.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RmtOptions {
    /// False-positive rate of the Tracy-Widom spike count per layer ([`DEFAULT_TW_LEVEL`]).
    pub level: f64,
    /// How levels are unfolded before spacing and number-variance statistics.
    pub unfolding: Unfolding,
    /// Interval lengths L for Σ²(L); empty skips it.
    pub number_variance: Vec<f64>,
    /// Porter-Thomas tests of the right singular vectors (an eigendecomposition per matrix).
    pub vectors: bool,
    /// Window of the Porter-Thomas moving average ([`DEFAULT_PORTER_THOMAS_WINDOW`]).
    pub porter_thomas_window: usize,
    /// Semicircle tests of the symmetric part of square matrices (one more eigensolve).
    pub semicircle: bool,
    /// Keep the unfolded spacings in the report (for the spacing figure).
    pub keep_spacings: bool,
}

impl Default for RmtOptions {
    fn default() -> Self {
        Self {
            level: DEFAULT_TW_LEVEL,
            unfolding: Unfolding::GaussianBroadening {
                window: DEFAULT_GAUSSIAN_WINDOW,
            },
            number_variance: Vec::new(),
            vectors: false,
            porter_thomas_window: DEFAULT_PORTER_THOMAS_WINDOW,
            semicircle: false,
            keep_spacings: false,
        }
    }
}

impl RmtOptions {
    /// Checks every parameter; errors name the parameter ([`Error::InvalidParameter`]).
    pub fn check(&self) -> Result<()> {
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(Error::parameter(
                "tw_level",
                format!("must be in (0, 1), got {}", self.level),
            ));
        }
        match self.unfolding {
            Unfolding::GaussianBroadening { window: 0 } => {
                return Err(Error::parameter("unfolding_window", "must be at least 1"))
            }
            Unfolding::Polynomial { degree: 0 } => {
                return Err(Error::parameter("unfolding_degree", "must be at least 1"))
            }
            _ => {}
        }
        if self.number_variance.len() > MAX_NUMBER_VARIANCE_LENGTHS {
            return Err(Error::parameter(
                "number_variance",
                format!("at most {MAX_NUMBER_VARIANCE_LENGTHS} lengths"),
            ));
        }
        if let Some(bad) = self
            .number_variance
            .iter()
            .find(|l| !(l.is_finite() && **l > 0.0))
        {
            return Err(Error::parameter(
                "number_variance",
                format!("lengths must be positive numbers, got {bad}"),
            ));
        }
        if self.porter_thomas_window == 0 {
            return Err(Error::parameter("pt_window", "must be at least 1"));
        }
        Ok(())
    }
}

/// The spectrum of one layer as the suite needs it.
#[derive(Debug, Clone, Copy)]
pub struct LayerSpectrum<'a> {
    /// Pooled squared singular values, ascending.
    pub pooled: &'a [f64],
    /// Squared singular values of each matrix, ascending.
    pub by_matrix: &'a [Vec<f64>],
    /// Rows N and columns M of each matrix (N ≥ M).
    pub n: usize,
    /// Columns M.
    pub m: usize,
    /// The weights' variance.
    pub entry_variance: f64,
    /// From squared singular values to reported eigenvalues.
    pub scale: EsdScale,
}

/// Everything the suite reports for a layer; groups that could not be computed are absent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RmtReport {
    /// Marchenko-Pastur edges from the entries' variance; absent for constant tensors.
    #[serde(flatten)]
    pub marchenko_pastur: Option<MarchenkoPasturBulk>,
    /// Noise level from the bulk and the Tracy-Widom edge test.
    #[serde(flatten)]
    pub bulk: Option<BulkReport>,
    /// Thamm, Staats & Rosenow's (2022) modified Marchenko-Pastur fit.
    #[serde(flatten)]
    pub modified: Option<ModifiedReport>,
    /// Unfolded spacings against the surmises, and the spacing ratio.
    #[serde(flatten)]
    pub spacing: Option<SpacingReport>,
    /// Σ²(L) beside GOE and Poisson, when asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub number_variance: Vec<NumberVariance>,
    /// Porter-Thomas p-values of the right singular vectors, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub porter_thomas: Option<PorterThomas>,
    /// Semicircle fits of the symmetric part, for square matrices when asked for.
    #[serde(flatten)]
    pub semicircle: Option<SemicircleReport>,
    /// The unfolded spacings of every matrix (unit mean each), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_spacings: Option<Vec<f64>>,
    /// The statistics above read from fewer than [`FEW_VALUES`] values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub small_samples: Vec<SmallSample>,
}

/// The fewest values a fit or test is read from before the report flags it: below about 30 the
/// asymptotic laws behind its p-value (Kolmogorov-Smirnov, Tracy-Widom at the edge) and the
/// power-law likelihood are rough guides, not measurements.
pub const FEW_VALUES: usize = 30;

/// A statistic computed from fewer than [`FEW_VALUES`] values: reported, but flagged, so that
/// a table and a JSON consumer can tell it from a reliable one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmallSample {
    /// The statistic's field name in the JSON (`alpha`, `tw_p_value`, `spacing_p_goe`, …).
    pub statistic: String,
    /// How many values it was computed from.
    pub values: usize,
}

impl SmallSample {
    /// The flag for `statistic` when `values` are fewer than [`FEW_VALUES`].
    pub fn flag(statistic: &str, values: usize) -> Option<Self> {
        (values < FEW_VALUES).then(|| Self {
            statistic: statistic.into(),
            values,
        })
    }
}

/// The Marchenko-Pastur bulk predicted from the entries' variance, in the report's convention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarchenkoPasturBulk {
    /// Variance of the entries, σ² of the law.
    pub sigma2: f64,
    /// Lower bulk edge λ₋.
    pub mp_lambda_minus: f64,
    /// Upper bulk edge λ₊.
    pub mp_lambda_plus: f64,
    /// Eigenvalues above λ₊ (spikes over the bare edge).
    pub num_spikes: usize,
}

impl RmtReport {
    /// Whether the layer's spectrum is indistinguishable from noise: no eigenvalue beyond the
    /// Tracy-Widom edge and a bulk the Kolmogorov-Smirnov test accepts as Marchenko-Pastur at
    /// `level` (Thamm, Staats & Rosenow 2022's zero-information hypothesis). `None` when the
    /// bulk could not be fitted.
    pub fn is_noise(&self, level: f64) -> Option<bool> {
        let bulk = self.bulk.as_ref()?;
        Some(bulk.num_spikes_tw == 0 && bulk.bulk_ks_p.is_none_or(|p| p >= level))
    }
}

/// The bulk's noise level and the Tracy-Widom test of its edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkReport {
    /// σ² of the bulk (the mean of the eigenvalues below the TW threshold, RMT scale).
    pub bulk_sigma2: f64,
    /// Marchenko-Pastur edge λ₊ for that σ².
    pub bulk_lambda_plus: f64,
    /// Share of the eigenvalues below the TW threshold.
    pub bulk_fraction: f64,
    /// KS distance of the bulk to Marchenko-Pastur.
    pub bulk_ks: Option<f64>,
    /// Its p-value (near 1 for noise: eigenvalues are more regular than i.i.d. samples).
    pub bulk_ks_p: Option<f64>,
    /// The spike threshold: λ₊ moved out by the TW₁ quantile at the chosen level.
    pub tw_threshold: f64,
    /// (Nλmax/σ² − μ)/s, TW₁-distributed for noise.
    pub tw_statistic: f64,
    /// P-value that λmax is the noise edge (Bonferroni over slices).
    pub tw_p_value: f64,
    /// Eigenvalues above the TW threshold.
    pub num_spikes_tw: usize,
    /// λ₊ / λmax: 1 for noise, small when a few directions dominate (WeightWatcher's
    /// mp_softrank with the bulk fitted here).
    pub mp_softrank: f64,
}

/// Thamm, Staats & Rosenow's (2022) modified Marchenko-Pastur fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModifiedReport {
    /// The fitted σ².
    pub mmp_sigma2: f64,
    /// λ₋, the smallest eigenvalue.
    pub mmp_lambda_minus: f64,
    /// The fitted upper edge.
    pub mmp_lambda_plus: f64,
    /// The fraction of the spectrum following the law.
    pub mmp_fraction: f64,
    /// Eigenvalues above the fitted edge.
    pub mmp_num_spikes: usize,
    /// KS distance of the eigenvalues inside to the fitted shape.
    pub mmp_ks: Option<f64>,
    /// Its p-value.
    pub mmp_ks_p: Option<f64>,
}

/// Level-spacing statistics, pooled over the layer's matrices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpacingReport {
    /// Number of unfolded spacings tested.
    pub spacing_count: usize,
    /// KS distance to the GOE Wigner surmise.
    pub spacing_ks_goe: f64,
    /// Its p-value: large for random weights.
    pub spacing_p_goe: f64,
    /// P-value against the GUE surmise.
    pub spacing_p_gue: f64,
    /// P-value against Poisson (uncorrelated levels).
    pub spacing_p_poisson: f64,
    /// ⟨r̃⟩ of the singular values (GOE 0.5307, Poisson 0.3863); no unfolding involved.
    pub spacing_ratio: Option<f64>,
}

/// The symmetric part against the semicircle and its two-component generalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SemicircleReport {
    /// σ² of the semicircle, from the second moment.
    pub semicircle_sigma2: f64,
    /// KS distance to it.
    pub semicircle_ks: f64,
    /// Its p-value.
    pub semicircle_ks_p: f64,
    /// σ₁² of Favoni, Aarts, Lucini & Park's (2024) two-component density (equal mixture), from the 2nd and 4th moments.
    pub semicircle2_sigma2_narrow: f64,
    /// σ₂².
    pub semicircle2_sigma2_wide: f64,
    /// KS p-value of the two-component fit.
    pub semicircle2_ks_p: f64,
}

/// The suite on one layer. `vectors` are (σ², right singular vector) pairs of every matrix
/// when Porter-Thomas was asked for; `symmetric` the eigenvalues of (W + Wᵀ)/√2 when the
/// semicircle was.
pub fn rmt_report(
    spectrum: LayerSpectrum<'_>,
    options: &RmtOptions,
    vectors: Option<Vec<(f64, Vec<f64>)>>,
    symmetric: Option<&[f64]>,
) -> RmtReport {
    let scale = spectrum.scale;
    let q = spectrum.n as f64 / spectrum.m as f64;
    let to_reported = |lambda: f64| scale.rmt_to_reported(lambda);
    let rmt: Vec<f64> = spectrum.pooled.iter().map(|&s| scale.to_rmt(s)).collect();
    let lambda_max = scale.report(spectrum.pooled.last().copied().unwrap_or(0.0));
    let marchenko_pastur = MarchenkoPastur::new(q, spectrum.entry_variance)
        .ok()
        .map(|law| {
            let (lo, hi) = law.edges();
            let mp_lambda_plus = to_reported(hi);
            MarchenkoPasturBulk {
                sigma2: spectrum.entry_variance,
                mp_lambda_minus: to_reported(lo),
                mp_lambda_plus,
                num_spikes: spectrum
                    .pooled
                    .iter()
                    .filter(|&&s| scale.report(s) > mp_lambda_plus)
                    .count(),
            }
        });
    let bulk = noise_edge_fit(
        &rmt,
        spectrum.n,
        spectrum.m,
        spectrum.by_matrix.len(),
        spectrum.entry_variance,
        options.level,
    )
    .map(|fit| BulkReport {
        bulk_sigma2: fit.sigma2,
        bulk_lambda_plus: to_reported(fit.lambda_plus),
        bulk_fraction: fit.bulk_fraction,
        bulk_ks: fit.ks.map(|t| t.statistic),
        bulk_ks_p: fit.ks.map(|t| t.p_value),
        tw_threshold: to_reported(fit.threshold),
        tw_statistic: fit.statistic,
        tw_p_value: fit.p_value,
        num_spikes_tw: fit.num_spikes,
        mp_softrank: to_reported(fit.lambda_plus) / lambda_max,
    });
    let modified = modified_fit(&rmt, q).map(|fit| ModifiedReport {
        mmp_sigma2: fit.sigma2,
        mmp_lambda_minus: to_reported(fit.lambda_minus),
        mmp_lambda_plus: to_reported(fit.lambda_plus),
        mmp_fraction: fit.fraction,
        mmp_num_spikes: fit.num_spikes,
        mmp_ks: fit.ks.map(|t| t.statistic),
        mmp_ks_p: fit.ks.map(|t| t.p_value),
    });
    let unfolded: Vec<Vec<f64>> = spectrum
        .by_matrix
        .iter()
        .filter_map(|levels| options.unfolding.unfold(&singular_values(levels)).ok())
        .collect();
    let spacings: Vec<f64> = unfolded
        .iter()
        .flat_map(|levels| unit_mean_spacings(levels))
        .collect();
    let spacing = spacing_report(&spacings, spectrum.by_matrix);
    let number_variance = options
        .number_variance
        .iter()
        .filter_map(|&length| {
            let values: Vec<NumberVariance> = unfolded
                .iter()
                .filter_map(|levels| number_variance(levels, length))
                .collect();
            let first = *values.first()?;
            let mean = values.iter().map(|v| v.value).sum::<f64>() / values.len() as f64;
            Some(NumberVariance {
                value: mean,
                ..first
            })
        })
        .collect();
    let porter_thomas = vectors.map(|mut pairs| {
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let vectors: Vec<Vec<f64>> = pairs.into_iter().map(|(_, v)| v).collect();
        porter_thomas(&vectors, options.porter_thomas_window)
    });
    let semicircle = symmetric.and_then(|values| semicircle_report(values, spectrum.n));
    let levels = spectrum.pooled.len();
    let small_samples = [
        bulk.as_ref().map(|_| ("tw_p_value", levels)),
        modified.as_ref().map(|_| ("mmp_ks_p", levels)),
        spacing.as_ref().map(|s| ("spacing_p_goe", s.spacing_count)),
        symmetric
            .filter(|_| semicircle.is_some())
            .map(|values| ("semicircle_ks_p", values.len())),
    ]
    .into_iter()
    .flatten()
    .filter_map(|(statistic, values)| SmallSample::flag(statistic, values))
    .collect();
    RmtReport {
        marchenko_pastur,
        bulk,
        modified,
        spacing,
        number_variance,
        porter_thomas,
        semicircle,
        unit_spacings: options.keep_spacings.then_some(spacings),
        small_samples,
    }
}

/// Singular values ν = √(σ²) of one matrix, without the numerically zero ones (below
/// σ²max·M·ε), which are rank deficiency, not levels.
fn singular_values(squared: &[f64]) -> Vec<f64> {
    let largest = squared.last().copied().unwrap_or(0.0);
    let floor = largest * squared.len() as f64 * f64::EPSILON;
    squared
        .iter()
        .filter(|&&s| s > floor)
        .map(|s| s.sqrt())
        .collect()
}

fn spacing_report(spacings: &[f64], by_matrix: &[Vec<f64>]) -> Option<SpacingReport> {
    let statistics = spacing_statistics(spacings)?;
    let ratios: Vec<f64> = by_matrix
        .iter()
        .filter_map(|levels| mean_spacing_ratio(&singular_values(levels)))
        .collect();
    Some(SpacingReport {
        spacing_count: statistics.count,
        spacing_ks_goe: statistics.goe.statistic,
        spacing_p_goe: statistics.goe.p_value,
        spacing_p_gue: statistics.gue.p_value,
        spacing_p_poisson: statistics.poisson.p_value,
        spacing_ratio: (!ratios.is_empty())
            .then(|| ratios.iter().sum::<f64>() / ratios.len() as f64),
    })
}

/// Semicircle fits of the symmetric part's eigenvalues divided by √N.
fn semicircle_report(values: &[f64], n: usize) -> Option<SemicircleReport> {
    let root = (n as f64).sqrt();
    let x: Vec<f64> = values.iter().map(|v| v / root).collect();
    let count = x.len() as f64;
    let m2 = x.iter().map(|v| v * v).sum::<f64>() / count;
    let m4 = x.iter().map(|v| v.powi(4)).sum::<f64>() / count;
    if m2.is_nan() || m2 <= 0.0 {
        return None;
    }
    let single = Semicircle { sigma2: m2 };
    let one = ks_test(&x, |v| single.cdf(v))?;
    let mixture = TwoComponentSemicircle::from_moments(m2, m4);
    let two = ks_test(&x, |v| mixture.cdf(v))?;
    Some(SemicircleReport {
        semicircle_sigma2: m2,
        semicircle_ks: one.statistic,
        semicircle_ks_p: one.p_value,
        semicircle2_sigma2_narrow: mixture.sigma2_narrow,
        semicircle2_sigma2_wide: mixture.sigma2_wide,
        semicircle2_ks_p: two.p_value,
    })
}
