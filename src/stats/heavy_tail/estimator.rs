//! Which α: the estimators of the power-law exponent that the methods built on WeightWatcher
//! act on, defined once for `analyze`, `allocate`, the monitors and Python.
//!
//! - `ww`: WeightWatcher 0.7.7's fit ([`super::power_law::fit_tail`]), the default.
//! - `alpha-peak`: the fit AlphaPruning (Lu et al. 2024), AlphaLoRA (Qing et al. 2024) and
//!   TempBalance's `fix-finger` option (Zhou et al. 2023) run on every eigenvalue: xmin by
//!   minimal KS distance among candidates at most 1.5·p, p the left edge of the fullest of 100
//!   equal bins of log₁₀λ (`torch.histc`), and, as their code writes it, at least log₁₀(0.95·p)
//!   (a bound on λ taken from a logarithm: below p = 10.5 it admits every candidate under 1.5·p).
//!   No small-N variant; a fit whose every candidate has α ≤ 1 is no fit (their code reports 0).
//! - `hill-median`: TempBalance's default, the Hill estimate with xmin at the median eigenvalue
//!   (index ⌊N/2⌋ of the ascending ESD): α = 1 + n / Σ_{j≥i} ln(λⱼ/λᵢ), n = N − i.
//! - `farms`, `farms-peak`, `farms-median`: the same three fits on FARMS's pooled ESD of
//!   equal-shaped windows (Hu et al. 2025; [`crate::spectrum::windows`]), which removes α's bias
//!   from a matrix's aspect ratio; a convolution's α is the mean over its row blocks.
//!
//! `alpha-peak` and `hill-median` fit every positive eigenvalue (their references do not drop
//! WeightWatcher's near-zero ones), `alpha-peak` in WeightWatcher's scale whatever the
//! convention (its lower bound is not scale-free).
use super::power_law::{
    fit_tail, ks_distance, FitMethod, KsScan, PowerLawFit, Sorted, TailOptions,
};
use crate::option_names::{option_names, serde_as_text};
use crate::stats::esd::EsdScale;

/// The estimator of a layer's α, as a user names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Estimator {
    /// WeightWatcher's fit of the whole ESD.
    #[default]
    Ww,
    /// The xmin-peak fit of AlphaPruning, AlphaLoRA and TempBalance.
    AlphaPeak,
    /// TempBalance's Hill estimate at the median eigenvalue.
    HillMedian,
    /// WeightWatcher's fit of FARMS's pooled window ESD.
    Farms,
    /// The xmin-peak fit of FARMS's pooled window ESD (FARMS's `alpha_peak_farms`).
    FarmsPeak,
    /// The median Hill estimate of FARMS's pooled window ESD (FARMS's TempBalance).
    FarmsMedian,
}

option_names!(Estimator, "estimator", {
    Ww => "ww",
    AlphaPeak => "alpha-peak",
    HillMedian => "hill-median",
    Farms => "farms",
    FarmsPeak => "farms-peak",
    FarmsMedian => "farms-median",
});

serde_as_text!(Estimator);

/// How a tail is fitted, whatever eigenvalues it is fitted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailRule {
    /// [`fit_tail`] with the analysis's [`TailOptions`].
    WeightWatcher,
    /// [`peak_fit`].
    Peak,
    /// [`median_fit`].
    Median,
}

impl Estimator {
    /// How this estimator fits a tail.
    pub fn rule(self) -> TailRule {
        match self {
            Self::Ww | Self::Farms => TailRule::WeightWatcher,
            Self::AlphaPeak | Self::FarmsPeak => TailRule::Peak,
            Self::HillMedian | Self::FarmsMedian => TailRule::Median,
        }
    }

    /// Whether it fits FARMS's pooled window ESD rather than the whole one.
    pub fn pools_windows(self) -> bool {
        matches!(self, Self::Farms | Self::FarmsPeak | Self::FarmsMedian)
    }
}

/// Bins of the log-ESD histogram whose fullest bin locates the peak.
const PEAK_BINS: usize = 100;

