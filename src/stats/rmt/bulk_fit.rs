//! Fits of the random bulk of a spectrum: what in a weight matrix is noise.
//!
//! Eigenvalues here are in the RMT convention (λ = σᵢ(W)²/N, W of shape N × M, N ≥ M), pooled
//! over the `matrices` slices of a layer that share one shape.
//!
//! - [`noise_edge_fit`]: σ² of the noise from the bulk alone, and the Tracy-Widom test of the
//!   edge — eigenvalues beyond the TW₁ quantile are spikes, the rest is the bulk whose mean gives
//!   σ² (iterated to a fixed point), so a spike does not inflate the noise level it is judged by.
//! - [`modified_fit`]: Thamm, Staats & Rosenow's (2022) modified Marchenko-Pastur law: λ₋ fixed at the smallest
//!   eigenvalue, λ₊ and σ² free; its mass is the fraction of the spectrum that is still random.
use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::stats::rmt::goodness_of_fit::{ks_test, KsTest};
use crate::stats::rmt::marchenko_pastur::{bulk_integral, MarchenkoPastur};
use crate::stats::rmt::tracy_widom::{johnstone_edge, TracyWidom};

/// The noise level and edge test of one layer, RMT convention.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoiseEdgeFit {
    /// σ² of the bulk: the mean of the eigenvalues below the TW threshold.
    pub sigma2: f64,
    /// Marchenko-Pastur edges for that σ².
    pub lambda_minus: f64,
    /// The bare upper edge λ₊ = σ²(1 + √γ)².
    pub lambda_plus: f64,
    /// The edge beyond which an eigenvalue is a spike at the chosen false-positive rate:
    /// σ²(μ + s·q)/N with Johnstone's μ, s and q the TW₁ quantile at 1 − level/matrices.
    pub threshold: f64,
    /// Eigenvalues above the threshold.
    pub num_spikes: usize,
    /// The largest eigenvalue centred and scaled, (Nλmax/σ² − μ)/s: TW₁-distributed for noise.
    pub statistic: f64,
    /// P-value of λmax being the noise edge, Bonferroni-corrected over the slices.
    pub p_value: f64,
    /// Share of the eigenvalues in the bulk (not spikes).
    pub bulk_fraction: f64,
    /// KS test of the bulk against Marchenko-Pastur(Q, σ²); eigenvalues are strongly
    /// correlated, so for noise D is far below the i.i.d. scale and p is close to 1.
    pub ks: Option<KsTest>,
}

/// The noise fit of `eigenvalues` (ascending, RMT convention) of `matrices` slices of shape
/// n × m, starting from the entries' variance; `level` is the false-positive rate of the spike
/// count for the whole layer. `None` when the spectrum is empty or zero.
pub fn noise_edge_fit(
    eigenvalues: &[f64],
    n: usize,
    m: usize,
    matrices: usize,
    entry_variance: f64,
    level: f64,
) -> Option<NoiseEdgeFit> {
    let q = n as f64 / m as f64;
    let (mu, scale) = johnstone_edge(n, m);
    let quantile = tw1_quantile(1.0 - level / matrices.max(1) as f64)?;
    let threshold_of = |sigma2: f64| sigma2 * (mu + scale * quantile) / n as f64;
    let mut sigma2 = entry_variance;
    let mut kept = eigenvalues.len();
    // The kept set only shrinks, so this reaches a fixed point.
    for _ in 0..100 {
        if !(sigma2 > 0.0 && sigma2.is_finite()) {
            return None;
        }
        let now_kept = eigenvalues.partition_point(|&l| l <= threshold_of(sigma2));
        if now_kept == 0 {
            return None;
        }
        let next = eigenvalues[..now_kept].iter().sum::<f64>() / now_kept as f64;
        let converged = now_kept == kept && (next - sigma2).abs() <= 1e-14 * sigma2;
        kept = now_kept;
        sigma2 = next;
        if converged {
            break;
        }
    }
    let law = MarchenkoPastur::new(q, sigma2).ok()?;
    let (lambda_minus, lambda_plus) = law.edges();
    let threshold = threshold_of(sigma2);
    let kept = eigenvalues.partition_point(|&l| l <= threshold);
    let largest = *eigenvalues.last()?;
    let statistic = (n as f64 * largest / sigma2 - mu) / scale;
    Some(NoiseEdgeFit {
        sigma2,
        lambda_minus,
        lambda_plus,
        threshold,
        num_spikes: eigenvalues.len() - kept,
        statistic,
        p_value: (matrices as f64 * TracyWidom::Beta1.survival(statistic)).min(1.0),
        bulk_fraction: kept as f64 / eigenvalues.len() as f64,
        ks: ks_test(&eigenvalues[..kept], |x| law.cdf(x)),
    })
}

