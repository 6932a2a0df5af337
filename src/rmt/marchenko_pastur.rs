//! The Marchenko-Pastur law for X = WᵀW/N, W of shape N × M with i.i.d. entries of variance σ².
//!
//! With Q = N/M ≥ 1 and γ = 1/Q: edges λ± = σ²(1 ± √γ)², density
//! ρ(x) = √((λ₊−x)(x−λ₋)) / (2πσ²γx) on [λ₋, λ₊] (no atom at 0 since Q ≥ 1).
use crate::error::{Error, Result};

/// Marchenko-Pastur law with aspect ratio Q = N/M ≥ 1 and entry variance σ².
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarchenkoPastur {
    q: f64,
    sigma2: f64,
}

impl MarchenkoPastur {
    /// The law for Q ≥ 1 and σ² > 0 (both finite).
    pub fn new(q: f64, sigma2: f64) -> Result<Self> {
        if !(q.is_finite() && q >= 1.0) {
            return Err(Error::InvalidOption(format!(
                "Marchenko-Pastur needs Q ≥ 1, got {q}"
            )));
        }
        if !(sigma2.is_finite() && sigma2 > 0.0) {
            return Err(Error::InvalidOption(format!(
                "Marchenko-Pastur needs σ² > 0, got {sigma2}"
            )));
        }
        Ok(Self { q, sigma2 })
    }

    /// γ = M/N = 1/Q.
    pub fn gamma(&self) -> f64 {
        1.0 / self.q
    }

    /// Bulk edges (λ₋, λ₊) = σ²(1 ∓ √γ)².
    pub fn edges(&self) -> (f64, f64) {
        let root = self.gamma().sqrt();
        (
            self.sigma2 * (1.0 - root).powi(2),
            self.sigma2 * (1.0 + root).powi(2),
        )
    }

    /// Density ρ(x); zero outside the bulk.
    pub fn density(&self, x: f64) -> f64 {
        let (lo, hi) = self.edges();
        if x <= lo || x >= hi || x <= 0.0 {
            return 0.0;
        }
        ((hi - x) * (x - lo)).sqrt() / (2.0 * std::f64::consts::PI * self.sigma2 * self.gamma() * x)
    }

    /// Cumulative distribution F(x) = ∫ρ, by Gauss-Legendre quadrature after the substitution
    /// x = λ₋ + (λ₊−λ₋)(1 − cos θ)/2, which removes the square-root edges (error < 1e-12).
    pub fn cdf(&self, x: f64) -> f64 {
        let (lo, hi) = self.edges();
        if x <= lo {
            return 0.0;
        }
        if x >= hi {
            return 1.0;
        }
        let half_width = (hi - lo) / 2.0;
        let theta_end = (1.0 - (x - lo) / half_width).clamp(-1.0, 1.0).acos();
        let norm =
            half_width * half_width / (2.0 * std::f64::consts::PI * self.sigma2 * self.gamma());
        let integrand = |theta: f64| {
            let s = theta.sin();
            let point = lo + half_width * (1.0 - theta.cos());
            if point <= 0.0 {
                // γ = 1, θ → 0: sin²θ / x → 4 / (λ₊ − λ₋) · ... limit is 2/half_width
                2.0 / half_width
            } else {
                s * s / point
            }
        };
        (norm * gauss_legendre(integrand, 0.0, theta_end, 16)).clamp(0.0, 1.0)
    }

    /// Raw moments E[λᵏ] for k = 1..=4: σ², σ⁴(1+γ), σ⁶(1+3γ+γ²), σ⁸(1+6γ+6γ²+γ³).
    pub fn moment(&self, k: u32) -> Option<f64> {
        let g = self.gamma();
        let poly = match k {
            1 => 1.0,
            2 => 1.0 + g,
            3 => 1.0 + 3.0 * g + g * g,
            4 => 1.0 + 6.0 * g + 6.0 * g * g + g * g * g,
            _ => return None,
        };
        Some(self.sigma2.powi(k as i32) * poly)
    }
}

