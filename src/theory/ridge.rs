//! The deterministic-equivalent risk of ridge regression with isotropic features (Hastie,
//! Montanari, Rosset & Tibshirani), from the Marchenko-Pastur Stieltjes transform: the double
//! descent of Liao & Mahoney (2025) (mechanism 3), with its peak at p = n when the ridge λ is small.
use serde::Serialize;

use crate::error::{Error, Result};

/// The problem: γ = p/n, signal ‖β‖² = r², noise variance σ².
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RidgeProblem {
    /// p/n.
    pub gamma: f64,
    /// ‖β‖².
    pub r2: f64,
    /// Label noise variance.
    pub sigma2: f64,
}

impl RidgeProblem {
    /// Checks γ > 0, r² ≥ 0, σ² ≥ 0.
    pub fn new(gamma: f64, r2: f64, sigma2: f64) -> Result<Self> {
        if gamma.is_nan()
            || gamma <= 0.0
            || r2.is_nan()
            || r2 < 0.0
            || sigma2.is_nan()
            || sigma2 < 0.0
        {
            return Err(Error::InvalidOption(format!(
                "ridge needs γ > 0, r² ≥ 0, σ² ≥ 0; got γ = {gamma}, r² = {r2}, σ² = {sigma2}"
            )));
        }
        Ok(Self { gamma, r2, sigma2 })
    }

    /// m(−λ) = [−(1−γ+λ) + √((1−γ+λ)² + 4γλ)] / (2γλ), the Stieltjes transform of the
    /// Marchenko-Pastur law of the features' covariance at −λ (λ > 0); rationalised so it
    /// stays exact for small λ.
    pub fn stieltjes(&self, lambda: f64) -> f64 {
        let g = self.gamma;
        let b = 1.0 - g + lambda;
        let root = (b * b + 4.0 * g * lambda).sqrt();
        // [−b + root]/(2γλ) = 2/(b + root) without the cancellation when b > 0.
        if b > 0.0 {
            2.0 / (b + root)
        } else {
            (root - b) / (2.0 * g * lambda)
        }
    }

    /// The prediction risk R(λ) = r²λ²m′(−λ) + σ²γ[m(−λ) − λm′(−λ)], m′ the derivative of m
    /// at −λ (by a fourth-order difference); λ = 0 gives the ridgeless limits
    /// σ²γ/(1−γ) for γ < 1 and r²(1 − 1/γ) + σ²/(γ−1) for γ > 1 (infinite at γ = 1).
    pub fn risk(&self, lambda: f64) -> Result<f64> {
        if lambda.is_nan() || lambda < 0.0 {
            return Err(Error::InvalidOption(format!(
                "the ridge λ must be ≥ 0, got {lambda}"
            )));
        }
        let g = self.gamma;
        if lambda == 0.0 {
            return Ok(if g < 1.0 {
                self.sigma2 * g / (1.0 - g)
            } else if g > 1.0 {
                self.r2 * (1.0 - 1.0 / g) + self.sigma2 / (g - 1.0)
            } else {
                f64::INFINITY
            });
        }
        // m′(z) at z = −λ is −d/dλ m(−λ).
        let h = 1e-3 * lambda;
        let f = |l: f64| self.stieltjes(l);
        let derivative = -(8.0 * (f(lambda + h) - f(lambda - h))
            - (f(lambda + 2.0 * h) - f(lambda - 2.0 * h)))
            / (12.0 * h);
        let m = f(lambda);
        Ok(self.r2 * lambda * lambda * derivative + self.sigma2 * g * (m - lambda * derivative))
    }
}

/// The excess risk ‖β̂ − β‖² of ridge regression simulated at dimension p with n = p/γ samples:
/// x ~ N(0, I), β of norm r in a random direction, y = xᵀβ + ε with ε ~ N(0, σ²),
/// β̂ = (XᵀX/n + λI)⁻¹Xᵀy/n (λ > 0), averaged over `trials` seeded draws. Returns the mean and
/// its standard error.
pub fn simulate_risk(
    problem: &RidgeProblem,
    lambda: f64,
    p: usize,
    trials: usize,
    seed: u64,
) -> Result<(f64, f64)> {
    use tch::{Device, Kind, Tensor};
    if lambda.is_nan() || lambda <= 0.0 || p == 0 || trials == 0 {
        return Err(Error::InvalidOption(format!(
            "a ridge simulation needs λ > 0, p ≥ 1 and trials ≥ 1 (got λ = {lambda}, p = {p}, trials = {trials})"
        )));
    }
    let n = ((p as f64 / problem.gamma).round() as usize).max(1);
    let [n_, p_, trials_] = super::budget::sizes([n, p, trials]);
    let bytes = 8.0 * (2.0 * n_ * p_ + 2.0 * p_ * p_);
    let per_trial = 2.0 * n_ * p_ * p_ + p_ * p_ * p_;
    super::budget::check(
        format!("a ridge simulation at p = {p}, n = {n} over {trials} trials"),
        bytes,
        trials_ * per_trial,
    )?;
    let mut rng = crate::random::SeededNormal::new(seed);
    let options = (Kind::Double, Device::Cpu);
    let risks = (0..trials)
        .map(|_| -> Result<f64> {
            let x = Tensor::from_slice(&rng.normals(n * p)).reshape([n as i64, p as i64]);
            let direction = Tensor::from_slice(&rng.normals(p));
            let beta = &direction * (problem.r2.sqrt() / f64::try_from(direction.norm())?);
            let noise = Tensor::from_slice(&rng.normals(n)) * problem.sigma2.sqrt();
            let y = x.matmul(&beta) + noise;
            let gram = x.tr().matmul(&x) / n as f64 + Tensor::eye(p as i64, options) * lambda;
            let estimate = Tensor::f_linalg_solve(&gram, &(x.tr().matmul(&y) / n as f64), true)?;
            Ok(f64::try_from(
                (estimate - &beta).square().sum(Kind::Double),
            )?)
        })
        .collect::<Result<Vec<f64>>>()?;
    let mean = risks.iter().sum::<f64>() / trials as f64;
    let variance =
        risks.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (trials.max(2) - 1) as f64;
    Ok((mean, (variance / trials as f64).sqrt()))
}

