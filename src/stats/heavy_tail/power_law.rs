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
//! the best D so far (such a candidate cannot win; most are discarded by the one point where
//! the previous candidate deviated most), and blocks of points whose bound lies below the
//! largest deviation found are not evaluated: the same xmin and D as the full O(n²) scan.
use serde::{Deserialize, Serialize};

/// Below this many eigenvalues WeightWatcher switches to its small-N estimator.
const SMALL_N_CUTOFF: usize = 20;
/// The small-N estimator's smallest tail.
const SMALL_N_MIN_TAIL: usize = 8;

/// Which estimator produced a fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitMethod {
    /// Clauset-Shalizi-Newman MLE with xmin by minimal KS distance.
    Standard,
    /// WeightWatcher's bias-corrected small-N variant (fewer than 20 eigenvalues).
    SmallN,
    /// xmin by minimal KS distance at most 1.5× the log-ESD's peak, as AlphaPruning, AlphaLoRA
    /// and TempBalance fit it ([`super::estimator::Estimator::AlphaPeak`]).
    AlphaPeak,
    /// The Hill estimate with xmin at the median eigenvalue, as TempBalance's default
    /// ([`super::estimator::Estimator::HillMedian`]).
    HillMedian,
}

/// A power-law fit p(λ) ∝ λ^{−α} for λ ≥ xmin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// How many of FARMS's pooled window ESDs were fitted (1 for a matrix, one per row block of
    /// a convolution, α their mean); absent when the layer's own ESD was fitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub farms_groups: Option<usize>,
}

/// How the top of the ESD is treated before fitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
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

/// The finite values above a threshold, ascending, with their natural logs and suffix sums of
/// logs: what every tail fit scans.
pub(super) struct Sorted {
    pub(super) values: Vec<f64>,
    pub(super) logs: Vec<f64>,
    /// suffix[i] = Σ_{j≥i} ln xⱼ.
    pub(super) suffix: Vec<f64>,
}

impl Sorted {
    pub(super) fn above(eigenvalues: &[f64], threshold: f64) -> Self {
        let mut values: Vec<f64> = eigenvalues
            .iter()
            .copied()
            .filter(|&x| x > threshold && x.is_finite())
            .collect();
        values.sort_by(f64::total_cmp);
        let logs: Vec<f64> = values.iter().map(|x| x.ln()).collect();
        let mut suffix = vec![0.0; values.len() + 1];
        for i in (0..values.len()).rev() {
            suffix[i] = suffix[i + 1] + logs[i];
        }
        Self {
            values,
            logs,
            suffix,
        }
    }
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
    let Sorted {
        values: data,
        logs,
        suffix,
    } = Sorted::above(eigenvalues, threshold);
    if data.len() < 2 {
        return None;
    }
    let small = data.len() < SMALL_N_CUTOFF;
    // The best candidate so far: (i, α, D).
    let mut best: Option<(usize, f64, f64)> = None;
    // Where the last scan reached its bound or peaked: the likeliest point to reject the next.
    let mut hint: usize = 0;
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
        let scan = ks_distance(&logs[i..], alpha, bound, hint.saturating_sub(i));
        hint = i + match scan {
            KsScan::Distance { argmax, .. } => argmax,
            KsScan::Beyond { at } => at,
        };
        let KsScan::Distance { distance, .. } = scan else {
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
            let distance = match ks_distance(&logs, alpha, f64::INFINITY, 0) {
                KsScan::Distance { distance, .. } => distance,
                KsScan::Beyond { .. } => 1.0,
            };
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
        farms_groups: None,
    })
}

/// The outcome of one candidate's KS scan.
pub(super) enum KsScan {
    /// The full distance and the index where it is reached.
    Distance { distance: f64, argmax: usize },
    /// The point at index `at` is at least the bound away: the candidate cannot win.
    Beyond { at: usize },
}

/// Points per block of a KS scan, bounded as a whole before its inner points are computed.
const KS_BLOCK: usize = 16;
/// A block is skipped only when its bound is this far below the largest deviation found: far
/// beyond the last-bit error of one evaluation, so a skipped point can never be the maximum.
const KS_SKIP_MARGIN: f64 = 1e-12;

