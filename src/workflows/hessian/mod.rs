//! Spectra of the loss Hessian H = ∇²_θ L(θ) of a TorchScript model on a batch, without forming
//! H: Hessian-vector products by double backward through autograd, the top eigenvalues by
//! Lanczos, the trace by Hutchinson's estimator and the spectral density by stochastic Lanczos
//! quadrature, as PyHessian (Yao, Gholami, Keutzer & Mahoney 2020) computes them, with full
//! reorthogonalisation and seeded random vectors. The outliers above the bulk are the learned
//! structure that Ghorbani, Krishnan & Xiao (2019) and Papyan (2020) read.
mod loss;

use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use tch::{Kind, Tensor};

pub use loss::{Loss, LossHessian};

use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::random::SeededNormal;
use crate::stats::rmt::bulk_outliers::{bulk_and_outliers, BulkOutliers};
use crate::workflows::jacobian::Differentiable;
use crate::workflows::lanczos::{
    rademacher_vector, spectral_density, top_eigenpairs, vector_kind, Density, DensityOptions,
    Eigenpair, Reorthogonalisation, SymmetricOperator, TopOptions,
};

/// The schema name and version written at the top of `hessian`'s JSON.
pub const HESSIAN_SCHEMA: &str = "rmt-torch/hessian/v1";

/// What to compute and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HessianOptions {
    /// Where the model runs.
    pub device: DeviceChoice,
    /// Run the model in float64 (Hessian-vector products exact to round-off).
    pub float64: bool,
    /// The loss whose Hessian is taken.
    pub loss: Loss,
    /// Only parameters whose name matches (the Hessian block of those layers); all when `None`.
    pub parameters: Option<regex::Regex>,
    /// Samples per forward pass: the batch is streamed in mini-batches of this size and the
    /// mean loss over all of them differentiated. `None`: the whole batch at once.
    pub batch_size: Option<usize>,
    /// How many of the largest eigenvalues Lanczos resolves (0: none).
    pub top_k: usize,
    /// Keep the eigenvectors of the top eigenvalues in the report.
    pub eigenvectors: bool,
    /// A Ritz value θ counts as converged when its residual ‖Hy − θy‖ ≤ this · |θ| (or has
    /// reached the products' precision).
    pub tolerance: f64,
    /// Lanczos steps at most per run for the top eigenvalues.
    pub max_iterations: usize,
    /// Hutchinson samples for the trace (0: no trace).
    pub trace_samples: usize,
    /// Stochastic Lanczos quadrature for the density (0 runs: no density).
    pub density: DensityOptions,
    /// How every Lanczos run (top eigenvalues and density) keeps its vectors orthogonal.
    pub reorthogonalisation: Reorthogonalisation,
    /// Seed of every random vector.
    pub seed: u64,
}

impl Default for HessianOptions {
    fn default() -> Self {
        Self {
            device: DeviceChoice::default(),
            float64: false,
            loss: Loss::CrossEntropy,
            parameters: None,
            batch_size: None,
            top_k: 5,
            eigenvectors: false,
            tolerance: 1e-6,
            max_iterations: 100,
            trace_samples: 0,
            density: DensityOptions { runs: 0, steps: 90 },
            reorthogonalisation: Reorthogonalisation::default(),
            seed: 0,
        }
    }
}

impl HessianOptions {
    /// Refuses options that cannot be computed with, naming the option.
    pub fn check(&self) -> Result<()> {
        if !(self.tolerance > 0.0 && self.tolerance < 1.0) {
            return Err(Error::parameter(
                "tolerance",
                format!("must lie in (0, 1), got {}", self.tolerance),
            ));
        }
        for (name, value) in [
            ("batch_size", self.batch_size.unwrap_or(1)),
            ("max_iterations", self.max_iterations),
        ] {
            if value == 0 {
                return Err(Error::parameter(name, "must be at least 1"));
            }
        }
        self.density.check("density_steps")?;
        if self.top_k > self.max_iterations {
            return Err(Error::parameter(
                "top_k",
                format!(
                    "{} eigenvalues need at least as many Lanczos steps, more than the maximum of {}",
                    self.top_k, self.max_iterations
                ),
            ));
        }
        Ok(())
    }
}

/// Wall time of each part.
#[derive(Debug, Clone, Serialize)]
pub struct HessianTiming {
    /// Loading, the first forward pass and the gradient.
    pub setup_seconds: f64,
    /// Lanczos for the top eigenvalues.
    pub top_seconds: f64,
    /// Hutchinson's trace.
    pub trace_seconds: f64,
    /// Stochastic Lanczos quadrature.
    pub density_seconds: f64,
    /// Mean time of one Hessian-vector product.
    pub seconds_per_product: f64,
}

