//! Special functions the distributions need and neither `std` nor statrs provides: the Airy
//! function (Tracy-Widom's kernels) and the sine and cosine integrals (GOE number variance).

/// Ai(0) and −Ai′(0).
const AIRY_C1: f64 = 0.355_028_053_887_817_2;
const AIRY_C2: f64 = 0.258_819_403_792_806_8;

/// Ai(x) and Ai′(x): Maclaurin series for x < 6 (absolute error below 5e-12 on [−6, 6], 1e-9 at
/// x = −8), the asymptotic expansion (DLMF 9.7.5–6) beyond, where its error is below 1e-13
/// relative to Ai's size at 6.
pub fn airy(x: f64) -> (f64, f64) {
    if x >= 6.0 {
        return airy_asymptotic(x);
    }
    let cube = x * x * x;
    // f = Σ x^{3k}·…, g = Σ x^{3k+1}·…: Ai = c₁f − c₂g, Ai′ = c₁f′ − c₂g′.
    let (mut f_term, mut g_term) = (1.0, x);
    let (mut df_term, mut dg_term) = (x * x / 2.0, 1.0);
    let (mut f, mut g, mut df, mut dg) = (f_term, g_term, df_term, dg_term);
    for k in 1..200 {
        let k3 = 3.0 * k as f64;
        f_term *= cube / ((k3 - 1.0) * k3);
        g_term *= cube / (k3 * (k3 + 1.0));
        dg_term *= cube / (k3 * (k3 - 2.0));
        if k >= 2 {
            df_term *= cube / ((k3 - 3.0) * (k3 - 1.0));
            df += df_term;
        }
        f += f_term;
        g += g_term;
        dg += dg_term;
        let largest = f_term.abs().max(g_term.abs()).max(dg_term.abs());
        if largest < 1e-18 * (1.0 + f.abs().max(g.abs())) {
            break;
        }
    }
    (AIRY_C1 * f - AIRY_C2 * g, AIRY_C1 * df - AIRY_C2 * dg)
}

fn airy_asymptotic(x: f64) -> (f64, f64) {
    let zeta = 2.0 / 3.0 * x.powf(1.5);
    let (mut u, mut sum_ai, mut sum_dai) = (1.0f64, 1.0f64, 1.0f64);
    let mut power = 1.0;
    let mut previous = f64::INFINITY;
    for k in 1..60 {
        let kf = k as f64;
        u *= (6.0 * kf - 5.0) * (6.0 * kf - 3.0) * (6.0 * kf - 1.0)
            / ((2.0 * kf - 1.0) * 216.0 * kf);
        power *= -1.0 / zeta;
        let term = u * power;
        if term.abs() >= previous || term.abs() < 1e-17 {
            break;
        }
        previous = term.abs();
        sum_ai += term;
        sum_dai += -(6.0 * kf + 1.0) / (6.0 * kf - 1.0) * term;
    }
    let front = (-zeta).exp() / (2.0 * std::f64::consts::PI.sqrt());
    let quarter = x.powf(0.25);
    (front / quarter * sum_ai, -front * quarter * sum_dai)
}

/// The sine and cosine integrals (Si(x), Ci(x)) for x > 0: power series up to 4, beyond it the
/// continued fraction of E₁(ix) = −Ci(x) + i(Si(x) − π/2) (Lentz's method), both to ~1e-15.
pub fn sine_cosine_integrals(x: f64) -> (f64, f64) {
    const EULER: f64 = 0.577_215_664_901_532_9;
    assert!(x > 0.0, "Si/Ci are evaluated for x > 0");
    if x <= 4.0 {
        let (mut si, mut ci) = (0.0, 0.0);
        let mut factorial_term = 1.0; // x^j / j!
        for j in 1..100 {
            factorial_term *= x / j as f64;
            let term = factorial_term / j as f64;
            // j odd → Si with sign (−1)^((j−1)/2); j even → Ci with sign (−1)^(j/2).
            let sign = if (j / 2) % 2 == 0 { 1.0 } else { -1.0 };
            if j % 2 == 1 {
                si += sign * term;
            } else {
                ci += sign * term;
            }
            if term < 1e-17 {
                break;
            }
        }
        return (si, EULER + x.ln() + ci);
    }
    // Modified Lentz on E₁(z)eᶻ = 1/(z+1− 1²/(z+3− 2²/(z+5− …))), z = ix.
    let tiny = 1e-300;
    let mut b = (1.0, x);
    let mut c = (1.0 / tiny, 0.0);
    let mut d = complex_inverse(b);
    let mut h = d;
    for i in 2..1000 {
        let a = -((i - 1) as f64).powi(2);
        b.0 += 2.0;
        d = complex_inverse((a * d.0 + b.0, a * d.1 + b.1));
        let a_over_c = complex_scale(complex_inverse(c), a);
        c = (b.0 + a_over_c.0, b.1 + a_over_c.1);
        let delta = complex_multiply(c, d);
        h = complex_multiply(h, delta);
        if (delta.0 - 1.0).abs() + delta.1.abs() < 1e-16 {
            break;
        }
    }
    let e1 = complex_multiply((x.cos(), -x.sin()), h);
    (std::f64::consts::FRAC_PI_2 + e1.1, -e1.0)
}

fn complex_inverse((re, im): (f64, f64)) -> (f64, f64) {
    let norm = re * re + im * im;
    (re / norm, -im / norm)
}

fn complex_multiply(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0)
}

fn complex_scale(a: (f64, f64), s: f64) -> (f64, f64) {
    (a.0 * s, a.1 * s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airy_matches_scipy() {
        // scipy.special.airy(x)[0:2]
        for (x, ai, dai) in [
            (-8.0, -0.05270505035638643, 0.9355609381983064),
            (-3.0, -0.37881429367765806, 0.314583769216599),
            (-1.0, 0.5355608832923522, -0.010160567116645175),
            (0.0, 0.3550280538878172, -0.2588194037928068),
            (2.5, 0.015725923380470484, -0.02625088103590323),
            (5.99, 1.019835390890621e-05, -2.5369045938235753e-05),
            (6.0, 9.947694360252897e-06, -2.4765200397034972e-05),
            (10.0, 1.1047532552898654e-10, -3.520633676738912e-10),
        ] {
            let (got_ai, got_dai) = airy(x);
            let tolerance = if x < -6.0 { 1e-9 } else { 5e-12 };
            assert!((got_ai - ai).abs() < tolerance, "Ai({x}) = {got_ai}");
            assert!((got_dai - dai).abs() < tolerance, "Ai'({x}) = {got_dai}");
            if x >= 6.0 {
                assert!((got_ai / ai - 1.0).abs() < 1e-8, "relative Ai({x})");
                assert!((got_dai / dai - 1.0).abs() < 1e-8, "relative Ai'({x})");
            }
        }
    }

    #[test]
    fn sine_cosine_integrals_match_scipy() {
        // scipy.special.sici(x)
        for (x, si, ci) in [
            (0.5, 0.49310741804306674, -0.17778407880661287),
            (3.0, 1.848652527999468, 0.11962978600800067),
            (4.0, 1.758203138949053, -0.1409816978869305),
            (4.5, 1.654140414379244, -0.1934911221017388),
            (62.83, 1.5548888983711837, -0.0002824128863498018),
        ] {
            let (got_si, got_ci) = sine_cosine_integrals(x);
            assert!((got_si - si).abs() < 1e-13, "Si({x}) = {got_si}");
            assert!((got_ci - ci).abs() < 1e-13, "Ci({x}) = {got_ci}");
        }
    }
}
