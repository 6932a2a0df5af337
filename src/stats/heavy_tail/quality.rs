//! Quality metrics derived from the power-law fit, and the training-quality label.
use serde::{Deserialize, Serialize};

use super::power_law::PowerLawFit;

/// α below this: over-trained or over-correlated (Martin & Mahoney; WeightWatcher).
pub const OVER_TRAINED_ALPHA: f64 = 2.0;
/// α above this: under-trained (Martin & Mahoney; WeightWatcher).
pub const UNDER_TRAINED_ALPHA: f64 = 6.0;

/// The label of a layer: by its α alone (WeightWatcher's `warning`), or by α and the RMT
/// suite together (`quality`), which calls a spectrum that cannot be told from noise
/// `random-like` whatever α a fit of its tail gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QualityLabel {
    /// No Tracy-Widom spike and a Marchenko-Pastur bulk: no learned structure to label.
    RandomLike,
    /// 2 ≤ α ≤ 6.
    WellTrained,
    /// α < 2.
    OverTrained,
    /// α > 6.
    UnderTrained,
    /// No power law could be fitted: no α, and nothing averaged into a summary.
    FitFailed,
}

impl std::fmt::Display for QualityLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::RandomLike => "random-like",
            Self::WellTrained => "well-trained",
            Self::OverTrained => "over-trained",
            Self::UnderTrained => "under-trained",
            Self::FitFailed => "fit-failed",
        })
    }
}

impl QualityLabel {
    /// The label from both readings: [`QualityLabel::RandomLike`] when `is_noise` (the RMT
    /// suite's verdict, `None` when it could not judge), else [`QualityLabel::from_alpha`].
    /// The α ranges of Martin & Mahoney (2021) describe trained correlations; a spectrum that
    /// is Marchenko-Pastur noise up to the Tracy-Widom edge has none, and a tail fitted to its
    /// bulk says nothing about training.
    pub fn of(fit: Option<&PowerLawFit>, is_noise: Option<bool>) -> Self {
        if is_noise == Some(true) {
            Self::RandomLike
        } else {
            Self::from_alpha(fit)
        }
    }

    /// The label for a fit by α alone, or [`QualityLabel::FitFailed`] when there is none.
    pub fn from_alpha(fit: Option<&PowerLawFit>) -> Self {
        match fit.map(|f| f.alpha) {
            None => Self::FitFailed,
            Some(alpha) if alpha < OVER_TRAINED_ALPHA => Self::OverTrained,
            Some(alpha) if alpha > UNDER_TRAINED_ALPHA => Self::UnderTrained,
            Some(_) => Self::WellTrained,
        }
    }
}

/// Metrics that need α: WeightWatcher's `alpha_weighted` and `log_alpha_norm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlphaMetrics {
    /// α̂ = α · log₁₀ λmax.
    pub alpha_weighted: f64,
    /// log₁₀ Σ λᵢ^α, the Schatten-α norm to the power α.
    pub log_alpha_norm: f64,
}

impl AlphaMetrics {
    /// From the fitted α and every eigenvalue of the layer.
    pub fn new(alpha: f64, eigenvalues: &[f64]) -> Self {
        let lambda_max = eigenvalues.iter().copied().fold(0.0, f64::max);
        Self {
            alpha_weighted: alpha * lambda_max.log10(),
            log_alpha_norm: eigenvalues
                .iter()
                .map(|l| l.powf(alpha))
                .sum::<f64>()
                .log10(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::heavy_tail::power_law::FitMethod;

    fn fit_with(alpha: f64) -> PowerLawFit {
        PowerLawFit {
            alpha,
            xmin: 1.0,
            xmax: 2.0,
            ks_distance: 0.1,
            sigma: 0.1,
            num_pl_spikes: 10,
            fit_method: FitMethod::Standard,
            num_fingers: 0,
            raw_alpha: None,
            farms_groups: None,
        }
    }

    #[test]
    fn labels_follow_the_thresholds() {
        assert_eq!(QualityLabel::from_alpha(None), QualityLabel::FitFailed);
        assert_eq!(
            QualityLabel::from_alpha(Some(&fit_with(1.9))),
            QualityLabel::OverTrained
        );
        assert_eq!(
            QualityLabel::from_alpha(Some(&fit_with(2.0))),
            QualityLabel::WellTrained
        );
        assert_eq!(
            QualityLabel::from_alpha(Some(&fit_with(6.5))),
            QualityLabel::UnderTrained
        );
        let fit = fit_with(3.0);
        assert_eq!(
            QualityLabel::of(Some(&fit), Some(true)),
            QualityLabel::RandomLike
        );
        assert_eq!(
            QualityLabel::of(Some(&fit), Some(false)),
            QualityLabel::WellTrained
        );
        assert_eq!(QualityLabel::of(None, None), QualityLabel::FitFailed);
    }

    #[test]
    fn alpha_metrics_by_hand() {
        let m = AlphaMetrics::new(2.0, &[1.0, 10.0, 0.0]);
        assert!((m.alpha_weighted - 2.0).abs() < 1e-15);
        assert!((m.log_alpha_norm - 101f64.log10()).abs() < 1e-15);
    }
}
