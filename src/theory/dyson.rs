//! Dyson Brownian motion and its stationary state, the Coulomb gas (Favoni, Aarts, Lucini & Park (2024) and Aarts (2025)).
//!
//! N eigenvalues move as dxᵢ = Kᵢ dt + β Σ_{j≠i} g²/(xᵢ − xⱼ) dt + √2 g dBᵢ with the harmonic
//! drift Kᵢ = −g²(xᵢ − κᵢ)/σᵢ² (Aarts (2025), eq. 36; β = 1 there, β = 2 doubles the repulsion).
//! Its stationary density is the Coulomb gas Πᵢ<ⱼ |xᵢ − xⱼ|^β e^{−Σ(xᵢ−κᵢ)²/(2σᵢ²)} (eq. 39):
//! for N = 2 and κ₁ = κ₂ the spacing follows the Wigner surmise exactly (eqs. 40–44), for equal
//! centres and widths and large N the density is a semicircle of radius σ√(2βN), and for two
//! widths the pair has Favoni, Aarts, Lucini & Park's (2024) two-component density.
//!
//! The scheme: time is measured in units of 1/g². Each step is an Euler-Maruyama step of the
//! SDE, accepted or rejected by Metropolis-Hastings against the Coulomb gas (the Metropolis-
//! adjusted Langevin algorithm), and rejected outright when two eigenvalues would cross. So the
//! ordering of the start is kept, as the continuous motion keeps it, and the stationary law is
//! the Coulomb gas exactly, whatever the step: the step only sets how closely a trajectory
//! follows the SDE's (acceptance near 1 for small steps).
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::option_names::option_names;
use crate::random::SeededNormal;
use crate::stats::rmt::goodness_of_fit::{ks_test, KsTest};
use crate::stats::rmt::quadrature::integrate;
use crate::stats::rmt::spacing::{spacing_statistics, SpacingStatistics};
use crate::stats::rmt::wigner::{Semicircle, SpacingLaw};

/// The Coulomb gas: repulsion exponent β and a harmonic well (centre κᵢ, width σᵢ) for each
/// eigenvalue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoulombGas {
    /// β (1: real symmetric, GOE-like; 2: complex Hermitian, GUE-like).
    pub beta: f64,
    /// κᵢ.
    pub centres: Vec<f64>,
    /// σᵢ.
    pub widths: Vec<f64>,
}

impl CoulombGas {
    /// A gas of at least two eigenvalues; β > 0, finite centres, positive finite widths.
    pub fn new(beta: f64, centres: Vec<f64>, widths: Vec<f64>) -> Result<Self> {
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        if !(beta.is_finite() && beta > 0.0)
            || centres.len() < 2
            || centres.len() != widths.len()
            || !finite(&centres)
            || !finite(&widths)
            || widths.iter().any(|&w| w <= 0.0)
        {
            return Err(Error::InvalidOption(format!(
                "a Coulomb gas needs β > 0 and N ≥ 2 finite centres with as many positive widths \
                 (got β = {beta}, {} centres, {} widths)",
                centres.len(),
                widths.len()
            )));
        }
        Ok(Self {
            beta,
            centres,
            widths,
        })
    }

    /// N eigenvalues in one well of width 1 at 0: the Gaussian ensemble (GOE for β = 1).
    pub fn gaussian(n: usize, beta: f64) -> Result<Self> {
        Self::new(beta, vec![0.0; n], vec![1.0; n])
    }

    /// The number of eigenvalues N.
    pub fn len(&self) -> usize {
        self.centres.len()
    }

    /// Always false: a gas has at least two eigenvalues.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The large-N density when every well is the same one centred at 0: a semicircle of radius
    /// σ√(2βN), i.e. variance βNσ²/2.
    pub fn semicircle(&self) -> Option<Semicircle> {
        let width = self.widths[0];
        let same =
            self.centres.iter().all(|&c| c == 0.0) && self.widths.iter().all(|&w| w == width);
        same.then(|| Semicircle {
            sigma2: self.beta * self.len() as f64 * width * width / 2.0,
        })
    }

    /// ln of the unnormalised density; −∞ when two eigenvalues coincide.
    fn log_density(&self, x: &[f64]) -> f64 {
        let mut value = 0.0;
        for (i, &xi) in x.iter().enumerate() {
            value -= (xi - self.centres[i]).powi(2) / (2.0 * self.widths[i].powi(2));
            for &xj in &x[i + 1..] {
                value += self.beta * (xi - xj).abs().ln();
            }
        }
        value
    }

