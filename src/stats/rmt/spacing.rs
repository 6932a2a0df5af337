//! Nearest-neighbour level spacings of an unfolded spectrum against the Wigner surmise, and the
//! spacing ratio, which needs no unfolding.
use serde::Serialize;

use crate::stats::rmt::goodness_of_fit::{ks_test, KsTest};
use crate::stats::rmt::wigner::SpacingLaw;

/// Spacing statistics of one spectrum.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpacingStatistics {
    /// Number of spacings tested.
    pub count: usize,
    /// KS test of the spacings (scaled to unit mean) against the GOE surmise.
    pub goe: KsTest,
    /// Against the GUE surmise.
    pub gue: KsTest,
    /// Against Poisson (uncorrelated levels).
    pub poisson: KsTest,
}

/// Spacings sᵢ = ξᵢ₊₁ − ξᵢ of unfolded levels, divided by their mean so that ⟨s⟩ = 1 exactly.
pub fn unit_mean_spacings(unfolded: &[f64]) -> Vec<f64> {
    let raw: Vec<f64> = unfolded.windows(2).map(|p| p[1] - p[0]).collect();
    let mean = raw.iter().sum::<f64>() / raw.len().max(1) as f64;
    if mean > 0.0 {
        raw.iter().map(|s| s / mean).collect()
    } else {
        raw
    }
}

/// KS tests of unit-mean spacings (pooled over spectra if need be) against the three laws;
/// `None` with fewer than 10.
pub fn spacing_statistics(spacings: &[f64]) -> Option<SpacingStatistics> {
    if spacings.len() < 10 {
        return None;
    }
    let test = |law: SpacingLaw| ks_test(spacings, |s| law.cdf(s));
    Some(SpacingStatistics {
        count: spacings.len(),
        goe: test(SpacingLaw::Goe)?,
        gue: test(SpacingLaw::Gue)?,
        poisson: test(SpacingLaw::Poisson)?,
    })
}

/// ⟨r̃⟩ = mean of min(sᵢ, sᵢ₊₁)/max(sᵢ, sᵢ₊₁) over consecutive spacings of ascending `levels`
/// (Oganesyan & Huse; Atas et al.): density-independent, so no unfolding. Pairs of zero
/// spacings (degenerate levels) are skipped. `None` with fewer than 3 levels.
pub fn mean_spacing_ratio(levels: &[f64]) -> Option<f64> {
    let spacings: Vec<f64> = levels.windows(2).map(|p| p[1] - p[0]).collect();
    let ratios: Vec<f64> = spacings
        .windows(2)
        .filter(|p| p[0].max(p[1]) > 0.0)
        .map(|p| p[0].min(p[1]) / p[0].max(p[1]))
        .collect();
    (!ratios.is_empty()).then(|| ratios.iter().sum::<f64>() / ratios.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Levels whose spacings are the quantiles of `law`: the empirical law is the law itself.
    fn levels_with_spacings(law: SpacingLaw, count: usize) -> Vec<f64> {
        let mut level = 0.0;
        let mut levels = vec![level];
        for i in 0..count {
            let p = (i as f64 + 0.5) / count as f64;
            let (mut lo, mut hi) = (0.0, 20.0);
            for _ in 0..100 {
                let mid = (lo + hi) / 2.0;
                if law.cdf(mid) < p {
                    lo = mid
                } else {
                    hi = mid
                }
            }
            level += lo;
            levels.push(level);
        }
        levels
    }

    #[test]
    fn each_law_accepts_its_own_spacings_and_rejects_the_other() {
        let of = |law| spacing_statistics(&unit_mean_spacings(&levels_with_spacings(law, 2000)));
        let goe = of(SpacingLaw::Goe).unwrap();
        assert!(goe.goe.p_value > 0.99 && goe.poisson.p_value < 1e-10);
        let poisson = of(SpacingLaw::Poisson).unwrap();
        assert!(poisson.poisson.p_value > 0.99 && poisson.goe.p_value < 1e-10);
        assert!(spacing_statistics(&[1.0, 1.0]).is_none());
    }

    #[test]
    fn spacing_ratio_of_a_lattice_and_of_alternating_spacings() {
        let lattice: Vec<f64> = (0..100).map(f64::from).collect();
        assert!((mean_spacing_ratio(&lattice).unwrap() - 1.0).abs() < 1e-15);
        let mut level = 0.0;
        let alternating: Vec<f64> = (0..101)
            .map(|i| {
                level += if i % 2 == 0 { 1.0 } else { 3.0 };
                level
            })
            .collect();
        assert!((mean_spacing_ratio(&alternating).unwrap() - 1.0 / 3.0).abs() < 1e-15);
        assert!(mean_spacing_ratio(&[1.0, 2.0]).is_none());
    }
}
