//! The spectral density of a [`SymmetricOperator`] by stochastic Lanczos quadrature (Golub &
//! Meurant 2010; Ubaru, Chen & Saad 2017): per run, Lanczos from a Rademacher start v gives
//! nodes θᵢ (the Ritz values) and weights τᵢ² (squared first components of T's eigenvectors),
//! a Gauss rule for vᵀf(A)v/‖v‖² exact for polynomials f of degree < 2·steps; the density
//! averages the runs' rules, each node broadened by a Gaussian, as PyHessian (Yao et al. 2020)
//! draws it.
use serde::Serialize;

use super::{
    check_basis_memory, counting_products, lanczos, rademacher_vector, vector_kind,
    Reorthogonalisation, SymmetricOperator,
};
use crate::error::{Error, Result};
use crate::random::SeededNormal;

/// How the density is estimated.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct DensityOptions {
    /// Independent runs (each one Rademacher start).
    pub runs: usize,
    /// Lanczos steps per run (each one product).
    pub steps: usize,
}

impl DensityOptions {
    /// Refuses zero steps (zero runs means no density and is never computed).
    pub fn check(&self, name: &'static str) -> Result<()> {
        if self.steps == 0 {
            return Err(Error::parameter(name, "must be at least 1"));
        }
        Ok(())
    }
}

/// The spectral density from stochastic Lanczos quadrature.
#[derive(Debug, Clone, Serialize)]
pub struct Density {
    /// Grid of eigenvalues.
    pub x: Vec<f64>,
    /// Density on the grid (integrates to 1): the quadrature broadened by Gaussians.
    pub y: Vec<f64>,
    /// Standard deviation of each Gaussian.
    pub sigma: f64,
    /// Each run's quadrature nodes (Ritz values), ascending.
    pub nodes: Vec<Vec<f64>>,
    /// Each run's weights (squared first components; each run's sum to 1).
    pub weights: Vec<Vec<f64>>,
}

impl Density {
    /// The estimated spectral measure: every run's nodes with their weights divided by the
    /// number of runs (the weights sum to 1), sorted by node.
    pub fn measure(&self) -> Vec<(f64, f64)> {
        let runs = self.nodes.len().max(1) as f64;
        let mut atoms: Vec<(f64, f64)> = self
            .nodes
            .iter()
            .zip(&self.weights)
            .flat_map(|(nodes, weights)| nodes.iter().zip(weights))
            .map(|(&node, &weight)| (node, weight / runs))
            .collect();
        atoms.sort_by(|a, b| a.0.total_cmp(&b.0));
        atoms
    }

    /// The smallest and largest node.
    pub fn range(&self) -> (f64, f64) {
        self.nodes
            .iter()
            .flatten()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            })
    }
}

/// Points of the density grid.
const DENSITY_POINTS: usize = 1000;
/// The Gaussians' variance as a fraction of max(1, the nodes' range), PyHessian's default.
const DENSITY_SIGMA_SQUARED: f64 = 1e-5;

/// The density of `operator`'s spectrum from `options.runs` runs of `options.steps` Lanczos
/// steps (at most its order), with seeded Rademacher starts, each run's vectors kept
/// orthogonal as `reorthogonalisation` says. `on_product(products)` reports progress.
pub fn spectral_density(
    operator: &mut impl SymmetricOperator,
    options: DensityOptions,
    reorthogonalisation: Reorthogonalisation,
    random: &mut SeededNormal,
    on_product: &mut impl FnMut(usize),
) -> Result<Density> {
    let steps = options.steps.min(operator.dimension());
    check_basis_memory(operator, steps)?;
    let storage = vector_kind(operator.kind());
    let mut nodes = Vec::new();
    let mut weights = Vec::new();
    for _ in 0..options.runs {
        let start = rademacher_vector(operator, random)?;
        let run = lanczos(
            &mut counting_products(operator, on_product),
            &start,
            steps,
            storage,
            reorthogonalisation,
            None,
            |_, _| Ok(false),
        )?;
        let ritz = run.tridiagonal.eigen()?;
        weights.push(
            ritz.vectors
                .iter()
                .map(|vector| vector.first().map_or(0.0, |c| c * c))
                .collect(),
        );
        nodes.push(ritz.values);
    }
    Ok(Density::from_runs(nodes, weights))
}