    /// ∇ ln density: the SDE's drift in units of g².
    fn drift(&self, x: &[f64], out: &mut [f64]) {
        for (i, &xi) in x.iter().enumerate() {
            let repulsion: f64 = x
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &xj)| 1.0 / (xi - xj))
                .sum();
            out[i] = -(xi - self.centres[i]) / self.widths[i].powi(2) + self.beta * repulsion;
        }
    }
}

/// How long and how often to simulate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DysonOptions {
    /// Time step g²dt.
    pub dt: f64,
    /// Time before the first sample (the wells relax at rate g²/σ², the gas as a whole in a
    /// few such times).
    pub burn_in: f64,
    /// Time between samples of one chain.
    pub sample_interval: f64,
    /// Samples per chain.
    pub samples_per_chain: usize,
    /// Independent chains (run in parallel).
    pub chains: usize,
    /// Seed; chain c uses its own stream derived from it.
    pub seed: u64,
}

impl Default for DysonOptions {
    fn default() -> Self {
        Self {
            dt: 1e-3,
            burn_in: 10.0,
            sample_interval: 2.0,
            samples_per_chain: 20,
            chains: 100,
            seed: 0,
        }
    }
}

/// Stationary configurations of a gas.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DysonSamples {
    /// Each configuration in the order of the wells (eigenvalue i sits in well i).
    pub configurations: Vec<Vec<f64>>,
    /// Share of the proposed steps accepted.
    pub acceptance: f64,
}

/// Runs the motion: every chain starts at xᵢ = κᵢ + σᵢξᵢ (ξ standard normal, which sets the
/// ordering the chain keeps), relaxes for `burn_in`, then records a configuration every
/// `sample_interval`.
pub fn simulate(gas: &CoulombGas, options: &DysonOptions) -> Result<DysonSamples> {
    let steps = |time: f64| (time / options.dt).ceil() as usize;
    if !(options.dt.is_finite() && options.dt > 0.0)
        || options.chains == 0
        || options.samples_per_chain == 0
        || steps(options.sample_interval) == 0
        || !options.burn_in.is_finite()
    {
        return Err(Error::InvalidOption(format!(
            "a Dyson simulation needs dt > 0, a positive sample interval, and at least one chain \
             and sample (got {options:?})"
        )));
    }
    let time = options.burn_in + options.samples_per_chain as f64 * options.sample_interval;
    let [chains, samples, wells] =
        super::budget::sizes([options.chains, options.samples_per_chain, gas.len()]);
    let operations = chains * (time / options.dt) * 30.0 * wells * wells;
    let bytes = 8.0 * chains * samples * wells;
    super::budget::check(
        format!(
            "{} chains of {} samples at dt = {} ({} eigenvalues)",
            options.chains,
            options.samples_per_chain,
            options.dt,
            gas.len()
        ),
        bytes,
        operations,
    )?;
    let runs: Vec<(Vec<Vec<f64>>, usize, usize)> = (0..options.chains)
        .into_par_iter()
        .map(|chain| {
            let mut rng = SeededNormal::new(
                options
                    .seed
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(chain as u64),
            );
            let mut walker = Walker::new(gas, options.dt, &mut rng);
            for _ in 0..steps(options.burn_in) {
                walker.step(&mut rng);
            }
            let mut configurations = Vec::with_capacity(options.samples_per_chain);
            for _ in 0..options.samples_per_chain {
                for _ in 0..steps(options.sample_interval) {
                    walker.step(&mut rng);
                }
                configurations.push(walker.x.clone());
            }
            (configurations, walker.accepted, walker.proposed)
        })
        .collect();
    let (accepted, proposed) = runs
        .iter()
        .fold((0, 0), |(a, p), run| (a + run.1, p + run.2));
    Ok(DysonSamples {
        configurations: runs.into_iter().flat_map(|run| run.0).collect(),
        acceptance: accepted as f64 / proposed.max(1) as f64,
    })
}

/// One chain's state: the Metropolis-adjusted Euler-Maruyama walker.
struct Walker<'a> {
    gas: &'a CoulombGas,
    dt: f64,
    x: Vec<f64>,
    log_density: f64,
    drift: Vec<f64>,
    /// Well indices sorted by position: the ordering every accepted step keeps.
    order: Vec<usize>,
    proposal: Vec<f64>,
    proposal_drift: Vec<f64>,
    accepted: usize,
    proposed: usize,
}