/// The fit of `rule` to each group of reported eigenvalues, combined: a single group's fit, or
/// for several (a convolution's FARMS row blocks) the mean α, D, xmin and σ/√k of the groups
/// that fit, over their k fits, as FARMS averages them. `None` when no group fits.
pub fn fit_groups(
    rule: TailRule,
    groups: &[&[f64]],
    scale: &EsdScale,
    tail: TailOptions,
) -> Option<PowerLawFit> {
    let fits: Vec<PowerLawFit> = groups
        .iter()
        .filter_map(|group| fit_group(rule, group, scale, tail))
        .collect();
    match fits.len() {
        0 => None,
        1 => fits.into_iter().next(),
        k => {
            let mean =
                |value: fn(&PowerLawFit) -> f64| fits.iter().map(value).sum::<f64>() / k as f64;
            Some(PowerLawFit {
                alpha: mean(|f| f.alpha),
                xmin: mean(|f| f.xmin),
                xmax: fits
                    .iter()
                    .map(|f| f.xmax)
                    .fold(f64::NEG_INFINITY, f64::max),
                ks_distance: mean(|f| f.ks_distance),
                sigma: fits.iter().map(|f| f.sigma * f.sigma).sum::<f64>().sqrt() / k as f64,
                num_pl_spikes: fits.iter().map(|f| f.num_pl_spikes).sum(),
                ..fits[0].clone()
            })
        }
    }
}

/// One group's fit, in the reported scale.
fn fit_group(
    rule: TailRule,
    eigenvalues: &[f64],
    scale: &EsdScale,
    tail: TailOptions,
) -> Option<PowerLawFit> {
    match rule {
        TailRule::WeightWatcher => fit_tail(eigenvalues, scale.fit_threshold(), tail),
        TailRule::Median => median_fit(eigenvalues),
        TailRule::Peak => {
            // In WeightWatcher's scale, and back: the bound log₁₀(0.95·p) is not scale-free.
            let to_ww = scale.to_weightwatcher(1.0) / scale.report(1.0);
            let ww: Vec<f64> = eigenvalues.iter().map(|&l| l * to_ww).collect();
            let fit = peak_fit(&ww)?;
            Some(PowerLawFit {
                xmin: fit.xmin / to_ww,
                xmax: fit.xmax / to_ww,
                ..fit
            })
        }
    }
}

impl Sorted {
    /// The Hill α of the tail from index `i`: 1 + n / Σ_{j≥i} ln(xⱼ/xᵢ).
    fn alpha_from(&self, i: usize) -> f64 {
        let n = (self.values.len() - i) as f64;
        1.0 + n / (self.suffix[i] - n * self.logs[i])
    }

    /// The fit whose tail starts at index `i`, its exponent and KS distance known.
    fn fit_from(&self, i: usize, alpha: f64, distance: f64, method: FitMethod) -> PowerLawFit {
        let n = self.values.len() - i;
        PowerLawFit {
            alpha,
            xmin: self.values[i],
            xmax: self.values[self.values.len() - 1],
            ks_distance: distance,
            sigma: (alpha - 1.0) / (n as f64).sqrt(),
            num_pl_spikes: n,
            fit_method: method,
            num_fingers: 0,
            raw_alpha: None,
            farms_groups: None,
        }
    }
}

/// TempBalance's `median` fit: the Hill α with xmin at index ⌊N/2⌋ of the ascending positive
/// eigenvalues, and its KS distance; `None` for fewer than 2 values or an α that is not > 1.
pub fn median_fit(eigenvalues: &[f64]) -> Option<PowerLawFit> {
    let sorted = Sorted::above(eigenvalues, 0.0);
    if sorted.values.len() < 2 {
        return None;
    }
    let i = sorted.values.len() / 2;
    let alpha = sorted.alpha_from(i);
    if !alpha.is_finite() || alpha <= 1.0 {
        return None;
    }
    let distance = match ks_distance(&sorted.logs[i..], alpha, f64::INFINITY, 0) {
        KsScan::Distance { distance, .. } => distance,
        KsScan::Beyond { .. } => return None,
    };
    Some(sorted.fit_from(i, alpha, distance, FitMethod::HillMedian))
}

