//! The Marchenko-Pastur law for X = WᵀW/N, W of shape N × M with i.i.d. entries of variance σ².
//!
//! With Q = N/M and γ = 1/Q: edges λ± = σ²(1 ± √γ)², density
//! ρ(x) = √((λ₊−x)(x−λ₋)) / (2πσ²γx) on [λ₋, λ₊]; when Q < 1 (more columns than rows, X of
//! rank N < M) an atom of mass 1 − Q at 0 besides: a Gauss-Newton matrix's zero eigenvalues.
use crate::error::{Error, Result};
use crate::stats::rmt::quadrature::invert_cdf;

/// Marchenko-Pastur law with aspect ratio Q = N/M > 0 and entry variance σ².
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarchenkoPastur {
    q: f64,
    sigma2: f64,
}

impl MarchenkoPastur {
    /// The law for Q > 0 and σ² > 0 (both finite).
    pub fn new(q: f64, sigma2: f64) -> Result<Self> {
        if !(q.is_finite() && q > 0.0) {
            return Err(Error::InvalidOption(format!(
                "Marchenko-Pastur needs Q > 0, got {q}"
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

    /// The mass of the atom at 0: 1 − Q when Q < 1, else none.
    pub fn atom(&self) -> f64 {
        (1.0 - self.q).max(0.0)
    }

    /// Density ρ(x) of the continuous part; zero outside the bulk.
    pub fn density(&self, x: f64) -> f64 {
        let (lo, hi) = self.edges();
        if x <= lo || x >= hi || x <= 0.0 {
            return 0.0;
        }
        ((hi - x) * (x - lo)).sqrt() / (2.0 * std::f64::consts::PI * self.sigma2 * self.gamma() * x)
    }

    /// Cumulative distribution F(x) = H(x)/(2πσ²γ), in closed form ([`bulk_integral`]), plus
    /// the atom from 0 on.
    pub fn cdf(&self, x: f64) -> f64 {
        let (lo, hi) = self.edges();
        let atom = if x >= 0.0 { self.atom() } else { 0.0 };
        (atom
            + bulk_integral(lo, hi, x) / (2.0 * std::f64::consts::PI * self.sigma2 * self.gamma()))
        .clamp(0.0, 1.0)
    }

    /// The p-quantile, by Brent's method on the CDF to 1e-14 relative.
    pub fn quantile(&self, p: f64) -> Result<f64> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::InvalidOption(format!(
                "a quantile needs 0 ≤ p ≤ 1, got {p}"
            )));
        }
        if p <= self.atom() {
            return Ok(0.0);
        }
        let (lo, hi) = self.edges();
        Ok(invert_cdf(|x| self.cdf(x), p, lo, hi, 1e-14))
    }

    /// Aspect ratio Q = N/M.
    pub fn q(&self) -> f64 {
        self.q
    }

    /// Entry variance σ².
    pub fn sigma2(&self) -> f64 {
        self.sigma2
    }

    /// Raw moments E\[λᵏ\] (the atom included) for k = 1..=4: σ², σ⁴(1+γ), σ⁶(1+3γ+γ²), σ⁸(1+6γ+6γ²+γ³).
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

/// statrs' traits, so its tests and generic code (e.g. `inverse_cdf`) apply to the law.
impl statrs::statistics::Min<f64> for MarchenkoPastur {
    fn min(&self) -> f64 {
        if self.atom() > 0.0 {
            0.0
        } else {
            self.edges().0
        }
    }
}

impl statrs::statistics::Max<f64> for MarchenkoPastur {
    fn max(&self) -> f64 {
        self.edges().1
    }
}

impl statrs::distribution::ContinuousCDF<f64, f64> for MarchenkoPastur {
    fn cdf(&self, x: f64) -> f64 {
        MarchenkoPastur::cdf(self, x)
    }

    fn inverse_cdf(&self, p: f64) -> f64 {
        self.quantile(p).unwrap_or(f64::NAN)
    }
}

impl statrs::distribution::Continuous<f64, f64> for MarchenkoPastur {
    fn pdf(&self, x: f64) -> f64 {
        self.density(x)
    }

    fn ln_pdf(&self, x: f64) -> f64 {
        self.density(x).ln()
    }
}

/// H(x) = ∫_a^x √((b−t)(t−a))/t dt for 0 ≤ a < b, clamped to [a, b]: the unnormalised
/// Marchenko-Pastur CDF with free edges (H(b) = π(√b − √a)²/2). With R = √((b−t)(t−a)),
/// H = R + (a+b)/2·(asin u + π/2) − √(ab)·(asin v + π/2), u = (2x−a−b)/(b−a),
/// v = ((a+b)x − 2ab)/(x(b−a)); the arcsines are taken as atan2 with √(1−u²) = 2R/(b−a) and
/// √(1−v²) = 2√(ab)R/(x(b−a)), which keeps full precision at the edges.
pub fn bulk_integral(a: f64, b: f64, x: f64) -> f64 {
    use std::f64::consts::FRAC_PI_2;
    if x <= a {
        return 0.0;
    }
    let x = x.min(b);
    let r = ((b - x) * (x - a)).max(0.0).sqrt();
    let root_ab = (a * b).sqrt();
    let h = r + (a + b) / 2.0 * ((2.0 * x - a - b).atan2(2.0 * r) + FRAC_PI_2)
        - root_ab * (((a + b) * x - 2.0 * a * b).atan2(2.0 * root_ab * r) + FRAC_PI_2);
    h.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::rmt::quadrature::integrate;

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
        // Q < 1 too: its atom at 0 adds mass but no moment.
        for (q, sigma2) in [
            (1.0, 1.0),
            (2.0, 1.0),
            (4.0, 0.3),
            (8.0, 2.0),
            (0.5, 1.0),
            (0.1, 2.5),
        ] {
            let mp = MarchenkoPastur::new(q, sigma2).unwrap();
            let (lo, hi) = mp.edges();
            assert!(
                (mp.cdf(hi - 1e-15) - 1.0).abs() < 1e-9,
                "total mass at Q={q}"
            );
            // First and second moments by quadrature of x·ρ(x) with the same substitution.
            let half = (hi - lo) / 2.0;
            let moment = |k: i32| {
                integrate(
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
    fn closed_form_cdf_equals_quadrature_of_the_density() {
        for (q, sigma2) in [(1.0, 1.0), (1.5, 0.7), (8.0, 2.0)] {
            let mp = MarchenkoPastur::new(q, sigma2).unwrap();
            let (lo, hi) = mp.edges();
            for t in [0.01, 0.3, 0.5, 0.9, 0.999] {
                let x = lo + t * (hi - lo);
                // θ-substitution removes the square-root edges.
                let half = (hi - lo) / 2.0;
                let theta_end = (1.0 - (x - lo) / half).acos();
                let numeric = integrate(
                    |theta: f64| {
                        let point = lo + half * (1.0 - theta.cos());
                        mp.density(point) * half * theta.sin()
                    },
                    0.0,
                    theta_end,
                    64,
                );
                assert!((mp.cdf(x) - numeric).abs() < 1e-10, "Q={q} x={x}");
                let back = mp.quantile(mp.cdf(x)).unwrap();
                assert!((back - x).abs() < 1e-9 * hi, "quantile Q={q}");
            }
        }
    }

    /// Q < 1: the atom 1 − Q at 0 and the continuous part's mass Q make 1 (the moments:
    /// `density_integrates_to_its_moments`), and the quantile steps over the atom.
    #[test]
    fn an_atom_at_zero_below_q_one() {
        for (q, sigma2) in [(0.5, 1.0), (0.1, 2.5)] {
            let mp = MarchenkoPastur::new(q, sigma2).unwrap();
            let (lo, hi) = mp.edges();
            assert!((mp.atom() - (1.0 - q)).abs() < 1e-15);
            assert_eq!(mp.cdf(-1e-12), 0.0);
            assert!((mp.cdf(lo / 2.0) - (1.0 - q)).abs() < 1e-15);
            assert!((mp.cdf(hi) - 1.0).abs() < 1e-9, "total mass at Q={q}");
            assert_eq!(mp.quantile(0.5 * (1.0 - q)).unwrap(), 0.0);
            let x = lo + 0.3 * (hi - lo);
            assert!((mp.quantile(mp.cdf(x)).unwrap() - x).abs() < 1e-9 * hi);
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(MarchenkoPastur::new(0.0, 1.0).is_err());
        assert!(MarchenkoPastur::new(2.0, 0.0).is_err());
        assert!(MarchenkoPastur::new(f64::NAN, 1.0).is_err());
    }
}