impl<'a> Walker<'a> {
    fn new(gas: &'a CoulombGas, dt: f64, rng: &mut SeededNormal) -> Self {
        let mut x: Vec<f64> = gas
            .centres
            .iter()
            .zip(&gas.widths)
            .map(|(&c, &w)| c + w * rng.normal())
            .collect();
        let mut order: Vec<usize> = (0..x.len()).collect();
        order.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
        // Neighbours closer than δ would be thrown past their other neighbours by the first
        // steps' repulsion (βdt/δ against δ) and every proposal rejected: spread them to
        // δ = √(20βdt) apart, keeping the order.
        let gap = (20.0 * gas.beta * dt).sqrt();
        for k in 1..order.len() {
            let floor = x[order[k - 1]] + gap;
            if x[order[k]] < floor {
                x[order[k]] = floor;
            }
        }
        let mut drift = vec![0.0; x.len()];
        gas.drift(&x, &mut drift);
        Self {
            gas,
            dt,
            log_density: gas.log_density(&x),
            order,
            proposal: vec![0.0; x.len()],
            proposal_drift: vec![0.0; x.len()],
            x,
            drift,
            accepted: 0,
            proposed: 0,
        }
    }

    fn step(&mut self, rng: &mut SeededNormal) {
        let noise = (2.0 * self.dt).sqrt();
        for i in 0..self.x.len() {
            self.proposal[i] = self.x[i] + self.dt * self.drift[i] + noise * rng.normal();
        }
        self.proposed += 1;
        let keeps_order = self
            .order
            .windows(2)
            .all(|pair| self.proposal[pair[0]] < self.proposal[pair[1]]);
        if !keeps_order {
            return;
        }
        let proposal_log_density = self.gas.log_density(&self.proposal);
        self.gas.drift(&self.proposal, &mut self.proposal_drift);
        // ln q(to | from) of the Gaussian Euler-Maruyama proposal, up to a shared constant.
        let log_q = |to: &[f64], from: &[f64], drift: &[f64]| -> f64 {
            -to.iter()
                .zip(from)
                .zip(drift)
                .map(|((t, f), d)| (t - f - self.dt * d).powi(2))
                .sum::<f64>()
                / (4.0 * self.dt)
        };
        let log_ratio = proposal_log_density - self.log_density
            + log_q(&self.x, &self.proposal, &self.proposal_drift)
            - log_q(&self.proposal, &self.x, &self.drift);
        if rng.uniform().ln() < log_ratio {
            std::mem::swap(&mut self.x, &mut self.proposal);
            std::mem::swap(&mut self.drift, &mut self.proposal_drift);
            self.log_density = proposal_log_density;
            self.accepted += 1;
        }
    }
}

/// The gaps x_b − x_a between the eigenvalues of the given wells in every configuration,
/// divided by their mean (unit mean spacing, as the surmise is stated).
pub fn unit_spacings(samples: &DysonSamples, pairs: &[(usize, usize)]) -> Vec<f64> {
    let gaps: Vec<f64> = samples
        .configurations
        .iter()
        .flat_map(|x| pairs.iter().map(move |&(a, b)| (x[b] - x[a]).abs()))
        .collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len().max(1) as f64;
    gaps.into_iter().map(|g| g / mean).collect()
}

/// The surmise a pair of degenerate eigenvalues follows exactly at this β (eq. 42–44 for
/// β = 1; P(s) ∝ s²e^{−as²} for β = 2); `None` for other β.
pub fn pair_surmise(beta: f64) -> Option<SpacingLaw> {
    if beta == 1.0 {
        Some(SpacingLaw::Goe)
    } else if beta == 2.0 {
        Some(SpacingLaw::Gue)
    } else {
        None
    }
}

/// Favoni, Aarts, Lucini & Park's (2024) density of a pair (β = 1) in wells of widths σ₁, σ₂ at one centre, averaged over
/// the two eigenvalues: ρ(x) = ½[p₁(x) + p₂(x)] with
/// pᵢ(x) = e^{−x²/2σᵢ²}[√(2π)σⱼ x erf(x/√2σⱼ) + 2σⱼ² e^{−x²/2σⱼ²}] / (2√(2π)σ₁σ₂√(σ₁² + σ₂²)),
/// j the other well (integrating |x₁ − x₂| against the other Gaussian). Equal widths give the
/// N = 2 "semicircle".
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairDensity {
    /// σ₁.
    pub sigma1: f64,
    /// σ₂.
    pub sigma2: f64,
}