/// One point of a risk curve, with its simulation when asked for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RiskPoint {
    /// γ = p/n.
    pub gamma: f64,
    /// λ.
    pub lambda: f64,
    /// R(γ, λ).
    pub risk: f64,
    /// The simulated mean risk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simulated: Option<f64>,
    /// Its standard error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simulated_stderr: Option<f64>,
}

/// How to simulate beside the theory: dimension p, draws per point, seed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RidgeSimulation {
    /// Dimension p (n = p/γ samples).
    pub p: usize,
    /// Draws per point.
    pub trials: usize,
    /// Seed.
    pub seed: u64,
}

/// R(γ, λ) for every λ and γ (λ outer), simulated too when `simulation` is given.
pub fn risk_sweep(
    r2: f64,
    sigma2: f64,
    gammas: &[f64],
    lambdas: &[f64],
    simulation: Option<RidgeSimulation>,
) -> Result<Vec<RiskPoint>> {
    let mut points = Vec::with_capacity(gammas.len() * lambdas.len());
    for &lambda in lambdas {
        for &gamma in gammas {
            let problem = RidgeProblem::new(gamma, r2, sigma2)?;
            let simulated = simulation
                .map(|s| simulate_risk(&problem, lambda, s.p, s.trials, s.seed))
                .transpose()?;
            points.push(RiskPoint {
                gamma,
                lambda,
                risk: problem.risk(lambda)?,
                simulated: simulated.map(|s| s.0),
                simulated_stderr: simulated.map(|s| s.1),
            });
        }
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_matches_the_reference_values() {
        // Hastie, Montanari, Rosset & Tibshirani (2022), r² = σ² = 1.
        let at = |gamma: f64, lambda: f64| {
            RidgeProblem::new(gamma, 1.0, 1.0)
                .unwrap()
                .risk(lambda)
                .unwrap()
        };
        assert!((at(0.5, 0.0) - 1.0).abs() < 1e-15);
        assert!((at(2.0, 0.0) - 1.5).abs() < 1e-15);
        assert!((at(4.0, 0.0) - 1.0833333333333333).abs() < 1e-15);
        assert!((at(0.5, 1.0) - 0.455214).abs() < 1e-6, "{}", at(0.5, 1.0));
        // A vanishing ridge approaches the ridgeless limit, and the peak sits at γ = 1.
        assert!((at(0.5, 1e-6) - 1.0).abs() < 1e-4 && (at(2.0, 1e-6) - 1.5).abs() < 1e-4);
        assert!(at(1.0, 1e-5) > 100.0 && at(1.0, 0.1) < 3.0);
        assert!(RidgeProblem::new(0.0, 1.0, 1.0).is_err());
    }

    #[test]
    fn simulation_agrees_with_the_deterministic_equivalent() {
        for (gamma, lambda) in [(0.5, 0.1), (2.0, 0.1), (1.0, 0.1), (0.5, 1.0)] {
            let problem = RidgeProblem::new(gamma, 1.0, 1.0).unwrap();
            let (simulated, error) = simulate_risk(&problem, lambda, 200, 8, 3).unwrap();
            let theory = problem.risk(lambda).unwrap();
            // Finite-p corrections are O(1/p); allow 4 standard errors plus 5 %.
            assert!(
                (simulated - theory).abs() < 4.0 * error + 0.05 * theory,
                "γ={gamma} λ={lambda}: {simulated} ± {error} vs {theory}"
            );
        }
        assert!(simulate_risk(&RidgeProblem::new(1.0, 1.0, 1.0).unwrap(), 0.0, 10, 1, 0).is_err());
    }

    #[test]
    fn simulated_ridge_at_p_512_is_within_5_percent_of_theory_away_from_the_peak() {
        // Liao & Mahoney's (2025) first experiment: p = 512, n/p from 0.5 to 2, λ = 1e-5 and 0.1.
        let gammas = [2.0, 1.0 / 0.6, 1.0 / 1.6, 0.5];
        let simulation = RidgeSimulation {
            p: 512,
            trials: 30,
            seed: 11,
        };
        let points = risk_sweep(1.0, 1.0, &gammas, &[1e-5, 0.1], Some(simulation)).unwrap();
        for point in &points {
            let simulated = point.simulated.unwrap();
            assert!(
                (simulated - point.risk).abs() < 0.05 * point.risk,
                "{point:?}"
            );
        }
    }
}
