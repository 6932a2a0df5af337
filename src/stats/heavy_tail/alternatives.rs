//! Is the tail a power law, or something else? Likelihood-ratio comparisons of the power-law fit
//! against the exponential, the log-normal and the truncated power law on the same tail
//! (x ≥ xmin), as Clauset, Shalizi & Newman (2009, §5) and the `powerlaw` package do.
//!
//! R = Σ ln p_PL(xᵢ) − Σ ln p_alt(xᵢ): positive favours the power law. For the non-nested
//! alternatives the p-value is Vuong's, erfc(|R| / √(2nσ²)) with σ² the variance of the
//! pointwise log-ratios; the truncated power law contains the power law (λ = 0), so its p-value
//! is Wilks', P(χ²₁ > 2|R|) = erfc(√|R|). Each alternative is fitted by maximum likelihood to
//! full precision (closed form for the exponential, Nelder-Mead to 1e-10 otherwise), so R is
//! never flattered by a loose optimiser.
use serde::{Deserialize, Serialize};

use crate::stats::rmt::quadrature::integrate;

/// The comparisons of one tail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TailAlternatives {
    /// λ of the exponential e^{−λ(x−xmin)} fitted to the tail.
    pub exponential_lambda: f64,
    /// R and p against it.
    #[serde(rename = "llr_exponential")]
    pub exponential_llr: f64,
    /// p-value of the sign of R.
    #[serde(rename = "p_exponential")]
    pub exponential_p: f64,
    /// μ of the log-normal (truncated at xmin) fitted to the tail.
    pub lognormal_mu: f64,
    /// Its σ.
    pub lognormal_sigma: f64,
    /// R against it.
    #[serde(rename = "llr_lognormal")]
    pub lognormal_llr: f64,
    /// p-value of the sign of R.
    #[serde(rename = "p_lognormal")]
    pub lognormal_p: f64,
    /// α of the truncated power law x^{−α}e^{−λx}.
    pub tpl_alpha: f64,
    /// Its cut-off rate λ (1/λ is the scale where the tail bends down).
    pub tpl_lambda: f64,
    /// R against it (≤ 0: the truncated law nests the power law).
    #[serde(rename = "llr_truncated_power_law")]
    pub tpl_llr: f64,
    /// Wilks p-value: small when the cut-off is real.
    #[serde(rename = "p_truncated_power_law")]
    pub tpl_p: f64,
}

/// Compares the power law with exponent `alpha` on `tail` (every value ≥ `xmin`, any order)
/// with the three alternatives. `None` for fewer than 3 points or a degenerate tail.
pub fn compare(tail: &[f64], xmin: f64, alpha: f64) -> Option<TailAlternatives> {
    let n = tail.len();
    if n < 3 || xmin <= 0.0 || alpha <= 1.0 || tail.iter().any(|&x| x.is_nan() || x < xmin) {
        return None;
    }
    let logs: Vec<f64> = tail.iter().map(|x| x.ln()).collect();
    let power_law: Vec<f64> = logs
        .iter()
        .map(|l| ((alpha - 1.0) / xmin).ln() - alpha * (l - xmin.ln()))
        .collect();
    let mean = tail.iter().sum::<f64>() / n as f64;
    if mean <= xmin {
        return None;
    }
    let exponential_lambda = 1.0 / (mean - xmin);
    let exponential: Vec<f64> = tail
        .iter()
        .map(|x| exponential_lambda.ln() - exponential_lambda * (x - xmin))
        .collect();
    let (lognormal_mu, lognormal_sigma) = fit_lognormal(&logs, xmin)?;
    let lognormal_normaliser = lognormal_log_normaliser(lognormal_mu, lognormal_sigma, xmin);
    let lognormal: Vec<f64> = logs
        .iter()
        .map(|&l| {
            -l - (l - lognormal_mu).powi(2) / (2.0 * lognormal_sigma * lognormal_sigma)
                - lognormal_normaliser
        })
        .collect();
    let (tpl_alpha, tpl_lambda) = fit_truncated_power_law(tail, &logs, xmin, alpha);
    let tpl_norm = truncated_power_law_log_normaliser(tpl_alpha, tpl_lambda, xmin);
    let truncated: Vec<f64> = tail
        .iter()
        .zip(&logs)
        .map(|(x, l)| tpl_norm - tpl_alpha * l - tpl_lambda * x)
        .collect();
    let (exponential_llr, exponential_p) = vuong(&power_law, &exponential);
    let (lognormal_llr, lognormal_p) = vuong(&power_law, &lognormal);
    let tpl_llr = power_law.iter().sum::<f64>() - truncated.iter().sum::<f64>();
    Some(TailAlternatives {
        exponential_lambda,
        exponential_llr,
        exponential_p,
        lognormal_mu,
        lognormal_sigma,
        lognormal_llr,
        lognormal_p,
        tpl_alpha,
        tpl_lambda,
        tpl_llr,
        tpl_p: statrs::function::erf::erfc(tpl_llr.abs().sqrt()),
    })
}