impl PairDensity {
    /// ρ(x).
    pub fn density(&self, x: f64) -> f64 {
        use statrs::function::erf::erf;
        let (a, b) = (self.sigma1 * self.sigma1, self.sigma2 * self.sigma2);
        let norm = 2.0 * (2.0 * std::f64::consts::PI).sqrt() * (a * b * (a + b)).sqrt();
        let one = |own: f64, other: f64| {
            (-x * x / (2.0 * own)).exp()
                * ((2.0 * std::f64::consts::PI * other).sqrt() * x * erf(x / (2.0 * other).sqrt())
                    + 2.0 * other * (-x * x / (2.0 * other)).exp())
        };
        (one(a, b) + one(b, a)) / (2.0 * norm)
    }

    /// ∫_{−∞}^x ρ by quadrature from 12 widths below 0 (where ρ < 1e-30).
    pub fn cdf(&self, x: f64) -> f64 {
        let lo = -12.0 * self.sigma1.max(self.sigma2);
        if x <= lo {
            return 0.0;
        }
        let panels = ((x - lo) / self.sigma1.min(self.sigma2) * 4.0).ceil() as usize;
        integrate(|t| self.density(t), lo, x, panels.clamp(8, 2000)).clamp(0.0, 1.0)
    }
}

/// The largest gas of the semicircle case: each step costs N² and the defaults run 80 000
/// steps, so this takes about a minute on two cores.
pub const MAX_SEMICIRCLE_N: usize = 500;

/// The experiments of Favoni, Aarts, Lucini & Park (2024) and Aarts (2025).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DysonCase {
    /// N = 2 in one well: the spacing is the Wigner surmise exactly (Aarts (2025), eqs. 40–44).
    Pair,
    /// N = 10 with four doubly degenerate pairs and two lone eigenvalues (Favoni, Aarts, Lucini & Park's (2024)
    /// universality check): each pair's spacing is still the surmise.
    Degenerate,
    /// N = 2 in wells of widths 0.5 and 1.5: Favoni, Aarts, Lucini & Park's (2024) two-component density.
    TwoWidth,
    /// N eigenvalues in one well: Wigner's semicircle of radius √(2βN).
    Semicircle,
}

option_names!(DysonCase, "Dyson case", {
    Pair => "pair", Degenerate => "degenerate", TwoWidth => "two-width", Semicircle => "semicircle"
});

impl DysonCase {
    /// The gas of the case (`n` only matters for the semicircle).
    pub fn gas(self, beta: f64, n: usize) -> Result<CoulombGas> {
        match self {
            Self::Pair => CoulombGas::new(beta, vec![0.0, 0.0], vec![1.0, 1.0]),
            Self::Degenerate => CoulombGas::new(
                beta,
                vec![0.0, 0.0, 2.0, 2.0, 4.0, 4.0, 6.0, 6.0, 8.0, 10.0],
                vec![0.25; 10],
            ),
            Self::TwoWidth => CoulombGas::new(beta, vec![0.0, 0.0], vec![0.5, 1.5]),
            Self::Semicircle if n > MAX_SEMICIRCLE_N => Err(Error::InvalidOption(format!(
                "a gas of {n} eigenvalues costs {n}² per step: at most {MAX_SEMICIRCLE_N}"
            ))),
            Self::Semicircle => CoulombGas::gaussian(n, beta),
        }
    }

    /// The wells whose spacings follow the surmise.
    pub fn pairs(self) -> Vec<(usize, usize)> {
        match self {
            Self::Pair | Self::TwoWidth => vec![(0, 1)],
            Self::Degenerate => vec![(0, 1), (2, 3), (4, 5), (6, 7)],
            Self::Semicircle => Vec::new(),
        }
    }

    /// Simulation settings that make each case's tests meaningful in about a second.
    pub fn default_options(self) -> DysonOptions {
        match self {
            Self::Semicircle => DysonOptions {
                dt: 1e-3,
                burn_in: 6.0,
                sample_interval: 1.0,
                samples_per_chain: 10,
                chains: 8,
                seed: 0,
            },
            _ => DysonOptions {
                dt: 2e-3,
                burn_in: 8.0,
                sample_interval: 2.0,
                samples_per_chain: 10,
                chains: 200,
                seed: 0,
            },
        }
    }
}

