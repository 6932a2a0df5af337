//! Scale and shape metrics of one layer's ESD: norms, ranks, entropy, conditioning.
//!
//! Names follow WeightWatcher's columns where it has the same quantity (`norm` = Σλ = ‖W‖²_F,
//! `spectral_norm` = λmax, `stable_rank`, `entropy`); values are in whichever ESD convention the
//! eigenvalues were given in ([`crate::esd`]), except the scale-free ones.
use serde::Serialize;

/// Metrics computed from the eigenvalues of one layer (pooled over slices).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpectralMetrics {
    /// Number of eigenvalues in the ESD.
    pub num_evals: usize,
    /// Smallest eigenvalue.
    pub lambda_min: f64,
    /// Largest eigenvalue λmax.
    pub lambda_max: f64,
    /// Σλ, the squared Frobenius norm ‖W‖²_F in this convention (WeightWatcher's `norm`).
    pub norm: f64,
    /// log₁₀ Σλ.
    pub log_norm: f64,
    /// λmax, the squared spectral norm ‖W‖²₂ (WeightWatcher's `spectral_norm`).
    pub spectral_norm: f64,
    /// log₁₀ λmax.
    pub log_spectral_norm: f64,
    /// ‖W‖²_F / ‖W‖²₂ = Σλ / λmax.
    pub stable_rank: f64,
    /// Numerical rank: eigenvalues above λmax·N·ε (the Gram matrix's round-off level).
    pub matrix_rank: usize,
    /// σmax/σmin = √(λmax/λmin); `None` when the layer is numerically rank-deficient.
    pub condition_number: Option<f64>,
    /// Spectral entropy −Σ pᵢ ln pᵢ / ln(rank), pᵢ = λᵢ/Σλ, in [0, 1]; `None` when rank ≤ 1.
    pub entropy: Option<f64>,
}

impl SpectralMetrics {
    /// Metrics of an ESD given its eigenvalues (any order, all ≥ 0, at least one > 0) and the
    /// larger dimension `n` of the matrices, which sets the rank tolerance.
    pub fn from_eigenvalues(eigenvalues: &[f64], n: usize) -> Option<Self> {
        let lambda_max = eigenvalues
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let lambda_min = eigenvalues.iter().copied().fold(f64::INFINITY, f64::min);
        if !(lambda_max > 0.0 && lambda_max.is_finite()) {
            return None;
        }
        let norm: f64 = eigenvalues.iter().sum();
        let tolerance = lambda_max * n as f64 * f64::EPSILON;
        let matrix_rank = eigenvalues.iter().filter(|&&l| l > tolerance).count();
        let condition_number = (matrix_rank == eigenvalues.len() && lambda_min > 0.0)
            .then(|| (lambda_max / lambda_min).sqrt());
        let entropy = (matrix_rank > 1).then(|| {
            let h: f64 = eigenvalues
                .iter()
                .map(|&l| l / norm)
                .filter(|&p| p > 0.0)
                .map(|p| -p * p.ln())
                .sum();
            h / (matrix_rank as f64).ln()
        });
        Some(Self {
            num_evals: eigenvalues.len(),
            lambda_min,
            lambda_max,
            norm,
            log_norm: norm.log10(),
            spectral_norm: lambda_max,
            log_spectral_norm: lambda_max.log10(),
            stable_rank: norm / lambda_max,
            matrix_rank,
            condition_number,
            entropy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_spectrum_has_entropy_one_and_full_stable_rank() {
        let m = SpectralMetrics::from_eigenvalues(&[2.0; 50], 100).unwrap();
        assert!((m.entropy.unwrap() - 1.0).abs() < 1e-12);
        assert!((m.stable_rank - 50.0).abs() < 1e-12);
        assert!((m.condition_number.unwrap() - 1.0).abs() < 1e-12);
        assert!((m.log_norm - 100f64.log10()).abs() < 1e-12);
    }

    #[test]
    fn rank_one_has_no_entropy_or_condition_number() {
        let mut evals = vec![0.0; 9];
        evals.push(4.0);
        let m = SpectralMetrics::from_eigenvalues(&evals, 10).unwrap();
        assert_eq!(m.matrix_rank, 1);
        assert_eq!(m.entropy, None);
        assert_eq!(m.condition_number, None);
        assert!((m.stable_rank - 1.0).abs() < 1e-15);
        assert!((m.log_spectral_norm - 4f64.log10()).abs() < 1e-15);
    }

    #[test]
    fn entropy_of_two_levels() {
        // p = (0.25, 0.75): H = −(0.25 ln 0.25 + 0.75 ln 0.75) / ln 2
        let m = SpectralMetrics::from_eigenvalues(&[1.0, 3.0], 2).unwrap();
        let want = -(0.25f64 * 0.25f64.ln() + 0.75 * 0.75f64.ln()) / 2f64.ln();
        assert!((m.entropy.unwrap() - want).abs() < 1e-14);
        assert!((m.condition_number.unwrap() - 3f64.sqrt()).abs() < 1e-14);
    }

    #[test]
    fn all_zero_is_not_a_spectrum() {
        assert!(SpectralMetrics::from_eigenvalues(&[0.0, 0.0], 2).is_none());
        assert!(SpectralMetrics::from_eigenvalues(&[], 2).is_none());
    }
}
