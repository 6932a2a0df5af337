//! One-sample Kolmogorov-Smirnov test of a sample against a continuous CDF.

/// The KS statistic D and its asymptotic p-value.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct KsTest {
    /// D = supₓ |Fₙ(x) − F(x)|.
    pub statistic: f64,
    /// P(D ≥ observed) under the null, Kolmogorov's limit with Stephens' (1970) small-n
    /// correction √n + 0.12 + 0.11/√n.
    pub p_value: f64,
}

/// KS test of `sample` (any order) against `cdf`. `None` for an empty sample.
pub fn ks_test(sample: &[f64], cdf: impl Fn(f64) -> f64) -> Option<KsTest> {
    if sample.is_empty() {
        return None;
    }
    let mut sorted = sample.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let statistic = sorted
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).max((i + 1) as f64 / n - f)
        })
        .fold(0.0, f64::max);
    let root = n.sqrt();
    let p_value = kolmogorov_survival((root + 0.12 + 0.11 / root) * statistic);
    Some(KsTest { statistic, p_value })
}

/// Survival function of the Kolmogorov distribution: Q(t) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²t²}.
pub fn kolmogorov_survival(t: f64) -> f64 {
    if t <= 0.0 {
        return 1.0;
    }
    if t < 0.2 {
        return 1.0;
    }
    let sum: f64 = (1..=100)
        .map(|k| {
            let k = k as f64;
            let sign = if k as i64 % 2 == 1 { 1.0 } else { -1.0 };
            sign * (-2.0 * k * k * t * t).exp()
        })
        .sum();
    (2.0 * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kolmogorov_matches_scipy_kstwobign() {
        // scipy.stats.kstwobign.sf(t)
        for (t, want) in [
            (0.5, 0.9639452436648751),
            (1.0, 0.26999967167735456),
            (1.36, 0.049485876755377876),
            (2.0, 0.0006709252557797),
        ] {
            assert!((kolmogorov_survival(t) - want).abs() < 1e-9, "t={t}");
        }
    }

    #[test]
    fn uniform_grid_has_the_smallest_distance() {
        let sample: Vec<f64> = (0..100).map(|i| (i as f64 + 0.5) / 100.0).collect();
        let test = ks_test(&sample, |x| x.clamp(0.0, 1.0)).unwrap();
        assert!((test.statistic - 0.005).abs() < 1e-12);
        assert!(test.p_value > 0.999);
        let shifted: Vec<f64> = sample.iter().map(|x| x * 0.5).collect();
        assert!(ks_test(&shifted, |x| x.clamp(0.0, 1.0)).unwrap().p_value < 1e-10);
    }
}