/// Composite Gauss-Legendre rule: `panels` panels of 10 nodes each over [a, b].
fn gauss_legendre(f: impl Fn(f64) -> f64, a: f64, b: f64, panels: usize) -> f64 {
    const NODES: [f64; 5] = [
        0.148_874_338_981_631_2,
        0.433_395_394_129_247_2,
        0.679_409_568_299_024_4,
        0.865_063_366_688_984_5,
        0.973_906_528_517_171_7,
    ];
    const WEIGHTS: [f64; 5] = [
        0.295_524_224_714_752_9,
        0.269_266_719_309_996_4,
        0.219_086_362_515_982,
        0.149_451_349_150_580_6,
        0.066_671_344_308_688_1,
    ];
    let width = (b - a) / panels as f64;
    (0..panels)
        .map(|p| {
            let mid = a + (p as f64 + 0.5) * width;
            let half = width / 2.0;
            NODES
                .iter()
                .zip(WEIGHTS)
                .map(|(&node, weight)| weight * (f(mid - half * node) + f(mid + half * node)))
                .sum::<f64>()
                * half
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_and_moments_match_closed_forms() {
        let mp = MarchenkoPastur::new(2.0, 1.0).unwrap();
        let (lo, hi) = mp.edges();
        assert!((lo - (1.0 - 0.5f64.sqrt()).powi(2)).abs() < 1e-15);
        assert!((hi - (1.0 + 0.5f64.sqrt()).powi(2)).abs() < 1e-15);
        let expected = [1.0, 1.5, 2.75, 5.625];
        for (k, want) in (1..=4).zip(expected) {
            assert!((mp.moment(k).unwrap() - want).abs() < 1e-12, "moment {k}");
        }
    }

    #[test]
    fn density_integrates_to_its_moments() {
        for (q, sigma2) in [(1.0, 1.0), (2.0, 1.0), (4.0, 0.3), (8.0, 2.0)] {
            let mp = MarchenkoPastur::new(q, sigma2).unwrap();
            let (lo, hi) = mp.edges();
            assert!(
                (mp.cdf(hi - 1e-15) - 1.0).abs() < 1e-9,
                "total mass at Q={q}"
            );
            // First and second moments by quadrature of x·ρ(x) with the same substitution.
            let half = (hi - lo) / 2.0;
            let moment = |k: i32| {
                gauss_legendre(
                    |t: f64| {
                        let x = lo + half * (1.0 - t.cos());
                        x.powi(k) * mp.density(x) * half * t.sin()
                    },
                    0.0,
                    std::f64::consts::PI,
                    64,
                )
            };
            assert!((moment(1) - mp.moment(1).unwrap()).abs() < 1e-6 * mp.moment(1).unwrap());
            assert!((moment(2) - mp.moment(2).unwrap()).abs() < 1e-6 * mp.moment(2).unwrap());
        }
    }

    #[test]
    fn cdf_is_monotone_and_matches_the_density() {
        let mp = MarchenkoPastur::new(3.0, 0.5).unwrap();
        let (lo, hi) = mp.edges();
        let mut previous = 0.0;
        for i in 1..100 {
            let x = lo + (hi - lo) * i as f64 / 100.0;
            let f = mp.cdf(x);
            assert!(f >= previous);
            let h = 1e-6 * (hi - lo);
            let numeric = (mp.cdf(x + h) - mp.cdf(x - h)) / (2.0 * h);
            assert!(
                (numeric - mp.density(x)).abs() < 1e-4 * mp.density(x).max(1e-3),
                "x={x}"
            );
            previous = f;
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(MarchenkoPastur::new(0.5, 1.0).is_err());
        assert!(MarchenkoPastur::new(2.0, 0.0).is_err());
        assert!(MarchenkoPastur::new(f64::NAN, 1.0).is_err());
    }
}