/// R and Vuong's two-sided p-value for pointwise log-likelihoods of two non-nested models.
fn vuong(first: &[f64], second: &[f64]) -> (f64, f64) {
    let n = first.len() as f64;
    let differences: Vec<f64> = first.iter().zip(second).map(|(a, b)| a - b).collect();
    let r: f64 = differences.iter().sum();
    let mean = r / n;
    let variance = differences.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n;
    let p = if variance > 0.0 {
        statrs::function::erf::erfc(r.abs() / (2.0 * n * variance).sqrt())
    } else {
        1.0
    };
    (r, p)
}

/// ln of the normalising constant of the log-normal density truncated to x ≥ xmin, whose log
/// at ln x = l is −l − (l − μ)²/(2σ²) − ln(σ√(π/2)·erfc((ln xmin − μ)/(σ√2))).
fn lognormal_log_normaliser(mu: f64, sigma: f64, xmin: f64) -> f64 {
    let z = (xmin.ln() - mu) / (sigma * std::f64::consts::SQRT_2);
    (sigma * (std::f64::consts::PI / 2.0).sqrt()).ln() + ln_erfc(z)
}

/// ln erfc(z), without underflow for large z (asymptotic series beyond 20).
fn ln_erfc(z: f64) -> f64 {
    if z < 20.0 {
        return statrs::function::erf::erfc(z).ln();
    }
    let inverse = 1.0 / (2.0 * z * z);
    -z * z - (z * std::f64::consts::PI.sqrt()).ln()
        + (1.0 - inverse + 3.0 * inverse * inverse - 15.0 * inverse.powi(3)).ln()
}

/// Maximum-likelihood (μ, σ) of the truncated log-normal from the moments of ln x as start.
/// The likelihood depends on the data through n, Σ ln x and Σ (ln x − mean)² alone, so each
/// evaluation costs O(1): Σ (ln x − μ)² = Σ (ln x − mean)² + n(mean − μ)², without cancellation.
fn fit_lognormal(logs: &[f64], xmin: f64) -> Option<(f64, f64)> {
    let n = logs.len() as f64;
    let sum: f64 = logs.iter().sum();
    let mean = sum / n;
    let centred: f64 = logs.iter().map(|l| (l - mean).powi(2)).sum();
    let sd = (centred / n).sqrt();
    if sd <= 0.0 {
        return None;
    }
    let negative_log_likelihood = |p: [f64; 2]| {
        let sigma = p[1].exp();
        sum + (centred + n * (mean - p[0]).powi(2)) / (2.0 * sigma * sigma)
            + n * lognormal_log_normaliser(p[0], sigma, xmin)
    };
    let best = nelder_mead(negative_log_likelihood, [mean, sd.ln()], [0.5 * sd, 0.3]);
    Some((best[0], best[1].exp()))
}

