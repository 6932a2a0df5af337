//! Continuous power-law fit of an ESD's tail, exactly as WeightWatcher 0.7.7 does it.
//!
//! Clauset, Shalizi & Newman (2009) maximum likelihood: for the sorted eigenvalues x₀ ≤ … above
//! a threshold, every xᵢ but the largest is tried as xmin; with n = N − i tail points,
//! αᵢ = 1 + n / Σ_{j≥i} ln(xⱼ/xᵢ) and the KS distance
//! Dᵢ = max_j |1 − (xⱼ/xᵢ)^{1−αᵢ} − j/n| (Dᵢ = 1 when αᵢ ≤ 1); the fit keeps the first argmin
//! of D, with σ = (α − 1)/√n. Tails of fewer than 20 points use WeightWatcher's small-N variant:
//! the bias-corrected α = 1 + (n − 1)/Σ ln(xⱼ/xᵢ) and tails of at least 8 points, falling back
//! to the whole data from its smallest value when no tail is long enough (where WeightWatcher
//! would report α = 1 for identical values, this reports no fit). WeightWatcher 0.7.7's
//! `fit_powerlaw_smallN` picks xmin by J = D − 0.868/√n, but its `WWFit` constructor then
//! re-selects the first minimum of D over every candidate (`np.argmin(self.Ds)`), and that is
//! what it reports: so here too xmin is the first argmin of D in both variants.
//!
//! Each candidate's D is computed exactly, but the scan over a tail stops as soon as it exceeds
//! the best D so far: such a candidate cannot win, and most are discarded within a few points.
use serde::Serialize;

/// Below this many eigenvalues WeightWatcher switches to its small-N estimator.
const SMALL_N_CUTOFF: usize = 20;
/// The small-N estimator's smallest tail.
const SMALL_N_MIN_TAIL: usize = 8;

/// Which estimator produced a fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FitMethod {
    /// Clauset-Shalizi-Newman MLE with xmin by minimal KS distance.
    Standard,
    /// WeightWatcher's bias-corrected small-N variant (fewer than 20 eigenvalues).
    SmallN,
}

/// A power-law fit p(λ) ∝ λ^{−α} for λ ≥ xmin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PowerLawFit {
    /// The exponent α.
    pub alpha: f64,
    /// The lower cut-off of the tail.
    pub xmin: f64,
    /// The largest eigenvalue fitted.
    pub xmax: f64,
    /// KS distance between the tail and the fitted law.
    #[serde(rename = "D")]
    pub ks_distance: f64,
    /// Standard error of α, (α − 1)/√n.
    pub sigma: f64,
    /// Eigenvalues in the tail (≥ xmin): WeightWatcher's `num_pl_spikes`.
    pub num_pl_spikes: usize,
    /// The estimator used.
    pub fit_method: FitMethod,
    /// Top eigenvalues clipped off as "fingers" by [`TailOptions::clip_fingers`].
    pub num_fingers: usize,
    /// α before the fingers were clipped, when clipping was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_alpha: Option<f64>,
}

/// How the top of the ESD is treated before fitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TailOptions {
    /// Drop this many of the largest eigenvalues first (WeightWatcher's integer `xmax`); more
    /// than half of them is a failed fit.
    pub drop_top: usize,
    /// WeightWatcher's `fix_fingers='clip_xmax'`: refit without the top 2…9 eigenvalues and keep
    /// the first fit whose α is more than 1 below the unclipped one (stopping once α ≤ 2).
    pub clip_fingers: bool,
    /// Only tails of at least this many eigenvalues are candidates (0 or 1: no limit, as in
    /// WeightWatcher); guards α against the noise of a handful of top eigenvalues.
    pub min_tail: usize,
    /// WeightWatcher's `fix_fingers='xmin_peak'`: xmin only in [0.95·p, 1.5·p], p the left edge
    /// of the fullest of 100 equal bins of log₁₀λ — the tail starts at the ESD's peak, not in
    /// the fingers. (WeightWatcher 0.7.7 itself fails every fit with it under its default
    /// `pl_package`, and under `pl_package='powerlaw'` passes log₁₀(0.95·p) as the lower bound.)
    pub xmin_peak: bool,
}

/// Clipping at most this many top eigenvalues (exclusive), as WeightWatcher's `max_fingers`.
const MAX_FINGERS: usize = 10;
/// A clipped fit is kept when its α is this much below the unclipped one.
const FINGER_THRESHOLD: f64 = 1.0;
/// Clipping stops once α falls to this.
const FINGER_MIN_ALPHA: f64 = 2.0;

