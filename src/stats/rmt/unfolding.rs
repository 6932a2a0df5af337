//! Unfolding: mapping levels to a spectrum of unit mean density, so spacings can be compared
//! with universal laws.
use serde::Serialize;

use crate::error::{Error, Result};
use crate::option_names::{option_names, serde_as_text};

/// How the smooth part of the level staircase is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "method")]
pub enum Unfolding {
    /// Thamm, Staats & Rosenow (2022) (appendix C): a Gaussian of width σₖ = (ν_{k+a} − ν_{k−a})/2 at each level;
    /// `window` is a. The 2a levels at each end are dropped.
    GaussianBroadening {
        /// Half-width a of the window (window size 2a).
        window: usize,
    },
    /// A least-squares polynomial of this degree fitted to the staircase N(ν) = i; the 2% of
    /// levels at each end are dropped.
    Polynomial {
        /// Degree of the polynomial.
        degree: usize,
    },
}

/// The name of an unfolding method, for options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnfoldingMethod {
    /// [`Unfolding::GaussianBroadening`].
    #[default]
    Gaussian,
    /// [`Unfolding::Polynomial`].
    Polynomial,
}

option_names!(UnfoldingMethod, "unfolding", { Gaussian => "gaussian", Polynomial => "polynomial" });

serde_as_text!(UnfoldingMethod);

/// Default half-window a of the Gaussian broadening (Thamm, Staats & Rosenow 2022).
pub const DEFAULT_GAUSSIAN_WINDOW: usize = 15;
/// Default degree of the staircase polynomial.
pub const DEFAULT_POLYNOMIAL_DEGREE: usize = 7;

impl Default for Unfolding {
    fn default() -> Self {
        Self::GaussianBroadening {
            window: DEFAULT_GAUSSIAN_WINDOW,
        }
    }
}

impl Unfolding {
    /// The unfolded levels ξᵢ of `levels` (ascending), ends dropped. An error when too few
    /// levels would remain for statistics (fewer than 10).
    pub fn unfold(self, levels: &[f64]) -> Result<Vec<f64>> {
        let m = levels.len();
        let (unfolded, drop) = match self {
            Self::GaussianBroadening { window } => {
                if window == 0 {
                    return Err(Error::InvalidOption(
                        "the unfolding window must be ≥ 1".into(),
                    ));
                }
                (gaussian_staircase(levels, window), 2 * window)
            }
            Self::Polynomial { degree } => (polynomial_staircase(levels, degree)?, m / 50),
        };
        if m < 2 * drop + 10 {
            return Err(Error::InvalidOption(format!(
                "{m} levels are too few to unfold with {self:?} (need {})",
                2 * drop + 10
            )));
        }
        Ok(unfolded[drop..m - drop].to_vec())
    }
}

/// N̄(νᵢ) = Σₖ ½[1 + erf((νᵢ − νₖ)/(σₖ√2))], σₖ = (ν_{k+a} − ν_{k−a})/2 with indices clamped to
/// the spectrum. Gaussian k contributes exactly 1 to the levels above νₖ + 9σₖ and 0 to those
/// below νₖ − 9σₖ, so only the levels within 9σₖ of it are evaluated: O(m·a) work on a bulk,
/// not O(m²) when a sparse tail has wide Gaussians. Each level's terms are added in order of k.
fn gaussian_staircase(levels: &[f64], window: usize) -> Vec<f64> {
    let m = levels.len();
    let mut staircase = vec![0.0; m];
    // fully[i]: Gaussians wholly below level i, as differences between neighbouring levels.
    let mut fully = vec![0usize; m + 1];
    for (k, &centre) in levels.iter().enumerate() {
        let hi = levels[(k + window).min(m - 1)];
        let lo = levels[k.saturating_sub(window)];
        let width = ((hi - lo) / 2.0).max(f64::MIN_POSITIVE);
        let first = levels.partition_point(|&v| v < centre - 9.0 * width);
        let last = levels.partition_point(|&v| v <= centre + 9.0 * width);
        for (x, value) in levels[first..last].iter().zip(&mut staircase[first..last]) {
            let z = (x - centre) / (width * std::f64::consts::SQRT_2);
            *value += 0.5 * statrs::function::erf::erfc(-z);
        }
        fully[last] += 1;
    }
    let mut below = 0;
    for (value, count) in staircase.iter_mut().zip(&fully) {
        below += count;
        *value += below as f64;
    }
    staircase
}