/// ln C of the truncated power law C·x^{−α}e^{−λx} on [xmin, ∞): C = λ^{1−α}/Γ(1−α, λ·xmin).
fn truncated_power_law_log_normaliser(alpha: f64, lambda: f64, xmin: f64) -> f64 {
    (1.0 - alpha) * lambda.ln() - ln_upper_gamma(1.0 - alpha, lambda * xmin)
}

/// ln Γ(s, z) for any real s and z > 0, by quadrature of z^s ∫₀^∞ e^{su − z·eᵘ} du (t = z·eᵘ):
/// the integrand is log-concave, so it is integrated around its peak in log space.
pub fn ln_upper_gamma(s: f64, z: f64) -> f64 {
    let exponent = |u: f64| s * u - z * u.exp();
    // The peak: u* = ln(s/z) when s > z, else the left end.
    let peak = if s > z { (s / z).ln() } else { 0.0 };
    let top = exponent(peak);
    // Beyond the peak the exponent falls at least as fast as a line of slope s − z·e^u; step
    // out until it is 50 below the top (e^{−50} is below double precision).
    let mut end = peak + 1.0;
    while top - exponent(end) < 50.0 {
        end = peak + 2.0 * (end - peak);
    }
    let integral = integrate(|u| (exponent(u) - top).exp(), 0.0, end, 80);
    s * z.ln() + top + integral.ln()
}

/// Maximum-likelihood (α, λ) of the truncated power law, started from the power law's α and
/// λ = 1/mean; λ is optimised as ln λ, floored where λ·max(x) < 1e-12 (a plain power law).
fn fit_truncated_power_law(tail: &[f64], logs: &[f64], xmin: f64, alpha: f64) -> (f64, f64) {
    let n = tail.len() as f64;
    let sum_x: f64 = tail.iter().sum();
    let sum_log: f64 = logs.iter().sum();
    let largest = tail.iter().copied().fold(xmin, f64::max);
    let floor = (1e-12 / largest).ln();
    let negative_log_likelihood = |p: [f64; 2]| {
        let log_lambda = p[1].max(floor);
        let lambda = log_lambda.exp();
        -(n * truncated_power_law_log_normaliser(p[0], lambda, xmin)
            - p[0] * sum_log
            - lambda * sum_x)
    };
    let start = [alpha, (n / sum_x).ln()];
    let best = nelder_mead(negative_log_likelihood, start, [0.2, 1.0]);
    (best[0], best[1].max(floor).exp())
}

/// Nelder-Mead minimisation in two dimensions from `start` with initial steps `step`, until the
/// simplex's values agree to 1e-10 (relative) or 2000 iterations.
fn nelder_mead(f: impl Fn([f64; 2]) -> f64, start: [f64; 2], step: [f64; 2]) -> [f64; 2] {
    let mut simplex = [
        start,
        [start[0] + step[0], start[1]],
        [start[0], start[1] + step[1]],
    ];
    let mut values = simplex.map(|p| finite_or_max(f(p)));
    for _ in 0..2000 {
        let mut order = [0, 1, 2];
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        simplex = order.map(|i| simplex[i]);
        values = order.map(|i| values[i]);
        if (values[2] - values[0]).abs() <= 1e-10 * (1.0 + values[0].abs()) {
            break;
        }
        let centroid = [
            (simplex[0][0] + simplex[1][0]) / 2.0,
            (simplex[0][1] + simplex[1][1]) / 2.0,
        ];
        let along = |t: f64| {
            [
                centroid[0] + t * (simplex[2][0] - centroid[0]),
                centroid[1] + t * (simplex[2][1] - centroid[1]),
            ]
        };
        let reflected = along(-1.0);
        let reflected_value = finite_or_max(f(reflected));
        if reflected_value < values[0] {
            let expanded = along(-2.0);
            let expanded_value = finite_or_max(f(expanded));
            (simplex[2], values[2]) = if expanded_value < reflected_value {
                (expanded, expanded_value)
            } else {
                (reflected, reflected_value)
            };
        } else if reflected_value < values[1] {
            (simplex[2], values[2]) = (reflected, reflected_value);
        } else {
            let contracted = if reflected_value < values[2] {
                along(-0.5)
            } else {
                along(0.5)
            };
            let contracted_value = finite_or_max(f(contracted));
            if contracted_value < values[2].min(reflected_value) {
                (simplex[2], values[2]) = (contracted, contracted_value);
            } else {
                for i in 1..3 {
                    simplex[i] = [
                        (simplex[0][0] + simplex[i][0]) / 2.0,
                        (simplex[0][1] + simplex[i][1]) / 2.0,
                    ];
                    values[i] = finite_or_max(f(simplex[i]));
                }
            }
        }
    }
    let best = (0..3)
        .min_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap_or(0);
    simplex[best]
}

