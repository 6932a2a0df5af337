//! The largest singular values of J(x) without forming J: Jᵀu is one backward pass, J·v the
//! derivative of Jᵀu (linear in u) in u, one more; Lanczos on JJᵀ or JᵀJ, whichever is smaller,
//! finds σ² at the top. An ImageNet model's J of 1000 × 150528 per sample never exists: only
//! vectors of its sides do.
use std::time::Instant;

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::{Differentiable, JacobianSetup, Sources};
use crate::error::{torch_message, Error, Result};
use crate::random::SeededNormal;
use crate::stats::rmt::bulk_outliers::{bulk_and_outliers, BulkOutliers};
use crate::workflows::lanczos::{
    spectral_density, top_eigenpairs, Density, DensityOptions, Reorthogonalisation,
    SymmetricOperator, TopOptions,
};

/// The schema name and version written at the top of `jacobian --lanczos`'s JSON.
pub const JACOBIAN_LANCZOS_SCHEMA: &str = "rmt-torch/jacobian-lanczos/v1";

/// What `--lanczos` computes.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct LanczosOptions {
    /// How many of the largest singular values per sample.
    pub k: usize,
    /// σ² counts as converged when its residual ≤ this · σ² (or is at the products' precision).
    pub tolerance: f64,
    /// Lanczos steps at most per run.
    pub max_iterations: usize,
    /// Seed of the start vectors.
    pub seed: u64,
    /// Stochastic Lanczos quadrature of each sample's σ² spectrum (0 runs: none).
    pub density: DensityOptions,
}

impl Default for LanczosOptions {
    fn default() -> Self {
        Self {
            k: 10,
            tolerance: 1e-8,
            max_iterations: 200,
            seed: 0,
            density: DensityOptions { runs: 0, steps: 90 },
        }
    }
}

/// One sample's largest singular values.
#[derive(Debug, Clone, Serialize)]
pub struct LanczosSample {
    /// Index in the batch.
    pub sample: usize,
    /// σ, descending.
    pub top_singular_values: Vec<f64>,
    /// Residuals ‖Ay − σ²y‖ of each σ² (A = JJᵀ or JᵀJ): bounds on the error of σ².
    pub residuals: Vec<f64>,
    /// Whether every one met the tolerance.
    pub converged: bool,
    /// Products with A (each two backward passes).
    pub products: usize,
    /// With a density: this sample's σ² bulk against Marchenko-Pastur and a semicircle, and
    /// its top σ² above the bulk edge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk: Option<BulkOutliers>,
}

/// A batch's top singular values by Lanczos.
#[derive(Debug, Clone, Serialize)]
pub struct JacobianLanczosAnalysis {
    /// [`JACOBIAN_LANCZOS_SCHEMA`].
    pub schema: &'static str,
    /// The model, the input and J's shape.
    #[serde(flatten)]
    pub setup: JacobianSetup,
    /// `JJᵀ` (outputs ≤ inputs) or `JᵀJ`: the operator Lanczos ran on.
    pub operator: &'static str,
    /// Singular values asked for per sample.
    pub k: usize,
    /// The convergence tolerance.
    pub tolerance: f64,
    /// The seed of the start vectors.
    pub seed: u64,
    /// Per sample.
    pub samples: Vec<LanczosSample>,
    /// The density of σ² (the eigenvalues of the operator) over the batch, when asked for:
    /// every sample's quadrature runs pooled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub density: Option<Density>,
    /// Wall time of all products.
    pub seconds: f64,
    /// Mean time of one product.
    pub seconds_per_product: f64,
}

/// JJᵀ (outputs ≤ inputs) or JᵀJ of one sample, by products.
struct JacobianGram<'m> {
    model: &'m Differentiable,
    x: Tensor,
    y: Tensor,
    /// u₀, a stand-in vector on the outputs, and Jᵀu₀ with its graph: differentiating
    /// (Jᵀu₀)·v in u₀ gives J·v.
    u0: Tensor,
    vjp: Tensor,
    outputs_side: bool,
    products: usize,
}

impl<'m> JacobianGram<'m> {
    fn new(model: &'m Differentiable, sample: &Tensor) -> Result<Self> {
        let x = sample.f_detach()?.f_requires_grad_(true)?;
        let y = model.forward(&x)?;
        if !y.requires_grad() {
            return Err(Error::InvalidInput(
                "the model's output does not depend differentiably on its input".into(),
            ));
        }
        let u0 = y.f_zeros_like()?.f_detach()?.f_requires_grad_(true)?;
        let vjp = Tensor::f_run_backward(&[(&y * &u0).f_sum(model.kind)?], &[&x], true, true)
            .map_err(|err| product_error(&err))?
            .remove(0)
            .f_reshape([-1])?;
        let outputs_side = y.numel() <= x.numel();
        Ok(Self {
            model,
            x,
            y,
            u0,
            vjp,
            outputs_side,
            products: 0,
        })
    }

