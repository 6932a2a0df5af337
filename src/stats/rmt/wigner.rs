//! Wigner's laws: the semicircle of symmetric random matrices (and Favoni, Aarts, Lucini & Park's (2024) two-component
//! generalisation) and the nearest-neighbour spacing surmises (GOE, GUE) beside Poisson.
use serde::Serialize;

use crate::option_names::option_names;
use crate::stats::rmt::quadrature::invert_cdf;
use std::f64::consts::PI;

/// The semicircle of radius 2σ: ρ(x) = √(4σ² − x²)/(2πσ²), the limit of a symmetric N × N
/// matrix with off-diagonal entries of variance σ²/N. Even moments σ^{2k}·Catalan(k).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Semicircle {
    /// σ², the off-diagonal variance times N.
    pub sigma2: f64,
}

impl Semicircle {
    /// Density; zero outside [−2σ, 2σ].
    pub fn density(&self, x: f64) -> f64 {
        let r2 = 4.0 * self.sigma2;
        if x * x >= r2 {
            return 0.0;
        }
        (r2 - x * x).sqrt() / (2.0 * PI * self.sigma2)
    }

    /// CDF ½ + (u√(1−u²) + asin u)/π with u = x/(2σ).
    pub fn cdf(&self, x: f64) -> f64 {
        let u = (x / (2.0 * self.sigma2.sqrt())).clamp(-1.0, 1.0);
        0.5 + (u * (1.0 - u * u).sqrt() + u.asin()) / PI
    }

    /// The p-quantile, by Brent's method on the CDF (0 ≤ p ≤ 1).
    pub fn quantile(&self, p: f64) -> f64 {
        let radius = 2.0 * self.sigma2.sqrt();
        invert_cdf(|x| self.cdf(x), p, -radius, radius, 1e-14)
    }
}

/// An equal mixture of two semicircles, σ₁ ≤ σ₂: the density of Favoni, Aarts, Lucini & Park (2024) for weights whose
/// eigenvalues move with two different speeds (a hidden layer between teacher and student).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TwoComponentSemicircle {
    /// σ₁² of the narrower component.
    pub sigma2_narrow: f64,
    /// σ₂² of the wider component.
    pub sigma2_wide: f64,
}

impl TwoComponentSemicircle {
    /// The mixture whose second and fourth moments are m₂ and m₄ (each semicircle has
    /// m₄ = 2m₂²): σ₁² + σ₂² = 2m₂, σ₁⁴ + σ₂⁴ = m₄. When m₄ ≤ 2m₂² (no more spread than one
    /// semicircle) both components equal the single semicircle.
    pub fn from_moments(m2: f64, m4: f64) -> Self {
        let sum = 2.0 * m2;
        let product = ((sum * sum - m4) / 2.0).max(0.0);
        let root = (sum * sum / 4.0 - product).max(0.0).sqrt();
        Self {
            sigma2_narrow: (sum / 2.0 - root).max(0.0),
            sigma2_wide: sum / 2.0 + root,
        }
    }

    /// Mixture CDF.
    pub fn cdf(&self, x: f64) -> f64 {
        let component = |sigma2: f64| {
            if sigma2 > 0.0 {
                Semicircle { sigma2 }.cdf(x)
            } else if x >= 0.0 {
                1.0
            } else {
                0.0
            }
        };
        (component(self.sigma2_narrow) + component(self.sigma2_wide)) / 2.0
    }
}

/// A law of nearest-neighbour spacings s of unfolded levels (mean spacing 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpacingLaw {
    /// Wigner surmise for GOE: P(s) = (πs/2)e^{−πs²/4}.
    Goe,
    /// Wigner surmise for GUE: P(s) = (32/π²)s²e^{−4s²/π}.
    Gue,
    /// Uncorrelated levels: P(s) = e^{−s}.
    Poisson,
}

option_names!(SpacingLaw, "spacing law", { Goe => "goe", Gue => "gue", Poisson => "poisson" });

impl SpacingLaw {
    /// Density P(s), zero for s < 0.
    pub fn density(self, s: f64) -> f64 {
        if s < 0.0 {
            return 0.0;
        }
        match self {
            Self::Goe => PI * s / 2.0 * (-PI * s * s / 4.0).exp(),
            Self::Gue => 32.0 / (PI * PI) * s * s * (-4.0 * s * s / PI).exp(),
            Self::Poisson => (-s).exp(),
        }
    }

    /// CDF; for GUE ∫(32/π²)t²e^{−at²} = erf(√a s) − (2/√π)√a s e^{−as²}, a = 4/π.
    pub fn cdf(self, s: f64) -> f64 {
        if s <= 0.0 {
            return 0.0;
        }
        match self {
            Self::Goe => 1.0 - (-PI * s * s / 4.0).exp(),
            Self::Gue => {
                let t = 2.0 * s / PI.sqrt();
                statrs::function::erf::erf(t) - 2.0 / PI.sqrt() * t * (-t * t).exp()
            }
            Self::Poisson => 1.0 - (-s).exp(),
        }
    }

