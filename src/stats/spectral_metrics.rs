//! Scale and shape metrics of one layer's ESD: norms, ranks, entropy, conditioning.
//!
//! Names follow WeightWatcher's columns where it has the same quantity (`norm` = Σλ = ‖W‖²_F,
//! `spectral_norm` = λmax, `stable_rank`, `entropy`); values are in whichever ESD convention the
//! eigenvalues were given in ([`crate::stats::esd`]), except the scale-free ones.
use serde::{Deserialize, Serialize};

use crate::spectrum::Spectrum;
use crate::stats::esd::EsdScale;

/// WeightWatcher's `weak_rank_loss` tolerance: eigenvalues below it, in its ESD scale.
pub const WEAK_RANK_TOLERANCE: f64 = 1e-6;

/// WeightWatcher's `EPSILON`, added to every pᵢ and to the rank in its entropy.
const WEIGHTWATCHER_ENTROPY_EPSILON: f64 = 1e-10;

/// Metrics computed from the eigenvalues of one layer (pooled over slices).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Numerical rank: eigenvalues above λmax·N·ε (the Gram matrix's round-off level); with
    /// `ww_compat`, WeightWatcher's σ > σmax·N·ε on singular values resolved by SVD.
    pub matrix_rank: usize,
    /// Largest singular value, in WeightWatcher's scale (√λmax of its ESD).
    pub sv_max: f64,
    /// WeightWatcher's `sv_min`: the largest of the matrices' smallest singular values (the
    /// smallest singular value for a single matrix), in its scale.
    pub sv_min: f64,
    /// Singular values at numerical zero, summed over the matrices (each against its own σmax,
    /// with the tolerance of `matrix_rank`): WeightWatcher's `rank_loss`.
    pub rank_loss: usize,
    /// Eigenvalues below 1e-6 in WeightWatcher's ESD scale: its `weak_rank_loss`.
    pub weak_rank_loss: usize,
    /// σmax/σmin = √(λmax/λmin); `None` when the layer is numerically rank-deficient.
    pub condition_number: Option<f64>,
    /// Spectral entropy −Σ pᵢ ln pᵢ / ln(rank), pᵢ = λᵢ/Σλ, in [0, 1]; `None` when rank ≤ 1.
    /// With `ww_compat`, WeightWatcher's: 1e-10 added to every pᵢ and to the rank.
    pub entropy: Option<f64>,
}