    /// Jᵀu for a flat u over the outputs.
    fn transposed_product(&self, u: &Tensor) -> Result<Tensor> {
        let u = u.f_to_kind(self.model.kind)?.f_reshape(self.y.size())?;
        let seed = (&self.y * u).f_sum(self.model.kind)?;
        Ok(Tensor::f_run_backward(&[seed], &[&self.x], true, false)
            .map_err(|err| product_error(&err))?
            .remove(0)
            .f_reshape([-1])?)
    }

    /// J·v for a flat v over the inputs.
    fn product(&self, v: &Tensor) -> Result<Tensor> {
        let seed = self.vjp.f_dot(&v.f_to_kind(self.model.kind)?)?;
        Ok(Tensor::f_run_backward(&[seed], &[&self.u0], true, false)
            .map_err(|err| product_error(&err))?
            .remove(0)
            .f_reshape([-1])?)
    }
}

impl SymmetricOperator for JacobianGram<'_> {
    fn dimension(&self) -> usize {
        if self.outputs_side {
            self.y.numel()
        } else {
            self.x.numel()
        }
    }

    fn device(&self) -> Device {
        self.model.device
    }

    fn kind(&self) -> Kind {
        self.model.kind
    }

    fn apply(&mut self, v: &Tensor, out: &mut Tensor) -> Result<()> {
        let result = if self.outputs_side {
            self.product(&self.transposed_product(v)?)?
        } else {
            self.transposed_product(&self.product(v)?)?
        };
        self.products += 1;
        if !f64::try_from(result.f_sum(result.kind())?.f_to_kind(Kind::Double)?)?.is_finite() {
            return Err(Error::InvalidInput(
                "a Jacobian product is not finite".into(),
            ));
        }
        out.f_copy_(&result)?;
        Ok(())
    }

    fn products(&self) -> usize {
        self.products
    }
}

fn product_error(err: &tch::TchError) -> Error {
    Error::InvalidInput(format!(
        "the output cannot be differentiated twice with respect to the input: {}",
        torch_message(&err.to_string())
    ))
}

/// The `options.k` largest singular values of every sample's Jacobian of `batch` ([B, …] on
/// the model's device in its dtype). `on_product(sample, products)` reports progress.
pub(super) fn top_singular_values(
    model: &Differentiable,
    batch: &Tensor,
    sources: Sources<'_>,
    options: LanczosOptions,
    mut on_product: impl FnMut(usize, usize),
) -> Result<JacobianLanczosAnalysis> {
    if options.k == 0 || options.max_iterations < options.k {
        return Err(Error::parameter(
            "lanczos",
            format!(
                "{} singular values need between 1 and {} Lanczos steps",
                options.k, options.max_iterations
            ),
        ));
    }
    if !(options.tolerance > 0.0 && options.tolerance < 1.0) {
        return Err(Error::parameter(
            "lanczos_tolerance",
            format!("must lie in (0, 1), got {}", options.tolerance),
        ));
    }
    options.density.check("lanczos_density_steps")?;
    let _frozen = model.frozen()?;
    let started = Instant::now();
    let mut random = SeededNormal::new(options.seed);
    let mut samples = Vec::new();
    let (mut nodes, mut weights) = (Vec::new(), Vec::new());
    let mut products = 0;
    let (mut outputs, mut operator) = (0, "JJᵀ");
    for index in 0..batch.size()[0] {
        let mut gram = JacobianGram::new(model, &batch.f_narrow(0, index, 1)?)?;
        outputs = gram.y.numel();
        if !gram.outputs_side {
            operator = "JᵀJ";
        }
        let top = top_eigenpairs(
            &mut gram,
            TopOptions {
                k: options.k,
                tolerance: options.tolerance,
                max_iterations: options.max_iterations,
                eigenvectors: false,
                reorthogonalisation: Reorthogonalisation::default(),
            },
            &mut random,
            &mut |done| on_product(index as usize, done),
        )?;
        let bulk = if options.density.runs == 0 {
            None
        } else {
            let density = spectral_density(
                &mut gram,
                options.density,
                Reorthogonalisation::default(),
                &mut random,
                &mut |done| on_product(index as usize, done),
            )?;
            let top: Vec<f64> = top.pairs.iter().map(|pair| pair.eigenvalue).collect();
            let bulk = bulk_and_outliers(&density.measure(), &top, gram.dimension());
            nodes.extend(density.nodes);
            weights.extend(density.weights);
            bulk
        };
        products += gram.products;
        samples.push(LanczosSample {
            sample: index as usize,
            top_singular_values: top
                .pairs
                .iter()
                .map(|pair| pair.eigenvalue.max(0.0).sqrt())
                .collect(),
            residuals: top.pairs.iter().map(|pair| pair.residual).collect(),
            converged: top.converged,
            products: gram.products,
            bulk,
        });
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(JacobianLanczosAnalysis {
        schema: JACOBIAN_LANCZOS_SCHEMA,
        setup: JacobianSetup::new(sources, model, batch, outputs),
        operator,
        k: options.k,
        tolerance: options.tolerance,
        seed: options.seed,
        samples,
        density: (!nodes.is_empty()).then(|| Density::from_runs(nodes, weights)),
        seconds,
        seconds_per_product: seconds / products.max(1) as f64,
    })
}
