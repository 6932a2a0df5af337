//! Ridge regression on random features (Louart, Liao & Couillet, "A random matrix approach to
//! neural networks", Ann. Appl. Probab. 2018): training and test error of β = ΣQYᵀ/n,
//! Σ = σ(WX) ∈ ℝ^{N×n} for N random features W ∈ ℝ^{N×p} (N(0, 1) entries) of n training
//! samples, Q = (ΣᵀΣ/n + γI)⁻¹, against their deterministic equivalents, which depend on the
//! data only through the kernel Φ = E_w[σ(Xᵀw)σ(wᵀX)]. For a small ridge γ the test error
//! peaks where the features can just interpolate the data, N = n (double descent).
//!
//! With δ the solution of δ = tr(ΦQ̄)/n, Q̄ = (Ψ + γI)⁻¹ and Ψ = (N/n)Φ/(1 + δ):
//! Ē_train = (γ²/n) Yᵀ Q̄ [c Ψ + I] Q̄ Y with c = (tr ΨQ̄²/N)/(1 − tr(ΨQ̄)²/N), and
//! Ē_test = ‖Ŷ − Ψ_{X̂X}Q̄Y‖²/n̂ + (YᵀQ̄ΨQ̄Y/N)/(1 − tr(ΨQ̄)²/N)
//! · [tr Ψ_{X̂X̂}/n̂ − tr((I + γQ̄)Ψ_{XX̂}Ψ_{X̂X}Q̄)/n̂], errors as mean squares per sample.
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::random::SeededNormal;
use crate::theory::hermite::Activation;
use crate::theory::kernel::{activate, gaussian_matrix};

/// A regression task: training inputs X (p × n) and targets Y (n), test inputs and targets.
#[derive(Debug)]
pub struct Task {
    /// Training inputs, one column per sample.
    pub x: Tensor,
    /// Training targets.
    pub y: Tensor,
    /// Test inputs.
    pub x_test: Tensor,
    /// Test targets.
    pub y_test: Tensor,
}

impl Task {
    /// A linear teacher with noise: x ~ N(0, I/p), y = √p·xᵀβ* + ε, ‖β*‖ = 1, ε ~ N(0, σ²).
    pub fn linear_teacher(
        p: usize,
        n: usize,
        n_test: usize,
        noise2: f64,
        seed: u64,
    ) -> Result<Self> {
        if n == 0 || p == 0 || n_test == 0 {
            return Err(Error::InvalidOption(format!(
                "a teacher task needs n, p and n_test ≥ 1 (got {n}, {p}, {n_test})"
            )));
        }
        let [n_, p_, t_] = super::budget::sizes([n, p, n_test]);
        // The deterministic equivalents work on (n + n_test)² kernels.
        let samples = n_ + t_;
        super::budget::check(
            format!("n = {n}, p = {p}, n_test = {n_test}"),
            8.0 * (2.0 * p_ * samples + 4.0 * samples * samples),
            60.0 * samples * samples * samples,
        )?;
        let mut rng = SeededNormal::new(seed);
        let direction = Tensor::from_slice(&rng.normals(p));
        let teacher = &direction / direction.norm();
        let mut draw = |count: usize| {
            let x = gaussian_matrix(&mut rng, p, count, 1.0 / (p as f64).sqrt());
            let noise = Tensor::from_slice(&rng.normals(count)) * noise2.sqrt();
            let y = x.tr().matmul(&teacher) * (p as f64).sqrt() + noise;
            (x, y)
        };
        let (x, y) = draw(n);
        let (x_test, y_test) = draw(n_test);
        Ok(Self {
            x,
            y,
            x_test,
            y_test,
        })
    }
}

/// Activations with a closed-form Φ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureMap {
    /// max(0, t): the arc-cosine kernel ‖a‖‖b‖(√(1 − ∠²) + ∠·arccos(−∠))/(2π).
    Relu,
    /// erf(t): (2/π) arcsin(2aᵀb/√((1 + 2‖a‖²)(1 + 2‖b‖²))).
    Erf,
}

impl FeatureMap {
    /// From an activation, when its Φ is known in closed form.
    pub fn of(activation: Activation) -> Result<Self> {
        match activation {
            Activation::Relu => Ok(Self::Relu),
            Activation::Erf => Ok(Self::Erf),
            other => Err(Error::InvalidOption(format!(
                "random-features theory needs a closed-form kernel: relu or erf, not {other}"
            ))),
        }
    }

    fn activation(self) -> Activation {
        match self {
            Self::Relu => Activation::Relu,
            Self::Erf => Activation::Erf,
        }
    }