/// The Hessian of one model's loss on one batch.
#[derive(Debug, Clone, Serialize)]
pub struct HessianAnalysis {
    /// [`HESSIAN_SCHEMA`].
    pub schema: &'static str,
    /// The model file.
    pub model: String,
    /// The input file.
    pub input: String,
    /// The target file.
    pub target: String,
    /// The loss (`cross-entropy`, `mse`, or a Python function's name).
    pub loss: String,
    /// Where it ran.
    pub device: String,
    /// The model's dtype while differentiated.
    pub dtype: String,
    /// Samples in the batch.
    pub samples: usize,
    /// Samples per forward pass.
    pub batch_size: usize,
    /// The loss at θ.
    pub loss_value: f64,
    /// The parameters differentiated, in order, with their element counts.
    pub parameters: Vec<(String, i64)>,
    /// The Hessian's order: their total element count.
    pub dimension: i64,
    /// The largest eigenvalues, descending.
    pub top_eigenvalues: Vec<f64>,
    /// The same with residuals (and eigenvectors on request).
    pub top: Vec<Eigenpair>,
    /// Lanczos steps taken for them.
    pub lanczos_iterations: usize,
    /// Whether every one met the tolerance.
    pub converged: bool,
    /// Hutchinson's estimate of tr H, when asked for.
    pub trace: Option<f64>,
    /// Its standard error (sample standard deviation / √samples).
    pub trace_stderr: Option<f64>,
    /// Hutchinson samples used.
    pub trace_samples: usize,
    /// The spectral density, when asked for.
    pub density: Option<Density>,
    /// The density's bulk against a semicircle and Marchenko-Pastur, and the top eigenvalues
    /// above its edge (with a density; `None` when the bulk has no spread).
    pub bulk: Option<BulkOutliers>,
    /// Hessian-vector products computed.
    pub products: usize,
    /// The seed of the random vectors.
    pub seed: u64,
    /// The convergence tolerance.
    pub tolerance: f64,
    /// How Lanczos kept its vectors orthogonal.
    pub reorthogonalisation: Reorthogonalisation,
    /// Wall time of each part.
    pub timing: HessianTiming,
}

/// Loads the model, the input batch and the targets, and analyses the loss Hessian.
/// `on_product(done, planned)` reports progress in Hessian-vector products.
pub fn analyze_hessian(
    model_path: &Path,
    input: (&Path, Option<&str>),
    target: (&Path, Option<&str>),
    options: &HessianOptions,
    on_product: impl FnMut(usize, usize),
) -> Result<HessianAnalysis> {
    options.check()?;
    let started = Instant::now();
    let device = options.device.resolve()?;
    let model = Differentiable::load(model_path, device, options.float64, None)?;
    let (_, inputs) = crate::model::load_tensor(input.0, input.1)?;
    let (_, targets) = crate::model::load_tensor(target.0, target.1)?;
    let mut analysis = analyze_loaded(&model, &inputs, &targets, options, on_product, started)?;
    analysis.model = model_path.display().to_string();
    analysis.input = input.0.display().to_string();
    analysis.target = target.0.display().to_string();
    Ok(analysis)
}

/// [`analyze_hessian`] of a model and tensors already in memory. `started` is when the
/// caller began (the set-up time counts from it).
pub fn analyze_loaded(
    model: &Differentiable,
    inputs: &Tensor,
    targets: &Tensor,
    options: &HessianOptions,
    on_product: impl FnMut(usize, usize),
    started: Instant,
) -> Result<HessianAnalysis> {
    options.check()?;
    let mut hessian = LossHessian::new(
        model,
        inputs,
        targets,
        options.loss,
        options.parameters.as_ref(),
        options.batch_size,
    )?;
    let described = hessian.describe();
    analyze_operator(&mut hessian, described, options, on_product, started)
}

/// What a Hessian's report says about the loss it is the Hessian of.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LossDescription {
    /// The loss's name (`cross-entropy`, `mse`, or a Python function's).
    pub loss: String,
    /// Samples in the data.
    pub samples: usize,
    /// Samples per forward pass.
    pub batch_size: usize,
    /// The loss at θ.
    pub value: f64,
    /// The parameters differentiated, in order, with their element counts.
    pub parameters: Vec<(String, i64)>,
}