    /// The p-quantile, by Brent's method on the CDF; 0 for p = 0 and +∞ for p = 1 (the support is
    /// [0, ∞)).
    pub fn quantile(self, p: f64) -> f64 {
        if p <= 0.0 {
            return 0.0;
        }
        if p >= 1.0 {
            return f64::INFINITY;
        }
        invert_cdf(|s| self.cdf(s), p, 0.0, 50.0, 1e-14)
    }

    /// ⟨r̃⟩, the mean ratio of consecutive spacings min/max (Atas et al., PRL 110, 2013): for
    /// the ensembles themselves, not the surmises (Poisson 2 ln 2 − 1).
    pub fn mean_spacing_ratio(self) -> f64 {
        match self {
            Self::Goe => 0.5307,
            Self::Gue => 0.5996,
            Self::Poisson => 2.0 * std::f64::consts::LN_2 - 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::rmt::quadrature::integrate;

    #[test]
    fn surmise_cdfs_match_reference_values_and_densities() {
        // The surmise CDF 1 − exp(−πs²/4) at s = 0.5 and 1.
        assert!((SpacingLaw::Goe.cdf(0.5) - 0.17827504).abs() < 1e-8);
        assert!((SpacingLaw::Goe.cdf(1.0) - 0.54406187).abs() < 1e-8);
        for law in [SpacingLaw::Goe, SpacingLaw::Gue, SpacingLaw::Poisson] {
            for s in [0.3, 1.0, 2.2] {
                let numeric = integrate(|t| law.density(t), 0.0, s, 8);
                // statrs' erf (in the GUE CDF) is good to ~1e-11.
                assert!((law.cdf(s) - numeric).abs() < 1e-10, "{law} at {s}");
            }
            let mass = integrate(|t| law.density(t), 0.0, 40.0, 40);
            let mean = integrate(|t| t * law.density(t), 0.0, 40.0, 40);
            assert!(
                (mass - 1.0).abs() < 1e-12 && (mean - 1.0).abs() < 1e-12,
                "{law}"
            );
        }
        // Quantiles invert the closed-form CDFs: GOE s = √(−4 ln(1−p)/π), Poisson −ln(1−p).
        let p = 0.3;
        assert!(
            (SpacingLaw::Goe.quantile(p) - (-4.0 * (1.0f64 - p).ln() / PI).sqrt()).abs() < 1e-12
        );
        assert!((SpacingLaw::Poisson.quantile(p) + (1.0f64 - p).ln()).abs() < 1e-12);
        assert_eq!(SpacingLaw::Goe.quantile(1.0), f64::INFINITY);
        assert_eq!(SpacingLaw::Poisson.quantile(0.0), 0.0);
        assert!((Semicircle { sigma2: 2.0 }.quantile(0.5)).abs() < 1e-12);
        // E[s²] = 4/π for the GOE surmise.
        let second = integrate(|t| t * t * SpacingLaw::Goe.density(t), 0.0, 40.0, 40);
        assert!((second - 4.0 / PI).abs() < 1e-12);
    }

    #[test]
    fn semicircle_has_catalan_moments() {
        let law = Semicircle { sigma2: 1.0 };
        for (k, catalan) in [(0, 1.0), (2, 1.0), (4, 2.0), (6, 5.0), (8, 14.0)] {
            let moment = integrate(
                |theta: f64| {
                    let x = 2.0 * theta.sin();
                    x.powi(k) * law.density(x) * 2.0 * theta.cos()
                },
                -PI / 2.0,
                PI / 2.0,
                32,
            );
            assert!((moment - catalan).abs() < 1e-10, "moment {k}: {moment}");
        }
        assert!((law.cdf(0.0) - 0.5).abs() < 1e-15 && law.cdf(2.0) == 1.0);
    }

    #[test]
    fn two_components_recover_their_moments() {
        let (a, b) = (0.5f64, 2.0f64);
        let mix =
            TwoComponentSemicircle::from_moments((a + b) / 2.0, (2.0 * a * a + 2.0 * b * b) / 2.0);
        assert!((mix.sigma2_narrow - a).abs() < 1e-12 && (mix.sigma2_wide - b).abs() < 1e-12);
        let single = TwoComponentSemicircle::from_moments(1.0, 2.0);
        assert!((single.sigma2_narrow - 1.0).abs() < 1e-12);
        assert!((single.cdf(0.7) - Semicircle { sigma2: 1.0 }.cdf(0.7)).abs() < 1e-12);
    }
}