/// A case's simulation against its predictions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DysonReport {
    /// The case.
    pub case: DysonCase,
    /// β.
    pub beta: f64,
    /// Eigenvalues N.
    pub n: usize,
    /// Stationary configurations recorded.
    pub configurations: usize,
    /// Share of proposals accepted.
    pub acceptance: f64,
    /// KS tests of the unit spacings against GOE, GUE and Poisson (cases with pairs).
    pub spacing: Option<SpacingStatistics>,
    /// The surmise the spacings should follow at this β.
    pub expected_surmise: Option<SpacingLaw>,
    /// KS test of the eigenvalues against the predicted density (the semicircle; Favoni, Aarts, Lucini & Park's (2024)
    /// pair density for β = 1), one eigenvalue per configuration for the pair cases.
    pub density: Option<KsTest>,
    /// The unit spacings (for figures; not serialised).
    #[serde(skip)]
    pub spacings: Vec<f64>,
    /// The eigenvalues tested against the density (for figures; not serialised).
    #[serde(skip)]
    pub levels: Vec<f64>,
}

/// Simulates a case and tests it.
pub fn run_case(
    case: DysonCase,
    beta: f64,
    n: usize,
    options: &DysonOptions,
) -> Result<DysonReport> {
    let gas = case.gas(beta, n)?;
    let samples = simulate(&gas, options)?;
    let pairs = case.pairs();
    let spacings = if pairs.is_empty() {
        Vec::new()
    } else {
        unit_spacings(&samples, &pairs)
    };
    let mut coin = SeededNormal::new(options.seed ^ 0x5EED);
    let (levels, density): (Vec<f64>, Option<KsTest>) = match case {
        DysonCase::Semicircle => {
            let levels = samples.configurations.concat();
            let circle = gas.semicircle();
            let test = circle.and_then(|c| ks_test(&levels, |x| c.cdf(x)));
            (levels, test)
        }
        _ if beta == 1.0 && case != DysonCase::Degenerate => {
            let levels: Vec<f64> = samples
                .configurations
                .iter()
                .map(|x| x[usize::from(coin.uniform() < 0.5)])
                .collect();
            let law = PairDensity {
                sigma1: gas.widths[0],
                sigma2: gas.widths[1],
            };
            let test = ks_test(&levels, |x| law.cdf(x));
            (levels, test)
        }
        _ => (Vec::new(), None),
    };
    Ok(DysonReport {
        case,
        beta,
        n: gas.len(),
        configurations: samples.configurations.len(),
        acceptance: samples.acceptance,
        spacing: spacing_statistics(&spacings),
        expected_surmise: pair_surmise(beta).filter(|_| !spacings.is_empty()),
        density,
        spacings,
        levels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(chains: usize, samples_per_chain: usize, seed: u64) -> DysonOptions {
        DysonOptions {
            dt: 2e-3,
            burn_in: 8.0,
            sample_interval: 2.0,
            samples_per_chain,
            chains,
            seed,
        }
    }

    #[test]
    fn a_degenerate_pair_spaces_as_the_wigner_surmise_at_beta_1_and_2() {
        for (beta, law, wrong) in [
            (1.0, SpacingLaw::Goe, SpacingLaw::Gue),
            (2.0, SpacingLaw::Gue, SpacingLaw::Goe),
        ] {
            let gas = CoulombGas::new(beta, vec![3.0, 3.0], vec![0.5, 0.5]).unwrap();
            let samples = simulate(&gas, &options(200, 10, 1)).unwrap();
            assert!(samples.acceptance > 0.95, "{}", samples.acceptance);
            let spacings = unit_spacings(&samples, &[(0, 1)]);
            assert_eq!(spacings.len(), 2000);
            let right = ks_test(&spacings, |s| law.cdf(s)).unwrap();
            let other = ks_test(&spacings, |s| wrong.cdf(s)).unwrap();
            assert!(right.p_value > 0.01, "β = {beta}: {right:?}");
            assert!(other.p_value < 1e-4, "β = {beta}: {other:?}");
            assert_eq!(pair_surmise(beta), Some(law));
        }
    }

    #[test]
    fn ten_eigenvalues_with_four_degenerate_pairs_keep_the_surmise() {
        // Favoni, Aarts, Lucini & Park's (2024) universality check: the pairs feel each other and the two lone
        // eigenvalues, yet each pair's spacing is still Wigner's.
        let centres = vec![0.0, 0.0, 2.0, 2.0, 4.0, 4.0, 6.0, 6.0, 8.0, 10.0];
        let gas = CoulombGas::new(1.0, centres, vec![0.25; 10]).unwrap();
        let samples = simulate(&gas, &options(100, 8, 2)).unwrap();
        let spacings = unit_spacings(&samples, &[(0, 1), (2, 3), (4, 5), (6, 7)]);
        let goe = ks_test(&spacings, |s| SpacingLaw::Goe.cdf(s)).unwrap();
        let poisson = ks_test(&spacings, |s| SpacingLaw::Poisson.cdf(s)).unwrap();
        assert!(goe.p_value > 0.01, "{goe:?}");
        assert!(poisson.p_value < 1e-10, "{poisson:?}");
    }

    #[test]
    fn two_widths_give_seed_001s_two_component_density() {
        let density = PairDensity {
            sigma1: 0.5,
            sigma2: 1.5,
        };
        // A density: unit mass, even.
        assert!((density.cdf(30.0) - 1.0).abs() < 1e-10);
        assert!((density.cdf(0.0) - 0.5).abs() < 1e-10);
        let gas = CoulombGas::new(1.0, vec![0.0, 0.0], vec![0.5, 1.5]).unwrap();
        let samples = simulate(&gas, &options(200, 10, 3)).unwrap();
        // One eigenvalue per configuration, chosen by a seeded coin: independent draws of ρ.
        let mut coin = SeededNormal::new(9);
        let draws: Vec<f64> = samples
            .configurations
            .iter()
            .map(|x| x[usize::from(coin.uniform() < 0.5)])
            .collect();
        let fit = ks_test(&draws, |x| density.cdf(x)).unwrap();
        assert!(fit.p_value > 0.01, "{fit:?}");
        let equal = PairDensity {
            sigma1: 1.0,
            sigma2: 1.0,
        };
        let wrong = ks_test(&draws, |x| equal.cdf(x)).unwrap();
        assert!(wrong.p_value < 1e-4, "{wrong:?}");
    }

    #[test]
    fn a_large_gas_fills_the_semicircle() {
        let gas = CoulombGas::gaussian(40, 1.0).unwrap();
        let circle = gas.semicircle().unwrap();
        assert!((circle.sigma2 - 20.0).abs() < 1e-12);
        let samples = simulate(
            &gas,
            &DysonOptions {
                dt: 1e-3,
                burn_in: 6.0,
                sample_interval: 1.0,
                samples_per_chain: 10,
                chains: 8,
                seed: 4,
            },
        )
        .unwrap();
        let levels: Vec<f64> = samples.configurations.concat();
        let fit = ks_test(&levels, |x| circle.cdf(x)).unwrap();
        // Finite N: the edges spread by ~N^{-2/3} and the density ripples by ~1/N.
        assert!(fit.statistic < 0.03, "{fit:?}");
        let narrow = Semicircle { sigma2: 10.0 };
        assert!(ks_test(&levels, |x| narrow.cdf(x)).unwrap().statistic > 0.1);
    }

    #[test]
    fn each_case_reports_its_predictions() {
        let pair = run_case(DysonCase::Pair, 1.0, 2, &DysonCase::Pair.default_options()).unwrap();
        assert_eq!(pair.expected_surmise, Some(SpacingLaw::Goe));
        assert!(pair.spacing.unwrap().goe.p_value > 0.01 && pair.density.unwrap().p_value > 0.01);
        let two = run_case(
            DysonCase::TwoWidth,
            2.0,
            2,
            &DysonCase::TwoWidth.default_options(),
        );
        let two = two.unwrap();
        assert_eq!(two.expected_surmise, Some(SpacingLaw::Gue));
        assert!(two.density.is_none(), "the pair density is for β = 1");
        assert!(two.spacing.unwrap().gue.p_value > 0.01);
    }

    #[test]
    fn bad_gases_and_options_are_refused() {
        assert!(CoulombGas::new(1.0, vec![0.0], vec![1.0]).is_err());
        assert!(CoulombGas::new(0.0, vec![0.0, 0.0], vec![1.0, 1.0]).is_err());
        assert!(CoulombGas::new(1.0, vec![0.0, 0.0], vec![1.0, -1.0]).is_err());
        let gas = CoulombGas::gaussian(2, 1.0).unwrap();
        let bad = DysonOptions {
            dt: 0.0,
            ..DysonOptions::default()
        };
        assert!(simulate(&gas, &bad).is_err());
        assert!(DysonCase::Semicircle
            .gas(1.0, MAX_SEMICIRCLE_N + 1)
            .is_err());
        assert!(DysonCase::Semicircle.gas(1.0, 1).is_err());
    }
}
