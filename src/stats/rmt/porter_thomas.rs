//! The Porter-Thomas test of eigenvectors: the entries of a random unit vector in ℝᵐ are
//! ≈ N(0, 1/m); vectors that carry learned structure are not (Thamm, Staats & Rosenow (2022), Fig. 2).
use serde::{Deserialize, Serialize};

use crate::stats::rmt::goodness_of_fit::ks_test;

/// Porter-Thomas p-values of a set of vectors in rank order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PorterThomas {
    /// KS p-value of each vector's entries (times √m) against N(0, 1), in the order given
    /// (ascending eigenvalue).
    pub p_values: Vec<f64>,
    /// The p-values averaged over a centred window (truncated at the ends).
    pub windowed: Vec<f64>,
    /// The window size.
    pub window: usize,
    /// Vectors rejected at the 5 % level (about 5 % of them for random vectors).
    pub rejected: usize,
}

/// Tests every vector of `vectors` (each of length m, unit norm) with a centred moving average
/// over `window` neighbours (Thamm, Staats & Rosenow (2022) uses 15).
pub fn porter_thomas(vectors: &[Vec<f64>], window: usize) -> PorterThomas {
    let p_values: Vec<f64> = vectors
        .iter()
        .map(|v| {
            let scale = (v.len() as f64).sqrt();
            let entries: Vec<f64> = v.iter().map(|x| x * scale).collect();
            ks_test(&entries, standard_normal_cdf).map_or(f64::NAN, |t| t.p_value)
        })
        .collect();
    let half = window.max(1) / 2;
    let windowed = (0..p_values.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(p_values.len());
            p_values[lo..hi].iter().sum::<f64>() / (hi - lo) as f64
        })
        .collect();
    PorterThomas {
        rejected: p_values.iter().filter(|&&p| p < 0.05).count(),
        p_values,
        windowed,
        window,
    }
}

/// Φ(x), the standard normal CDF.
pub fn standard_normal_cdf(x: f64) -> f64 {
    0.5 * statrs::function::erf::erfc(-x / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_quantile_vectors_pass_and_localised_ones_fail() {
        let m = 400;
        // Entries at the normal quantiles, normalised: as Gaussian as a vector can be.
        let normal = statrs::distribution::Normal::new(0.0, 1.0).unwrap();
        let mut gaussian: Vec<f64> = (0..m)
            .map(|i| {
                statrs::distribution::ContinuousCDF::inverse_cdf(
                    &normal,
                    (i as f64 + 0.5) / m as f64,
                )
            })
            .collect();
        let norm = gaussian.iter().map(|x| x * x).sum::<f64>().sqrt();
        gaussian.iter_mut().for_each(|x| *x /= norm);
        let mut localised = vec![0.0; m];
        localised[3] = 0.8;
        localised[7] = 0.6;
        let result = porter_thomas(&[gaussian.clone(), localised, gaussian], 3);
        assert!(result.p_values[0] > 0.99 && result.p_values[2] > 0.99);
        assert!(result.p_values[1] < 1e-10);
        assert_eq!(result.rejected, 1);
        assert!(
            (result.windowed[0] - (result.p_values[0] + result.p_values[1]) / 2.0).abs() < 1e-15
        );
    }
}