/// TW₁ quantiles, cached: a layer's threshold needs one and they repeat across layers.
fn tw1_quantile(p: f64) -> Option<f64> {
    static CACHE: Mutex<Option<HashMap<u64, f64>>> = Mutex::new(None);
    let mut cache = CACHE.lock().ok()?;
    let map = cache.get_or_insert_with(HashMap::new);
    if let Some(&q) = map.get(&p.to_bits()) {
        return Some(q);
    }
    let q = TracyWidom::Beta1.quantile(p).ok()?;
    map.insert(p.to_bits(), q);
    Some(q)
}

/// Thamm, Staats & Rosenow's (2022) modified Marchenko-Pastur fit, RMT convention.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModifiedFit {
    /// The fitted σ² (sets the density's height).
    pub sigma2: f64,
    /// λ₋, fixed at the smallest eigenvalue.
    pub lambda_minus: f64,
    /// The fitted upper edge.
    pub lambda_plus: f64,
    /// The law's mass: the fraction of the spectrum that follows Marchenko-Pastur.
    pub fraction: f64,
    /// Eigenvalues above λ₊.
    pub num_spikes: usize,
    /// KS test of the eigenvalues in [λ₋, λ₊] against the fitted shape.
    pub ks: Option<KsTest>,
}

/// Fits ρ(x) = √((λ₊−x)(x−λ₋))/(2πσ²γx) on [λ₋, λ₊], λ₋ = min λ, to the empirical CDF by least
/// squares: for each λ₊ the best 1/σ² is linear (capped so the mass stays ≤ 1), and λ₊ is found
/// on a grid over (λ₋, λmax] refined by golden-section search. Beyond λ₊ the model CDF is flat
/// while the empirical one still climbs through the outliers, so with many outliers (≳ 5 %) the
/// fraction comes out a few per cent high. `None` for fewer than 4 distinct eigenvalues.
pub fn modified_fit(eigenvalues: &[f64], q: f64) -> Option<ModifiedFit> {
    let count = eigenvalues.len();
    let (&lo, &hi) = (eigenvalues.first()?, eigenvalues.last()?);
    if count < 4
        || hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater)
        || q.is_nan()
        || q < 1.0
    {
        return None;
    }
    // The empirical CDF at up to FIT_POINTS evenly spaced ranks: as informative as all of them
    // for a smooth two-parameter law, and the fit's cost no longer grows with the layer.
    const FIT_POINTS: usize = 400;
    let ranks: Vec<usize> = if count <= FIT_POINTS {
        (0..count).collect()
    } else {
        (0..FIT_POINTS)
            .map(|k| k * (count - 1) / (FIT_POINTS - 1))
            .collect()
    };
    let points: Vec<f64> = ranks.iter().map(|&i| eigenvalues[i]).collect();
    let empirical: Vec<f64> = ranks
        .iter()
        .map(|&i| (i as f64 + 0.5) / count as f64)
        .collect();
    // Least-squares scale c (= 1/(2πσ²γ)) and error for one upper edge.
    let fit_at = |upper: f64| {
        let shape: Vec<f64> = points
            .iter()
            .map(|&x| bulk_integral(lo, upper, x))
            .collect();
        let numerator: f64 = shape.iter().zip(&empirical).map(|(h, f)| h * f).sum();
        let denominator: f64 = shape.iter().map(|h| h * h).sum();
        let total = bulk_integral(lo, upper, upper);
        let c = (numerator / denominator).min(1.0 / total);
        let error: f64 = shape
            .iter()
            .zip(&empirical)
            .map(|(h, f)| (c * h - f).powi(2))
            .sum();
        (c, error)
    };
    let grid = 100;
    let at = |i: usize| lo + (hi - lo) * (i as f64 / grid as f64).powi(2).max(1e-6);
    let errors: Vec<f64> = (1..=grid).map(|i| fit_at(at(i)).1).collect();
    let best = (1..=grid)
        .min_by(|&a, &b| errors[a - 1].total_cmp(&errors[b - 1]))
        .unwrap_or(grid);
    let (mut a, mut b) = (at(best.saturating_sub(1).max(1)), at((best + 1).min(grid)));
    // Golden-section search: each step keeps one interior point and its error.
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut x1, mut x2) = (b - ratio * (b - a), a + ratio * (b - a));
    let (mut e1, mut e2) = (fit_at(x1).1, fit_at(x2).1);
    for _ in 0..50 {
        if e1 <= e2 {
            (b, x2, e2) = (x2, x1, e1);
            x1 = b - ratio * (b - a);
            e1 = fit_at(x1).1;
        } else {
            (a, x1, e1) = (x1, x2, e2);
            x2 = a + ratio * (b - a);
            e2 = fit_at(x2).1;
        }
    }
    let upper = (a + b) / 2.0;
    let (c, _) = fit_at(upper);
    let total = bulk_integral(lo, upper, upper);
    let inside = eigenvalues.partition_point(|&x| x <= upper);
    Some(ModifiedFit {
        sigma2: q / (2.0 * std::f64::consts::PI * c),
        lambda_minus: lo,
        lambda_plus: upper,
        fraction: c * total,
        num_spikes: count - inside,
        ks: ks_test(&eigenvalues[..inside], |x| {
            bulk_integral(lo, upper, x) / total
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The M quantiles of MP(Q, σ²): a spectrum with exactly the law's shape.
    fn quantile_spectrum(q: f64, sigma2: f64, count: usize) -> Vec<f64> {
        let law = MarchenkoPastur::new(q, sigma2).unwrap();
        (0..count)
            .map(|i| law.quantile((i as f64 + 0.5) / count as f64).unwrap())
            .collect()
    }

    #[test]
    fn noise_fit_recovers_sigma_and_finds_a_planted_spike() {
        let (n, m) = (1024, 256);
        let mut spectrum = quantile_spectrum(4.0, 0.7, m);
        let clean = noise_edge_fit(&spectrum, n, m, 1, 0.7, 0.05).unwrap();
        assert!((clean.sigma2 / 0.7 - 1.0).abs() < 1e-4);
        assert_eq!(clean.num_spikes, 0);
        assert!(clean.p_value > 0.05 && clean.ks.unwrap().p_value > 0.99);
        // A spike at 3 × λ₊ inflates the entries' variance; the fit sees through it.
        let spike = 3.0 * clean.lambda_plus;
        let inflated = 0.7 + (spike - spectrum[m - 1]) / m as f64;
        spectrum[m - 1] = spike;
        let spiked = noise_edge_fit(&spectrum, n, m, 1, inflated, 0.05).unwrap();
        assert_eq!(spiked.num_spikes, 1);
        assert!(spiked.p_value < 1e-12);
        assert!(
            (spiked.sigma2 / 0.7 - 1.0).abs() < 0.01,
            "{}",
            spiked.sigma2
        );
    }

    #[test]
    fn modified_fit_recovers_a_pure_law_and_a_diluted_one() {
        let spectrum = quantile_spectrum(2.0, 1.3, 500);
        let fit = modified_fit(&spectrum, 2.0).unwrap();
        let (_, edge) = MarchenkoPastur::new(2.0, 1.3).unwrap().edges();
        // λ₋ pinned at the smallest eigenvalue (above the true edge) costs a few per cent.
        assert!((fit.lambda_plus / edge - 1.0).abs() < 0.04, "{fit:?}");
        assert!((fit.fraction - 1.0).abs() < 0.02 && (fit.sigma2 / 1.3 - 1.0).abs() < 0.05);
        // A full bulk of 490 and 10 eigenvalues far out: the fit keeps the bulk, reports 98 %.
        let mut diluted = quantile_spectrum(2.0, 1.3, 490);
        diluted.extend((0..10).map(|i| 20.0 + i as f64));
        let fit = modified_fit(&diluted, 2.0).unwrap();
        assert!((fit.fraction - 0.98).abs() < 0.01, "{fit:?}");
        assert!((fit.lambda_plus / edge - 1.0).abs() < 0.04, "{fit:?}");
        assert_eq!(fit.num_spikes, 10);
    }
}