/// The xmin-peak fit of AlphaPruning, AlphaLoRA and TempBalance (module docs): the first
/// candidate of minimal KS distance among those in [log₁₀(0.95·p), 1.5·p] whose α > 1.
///
/// The candidates (as many as a pooled FARMS ESD's 10⁵ values) are scanned in chunks over the
/// rayon pool, each chunk pruning by the best distance found anywhere so far (a candidate
/// whose scan reaches beyond it cannot win); the result is the least distance, the first on
/// ties, as a sequential scan finds it, whatever the thread count.
pub fn peak_fit(eigenvalues: &[f64]) -> Option<PowerLawFit> {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    let sorted = Sorted::above(eigenvalues, 0.0);
    let peak = histc_peak(&sorted.values)?;
    let (lower, upper) = ((0.95 * peak).log10(), 1.5 * peak);
    let last = sorted.values.len().saturating_sub(1);
    let first = sorted.values[..last].partition_point(|&x| x < lower);
    let end = sorted.values[..last].partition_point(|&x| x <= upper);
    // Non-negative f64s order as their bits do.
    let best_anywhere = AtomicU64::new(1f64.to_bits());
    let scan = |chunk_start: usize| -> Option<(f64, usize, f64)> {
        let mut best: Option<(f64, usize, f64)> = None;
        let mut hint: usize = 0;
        for i in chunk_start..(chunk_start + PEAK_CHUNK).min(end) {
            let alpha = sorted.alpha_from(i);
            if alpha.is_nan() || alpha <= 1.0 {
                continue;
            }
            // Ties with another chunk's best are scanned: the earlier candidate wins them.
            // (The next float above a non-negative one is its bits plus one.)
            let anywhere = f64::from_bits(best_anywhere.load(Ordering::Relaxed) + 1);
            let bound = best.map_or(anywhere, |(distance, ..)| distance.min(anywhere));
            match ks_distance(&sorted.logs[i..], alpha, bound, hint.saturating_sub(i)) {
                KsScan::Distance { distance, argmax } => {
                    hint = i + argmax;
                    best = Some((distance, i, alpha));
                    best_anywhere.fetch_min(distance.to_bits(), Ordering::Relaxed);
                }
                KsScan::Beyond { at } => hint = i + at,
            }
        }
        best
    };
    let (distance, i, alpha) = (first..end)
        .step_by(PEAK_CHUNK)
        .collect::<Vec<_>>()
        .into_par_iter()
        .filter_map(scan)
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))?;
    // The references keep D = 1 for every candidate not fitted, and a fit must beat it.
    (distance < 1.0).then(|| sorted.fit_from(i, alpha, distance, FitMethod::AlphaPeak))
}

/// Candidates per parallel chunk of [`peak_fit`]'s scan.
const PEAK_CHUNK: usize = 2048;

