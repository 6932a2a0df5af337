//! Randomisation: the ESD of W with its entries shuffled, against the ESD of W.
//!
//! Shuffling destroys every correlation between entries but keeps their distribution, so the
//! shuffled ESD is what W would look like with nothing learned (Martin & Mahoney;
//! WeightWatcher's `randomize`). Eigenvalues of the shuffled matrix beyond the Marchenko-Pastur
//! edge are *correlation traps*: they come from a few unusually large entries, not from
//! structure, and they distort α.
use serde::{Deserialize, Serialize};

/// The comparison of a layer's ESD with the ESD of its shuffled entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Randomization {
    /// Largest eigenvalue of the shuffled matrix (WeightWatcher's `max_rand_eval`).
    pub rand_lambda_max: f64,
    /// Jensen-Shannon distance between the two ESDs (WeightWatcher's `rand_distance`).
    pub rand_distance: f64,
    /// Shuffled eigenvalues above the Marchenko-Pastur edge λ₊: correlation traps.
    pub num_traps: usize,
}

impl Randomization {
    /// Compares the eigenvalues of W and of its shuffle (both ascending, same count), with the
    /// Marchenko-Pastur edge of W's entry variance in the same convention.
    pub fn new(eigenvalues: &[f64], shuffled: &[f64], mp_lambda_plus: Option<f64>) -> Self {
        Self {
            rand_lambda_max: shuffled.iter().copied().fold(0.0, f64::max),
            rand_distance: jensen_shannon_distance(eigenvalues, shuffled),
            num_traps: mp_lambda_plus
                .map_or(0, |edge| shuffled.iter().filter(|&&l| l > edge).count()),
        }
    }
}

/// WeightWatcher's Jensen-Shannon distance between two non-negative vectors read as
/// distributions over their index: with m = (p + q)/2 taken before normalising,
/// √(½ KL(p̂‖m̂) + ½ KL(q̂‖m̂)) in nats, where x̂ = x/Σx. For vectors of equal sum (an ESD and
/// its shuffle: Σλ = ‖W‖²_F either way) it is the textbook distance.
pub fn jensen_shannon_distance(p: &[f64], q: &[f64]) -> f64 {
    let m: Vec<f64> = p.iter().zip(q).map(|(a, b)| (a + b) / 2.0).collect();
    let divergence = (kullback_leibler(p, &m) + kullback_leibler(q, &m)) / 2.0;
    divergence.max(0.0).sqrt()
}

/// KL(x̂‖ŷ) of the normalised vectors, in nats, as scipy.stats.entropy(x, y) computes it.
fn kullback_leibler(x: &[f64], y: &[f64]) -> f64 {
    let (sx, sy) = (x.iter().sum::<f64>(), y.iter().sum::<f64>());
    x.iter()
        .zip(y)
        .map(|(a, b)| (a / sx, b / sy))
        .filter(|&(a, _)| a > 0.0)
        .map(|(a, b)| a * (a / b).ln())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_weightwatchers_jensen_shannon_distance() {
        // weightwatcher.RMT_Util.jensen_shannon_distance on these vectors (0.7.7)
        let p = [0.1, 0.5, 1.0, 2.0, 4.0];
        let q = [0.2, 0.4, 1.1, 1.5, 3.0];
        assert!((jensen_shannon_distance(&p, &q) - 0.06705500026853047).abs() < 1e-14);
        // Equal sums: scipy.spatial.distance.jensenshannon's textbook value.
        let q2 = [0.1, 0.6, 0.9, 2.1, 3.9];
        let textbook = {
            let m: Vec<f64> = p.iter().zip(&q2).map(|(a, b)| (a + b) / 2.0).collect();
            let kl = |x: &[f64]| {
                x.iter()
                    .zip(&m)
                    .map(|(a, b)| a / 7.6 * (a / b).ln())
                    .sum::<f64>()
            };
            ((kl(&p) + kl(&q2)) / 2.0).sqrt()
        };
        assert!((jensen_shannon_distance(&p, &q2) - textbook).abs() < 1e-14);
        assert_eq!(jensen_shannon_distance(&p, &p), 0.0);
    }

    #[test]
    fn traps_are_shuffled_eigenvalues_beyond_the_edge() {
        let r = Randomization::new(&[1.0, 2.0, 3.0], &[1.0, 1.5, 3.5], Some(3.0));
        assert_eq!((r.num_traps, r.rand_lambda_max), (1, 3.5));
        assert_eq!(Randomization::new(&[1.0], &[1.0], None).num_traps, 0);
    }
}
