//! Gauss-Legendre quadrature, the workhorse of every integral in [`crate::stats::rmt`], and the
//! root finder that turns those CDFs into quantiles.

/// Nodes and weights of the n-point Gauss-Legendre rule on [a, b], by Newton's method on the
/// Legendre polynomial Pₙ from Tricomi's initial guesses (exact to ~1e-15 for n ≤ 1000).
pub fn gauss_legendre_rule(n: usize, a: f64, b: f64) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    let half = (b - a) / 2.0;
    let mid = (a + b) / 2.0;
    for i in 0..n.div_ceil(2) {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 1.0;
        for _ in 0..100 {
            let (p, dp) = legendre_with_derivative(n, x);
            derivative = dp;
            let step = p / dp;
            x -= step;
            if step.abs() < 1e-16 {
                break;
            }
        }
        let (_, dp) = legendre_with_derivative(n, x);
        if dp != 0.0 {
            derivative = dp;
        }
        let weight = 2.0 / ((1.0 - x * x) * derivative * derivative);
        nodes[i] = mid - half * x;
        nodes[n - 1 - i] = mid + half * x;
        weights[i] = weight * half;
        weights[n - 1 - i] = weight * half;
    }
    (nodes, weights)
}

/// Pₙ(x) and Pₙ′(x) by the three-term recurrence.
fn legendre_with_derivative(n: usize, x: f64) -> (f64, f64) {
    let (mut previous, mut current) = (1.0, x);
    if n == 0 {
        return (1.0, 0.0);
    }
    for k in 2..=n {
        let k = k as f64;
        let next = ((2.0 * k - 1.0) * x * current - (k - 1.0) * previous) / k;
        previous = current;
        current = next;
    }
    let n = n as f64;
    (current, n * (x * current - previous) / (x * x - 1.0))
}

/// ∫ₐᵇ f by `panels` panels of a 10-point Gauss-Legendre rule: for smooth integrands over long
/// intervals, where one high-order rule would need many nodes.
pub fn integrate(f: impl Fn(f64) -> f64, a: f64, b: f64, panels: usize) -> f64 {
    const NODES: [f64; 5] = [
        0.148_874_338_981_631_2,
        0.433_395_394_129_247_2,
        0.679_409_568_299_024_4,
        0.865_063_366_688_984_5,
        0.973_906_528_517_171_7,
    ];
    const WEIGHTS: [f64; 5] = [
        0.295_524_224_714_752_9,
        0.269_266_719_309_996_4,
        0.219_086_362_515_982,
        0.149_451_349_150_580_6,
        0.066_671_344_308_688_1,
    ];
    let width = (b - a) / panels as f64;
    (0..panels)
        .map(|p| {
            let mid = a + (p as f64 + 0.5) * width;
            let half = width / 2.0;
            NODES
                .iter()
                .zip(WEIGHTS)
                .map(|(&node, weight)| weight * (f(mid - half * node) + f(mid + half * node)))
                .sum::<f64>()
                * half
        })
        .sum()
}