impl Density {
    /// The runs' rules (nodes and weights per run, each run's weights summing to 1) averaged
    /// and broadened by Gaussians on a grid reaching 5σ past the nodes; runs of several
    /// operators pool into the density of their mixture (a batch of Jacobians).
    pub fn from_runs(nodes: Vec<Vec<f64>>, weights: Vec<Vec<f64>>) -> Self {
        let mut density = Self {
            x: Vec::new(),
            y: Vec::new(),
            sigma: 0.0,
            nodes,
            weights,
        };
        let (low, high) = density.range();
        density.sigma = (DENSITY_SIGMA_SQUARED * (high - low).max(1.0)).sqrt();
        let sigma = density.sigma;
        let (low, high) = (low - 5.0 * sigma, high + 5.0 * sigma);
        let step = (high - low) / (DENSITY_POINTS - 1) as f64;
        density.x = (0..DENSITY_POINTS).map(|i| low + step * i as f64).collect();
        let measure = density.measure();
        let normal = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt());
        density.y = density
            .x
            .iter()
            .map(|&at| {
                measure
                    .iter()
                    .map(|&(node, weight)| weight * (-0.5 * ((at - node) / sigma).powi(2)).exp())
                    .sum::<f64>()
                    * normal
            })
            .collect();
        density
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::rmt::bulk_outliers::{bulk_and_outliers, tests::wigner_with_spikes, BulkLaw};
    use crate::workflows::lanczos::{top_eigenpairs, TopOptions};
    use tch::Tensor;
    use tch::{Device, Kind};

    /// A dense symmetric matrix as an operator.
    struct Dense {
        matrix: Tensor,
        products: usize,
    }

    impl SymmetricOperator for Dense {
        fn dimension(&self) -> usize {
            self.matrix.size()[0] as usize
        }
        fn device(&self) -> Device {
            Device::Cpu
        }
        fn kind(&self) -> Kind {
            Kind::Double
        }
        fn apply(&mut self, v: &Tensor, out: &mut Tensor) -> Result<()> {
            self.products += 1;
            out.f_copy_(&self.matrix.f_mv(v)?)?;
            Ok(())
        }
        fn products(&self) -> usize {
            self.products
        }
    }

    /// On a spiked Wigner matrix the quadrature's moments match tr(Aᵏ)/N within a few of
    /// their standard errors, and the reading of the estimated measure finds what the exact
    /// spectrum gives: the semicircle's σ² and both outliers.
    #[test]
    fn the_quadrature_measure_reads_like_the_exact_spectrum() {
        let (order, sigma) = (500, 1.0);
        let entries = wigner_with_spikes(order, sigma, &[4.0, 3.0], 11);
        let matrix = Tensor::from_slice(&entries).reshape([order as i64, order as i64]);
        let exact = Vec::<f64>::try_from(matrix.linalg_eigvalsh("L")).unwrap();
        let mut operator = Dense {
            matrix,
            products: 0,
        };
        let mut random = SeededNormal::new(1);
        let runs = 8;
        let density = spectral_density(
            &mut operator,
            DensityOptions { runs, steps: 40 },
            Reorthogonalisation::Partial,
            &mut random,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(operator.products, runs * 40);
        let measure = density.measure();
        assert!((measure.iter().map(|a| a.1).sum::<f64>() - 1.0).abs() < 1e-12);
        for k in 1..=4 {
            let estimated: f64 = measure.iter().map(|&(x, w)| w * x.powi(k)).sum();
            let wanted = exact.iter().map(|x| x.powi(k)).sum::<f64>() / order as f64;
            // vᵀAᵏv/N for Rademacher v: variance 2(‖Aᵏ‖²_F − Σ(Aᵏ)ᵢᵢ²)/N² ≤ 2‖Aᵏ‖²_F/N².
            let frobenius = (exact.iter().map(|x| x.powi(2 * k)).sum::<f64>()).sqrt();
            let stderr = 2.0_f64.sqrt() * frobenius / order as f64 / (runs as f64).sqrt();
            assert!(
                (estimated - wanted).abs() < 4.0 * stderr,
                "moment {k}: {estimated} vs {wanted} ± {stderr}"
            );
        }
        let top = top_eigenpairs(
            &mut operator,
            TopOptions {
                k: 4,
                tolerance: 1e-8,
                max_iterations: 100,
                eigenvectors: false,
                reorthogonalisation: Reorthogonalisation::Partial,
            },
            &mut random,
            &mut |_| {},
        )
        .unwrap();
        let top: Vec<f64> = top.pairs.iter().map(|pair| pair.eigenvalue).collect();
        let reading = bulk_and_outliers(&measure, &top, order).unwrap();
        assert_eq!(reading.law, BulkLaw::Semicircle);
        assert!(
            (reading.best().sigma2 - sigma * sigma).abs() < 0.05,
            "{reading:?}"
        );
        assert_eq!(reading.outliers.len(), 2, "{reading:?}");
        assert!((reading.outliers[0] - exact[order - 1]).abs() < 1e-8);
    }
}