/// The top eigenvalues, trace and density of a loss Hessian known by its products, as
/// `options` asks (its model, device and loss options are the operator's business): the
/// engine behind the CLI's TorchScript Hessians and Python's products of any loss, over data
/// split across processes included.
pub fn analyze_operator(
    hessian: &mut impl SymmetricOperator,
    described: LossDescription,
    options: &HessianOptions,
    mut on_product: impl FnMut(usize, usize),
    started: Instant,
) -> Result<HessianAnalysis> {
    options.check()?;
    let dimension = hessian.dimension() as i64;
    let planned = options.max_iterations.min(dimension as usize) * usize::from(options.top_k > 0)
        + options.trace_samples
        + options.density.runs * options.density.steps.min(dimension as usize);
    let mut random = SeededNormal::new(options.seed);
    let setup_seconds = started.elapsed().as_secs_f64();

    let clock = Instant::now();
    let (top, iterations, converged) = if options.top_k == 0 {
        (Vec::new(), 0, true)
    } else {
        let top = top_eigenpairs(
            hessian,
            TopOptions {
                k: options.top_k,
                tolerance: options.tolerance,
                max_iterations: options.max_iterations,
                eigenvectors: options.eigenvectors,
                reorthogonalisation: options.reorthogonalisation,
            },
            &mut random,
            &mut |done| on_product(done, planned),
        )?;
        (top.pairs, top.steps, top.converged)
    };
    let top_seconds = clock.elapsed().as_secs_f64();

    let clock = Instant::now();
    let (trace, trace_stderr) = if options.trace_samples == 0 {
        (None, None)
    } else {
        let (mean, stderr) =
            hutchinson_trace(hessian, options.trace_samples, &mut random, &mut |done| {
                on_product(done, planned)
            })?;
        (Some(mean), stderr)
    };
    let trace_seconds = clock.elapsed().as_secs_f64();

    let clock = Instant::now();
    let density = if options.density.runs == 0 {
        None
    } else {
        Some(spectral_density(
            hessian,
            options.density,
            options.reorthogonalisation,
            &mut random,
            &mut |done| on_product(done, planned),
        )?)
    };
    let top_eigenvalues: Vec<f64> = top.iter().map(|pair| pair.eigenvalue).collect();
    let bulk = density.as_ref().and_then(|density| {
        bulk_and_outliers(&density.measure(), &top_eigenvalues, dimension as usize)
    });
    let density_seconds = clock.elapsed().as_secs_f64();
    on_product(hessian.products(), hessian.products());
    let compute = top_seconds + trace_seconds + density_seconds;
    Ok(HessianAnalysis {
        schema: HESSIAN_SCHEMA,
        model: String::new(),
        input: "<in memory>".into(),
        target: "<in memory>".into(),
        loss: described.loss,
        device: crate::device::device_name(hessian.device()),
        dtype: crate::model::dtype_name(hessian.kind()),
        samples: described.samples,
        batch_size: described.batch_size,
        loss_value: described.value,
        parameters: described.parameters,
        dimension,
        top_eigenvalues,
        top,
        lanczos_iterations: iterations,
        converged,
        trace,
        trace_stderr,
        trace_samples: options.trace_samples,
        density,
        bulk,
        products: hessian.products(),
        seed: options.seed,
        tolerance: options.tolerance,
        reorthogonalisation: options.reorthogonalisation,
        timing: HessianTiming {
            setup_seconds,
            top_seconds,
            trace_seconds,
            density_seconds,
            seconds_per_product: compute / hessian.products().max(1) as f64,
        },
    })
}

/// Hutchinson's tr H ≈ mean of vᵀHv over Rademacher vectors v, and the standard error of that
/// mean (`None` with one sample).
fn hutchinson_trace(
    hessian: &mut impl SymmetricOperator,
    samples: usize,
    random: &mut SeededNormal,
    on_product: &mut impl FnMut(usize),
) -> Result<(f64, Option<f64>)> {
    let mut estimates = Vec::with_capacity(samples);
    let mut hv = Tensor::f_empty(
        [hessian.dimension() as i64],
        (vector_kind(hessian.kind()), hessian.device()),
    )?;
    for _ in 0..samples {
        let v = rademacher_vector(hessian, random)?;
        hessian.apply(&v, &mut hv)?;
        on_product(hessian.products());
        estimates.push(f64::try_from(v.f_dot(&hv)?.f_to_kind(Kind::Double)?)?);
    }
    let n = estimates.len() as f64;
    let mean = estimates.iter().sum::<f64>() / n;
    let stderr = (estimates.len() > 1).then(|| {
        let variance = estimates.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (variance / n).sqrt()
    });
    Ok((mean, stderr))
}