/// [`fit`] with the top of the ESD dropped or its fingers clipped as `options` say.
pub fn fit_tail(eigenvalues: &[f64], threshold: f64, options: TailOptions) -> Option<PowerLawFit> {
    let mut sorted: Vec<f64> = eigenvalues
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    sorted.sort_by(f64::total_cmp);
    if options.drop_top > 0 {
        if options.drop_top > sorted.len() / 2 {
            return None;
        }
        sorted.truncate(sorted.len() - options.drop_top);
    }
    let above: Vec<f64> = sorted.iter().copied().filter(|&x| x > threshold).collect();
    let candidates = Candidates {
        min_tail: options.min_tail,
        xmin_range: if options.xmin_peak {
            let peak = log_esd_peak(&above)?;
            (0.95 * peak, 1.5 * peak)
        } else {
            (f64::NEG_INFINITY, f64::INFINITY)
        },
    };
    if !options.clip_fingers {
        return fit_candidates(&above, threshold, candidates);
    }
    let first = fit_candidates(&above, threshold, candidates)?;
    let mut best = first.clone();
    for clipped in 2..MAX_FINGERS.min(above.len()) {
        let Some(candidate) =
            fit_candidates(&above[..above.len() - clipped], threshold, candidates)
        else {
            break;
        };
        if candidate.alpha + FINGER_THRESHOLD < first.alpha {
            best = PowerLawFit {
                num_fingers: clipped - 1,
                ..candidate
            };
            break;
        }
        if candidate.alpha <= FINGER_MIN_ALPHA {
            break;
        }
    }
    // As WeightWatcher counts them: every eigenvalue above xmin, clipped fingers included.
    best.num_pl_spikes = sorted.iter().filter(|&&x| x >= best.xmin).count();
    best.raw_alpha = Some(first.alpha);
    Some(best)
}

/// Fits the tail of `eigenvalues` (any order) above `threshold`; `None` when fewer than two
/// eigenvalues pass the threshold or no candidate gives α > 1.
pub fn fit(eigenvalues: &[f64], threshold: f64) -> Option<PowerLawFit> {
    fit_candidates(eigenvalues, threshold, Candidates::default())
}

/// Which eigenvalues may serve as xmin.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidates {
    /// Tails of at least this many eigenvalues.
    min_tail: usize,
    /// xmin within this closed interval.
    xmin_range: (f64, f64),
}

impl Default for Candidates {
    fn default() -> Self {
        Self {
            min_tail: 0,
            xmin_range: (f64::NEG_INFINITY, f64::INFINITY),
        }
    }
}

/// The left edge of the fullest of 100 equal-width bins of log₁₀ x (the first one on ties),
/// binned as `numpy.histogram` does; `None` for an empty or non-positive sample.
fn log_esd_peak(values: &[f64]) -> Option<f64> {
    const BINS: usize = 100;
    let logs: Vec<f64> = values.iter().map(|x| x.log10()).collect();
    let (first, last) = logs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &l| {
            (lo.min(l), hi.max(l))
        });
    if !first.is_finite() || !last.is_finite() {
        return None;
    }
    let (first, last) = if first == last {
        (first - 0.5, last + 0.5)
    } else {
        (first, last)
    };
    let step = (last - first) / BINS as f64;
    let edge = |i: usize| {
        if i == BINS {
            last
        } else {
            first + i as f64 * step
        }
    };
    let mut counts = [0usize; BINS];
    for &l in &logs {
        let mut index = (((l - first) / (last - first)) * BINS as f64) as usize;
        index = index.min(BINS - 1);
        if l < edge(index) {
            index -= 1;
        } else if index != BINS - 1 && l >= edge(index + 1) {
            index += 1;
        }
        counts[index] += 1;
    }
    let fullest = (0..BINS).fold(0, |best, i| if counts[i] > counts[best] { i } else { best });
    Some(10f64.powf(edge(fullest)))
}

/// [`fit`] with xmin restricted to `candidates`.
fn fit_candidates(
    eigenvalues: &[f64],
    threshold: f64,
    candidates: Candidates,
) -> Option<PowerLawFit> {
    let Candidates {
        min_tail,
        xmin_range,
    } = candidates;
    let mut data: Vec<f64> = eigenvalues
        .iter()
        .copied()
        .filter(|&x| x > threshold && x.is_finite())
        .collect();
    data.sort_by(f64::total_cmp);
    if data.len() < 2 {
        return None;
    }
    let logs: Vec<f64> = data.iter().map(|x| x.ln()).collect();
    // suffix[i] = Σ_{j≥i} ln xⱼ
    let mut suffix = vec![0.0; data.len() + 1];
    for i in (0..data.len()).rev() {
        suffix[i] = suffix[i + 1] + logs[i];
    }
    let small = data.len() < SMALL_N_CUTOFF;
    let mut best: Option<(usize, f64, f64)> = None; // (i, alpha, D)
    for i in 0..data.len() - 1 {
        let n = (data.len() - i) as f64;
        if data.len() - i < min_tail
            || (small && data.len() - i < SMALL_N_MIN_TAIL)
            || data[i] < xmin_range.0
            || data[i] > xmin_range.1
        {
            continue;
        }
        let log_sum = suffix[i] - n * logs[i];
        if small && log_sum <= 1e-12 {
            continue;
        }
        let alpha = if small {
            1.0 + (n - 1.0) / log_sum
        } else {
            1.0 + n / log_sum
        };
        if alpha.is_nan() || alpha <= 1.0 {
            if !small && best.is_none() {
                best = Some((i, alpha, 1.0));
            }
            continue;
        }
        let bound = best.map_or(f64::INFINITY, |(_, _, distance)| distance);
        let Some(distance) = ks_distance(&logs[i..], alpha, bound) else {
            continue;
        };
        if best.is_none_or(|(_, _, best_distance)| distance < best_distance) {
            best = Some((i, alpha, distance));
        }
    }
    if small && best.is_none() {
        // WeightWatcher's fallback when no tail is long enough: the whole data from x₀.
        let n = data.len() as f64;
        let log_sum = suffix[0] - n * logs[0];
        if log_sum > 1e-12 {
            let alpha = 1.0 + (n - 1.0) / log_sum;
            let distance = ks_distance(&logs, alpha, f64::INFINITY).unwrap_or(1.0);
            best = Some((0, alpha, distance));
        }
    }
    let (i, alpha, ks_distance) = best?;
    if alpha.is_nan() || alpha <= 1.0 {
        return None;
    }
    let n = data.len() - i;
    Some(PowerLawFit {
        alpha,
        xmin: data[i],
        xmax: data[data.len() - 1],
        ks_distance,
        sigma: (alpha - 1.0) / (n as f64).sqrt(),
        num_pl_spikes: n,
        fit_method: if small {
            FitMethod::SmallN
        } else {
            FitMethod::Standard
        },
        num_fingers: 0,
        raw_alpha: None,
    })
}

