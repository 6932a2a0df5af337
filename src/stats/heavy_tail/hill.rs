//! The Hill estimator of the tail index, a fit-free second opinion on α.
//!
//! With the eigenvalues in descending order X₍₁₎ ≥ X₍₂₎ ≥ …, the Hill estimate from the k largest
//! is ξ̂(k) = [k⁻¹ Σ_{i≤k} ln(X₍ᵢ₎/X₍ₖ₊₁₎)]⁻¹, the exponent of the survival function
//! P(λ > x) ∝ x^{−ξ}; the density exponent comparable with the power-law fit's α is 1 + ξ̂.
//! A trustworthy estimate shows as a plateau of ξ̂(k) over a range of k: here, the window of
//! k (width max(5, n/20), k ≤ n/2) where ξ̂ varies least relative to its mean.
use serde::{Deserialize, Serialize};

/// The Hill plateau.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HillEstimate {
    /// 1 + mean ξ̂(k) over the plateau: comparable with the power-law fit's α.
    pub hill_alpha: f64,
    /// Smallest k of the plateau.
    pub hill_k_min: usize,
    /// Largest k of the plateau.
    pub hill_k_max: usize,
    /// Coefficient of variation of ξ̂(k) over the plateau (how flat it is).
    pub hill_plateau_cv: f64,
}

/// ξ̂(k) for k = 1..n−1 from positive values (any order); element k−1 is ξ̂(k).
pub fn hill_curve(values: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = values
        .iter()
        .copied()
        .filter(|&x| x > 0.0 && x.is_finite())
        .collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let logs: Vec<f64> = sorted.iter().map(|x| x.ln()).collect();
    let mut prefix = 0.0;
    (1..logs.len())
        .map(|k| {
            prefix += logs[k - 1];
            let mean_excess = prefix / k as f64 - logs[k];
            if mean_excess > 0.0 {
                1.0 / mean_excess
            } else {
                f64::INFINITY
            }
        })
        .collect()
}

/// The Hill plateau of `values`; `None` for fewer than 20 positive values or no finite window.
pub fn hill_plateau(values: &[f64]) -> Option<HillEstimate> {
    let curve = hill_curve(values);
    let n = curve.len() + 1;
    if n < 20 {
        return None;
    }
    let width = (n / 20).max(5);
    let last_start = (n / 2).saturating_sub(width);
    (0..=last_start)
        .filter_map(|start| {
            let window = &curve[start..start + width];
            if window.iter().any(|x| !x.is_finite()) {
                return None;
            }
            let mean = window.iter().sum::<f64>() / width as f64;
            let variance = window.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / width as f64;
            Some((start, mean, variance.sqrt() / mean))
        })
        .min_by(|a, b| a.2.total_cmp(&b.2))
        .map(|(start, mean, cv)| HillEstimate {
            hill_alpha: 1.0 + mean,
            hill_k_min: start + 1,
            hill_k_max: start + width,
            hill_plateau_cv: cv,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_pareto_quantiles_give_their_exponent() {
        // Survival exponent ξ = α − 1 for a density ∝ x^{−α}.
        for alpha in [2.0, 3.5, 5.0] {
            let n = 4000;
            let values: Vec<f64> = (0..n)
                .map(|k| (1.0 - (k as f64 + 0.5) / n as f64).powf(-1.0 / (alpha - 1.0)))
                .collect();
            let estimate = hill_plateau(&values).unwrap();
            assert!(
                (estimate.hill_alpha - alpha).abs() < 0.05 * alpha,
                "α = {alpha}: {estimate:?}"
            );
            assert!(estimate.hill_k_max <= n / 2);
        }
    }

    #[test]
    fn the_curve_matches_the_formula_by_hand() {
        // X = (8, 4, 2, 1): ξ̂(2) = 1 / ((ln 8 + ln 4)/2 − ln 2) = 1 / (1.5 ln 2)
        let curve = hill_curve(&[1.0, 2.0, 4.0, 8.0]);
        assert!((curve[1] - 1.0 / (1.5 * 2f64.ln())).abs() < 1e-14);
        assert!(hill_plateau(&[1.0, 2.0]).is_none());
    }
}
