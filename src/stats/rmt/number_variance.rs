//! Level number variance Σ²(L): the variance of the number of unfolded levels in an interval of
//! length L, which probes correlations over many spacings (Poisson: L; GOE: ~ (2/π²) ln L).
use serde::{Deserialize, Serialize};

use crate::stats::rmt::special::sine_cosine_integrals;

/// Euler-Mascheroni constant γ_E.
const EULER: f64 = 0.577_215_664_901_532_9;

/// Σ²(L) of a spectrum beside its GOE and Poisson values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NumberVariance {
    /// Interval length in mean spacings.
    #[serde(rename = "L")]
    pub length: f64,
    /// ⟨(n[x, x+L] − L)²⟩ over start points x of the unfolded spectrum.
    pub value: f64,
    /// Exact GOE value (Mehta).
    pub goe: f64,
    /// Poisson value L.
    pub poisson: f64,
}

/// Σ²(L) of `unfolded` (ascending, unit mean spacing), averaged over start points x on a grid
/// of step 0.05 from the first level to the last minus L; `None` when L does not fit.
pub fn number_variance(unfolded: &[f64], length: f64) -> Option<NumberVariance> {
    let (&first, &last) = (unfolded.first()?, unfolded.last()?);
    if length.is_nan() || length <= 0.0 || last - first <= length {
        return None;
    }
    let step = 0.05;
    let starts = ((last - first - length) / step).floor() as usize + 1;
    let sum: f64 = (0..starts)
        .map(|j| {
            let x = first + j as f64 * step;
            let count = unfolded.partition_point(|&v| v < x + length)
                - unfolded.partition_point(|&v| v < x);
            (count as f64 - length).powi(2)
        })
        .sum();
    Some(NumberVariance {
        length,
        value: sum / starts as f64,
        goe: goe_number_variance(length),
        poisson: length,
    })
}

/// The exact GOE number variance (Mehta, Random Matrices, eq. 16.1.3):
/// Σ²_GOE = 2Σ²_GUE + Si(πL)²/π² − Si(πL)/π,
/// Σ²_GUE = π⁻²[ln(2πL) + γ_E + 1 − cos 2πL − Ci(2πL)] + L(1 − (2/π)Si(2πL)).
pub fn goe_number_variance(length: f64) -> f64 {
    use std::f64::consts::PI;
    let two_pi_l = 2.0 * PI * length;
    let (si_2, ci_2) = sine_cosine_integrals(two_pi_l);
    let gue = ((two_pi_l).ln() + EULER + 1.0 - two_pi_l.cos() - ci_2) / (PI * PI)
        + length * (1.0 - 2.0 / PI * si_2);
    let (si_1, _) = sine_cosine_integrals(PI * length);
    2.0 * gue + si_1 * si_1 / (PI * PI) - si_1 / PI
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goe_curve_matches_reference_values_and_its_asymptote() {
        // Mehta's (2004) exact GOE values.
        assert!((goe_number_variance(1.0) - 0.44633).abs() < 5e-6);
        assert!((goe_number_variance(10.0) - 0.90869).abs() < 5e-6);
        let l: f64 = 200.0;
        let asymptote = 2.0 / (std::f64::consts::PI.powi(2))
            * ((2.0 * std::f64::consts::PI * l).ln() + EULER + 1.0
                - std::f64::consts::PI.powi(2) / 8.0);
        assert!((goe_number_variance(l) - asymptote).abs() < 2e-3);
    }

    #[test]
    fn a_lattice_has_the_variance_of_a_uniform_offset() {
        // For a lattice, n[x, x+L] − L with integer L is 0; with L + ½ it is ±½.
        let lattice: Vec<f64> = (0..1000).map(f64::from).collect();
        assert!(number_variance(&lattice, 5.0).unwrap().value < 0.06);
        assert!((number_variance(&lattice, 5.5).unwrap().value - 0.25).abs() < 1e-9);
        assert!(number_variance(&lattice, 2000.0).is_none());
    }
}