impl SpectralMetrics {
    /// Metrics of a layer's ESD: `eigenvalues` are the reported ones (any order, all ≥ 0, at
    /// least one > 0), `spectrum` the squared singular values they were scaled from by `scale`,
    /// `n` the larger dimension of the matrices, which sets the rank tolerance. `ww_compat`
    /// takes WeightWatcher's rank and entropy definitions.
    pub fn new(
        eigenvalues: &[f64],
        spectrum: &Spectrum,
        scale: &EsdScale,
        n: usize,
        ww_compat: bool,
    ) -> Option<Self> {
        let lambda_max = eigenvalues
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let lambda_min = eigenvalues.iter().copied().fold(f64::INFINITY, f64::min);
        if !(lambda_max > 0.0 && lambda_max.is_finite()) {
            return None;
        }
        let n_epsilon = n as f64 * f64::EPSILON;
        // The fraction of the largest eigenvalue below which an eigenvalue is numerically zero.
        let zero_level = if ww_compat {
            n_epsilon * n_epsilon
        } else {
            n_epsilon
        };
        let rank = |values: &[f64]| {
            let largest = values.iter().copied().fold(0.0, f64::max);
            values.iter().filter(|&&v| v > largest * zero_level).count()
        };
        let norm: f64 = eigenvalues.iter().sum();
        let matrix_rank = rank(eigenvalues);
        let condition_number = (matrix_rank == eigenvalues.len() && lambda_min > 0.0)
            .then(|| (lambda_max / lambda_min).sqrt());
        let entropy = if ww_compat {
            let rank = matrix_rank as f64 + WEIGHTWATCHER_ENTROPY_EPSILON;
            let h: f64 = eigenvalues
                .iter()
                .map(|&l| l / norm + WEIGHTWATCHER_ENTROPY_EPSILON)
                .map(|p| -p * p.ln())
                .sum();
            Some(h / rank.ln()).filter(|e| e.is_finite())
        } else {
            (matrix_rank > 1).then(|| {
                let h: f64 = eigenvalues
                    .iter()
                    .map(|&l| l / norm)
                    .filter(|&p| p > 0.0)
                    .map(|p| -p * p.ln())
                    .sum();
                h / (matrix_rank as f64).ln()
            })
        };
        let singular_value = |squared: f64| scale.to_weightwatcher(squared).sqrt();
        let matrix_min = |values: &Vec<f64>| values.iter().copied().fold(f64::INFINITY, f64::min);
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
            sv_max: singular_value(
                spectrum
                    .squared_singular_values
                    .iter()
                    .copied()
                    .fold(0.0, f64::max),
            ),
            sv_min: singular_value(
                spectrum
                    .by_matrix
                    .iter()
                    .map(matrix_min)
                    .fold(0.0, f64::max),
            ),
            rank_loss: spectrum
                .by_matrix
                .iter()
                .map(|values| values.len() - rank(values))
                .sum(),
            weak_rank_loss: spectrum
                .squared_singular_values
                .iter()
                .filter(|&&s| scale.to_weightwatcher(s) < WEAK_RANK_TOLERANCE)
                .count(),
            condition_number,
            entropy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metrics of one matrix with these eigenvalues (reported as they are).
    fn metrics(eigenvalues: &[f64], n: usize, ww_compat: bool) -> Option<SpectralMetrics> {
        let mut sorted = eigenvalues.to_vec();
        sorted.sort_by(f64::total_cmp);
        let spectrum = Spectrum {
            squared_singular_values: sorted.clone(),
            by_matrix: vec![sorted],
            entry_variance: 1.0,
        };
        SpectralMetrics::new(eigenvalues, &spectrum, &EsdScale::unscaled(n), n, ww_compat)
    }

    #[test]
    fn flat_spectrum_has_entropy_one_and_full_stable_rank() {
        let m = metrics(&[2.0; 50], 100, false).unwrap();
        assert!((m.entropy.unwrap() - 1.0).abs() < 1e-12);
        assert!((m.stable_rank - 50.0).abs() < 1e-12);
        assert!((m.condition_number.unwrap() - 1.0).abs() < 1e-12);
        assert!((m.log_norm - 100f64.log10()).abs() < 1e-12);
    }

    #[test]
    fn rank_one_has_no_entropy_or_condition_number() {
        let mut evals = vec![0.0; 9];
        evals.push(4.0);
        let m = metrics(&evals, 10, false).unwrap();
        assert_eq!(m.matrix_rank, 1);
        assert_eq!(m.entropy, None);
        assert_eq!(m.condition_number, None);
        assert!((m.stable_rank - 1.0).abs() < 1e-15);
        assert!((m.log_spectral_norm - 4f64.log10()).abs() < 1e-15);
    }

    #[test]
    fn entropy_of_two_levels() {
        // p = (0.25, 0.75): H = −(0.25 ln 0.25 + 0.75 ln 0.75) / ln 2
        let m = metrics(&[1.0, 3.0], 2, false).unwrap();
        let want = -(0.25f64 * 0.25f64.ln() + 0.75 * 0.75f64.ln()) / 2f64.ln();
        assert!((m.entropy.unwrap() - want).abs() < 1e-14);
        assert!((m.condition_number.unwrap() - 3f64.sqrt()).abs() < 1e-14);
    }

    #[test]
    fn all_zero_is_not_a_spectrum() {
        assert!(metrics(&[0.0, 0.0], 2, false).is_none());
        assert!(metrics(&[], 2, false).is_none());
    }

    #[test]
    fn weightwatcher_rank_and_entropy() {
        // σ = 1e-9·σmax: round-off to the Gram rule (λ < λmax·N·ε), a rank to WeightWatcher's
        // (σ > σmax·N·ε); its entropy adds 1e-10 to every pᵢ and to the rank.
        let evals = [1e-18, 1.0, 3.0];
        let ours = metrics(&evals, 3, false).unwrap();
        let theirs = metrics(&evals, 3, true).unwrap();
        assert_eq!((ours.matrix_rank, ours.rank_loss), (2, 1));
        assert_eq!((theirs.matrix_rank, theirs.rank_loss), (3, 0));
        let p: Vec<f64> = evals.iter().map(|l| l / (4.0 + 1e-18) + 1e-10).collect();
        let want = -p.iter().map(|p| p * p.ln()).sum::<f64>() / (3.0f64 + 1e-10).ln();
        assert!((theirs.entropy.unwrap() - want).abs() < 1e-15);
        assert_eq!(theirs.weak_rank_loss, 1);
        assert_eq!((theirs.sv_max, theirs.sv_min), (3f64.sqrt(), 1e-9));
    }
}
