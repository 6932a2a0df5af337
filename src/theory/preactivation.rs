//! Pre-activation statistics of a random network at initialisation (Aarts (2025), eq. 32; Roberts,
//! Yaida & Hanin): with W⁽ˡ⁾ ~ N(0, σ_W²/n_{l−1}) and no biases, the pre-activations of two
//! inputs are, at infinite width, Gaussian with E[z⁽ˡ⁾ᵢ(x_α)z⁽ˡ⁾ⱼ(x_β)] = δᵢⱼ K⁽ˡ⁾_αβ and
//! K⁽¹⁾_αβ = σ_W² x_α·x_β/n₀, K⁽ˡ⁺¹⁾_αβ = σ_W² E[φ(u_α)φ(u_β)], (u_α, u_β) ~ N(0, K⁽ˡ⁾).
use serde::Serialize;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::random::SeededNormal;
use crate::stats::rmt::quadrature::integrate;
use crate::theory::hermite::Activation;
use crate::theory::kernel::{activate, gaussian_matrix};

/// The 2 × 2 kernel of two inputs at one layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairKernel {
    /// Layer l, from 1.
    pub layer: usize,
    /// K_αα.
    pub k_aa: f64,
    /// K_αβ.
    pub k_ab: f64,
    /// K_ββ.
    pub k_bb: f64,
}

impl PairKernel {
    /// The correlation K_αβ/√(K_αα K_ββ).
    pub fn correlation(&self) -> f64 {
        self.k_ab / (self.k_aa * self.k_bb).sqrt()
    }
}

fn check(sigma_w2: f64, x_a: &[f64], x_b: &[f64], layers: usize) -> Result<()> {
    if !(sigma_w2.is_finite() && sigma_w2 > 0.0)
        || x_a.is_empty()
        || x_a.len() != x_b.len()
        || layers == 0
        || !x_a.iter().chain(x_b).all(|v| v.is_finite())
    {
        return Err(Error::InvalidOption(format!(
            "the pre-activation recursion needs σ_W² > 0, two finite inputs of one length and at \
             least one layer (got σ_W² = {sigma_w2}, lengths {} and {}, {layers} layers)",
            x_a.len(),
            x_b.len()
        )));
    }
    Ok(())
}

/// K⁽ˡ⁾ for l = 1…layers by the recursion, each Gaussian expectation by Gauss-Legendre
/// quadrature split where the activation's kink can sit (~1e-12).
pub fn kernel_recursion(
    activation: Activation,
    sigma_w2: f64,
    x_a: &[f64],
    x_b: &[f64],
    layers: usize,
) -> Result<Vec<PairKernel>> {
    check(sigma_w2, x_a, x_b, layers)?;
    // Three two-dimensional Gauss-Hermite quadratures per layer.
    super::budget::check(
        format!("the recursion over {layers} layers"),
        0.0,
        layers as f64 * 3e5,
    )?;
    let dot = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
    let n0 = x_a.len() as f64;
    let mut kernel = PairKernel {
        layer: 1,
        k_aa: sigma_w2 * dot(x_a, x_a) / n0,
        k_ab: sigma_w2 * dot(x_a, x_b) / n0,
        k_bb: sigma_w2 * dot(x_b, x_b) / n0,
    };
    let mut kernels = vec![kernel];
    for layer in 2..=layers {
        let phi = |u: f64| activation.apply(u);
        kernel = PairKernel {
            layer,
            k_aa: sigma_w2 * gaussian_pair_expectation(phi, kernel.k_aa, kernel.k_aa, kernel.k_aa),
            k_ab: sigma_w2 * gaussian_pair_expectation(phi, kernel.k_aa, kernel.k_ab, kernel.k_bb),
            k_bb: sigma_w2 * gaussian_pair_expectation(phi, kernel.k_bb, kernel.k_bb, kernel.k_bb),
        };
        kernels.push(kernel);
    }
    Ok(kernels)
}

