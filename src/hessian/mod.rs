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
use crate::jacobian::Differentiable;
use crate::lanczos::{
    basis_storage, check_basis_memory, lanczos, rademacher_vector, top_eigenpairs, Eigenpair,
    SymmetricOperator, TopOptions,
};
use crate::theory::random::SeededNormal;

/// The schema name and version written at the top of `hessian`'s JSON.
pub const HESSIAN_SCHEMA: &str = "rmt-torch/hessian/v1";

/// What to compute and how.
#[derive(Debug, Clone)]
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
    /// Stochastic Lanczos quadrature runs for the density (0: no density).
    pub density_runs: usize,
    /// Lanczos steps per density run.
    pub density_steps: usize,
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
            density_runs: 0,
            density_steps: 90,
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
            ("density_steps", self.density_steps),
        ] {
            if value == 0 {
                return Err(Error::parameter(name, "must be at least 1"));
            }
        }
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
    /// The loss.
    pub loss: Loss,
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
    /// Hessian-vector products computed.
    pub products: usize,
    /// The seed of the random vectors.
    pub seed: u64,
    /// The convergence tolerance.
    pub tolerance: f64,
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
    mut on_product: impl FnMut(usize, usize),
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
    let dimension = hessian.dimension() as i64;
    let planned = options.max_iterations.min(dimension as usize) * usize::from(options.top_k > 0)
        + options.trace_samples
        + options.density_runs * options.density_steps.min(dimension as usize);
    let mut random = SeededNormal::new(options.seed);
    let setup_seconds = started.elapsed().as_secs_f64();

    let clock = Instant::now();
    let (top, iterations, converged) = if options.top_k == 0 {
        (Vec::new(), 0, true)
    } else {
        let top = top_eigenpairs(
            &mut hessian,
            TopOptions {
                k: options.top_k,
                tolerance: options.tolerance,
                max_iterations: options.max_iterations,
                eigenvectors: options.eigenvectors,
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
        let (mean, stderr) = hutchinson_trace(
            &mut hessian,
            options.trace_samples,
            &mut random,
            &mut |done| on_product(done, planned),
        )?;
        (Some(mean), stderr)
    };
    let trace_seconds = clock.elapsed().as_secs_f64();

    let clock = Instant::now();
    let density = if options.density_runs == 0 {
        None
    } else {
        Some(slq_density(
            &mut hessian,
            options,
            &mut random,
            &mut |done| on_product(done, planned),
        )?)
    };
    let density_seconds = clock.elapsed().as_secs_f64();
    on_product(hessian.products(), hessian.products());
    let compute = top_seconds + trace_seconds + density_seconds;
    Ok(HessianAnalysis {
        schema: HESSIAN_SCHEMA,
        model: String::new(),
        input: "<in memory>".into(),
        target: "<in memory>".into(),
        loss: options.loss,
        device: crate::device::device_name(hessian.device()),
        dtype: crate::model::dtype_name(hessian.kind()),
        samples: hessian.samples(),
        batch_size: hessian.batch_size(),
        loss_value: hessian.loss_value(),
        parameters: hessian.parameter_sizes(),
        dimension,
        top_eigenvalues: top.iter().map(|pair| pair.eigenvalue).collect(),
        top,
        lanczos_iterations: iterations,
        converged,
        trace,
        trace_stderr,
        trace_samples: options.trace_samples,
        density,
        products: hessian.products(),
        seed: options.seed,
        tolerance: options.tolerance,
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
    hessian: &mut LossHessian,
    samples: usize,
    random: &mut SeededNormal,
    on_product: &mut impl FnMut(usize),
) -> Result<(f64, Option<f64>)> {
    let mut estimates = Vec::with_capacity(samples);
    for _ in 0..samples {
        let v = rademacher_vector(hessian, random)?;
        let hv = hessian.apply(&v)?;
        on_product(hessian.products());
        estimates.push(f64::try_from(v.f_dot(&hv.f_to_kind(Kind::Double)?)?)?);
    }
    let n = estimates.len() as f64;
    let mean = estimates.iter().sum::<f64>() / n;
    let stderr = (estimates.len() > 1).then(|| {
        let variance = estimates.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (variance / n).sqrt()
    });
    Ok((mean, stderr))
}

/// Points of the density grid.
const DENSITY_POINTS: usize = 1000;
/// The Gaussians' variance as a fraction of max(1, the nodes' range), PyHessian's default.
const DENSITY_SIGMA_SQUARED: f64 = 1e-5;

/// Stochastic Lanczos quadrature: per run, Lanczos from a Rademacher start gives nodes θᵢ (the
/// Ritz values) and weights τᵢ² (squared first components of T's eigenvectors), a Gauss rule
/// for vᵀ f(H) v/‖v‖²; the density averages the runs' rules, each node broadened by a Gaussian.
fn slq_density(
    hessian: &mut LossHessian,
    options: &HessianOptions,
    random: &mut SeededNormal,
    on_product: &mut impl FnMut(usize),
) -> Result<Density> {
    let steps = options.density_steps.min(hessian.dimension());
    check_basis_memory(hessian, steps)?;
    let storage = basis_storage(hessian.kind());
    let mut nodes = Vec::new();
    let mut weights = Vec::new();
    for _ in 0..options.density_runs {
        let start = rademacher_vector(hessian, random)?;
        let mut apply = |v: &Tensor| {
            let product = hessian.apply(v);
            on_product(hessian.products());
            product
        };
        let run = lanczos(&mut apply, &start, steps, storage, |_, _| Ok(false))?;
        let ritz = run.tridiagonal.eigen()?;
        weights.push(
            ritz.vectors
                .iter()
                .map(|vector| vector.first().map_or(0.0, |c| c * c))
                .collect(),
        );
        nodes.push(ritz.values);
    }
    let (low, high) = nodes
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let sigma = (DENSITY_SIGMA_SQUARED * (high - low).max(1.0)).sqrt();
    let (low, high) = (low - 5.0 * sigma, high + 5.0 * sigma);
    let step = (high - low) / (DENSITY_POINTS - 1) as f64;
    let x: Vec<f64> = (0..DENSITY_POINTS).map(|i| low + step * i as f64).collect();
    let normal = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt() * nodes.len() as f64);
    let y = x
        .iter()
        .map(|&at| {
            nodes
                .iter()
                .zip(&weights)
                .flat_map(|(run_nodes, run_weights)| run_nodes.iter().zip(run_weights))
                .map(|(&node, &weight)| weight * (-0.5 * ((at - node) / sigma).powi(2)).exp())
                .sum::<f64>()
                * normal
        })
        .collect();
    Ok(Density {
        x,
        y,
        sigma,
        nodes,
        weights,
    })
}