fn finite_or_max(value: f64) -> f64 {
    if value.is_finite() {
        value
    } else {
        f64::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_gamma_matches_mpmath() {
        // float(mpmath.log(mpmath.gammainc(s, z))) at 30 digits.
        let zs = [1e-6, 0.01, 0.7, 3.0, 40.0];
        for (s, want) in [
            (
                0.5,
                [
                    0.5712359270350787,
                    0.4530599691873045,
                    -0.8684972442761948,
                    -3.6747198038608895,
                    -41.85657125494714,
                ],
            ),
            (
                -0.5,
                [
                    7.599129434811202,
                    2.812696039258919,
                    -1.055832391799629,
                    -4.994348250734306,
                    -45.56929978254073,
                ],
            ),
            (
                -1.5,
                [
                    20.317797732377166,
                    6.47532492878818,
                    -1.0986092563828715,
                    -6.281677901258459,
                    -49.281495985322486,
                ],
            ),
            (
                0.0,
                [
                    2.5831138332419545,
                    1.3957320795548378,
                    -0.9841177388698334,
                    -4.339091206993297,
                    -43.71300351009848,
                ],
            ),
            (
                -1.0,
                [
                    13.815496319567515,
                    4.553530029328448,
                    -1.0917198950437514,
                    -5.641566171035443,
                    -47.425462996167674,
                ],
            ),
            (
                5.0,
                [
                    3.1780538303479458,
                    3.1780538303471193,
                    3.1772679862043507,
                    2.973809611869261,
                    -25.142029955357632,
                ],
            ),
        ] {
            for (z, want) in zs.iter().zip(want) {
                let got = ln_upper_gamma(s, *z);
                assert!(
                    (got - want).abs() < 1e-12 * want.abs().max(1.0),
                    "ln Γ({s}, {z}) = {got}, mpmath {want}"
                );
            }
        }
    }

    #[test]
    fn ln_erfc_matches_scipy_on_both_sides_of_its_switch() {
        // log(scipy.special.erfcx(z)) − z²; statrs' erfc is good to ~1e-10 relative.
        for (z, want) in [
            (19.9, -399.57434330827493),
            (20.1, -407.58431854520046),
            (30.0, -903.9741171106439),
        ] {
            assert!((ln_erfc(z) - want).abs() < 1e-9, "z={z}: {}", ln_erfc(z));
        }
    }

    #[test]
    fn exponential_data_prefer_the_exponential() {
        // Quantiles of an exponential of rate 0.5 above xmin = 1.
        let n = 2000;
        let tail: Vec<f64> = (0..n)
            .map(|i| 1.0 - 2.0 * (1.0 - (i as f64 + 0.5) / n as f64).ln())
            .collect();
        let logs_alpha = 1.0 + n as f64 / tail.iter().map(|x| x.ln()).sum::<f64>();
        let result = compare(&tail, 1.0, logs_alpha).unwrap();
        assert!((result.exponential_lambda - 0.5).abs() < 1e-3, "{result:?}");
        assert!(
            result.exponential_llr < 0.0 && result.exponential_p < 1e-6,
            "{result:?}"
        );
        assert!(result.tpl_llr < 0.0 && result.tpl_p < 1e-6, "{result:?}");
    }
}