/// The left edge 10^e of the fullest of [`PEAK_BINS`] bins of log₁₀ x, binned as `torch.histc`
/// bins (⌊(v − lo)·bins/(hi − lo)⌋, the maximum in the last bin) with its edges from
/// `torch.linspace`; the first fullest bin on ties. `None` for fewer than 2 distinct values.
fn histc_peak(ascending: &[f64]) -> Option<f64> {
    let (lo, hi) = (ascending.first()?.log10(), ascending.last()?.log10());
    if hi.is_nan() || lo.is_nan() || hi <= lo {
        return None;
    }
    let mut counts = [0usize; PEAK_BINS];
    for &x in ascending {
        let bin = ((x.log10() - lo) * PEAK_BINS as f64 / (hi - lo)) as usize;
        counts[bin.min(PEAK_BINS - 1)] += 1;
    }
    let fullest = (0..PEAK_BINS).fold(0, |best, i| if counts[i] > counts[best] { i } else { best });
    // torch.linspace's 101 edges: the first 50 counted from the start, the rest from the end.
    let step = (hi - lo) / PEAK_BINS as f64;
    let edge = if fullest < PEAK_BINS.div_ceil(2) {
        lo + step * fullest as f64
    } else {
        hi - step * (PEAK_BINS - fullest) as f64
    };
    Some(10f64.powf(edge))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in <Estimator as crate::OptionNames>::NAMES {
            assert_eq!(name.parse::<Estimator>().unwrap().to_string(), *name);
        }
        assert!("hill".parse::<Estimator>().is_err());
    }

    /// The median Hill estimate in closed form: a tail λⱼ = c·j^(−1/ξ) above the median.
    #[test]
    fn median_fit_is_the_closed_form() {
        let values: Vec<f64> = (1..=101).map(|k| 1.0 + k as f64 * 0.37).collect();
        let fit = median_fit(&values).unwrap();
        let tail = &values[50..];
        let n = tail.len() as f64;
        let log_sum: f64 = tail.iter().map(|x| (x / tail[0]).ln()).sum();
        assert_eq!(fit.xmin, values[50]);
        assert!((fit.alpha - (1.0 + n / log_sum)).abs() < 1e-12);
        assert_eq!(fit.num_pl_spikes, 51);
        assert!(median_fit(&[1.0]).is_none());
        assert!(median_fit(&[2.0, 2.0, 2.0]).is_none());
    }

    /// The parallel, pruned scan finds what an exhaustive sequential one finds, over several
    /// chunks (a lognormal bulk with a Pareto tail, 6000 values).
    #[test]
    fn peak_fit_equals_the_exhaustive_scan() {
        let n = 6000;
        let mut values: Vec<f64> = (0..n)
            .map(|i| {
                let u = (i as f64 + 0.5) / n as f64;
                let bulk = (3.0 * (u.powf(0.3) - 0.5)).exp();
                if i % 7 == 0 {
                    bulk * (1.0 - u).powf(-0.6)
                } else {
                    bulk
                }
            })
            .collect();
        values.sort_by(f64::total_cmp);
        let fit = peak_fit(&values).unwrap();
        let sorted = Sorted::above(&values, 0.0);
        let peak = histc_peak(&sorted.values).unwrap();
        let (lower, upper) = ((0.95 * peak).log10(), 1.5 * peak);
        let mut best = (1.0, usize::MAX);
        for i in 0..n - 1 {
            let x = sorted.values[i];
            if x < lower || x > upper {
                continue;
            }
            let alpha = sorted.alpha_from(i);
            if alpha <= 1.0 {
                continue;
            }
            let tail = n - i;
            let distance = (0..tail)
                .map(|j| {
                    let model = 1.0 - (sorted.values[i + j] / x).powf(1.0 - alpha);
                    (model - j as f64 / tail as f64).abs()
                })
                .fold(0.0, f64::max);
            if distance < best.0 {
                best = (distance, i);
            }
        }
        assert!(best.1 != usize::MAX && upper > sorted.values[PEAK_CHUNK]);
        assert_eq!(fit.xmin, sorted.values[best.1]);
        assert!((fit.ks_distance - best.0).abs() < 1e-12);
    }

    /// Several groups (a convolution's FARMS row blocks) combine as documented: α, D and xmin
    /// their means, σ the standard error of a mean, the tails' sizes summed.
    #[test]
    fn groups_combine_into_their_mean_fit() {
        let group = |scale: f64, n: usize| -> Vec<f64> {
            (0..n)
                .map(|i| scale * (1.0 - (i as f64 + 0.5) / n as f64).powf(-0.5))
                .collect()
        };
        let (first, second) = (group(1.0, 400), group(3.0, 250));
        let scale = EsdScale::unscaled(10);
        let tail = TailOptions::default();
        let one = |g: &[f64]| fit_groups(TailRule::Median, &[g], &scale, tail).unwrap();
        let (a, b) = (one(&first), one(&second));
        let both = fit_groups(TailRule::Median, &[&first, &second], &scale, tail).unwrap();
        assert_eq!(both.alpha, (a.alpha + b.alpha) / 2.0);
        assert_eq!(both.ks_distance, (a.ks_distance + b.ks_distance) / 2.0);
        assert_eq!(both.xmin, (a.xmin + b.xmin) / 2.0);
        assert_eq!(
            both.sigma,
            (a.sigma * a.sigma + b.sigma * b.sigma).sqrt() / 2.0
        );
        assert_eq!(both.num_pl_spikes, a.num_pl_spikes + b.num_pl_spikes);
        assert_eq!(both.xmax, a.xmax.max(b.xmax));
    }

    #[test]
    fn peak_fit_refuses_a_flat_spectrum() {
        assert!(peak_fit(&[3.0; 10]).is_none());
        assert!(peak_fit(&[]).is_none());
    }

    /// A pure Pareto sample: the peak fit finds its exponent as the full fit does.
    #[test]
    fn peak_fit_recovers_a_pareto_exponent() {
        let n = 4000;
        let values: Vec<f64> = (0..n)
            .map(|i| (1.0 - (i as f64 + 0.5) / n as f64).powf(-1.0 / 2.5))
            .collect();
        let fit = peak_fit(&values).unwrap();
        assert!((fit.alpha - 3.5).abs() < 0.1, "{}", fit.alpha);
        assert_eq!(fit.fit_method, FitMethod::AlphaPeak);
    }
}