/// The x in [lo, hi] with cdf(x) = p for a non-decreasing `cdf`, to a bracket narrower than
/// about `tolerance`·max(|hi|, 1); lo when cdf(lo) ≥ p, hi when cdf(hi) < p.
///
/// Brent's (1973) method: inverse quadratic or secant steps while they shrink the bracket fast
/// enough, bisection otherwise, so it converges superlinearly on a smooth CDF (a Tracy-Widom
/// quantile takes about a dozen CDF evaluations, each a Fredholm determinant, where bisection
/// took 48) and is never much slower than bisection on a rough one.
pub fn invert_cdf(cdf: impl Fn(f64) -> f64, p: f64, lo: f64, hi: f64, tolerance: f64) -> f64 {
    let f = |x: f64| cdf(x) - p;
    let (mut a, mut b) = (lo, hi);
    let (mut fa, mut fb) = (f(a), f(b));
    if fa.is_nan() || fa >= 0.0 {
        return lo;
    }
    if fb < 0.0 {
        return hi;
    }
    // Never below the smallest normal number (a zero or NaN tolerance included): the bracket
    // then always shrinks to a stop, where a bisection with no floor would loop forever.
    let target = (0.5 * tolerance * hi.abs().max(1.0)).max(f64::MIN_POSITIVE);
    // c is the other end of the bracket [b, c]; d the last step, e the one before.
    let (mut c, mut fc) = (a, fa);
    let (mut d, mut e) = (b - a, b - a);
    loop {
        if (fb < 0.0) == (fc < 0.0) {
            (c, fc) = (a, fa);
            (d, e) = (b - a, b - a);
        }
        if fc.abs() < fb.abs() {
            (a, fa) = (b, fb);
            (b, fb) = (c, fc);
            (c, fc) = (a, fa);
        }
        let step_floor = 2.0 * f64::EPSILON * b.abs() + target;
        let half = 0.5 * (c - b);
        if half.abs() <= step_floor || fb == 0.0 {
            return b;
        }
        if e.abs() >= step_floor && fa.abs() > fb.abs() {
            let s = fb / fa;
            let (mut num, mut den) = if a == c {
                (2.0 * half * s, 1.0 - s)
            } else {
                let (q, r) = (fa / fc, fb / fc);
                (
                    s * (2.0 * half * q * (q - r) - (b - a) * (r - 1.0)),
                    (q - 1.0) * (r - 1.0) * (s - 1.0),
                )
            };
            if num > 0.0 {
                den = -den;
            }
            num = num.abs();
            if 2.0 * num < (3.0 * half * den - (step_floor * den).abs()).min((e * den).abs()) {
                (e, d) = (d, num / den);
            } else {
                (d, e) = (half, half);
            }
        } else {
            (d, e) = (half, half);
        }
        (a, fa) = (b, fb);
        b += if d.abs() > step_floor {
            d
        } else {
            step_floor.copysign(half)
        };
        fb = f(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_integrate_polynomials_exactly() {
        for n in [1, 2, 5, 16, 40, 81] {
            let (x, w) = gauss_legendre_rule(n, -1.0, 3.0);
            assert!((w.iter().sum::<f64>() - 4.0).abs() < 1e-13, "n={n}");
            // Degree 2n−1 is exact: ∫₋₁³ t^(2n−1) dt = (3^(2n) − 1)/(2n).
            let degree = 2 * n as i32 - 1;
            let exact = (3f64.powi(degree + 1) - 1.0) / (degree + 1) as f64;
            let got: f64 = x.iter().zip(&w).map(|(t, w)| w * t.powi(degree)).sum();
            assert!((got - exact).abs() < 1e-12 * exact.abs(), "n={n}");
        }
    }

    /// Quantiles of closed-form laws, in few evaluations: the exponential's ln 2, a law with
    /// flat stretches (a CDF clamped to 0 and 1, as Tracy-Widom's is outside its support) and
    /// a step; ends outside the range give the ends.
    #[test]
    fn inversion_finds_the_quantile() {
        let calls = std::cell::Cell::new(0);
        let exponential = |x: f64| {
            calls.set(calls.get() + 1);
            1.0 - (-x).exp()
        };
        let x = invert_cdf(exponential, 0.5, 0.0, 50.0, 1e-14);
        assert!((x - std::f64::consts::LN_2).abs() < 1e-12);
        assert!(calls.get() < 25, "{} evaluations", calls.get());
        let clamped = |x: f64| ((x - 1.0) / 2.0).clamp(0.0, 1.0).powi(3);
        for p in [1e-9, 0.3, 0.999_999] {
            let x = invert_cdf(clamped, p, -12.0, 14.0, 1e-14);
            assert!((x - (1.0 + 2.0 * p.cbrt())).abs() < 1e-12, "p={p}: {x}");
        }
        let step = |x: f64| if x < 2.5 { 0.0 } else { 1.0 };
        assert!((invert_cdf(step, 0.5, 0.0, 10.0, 1e-14) - 2.5).abs() < 1e-12);
        assert_eq!(invert_cdf(exponential, 0.0, 0.0, 50.0, 1e-14), 0.0);
        assert_eq!(invert_cdf(exponential, 1.0, 0.0, 5.0, 1e-14), 5.0);
        // A zero or NaN tolerance still ends, at the closest float.
        for tolerance in [0.0, f64::NAN] {
            let x = invert_cdf(exponential, 0.5, 0.0, 50.0, tolerance);
            assert!(
                (x - std::f64::consts::LN_2).abs() < 1e-15,
                "{tolerance}: {x}"
            );
        }
    }

    #[test]
    fn composite_rule_integrates_smooth_functions() {
        let got = integrate(f64::exp, 0.0, 2.0, 4);
        assert!((got - (2f64.exp() - 1.0)).abs() < 1e-14);
    }
}