/// Least squares of i ≈ p(νᵢ) in the Legendre basis on ν scaled to [−1, 1], solved by
/// modified Gram-Schmidt QR (well conditioned up to degree ~15).
fn polynomial_staircase(levels: &[f64], degree: usize) -> Result<Vec<f64>> {
    let m = levels.len();
    if degree == 0 || degree >= m {
        return Err(Error::InvalidOption(format!(
            "the staircase polynomial needs 1 ≤ degree < {m}, got {degree}"
        )));
    }
    let (lo, hi) = (levels[0], levels[m - 1]);
    let scale = if hi > lo { 2.0 / (hi - lo) } else { 1.0 };
    let t: Vec<f64> = levels.iter().map(|v| (v - lo) * scale - 1.0).collect();
    // Columns P₀(t)…P_d(t).
    let mut columns: Vec<Vec<f64>> = vec![vec![1.0; m], t.clone()];
    for k in 2..=degree {
        let kf = k as f64;
        let next = (0..m)
            .map(|i| {
                ((2.0 * kf - 1.0) * t[i] * columns[k - 1][i] - (kf - 1.0) * columns[k - 2][i]) / kf
            })
            .collect();
        columns.push(next);
    }
    columns.truncate(degree + 1);
    let target: Vec<f64> = (0..m).map(|i| i as f64 + 0.5).collect();
    let mut q = columns;
    let mut residual = target;
    let mut fitted = vec![0.0; m];
    for j in 0..q.len() {
        for k in 0..j {
            let projection = dot(&q[k], &q[j]);
            let (done, current) = q.split_at_mut(j);
            for (value, basis) in current[0].iter_mut().zip(&done[k]) {
                *value -= projection * basis;
            }
        }
        let norm = dot(&q[j], &q[j]).sqrt();
        if norm < 1e-12 * (m as f64).sqrt() {
            continue;
        }
        q[j].iter_mut().for_each(|v| *v /= norm);
        let coefficient = dot(&q[j], &residual);
        for i in 0..m {
            fitted[i] += coefficient * q[j][i];
            residual[i] -= coefficient * q[j][i];
        }
    }
    Ok(fitted)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_levels_unfold_to_unit_spacing() {
        let levels: Vec<f64> = (0..400).map(|i| 3.0 + 0.25 * i as f64).collect();
        for method in [Unfolding::default(), Unfolding::Polynomial { degree: 5 }] {
            // Broadening bends the staircase within a few widths of the ends: look inside.
            let unfolded = method.unfold(&levels).unwrap();
            let inner = &unfolded[60..unfolded.len() - 60];
            for pair in inner.windows(2) {
                assert!(
                    (pair[1] - pair[0] - 1.0).abs() < 1e-6,
                    "{method:?}: {pair:?}"
                );
            }
        }
    }

    #[test]
    fn a_smooth_nonuniform_density_is_flattened() {
        // Levels at the quantiles of density ∝ x on [1, 2]: F(x) = (x² − 1)/3.
        let m = 2000;
        let levels: Vec<f64> = (0..m)
            .map(|i| (1.0 + 3.0 * (i as f64 + 0.5) / m as f64).sqrt())
            .collect();
        for method in [Unfolding::default(), Unfolding::Polynomial { degree: 4 }] {
            let unfolded = method.unfold(&levels).unwrap();
            let inner = &unfolded[100..unfolded.len() - 100];
            let spacings: Vec<f64> = inner.windows(2).map(|p| p[1] - p[0]).collect();
            let worst = spacings.iter().map(|s| (s - 1.0).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-3, "{method:?}: {worst}");
        }
    }

    /// The staircase equals its definition summed over every Gaussian, on a bulk with a
    /// sparse tail whose wide Gaussians reach across the spectrum.
    #[test]
    fn the_staircase_is_its_full_sum() {
        let mut levels: Vec<f64> = (0..300)
            .map(|i| 1.0 + (i as f64 * 0.37).sin() * 0.5 + i as f64 * 0.01)
            .collect();
        levels.extend([20.0, 45.0, 90.0, 200.0, 500.0]);
        levels.sort_by(f64::total_cmp);
        let window = 15;
        let m = levels.len();
        let direct: Vec<f64> = levels
            .iter()
            .map(|&x| {
                (0..m)
                    .map(|k| {
                        let hi = levels[(k + window).min(m - 1)];
                        let lo = levels[k.saturating_sub(window)];
                        let width = ((hi - lo) / 2.0).max(f64::MIN_POSITIVE);
                        let z = (x - levels[k]) / (width * std::f64::consts::SQRT_2);
                        0.5 * statrs::function::erf::erfc(-z)
                    })
                    .sum()
            })
            .collect();
        let fast = gaussian_staircase(&levels, window);
        for (i, (a, b)) in fast.iter().zip(&direct).enumerate() {
            assert!(
                (a - b).abs() < 1e-11 * b.max(1.0),
                "level {i}: {a} against {b}"
            );
        }
    }

    #[test]
    fn too_few_levels_are_refused() {
        let levels: Vec<f64> = (0..40).map(f64::from).collect();
        assert!(Unfolding::default().unfold(&levels).is_err());
        assert!(Unfolding::GaussianBroadening { window: 0 }
            .unfold(&levels)
            .is_err());
        assert!(Unfolding::Polynomial { degree: 0 }.unfold(&levels).is_err());
    }
}