/// KS distance of a tail (given by its logs, ascending, the first being ln xmin) from the power
/// law of exponent α, or `None` as soon as it is known to be ≥ `bound`.
fn ks_distance(tail_logs: &[f64], alpha: f64, bound: f64) -> Option<f64> {
    let n = tail_logs.len() as f64;
    let log_xmin = tail_logs[0];
    let mut distance: f64 = 0.0;
    for (j, &log_x) in tail_logs.iter().enumerate() {
        let theoretical = 1.0 - ((1.0 - alpha) * (log_x - log_xmin)).exp();
        distance = distance.max((theoretical - j as f64 / n).abs());
        if distance >= bound {
            return None;
        }
    }
    Some(distance)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quantiles of a Pareto law with exponent α and xmin = 1: xₖ = (1 − uₖ)^{−1/(α−1)}.
    fn pareto_quantiles(alpha: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|k| (1.0 - (k as f64 + 0.5) / n as f64).powf(-1.0 / (alpha - 1.0)))
            .collect()
    }

    #[test]
    fn recovers_the_exponent_of_a_pareto_tail() {
        for alpha in [1.5, 2.5, 4.0] {
            let fit = fit(&pareto_quantiles(alpha, 2000), 0.0).unwrap();
            assert!(
                (fit.alpha - alpha).abs() < 3.0 * fit.sigma,
                "α = {alpha}: {fit:?}"
            );
            assert_eq!(fit.fit_method, FitMethod::Standard);
        }
    }

    #[test]
    fn pruned_scan_equals_the_exhaustive_one() {
        let data = pareto_quantiles(3.0, 300);
        let logs: Vec<f64> = data.iter().map(|x| x.ln()).collect();
        let fit = fit(&data, 0.0).unwrap();
        let mut best = (f64::INFINITY, 0);
        for i in 0..data.len() - 1 {
            let n = (data.len() - i) as f64;
            let alpha = 1.0 + n / (logs[i..].iter().sum::<f64>() - n * logs[i]);
            let d = ks_distance(&logs[i..], alpha, f64::INFINITY).unwrap();
            if d < best.0 {
                best = (d, i);
            }
        }
        assert_eq!(fit.xmin, data[best.1]);
        assert!((fit.ks_distance - best.0).abs() < 1e-12 * best.0);
    }

    #[test]
    fn a_minimum_tail_excludes_short_tails() {
        // Exponential quantiles have no power-law tail: the free fit settles on a short one.
        let data: Vec<f64> = (0..500)
            .map(|k| -(1.0 - (k as f64 + 0.5) / 500.0).ln())
            .collect();
        let options = TailOptions {
            min_tail: 100,
            ..TailOptions::default()
        };
        let restricted = fit_tail(&data, 0.0, options).unwrap();
        assert!(restricted.num_pl_spikes >= 100, "{restricted:?}");
        let free = fit(&data, 0.0).unwrap();
        assert!(
            free.num_pl_spikes < 100,
            "the restriction changed nothing: {free:?}"
        );
        let too_long = TailOptions {
            min_tail: 10_000,
            ..TailOptions::default()
        };
        assert!(fit_tail(&data, 0.0, too_long).is_none());
    }

    #[test]
    fn threshold_and_degenerate_input() {
        assert!(fit(&[1e-7, 2e-7, 3.0], 1e-5).is_none());
        assert!(fit(&[], 0.0).is_none());
        let small = fit(&pareto_quantiles(2.5, 15), 0.0).unwrap();
        assert_eq!(small.fit_method, FitMethod::SmallN);
        assert!(small.num_pl_spikes >= SMALL_N_MIN_TAIL);
    }
}