    /// Φ_AB = E_w[σ(Aᵀw)σ(wᵀB)] for columns of A and B, w ~ N(0, I).
    pub fn kernel(self, a: &Tensor, b: &Tensor) -> Tensor {
        let gram = a.tr().matmul(b);
        let norms_a = a.square().sum_dim_intlist(0, false, Kind::Double);
        let norms_b = b.square().sum_dim_intlist(0, false, Kind::Double);
        match self {
            Self::Relu => {
                let scale = norms_a.sqrt().unsqueeze(1) * norms_b.sqrt().unsqueeze(0);
                let cosine = (&gram / &scale).clamp(-1.0, 1.0);
                let angle_term =
                    (-cosine.square() + 1.0).clamp_min(0.0).sqrt() + &cosine * (-&cosine).acos();
                scale * angle_term / (2.0 * std::f64::consts::PI)
            }
            Self::Erf => {
                let denominator = ((norms_a * 2.0 + 1.0).unsqueeze(1)
                    * (norms_b * 2.0 + 1.0).unsqueeze(0))
                .sqrt();
                (gram * 2.0 / denominator).clamp(-1.0, 1.0).arcsin() * (2.0 / std::f64::consts::PI)
            }
        }
    }
}

/// Training and test mean-square errors at one number of features.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RandomFeaturesPoint {
    /// Features N.
    pub features: usize,
    /// Ē_train.
    pub train_theory: f64,
    /// Ē_test.
    pub test_theory: f64,
    /// The simulation, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simulated: Option<SimulatedErrors>,
}

/// The deterministic equivalents (Ē_train, Ē_test) at N features and ridge γ > 0.
pub fn deterministic_errors(
    map: FeatureMap,
    task: &Task,
    features: usize,
    ridge: f64,
) -> Result<(f64, f64)> {
    check(features, ridge)?;
    let n = task.x.size()[1];
    let n_test = task.x_test.size()[1] as f64;
    let ratio = features as f64 / n as f64;
    let identity = Tensor::eye(n, (Kind::Double, Device::Cpu));
    let phi = map.kernel(&task.x, &task.x);
    let resolvent = |delta: f64| -> Result<Tensor> {
        Ok((&phi * (ratio / (1.0 + delta)) + &identity * ridge).f_inverse()?)
    };
    let trace = |m: &Tensor| -> Result<f64> { Ok(f64::try_from(m.trace())?) };
    let mut delta = 0.0;
    for _ in 0..1000 {
        let next = trace(&phi.matmul(&resolvent(delta)?))? / n as f64;
        let converged = (next - delta).abs() <= 1e-13 * next.abs().max(1.0);
        delta = next;
        if converged {
            break;
        }
    }
    let q = resolvent(delta)?;
    let scale = ratio / (1.0 + delta);
    let psi = &phi * scale;
    let psi_q = psi.matmul(&q);
    let big_n = features as f64;
    let denominator = 1.0 - trace(&psi_q.matmul(&psi_q))? / big_n;
    let quadratic =
        |m: &Tensor| -> Result<f64> { Ok(f64::try_from(task.y.dot(&m.matmul(&task.y)))?) };
    let c = trace(&psi.matmul(&q).matmul(&q))? / big_n / denominator;
    let train =
        ridge * ridge / n as f64 * quadratic(&q.matmul(&(&psi * c + &identity)).matmul(&q))?;
    let psi_test_train = map.kernel(&task.x_test, &task.x) * scale;
    let residual = &task.y_test - psi_test_train.matmul(&q.matmul(&task.y));
    let bias = f64::try_from(residual.square().sum(Kind::Double))? / n_test;
    let diagonal_test = map
        .kernel(&task.x_test, &task.x_test)
        .diagonal(0, 0, 1)
        .sum(Kind::Double)
        * scale;
    let cross = (&identity + &q * ridge)
        .matmul(&psi_test_train.tr())
        .matmul(&psi_test_train)
        .matmul(&q);
    let variance = quadratic(&q.matmul(&psi).matmul(&q))? / big_n / denominator
        * ((f64::try_from(diagonal_test)? - trace(&cross)?) / n_test);
    Ok((train, bias + variance))
}

/// Errors measured over draws of W: means and their standard errors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SimulatedErrors {
    /// Mean E_train.
    pub train: f64,
    /// Its standard error.
    pub train_stderr: f64,
    /// Mean E_test.
    pub test: f64,
    /// Its standard error.
    pub test_stderr: f64,
}