/// KS distance of a tail (given by its logs, ascending, the first being ln xmin) from the power
/// law of exponent α, or where it is first seen to be ≥ `bound`.
///
/// Every point's deviation is |F(xⱼ) − j/n| with F increasing, so within a block [a, b] it is at
/// most max(F(x_b) − a/n, b/n − F(x_a)): a block whose bound lies below the largest deviation
/// found so far cannot hold the maximum, and its inner points are not computed. The point at
/// `hint` is tried first: successive candidates deviate most at nearly the same eigenvalue, so
/// it rejects a losing candidate at once and starts a winning one's maximum near its value.
/// The distance returned is the maximum over every point, as a full scan computes it.
pub(super) fn ks_distance(tail_logs: &[f64], alpha: f64, bound: f64, hint: usize) -> KsScan {
    let len = tail_logs.len();
    let n = len as f64;
    let log_xmin = tail_logs[0];
    let theoretical = |j: usize| 1.0 - ((1.0 - alpha) * (tail_logs[j] - log_xmin)).exp();
    let empirical = |j: usize| j as f64 / n;
    // The largest deviation so far and its index.
    let mut largest = (0.0, 0);
    // Takes point j with its F(xⱼ) into the maximum; true when it reaches the bound.
    let reaches_bound = |largest: &mut (f64, usize), j: usize, f: f64| {
        let value = (f - empirical(j)).abs();
        if value > largest.0 {
            *largest = (value, j);
        }
        value >= bound
    };
    if hint < len && reaches_bound(&mut largest, hint, theoretical(hint)) {
        return KsScan::Beyond { at: hint };
    }
    let mut start = 0;
    let mut f_start = theoretical(0);
    if reaches_bound(&mut largest, 0, f_start) {
        return KsScan::Beyond { at: 0 };
    }
    while start + 1 < len {
        let end = (start + KS_BLOCK).min(len - 1);
        let f_end = theoretical(end);
        if reaches_bound(&mut largest, end, f_end) {
            return KsScan::Beyond { at: end };
        }
        let block_bound = (f_end - empirical(start)).max(empirical(end) - f_start);
        if block_bound > largest.0 - KS_SKIP_MARGIN {
            for j in start + 1..end {
                if reaches_bound(&mut largest, j, theoretical(j)) {
                    return KsScan::Beyond { at: j };
                }
            }
        }
        (start, f_start) = (end, f_end);
    }
    let (distance, argmax) = largest;
    KsScan::Distance { distance, argmax }
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

    /// The pruned scan (early exits, bounded blocks, a hinted point first) gives every
    /// candidate's D to the bit as the full scan of its definition does, rejects exactly the
    /// candidates whose D reaches the bound, and so picks the same xmin: on a clean Pareto tail
    /// and on a bulk with a heavy tail, where the candidates' maxima move around.
    #[test]
    fn pruned_scan_equals_the_exhaustive_one() {
        let mut bulk_and_tail: Vec<f64> = (0..600)
            .map(|k| 1.0 + (k as f64 * 0.618).fract() * 2.0)
            .collect();
        bulk_and_tail.extend(pareto_quantiles(2.5, 150).iter().map(|x| 2.5 * x));
        for mut data in [pareto_quantiles(3.0, 300), bulk_and_tail] {
            data.sort_by(f64::total_cmp);
            let logs: Vec<f64> = data.iter().map(|x| x.ln()).collect();
            let mut best = (f64::INFINITY, 0);
            for i in 0..data.len() - 1 {
                let tail = &logs[i..];
                let n = tail.len() as f64;
                let alpha = 1.0 + n / tail.iter().map(|l| l - logs[i]).sum::<f64>();
                let full = tail
                    .iter()
                    .enumerate()
                    .map(|(j, l)| {
                        let theoretical = 1.0 - ((1.0 - alpha) * (l - logs[i])).exp();
                        (theoretical - j as f64 / n).abs()
                    })
                    .fold(0.0, f64::max);
                for hint in [0, tail.len() / 3, tail.len() - 1, tail.len() + 5] {
                    let KsScan::Distance { distance, .. } =
                        ks_distance(tail, alpha, f64::INFINITY, hint)
                    else {
                        panic!("candidate {i} rejected without a bound");
                    };
                    assert_eq!(distance, full, "candidate {i}, hint {hint}");
                    assert!(matches!(
                        ks_distance(tail, alpha, full, hint),
                        KsScan::Beyond { .. }
                    ));
                    let KsScan::Distance { distance, .. } =
                        ks_distance(tail, alpha, full * (1.0 + 1e-9), hint)
                    else {
                        panic!("candidate {i} rejected below its bound");
                    };
                    assert_eq!(distance, full, "candidate {i}, hint {hint}, bounded");
                }
                if full < best.0 {
                    best = (full, i);
                }
            }
            let fit = fit(&data, 0.0).unwrap();
            assert_eq!(fit.xmin, data[best.1]);
            assert!((fit.ks_distance - best.0).abs() < 1e-12 * best.0);
        }
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
