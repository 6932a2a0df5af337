//! Hermite coefficients of activation functions: φ(ξ) = Σ aₖ Heₖ(ξ)/√k! for ξ ~ N(0, 1),
//! aₖ = E[φ(ξ)Heₖ(ξ)]/√k!, and ν = E[φ(ξ)²]. They give the linear equivalent of a random
//! layer's conjugate kernel (Liao & Mahoney (2025), mechanism 2):
//! K̃ = a₀²11ᵀ + a₁²XᵀX + a₂²(1/p)11ᵀ + (ν − a₀² − a₁²)I.
use serde::Serialize;

use crate::error::{Error, Result};
use crate::option_names::option_names;
use crate::stats::rmt::quadrature::integrate;

/// The built-in activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(0, x).
    Relu,
    /// max(0.01x, x).
    LeakyRelu,
    /// tanh x.
    Tanh,
    /// 1/(1 + e^{−x}).
    Sigmoid,
    /// erf x.
    Erf,
    /// x·Φ(x), the exact GELU.
    Gelu,
    /// x·sigmoid(x).
    Silu,
}

impl Activation {
    /// Each activation's formula, in the order of its names (for `--help`).
    pub const FORMULAS: [&'static str; 7] = [
        "max(0, x)",
        "max(0.01x, x)",
        "tanh x",
        "1/(1 + e^{−x})",
        "erf x",
        "x·Φ(x), the exact GELU",
        "x·sigmoid(x), also called swish",
    ];
}

option_names!(Activation, "activation", {
    Relu => "relu", LeakyRelu => "leaky_relu", Tanh => "tanh", Sigmoid => "sigmoid",
    Erf => "erf", Gelu => "gelu", Silu => "silu"
});

impl Activation {
    /// φ(x).
    pub fn apply(self, x: f64) -> f64 {
        use statrs::function::erf::erf;
        match self {
            Self::Relu => x.max(0.0),
            Self::LeakyRelu => x.max(0.01 * x),
            Self::Tanh => x.tanh(),
            Self::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Self::Erf => erf(x),
            Self::Gelu => x * 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2)),
            Self::Silu => x / (1.0 + (-x).exp()),
        }
    }
}

/// The first coefficients and ν of an activation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HermiteCoefficients {
    /// The activation.
    pub activation: Activation,
    /// a₀, a₁, … (normalised: Σ aₖ² = ν).
    pub coefficients: Vec<f64>,
    /// ν = E[φ(ξ)²].
    pub nu: f64,
}

/// aₖ for k ≤ `order` and ν by Gauss-Legendre quadrature of φ(x)Heₖ(x)e^{−x²/2}/√(2π) on
/// [−14, 0] and [0, 14] separately (the kinks of ReLU-like activations sit at 0, where the
/// panels meet; the Gaussian beyond 14 is below 1e-40): ~1e-14 absolute.
pub fn hermite_coefficients(activation: Activation, order: usize) -> Result<HermiteCoefficients> {
    if order > 30 {
        return Err(Error::InvalidOption(format!(
            "Hermite order {order} is beyond what double precision resolves (at most 30)"
        )));
    }
    let gaussian = |x: f64| (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let expectation = |f: &dyn Fn(f64) -> f64| {
        integrate(|x| f(x) * gaussian(x), -14.0, 0.0, 200)
            + integrate(|x| f(x) * gaussian(x), 0.0, 14.0, 200)
    };
    let mut factorial = 1.0;
    let mut coefficients = Vec::with_capacity(order + 1);
    for k in 0..=order {
        if k > 0 {
            factorial *= k as f64;
        }
        let value = expectation(&|x| activation.apply(x) * probabilists_hermite(k, x));
        coefficients.push(value / factorial.sqrt());
    }
    let nu = expectation(&|x| activation.apply(x).powi(2));
    Ok(HermiteCoefficients {
        activation,
        coefficients,
        nu,
    })
}

/// Heₖ(x) by the recurrence He_{k+1} = x·Heₖ − k·He_{k−1}.
fn probabilists_hermite(k: usize, x: f64) -> f64 {
    let (mut previous, mut current) = (1.0, x);
    if k == 0 {
        return 1.0;
    }
    for j in 1..k {
        let next = x * current - j as f64 * previous;
        previous = current;
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_and_tanh_match_the_reference() {
        // Closed forms: a₀ = 1/√(2π), a₁ = 1/2, a₂ = 1/(2√π), a₃ = 0 for ReLU.
        let relu = hermite_coefficients(Activation::Relu, 3).unwrap();
        let want = [0.3989422804014327, 0.5, 0.28209479177387814, 0.0];
        for (got, want) in relu.coefficients.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{relu:?}");
        }
        assert!((relu.nu - 0.5).abs() < 1e-12);
        let tanh = hermite_coefficients(Activation::Tanh, 4).unwrap();
        assert!(
            (tanh.coefficients[1] - 0.6057055096).abs() < 1e-10,
            "{tanh:?}"
        );
        assert!((tanh.nu - 0.3942944904).abs() < 1e-10);
        for even in [0, 2, 4] {
            assert!(tanh.coefficients[even].abs() < 1e-14);
        }
    }

    #[test]
    fn coefficients_exhaust_the_variance_of_smooth_activations() {
        // Parseval: Σ aₖ² = ν; for erf the series converges fast.
        let erf = hermite_coefficients(Activation::Erf, 25).unwrap();
        let sum: f64 = erf.coefficients.iter().map(|a| a * a).sum();
        assert!((sum - erf.nu).abs() < 1e-6, "{sum} vs {}", erf.nu);
        // GELU = x·Φ(x): a₁ = E[ξ²Φ(ξ)] = ½E[ξ²] = ½ by the symmetry Φ(ξ) + Φ(−ξ) = 1.
        let gelu = hermite_coefficients(Activation::Gelu, 2).unwrap();
        assert!((gelu.coefficients[1] - 0.5).abs() < 1e-12, "{gelu:?}");
        assert!(hermite_coefficients(Activation::Silu, 31).is_err());
    }
}