/// E[φ(u)φ(v)] for (u, v) ~ N(0, [[k_uu, k_uv], [k_uv, k_vv]]): u = √k_uu ξ₁,
/// v = √k_vv(ρξ₁ + √(1 − ρ²)ξ₂), the inner integral split where v = 0.
pub fn gaussian_pair_expectation(phi: impl Fn(f64) -> f64, k_uu: f64, k_uv: f64, k_vv: f64) -> f64 {
    const REACH: f64 = 12.0;
    const PANELS: usize = 40;
    let gaussian = |x: f64| (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let (su, sv) = (k_uu.max(0.0).sqrt(), k_vv.max(0.0).sqrt());
    if su == 0.0 || sv == 0.0 {
        return phi(0.0) * phi(0.0);
    }
    let rho = (k_uv / (su * sv)).clamp(-1.0, 1.0);
    let split = |f: &dyn Fn(f64) -> f64, at: f64| {
        let at = at.clamp(-REACH, REACH);
        integrate(|x| f(x) * gaussian(x), -REACH, at, PANELS)
            + integrate(|x| f(x) * gaussian(x), at, REACH, PANELS)
    };
    let orthogonal = (1.0 - rho * rho).sqrt();
    if orthogonal < 1e-9 {
        return split(&|x| phi(su * x) * phi(sv * rho.signum() * x), 0.0);
    }
    split(
        &|x1| {
            let inner = |x2: f64| phi(sv * (rho * x1 + orthogonal * x2));
            phi(su * x1) * split(&inner, -rho * x1 / orthogonal)
        },
        0.0,
    )
}

/// K⁽ˡ⁾ measured: the mean over `networks` random networks of width n (seeded) of
/// (1/n)Σᵢ zᵢ(x_α)zᵢ(x_β) at every layer, with its standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeasuredKernel {
    /// The mean.
    pub mean: PairKernel,
    /// Standard errors of K_αα, K_αβ, K_ββ over the networks.
    pub stderr: [f64; 3],
}

/// Which random networks to average over.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ensemble {
    /// Width n of every hidden layer.
    pub width: usize,
    /// Networks drawn.
    pub networks: usize,
    /// Seed of the weights.
    pub seed: u64,
}