/// E_train and E_test simulated over `trials` seeded draws of W.
pub fn simulated_errors(
    map: FeatureMap,
    task: &Task,
    features: usize,
    ridge: f64,
    trials: usize,
    seed: u64,
) -> Result<SimulatedErrors> {
    check(features, ridge)?;
    if trials < 2 {
        return Err(Error::InvalidOption("simulate at least 2 trials".into()));
    }
    let n = task.x.size()[1];
    let p = task.x.size()[0] as usize;
    let [f_, p_, n_, t_, trials_] = super::budget::sizes([
        features,
        p,
        n as usize,
        task.x_test.size()[1] as usize,
        trials,
    ]);
    super::budget::check(
        format!("{features} features over {trials} trials"),
        8.0 * (f_ * p_ + 2.0 * f_ * (n_ + t_) + 2.0 * n_ * n_),
        trials_ * (2.0 * f_ * p_ * (n_ + t_) + 2.0 * f_ * n_ * n_ + n_ * n_ * n_),
    )?;
    let activation = map.activation();
    let mut rng = SeededNormal::new(seed);
    let mut train = Vec::with_capacity(trials);
    let mut test = Vec::with_capacity(trials);
    for _ in 0..trials {
        let w = gaussian_matrix(&mut rng, features, p, 1.0);
        let sigma = activate(activation, &w.matmul(&task.x))?;
        let sigma_test = activate(activation, &w.matmul(&task.x_test))?;
        let gram = sigma.tr().matmul(&sigma) / n as f64
            + Tensor::eye(n, (Kind::Double, Device::Cpu)) * ridge;
        let solved = Tensor::f_linalg_solve(&gram, &task.y, true)?;
        let beta = sigma.matmul(&solved) / n as f64;
        let mse = |inputs: &Tensor, targets: &Tensor| -> Result<f64> {
            let residual = targets - inputs.tr().matmul(&beta);
            Ok(f64::try_from(residual.square().mean(Kind::Double))?)
        };
        train.push(mse(&sigma, &task.y)?);
        test.push(mse(&sigma_test, &task.y_test)?);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let stderr = |v: &[f64]| {
        let m = mean(v);
        (v.iter().map(|t| (t - m).powi(2)).sum::<f64>() / ((trials - 1) * trials) as f64).sqrt()
    };
    Ok(SimulatedErrors {
        train: mean(&train),
        train_stderr: stderr(&train),
        test: mean(&test),
        test_stderr: stderr(&test),
    })
}

/// Ē_train and Ē_test at every number of features, simulated over `trials` draws of W as
/// well when `trials` is given.
pub fn feature_sweep(
    map: FeatureMap,
    task: &Task,
    features: &[usize],
    ridge: f64,
    simulation: Option<(usize, u64)>,
) -> Result<Vec<RandomFeaturesPoint>> {
    features
        .iter()
        .map(|&count| {
            let (train, test) = deterministic_errors(map, task, count, ridge)?;
            let simulated = simulation
                .map(|(trials, seed)| simulated_errors(map, task, count, ridge, trials, seed))
                .transpose()?;
            Ok(RandomFeaturesPoint {
                features: count,
                train_theory: train,
                test_theory: test,
                simulated,
            })
        })
        .collect()
}

fn check(features: usize, ridge: f64) -> Result<()> {
    if features == 0 || !(ridge.is_finite() && ridge > 0.0) {
        return Err(Error::InvalidOption(format!(
            "random-features ridge needs N ≥ 1 features and a ridge γ > 0 (got N = {features}, γ = {ridge})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theory_follows_simulation_and_peaks_at_n_features() {
        let n = 256;
        let task = Task::linear_teacher(128, n, 512, 0.1, 1).unwrap();
        for map in [FeatureMap::Relu, FeatureMap::Erf] {
            let mut tests = Vec::new();
            for features in [64, 128, 192, 256, 320, 512, 1024] {
                let (train, test) = deterministic_errors(map, &task, features, 1e-3).unwrap();
                let simulated = simulated_errors(map, &task, features, 1e-3, 20, 2).unwrap();
                tests.push((features, test));
                // Away from the peak, within 5 % beside 3 standard errors of the simulation.
                let close = |theory: f64, measured: f64, stderr: f64| {
                    (measured - theory).abs() < 0.05 * theory + 3.0 * stderr
                };
                if features != n {
                    assert!(
                        close(test, simulated.test, simulated.test_stderr)
                            && close(train, simulated.train, simulated.train_stderr),
                        "{map:?} N = {features}: {simulated:?} vs {train}, {test}"
                    );
                }
            }
            let peak = tests.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap().0;
            assert_eq!(peak, n, "{map:?}: {tests:?}");
        }
    }
}