/// Monte-Carlo of the same quantities over random networks: weights drawn with the seeded
/// generator, forward passes with libtorch in f64.
pub fn measured_kernels(
    activation: Activation,
    sigma_w2: f64,
    (x_a, x_b): (&[f64], &[f64]),
    layers: usize,
    ensemble: Ensemble,
) -> Result<Vec<MeasuredKernel>> {
    let Ensemble {
        width,
        networks,
        seed,
    } = ensemble;
    check(sigma_w2, x_a, x_b, layers)?;
    if width == 0 || networks < 2 {
        return Err(Error::InvalidOption(format!(
            "the Monte-Carlo needs a width ≥ 1 and at least 2 networks (got {width}, {networks})"
        )));
    }
    let n0 = x_a.len();
    let [width_, networks_, layers_, n0_] = super::budget::sizes([width, networks, layers, n0]);
    super::budget::check(
        format!("{networks} networks of width {width}, {layers} layers deep, input dimension {n0}"),
        8.0 * (2.0 * width_ * width_.max(n0_) + 4.0 * width_),
        networks_ * (layers_ * 2.0 * width_ * width_ * 2.0 + 2.0 * width_ * n0_ * 2.0),
    )?;
    let inputs = Tensor::from_slice(&[x_a, x_b].concat())
        .reshape([2, n0 as i64])
        .tr();
    let mut rng = SeededNormal::new(seed);
    // per layer, per network: (k_aa, k_ab, k_bb)
    let mut samples = vec![Vec::with_capacity(networks); layers];
    for _ in 0..networks {
        let mut activations = inputs.shallow_clone();
        for layer_samples in samples.iter_mut() {
            let fan_in = activations.size()[0] as usize;
            let w = gaussian_matrix(&mut rng, width, fan_in, (sigma_w2 / fan_in as f64).sqrt());
            let z = w.matmul(&activations);
            let gram = z.tr().matmul(&z) / width as f64;
            let entries = Vec::<f64>::try_from(gram.flatten(0, -1).to_kind(Kind::Double))?;
            layer_samples.push([entries[0], entries[1], entries[3]]);
            activations = activate(activation, &z)?;
        }
    }
    Ok(samples
        .iter()
        .enumerate()
        .map(|(index, values)| {
            let count = values.len() as f64;
            let mean = |k: usize| values.iter().map(|v| v[k]).sum::<f64>() / count;
            let stderr = |k: usize| {
                let m = mean(k);
                (values.iter().map(|v| (v[k] - m).powi(2)).sum::<f64>() / (count - 1.0) / count)
                    .sqrt()
            };
            MeasuredKernel {
                mean: PairKernel {
                    layer: index + 1,
                    k_aa: mean(0),
                    k_ab: mean(1),
                    k_bb: mean(2),
                },
                stderr: [stderr(0), stderr(1), stderr(2)],
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arc-cosine kernel: E[relu(u)relu(v)] = √(k_uu k_vv)(sin θ + (π − θ)cos θ)/(2π),
    /// cos θ = ρ (Cho & Saul 2009).
    fn arc_cosine(k_uu: f64, k_uv: f64, k_vv: f64) -> f64 {
        let norm = (k_uu * k_vv).sqrt();
        let theta = (k_uv / norm).clamp(-1.0, 1.0).acos();
        norm * (theta.sin() + (std::f64::consts::PI - theta) * theta.cos())
            / (2.0 * std::f64::consts::PI)
    }

    #[test]
    fn the_quadrature_matches_the_arc_cosine_kernel() {
        for (k_uu, k_uv, k_vv) in [
            (1.0, 0.3, 2.0),
            (0.5, -0.4, 0.7),
            (1.0, 1.0, 1.0),
            (2.0, 0.0, 1.0),
        ] {
            let value = gaussian_pair_expectation(|x| x.max(0.0), k_uu, k_uv, k_vv);
            let exact = arc_cosine(k_uu, k_uv, k_vv);
            assert!(
                (value - exact).abs() < 1e-12,
                "{k_uu} {k_uv} {k_vv}: {value} vs {exact}"
            );
        }
        // tanh at ρ = 0 factorises: E[tanh u]E[tanh v] = 0; at ρ = 1 it is E[tanh²ξ] = ν.
        assert!(gaussian_pair_expectation(f64::tanh, 1.0, 0.0, 1.0).abs() < 1e-14);
        let nu = gaussian_pair_expectation(f64::tanh, 1.0, 1.0, 1.0);
        assert!((nu - 0.3942944903978).abs() < 1e-10, "{nu}");
    }

    #[test]
    fn relu_at_the_critical_point_keeps_the_variance_and_the_recursion_is_exact() {
        let x_a = vec![1.0; 16];
        let x_b: Vec<f64> = (0..16)
            .map(|i| if i % 2 == 0 { 1.0 } else { -0.5 })
            .collect();
        // σ_W² = 2 is ReLU's criticality: K_αα stays put.
        let kernels = kernel_recursion(Activation::Relu, 2.0, &x_a, &x_b, 6).unwrap();
        for k in &kernels {
            assert!((k.k_aa - 2.0).abs() < 1e-10, "{k:?}");
        }
        // Each step is the arc-cosine map, and correlations grow towards 1 with depth.
        for pair in kernels.windows(2) {
            let (before, after) = (pair[0], pair[1]);
            let exact = 2.0 * arc_cosine(before.k_aa, before.k_ab, before.k_bb);
            assert!((after.k_ab - exact).abs() < 1e-10);
            assert!(after.correlation() > before.correlation());
        }
    }

    #[test]
    fn random_networks_reproduce_the_recursion() {
        let mut rng = SeededNormal::new(5);
        let x_a = rng.normals(64);
        let x_b: Vec<f64> = x_a.iter().map(|v| 0.6 * v + 0.8 * rng.normal()).collect();
        let ensemble = Ensemble {
            width: 256,
            networks: 100,
            seed: 6,
        };
        for (activation, sigma_w2) in [(Activation::Tanh, 1.5), (Activation::Relu, 2.0)] {
            let theory = kernel_recursion(activation, sigma_w2, &x_a, &x_b, 4).unwrap();
            let measured =
                measured_kernels(activation, sigma_w2, (&x_a, &x_b), 4, ensemble).unwrap();
            for (t, m) in theory.iter().zip(&measured) {
                let pairs = [
                    (t.k_aa, m.mean.k_aa),
                    (t.k_ab, m.mean.k_ab),
                    (t.k_bb, m.mean.k_bb),
                ];
                for ((expected, got), stderr) in pairs.into_iter().zip(m.stderr) {
                    // Finite width biases the mean by O(1/n): allowed 1 % beside 4 standard errors.
                    let tolerance = 4.0 * stderr + 0.01 * expected.abs();
                    assert!(
                        (got - expected).abs() < tolerance,
                        "{activation} layer {}: {got} vs {expected} ± {stderr}",
                        t.layer
                    );
                }
            }
        }
    }
}
