//! Input-output Jacobians J(x) = ∂f(x)/∂x of a TorchScript model through autograd, and the
//! random-matrix statistics of their singular values (dynamical isometry: Pennington,
//! Schoenholz & Ganguli).
//!
//! libtorch has no `vmap` from Rust and a backward pass yields one vector-Jacobian product per
//! sample, so J is built from replicated inputs: a chunk of (sample, output-row) pairs is one
//! batch whose k-th copy of sample b is differentiated through output row o_k alone (the sum of
//! the selected outputs is the scalar). This is exact because in eval mode samples do not
//! interact, which is checked before anything is computed.
//!
//! The flow: [`Differentiable`] loads and runs the model (the only place that executes
//! TorchScript), [`jacobians`] builds J by autograd, and the report turns each J's singular
//! values into statistics. For Jacobians too large to form, [`analyze_top_singular_values`]
//! finds the largest singular values from products with J and Jᵀ alone.
mod autograd;
mod model;
mod products;
mod report;

use std::path::Path;

use serde::Serialize;
use tch::Tensor;

pub use autograd::jacobians;
pub use model::{Differentiable, PreparedBatch};
pub use products::{
    JacobianLanczosAnalysis, LanczosOptions, LanczosSample, JACOBIAN_LANCZOS_SCHEMA,
};
use report::analyze_loaded;
pub use report::{
    JacobianAnalysis, JacobianSummary, JacobianTiming, SampleReport, JACOBIAN_SCHEMA,
};

use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::stats::suite::RmtOptions;

/// Samples differentiated by default: enough for stable means, quick on a CPU (a whole
/// dataset of 1797 digits takes minutes and prints 1797 rows).
pub const DEFAULT_SAMPLES: usize = 32;
/// A singular value counts as isometric by default when |σ − 1| ≤ this.
pub const DEFAULT_ISOMETRY_TOLERANCE: f64 = 0.1;

/// How many samples of a batch to differentiate: `all`, or the first N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleCount {
    /// Every sample of the batch.
    All,
    /// The first N samples (all of them when the batch has fewer).
    First(usize),
}

impl SampleCount {
    /// How many of `available` samples are used.
    pub fn of(self, available: usize) -> usize {
        match self {
            Self::All => available,
            Self::First(count) => count.min(available),
        }
    }
}

impl std::str::FromStr for SampleCount {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        if text == "all" {
            return Ok(Self::All);
        }
        match text.parse::<usize>() {
            Ok(0) | Err(_) => Err(format!(
                "expected `all` or a number of samples ≥ 1, got `{text}`"
            )),
            Ok(count) => Ok(Self::First(count)),
        }
    }
}

impl std::fmt::Display for SampleCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => write!(f, "all"),
            Self::First(count) => write!(f, "{count}"),
        }
    }
}

/// What to compute and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JacobianOptions {
    /// Where the model runs.
    pub device: DeviceChoice,
    /// For models returning a tuple: which element is the output.
    pub output_index: Option<usize>,
    /// (sample, output-row) pairs per backward pass; `None` chooses from available memory.
    pub chunk: Option<usize>,
    /// Run the model in float64 (exact Jacobians; about twice the cost on a CPU).
    pub float64: bool,
    /// Which samples of the batch are differentiated.
    pub samples: SampleCount,
    /// A singular value counts as isometric when |σ − 1| ≤ this.
    pub isometry_tolerance: f64,
    /// Also the spectrum of the batch-mean JᵀJ.
    pub mean_gram: bool,
    /// Keep each sample's singular values in the report.
    pub keep_singular_values: bool,
    /// The RMT suite's options for each J.
    pub rmt: RmtOptions,
}

impl Default for JacobianOptions {
    fn default() -> Self {
        Self {
            device: DeviceChoice::default(),
            output_index: None,
            chunk: None,
            float64: false,
            samples: SampleCount::First(DEFAULT_SAMPLES),
            isometry_tolerance: DEFAULT_ISOMETRY_TOLERANCE,
            mean_gram: false,
            keep_singular_values: true,
            rmt: RmtOptions::default(),
        }
    }
}

impl JacobianOptions {
    /// Refuses options that cannot be computed with, naming the option.
    pub fn check(&self) -> Result<()> {
        if !(self.isometry_tolerance >= 0.0 && self.isometry_tolerance.is_finite()) {
            return Err(Error::parameter(
                "isometry_tolerance",
                format!("must be finite and ≥ 0, got {}", self.isometry_tolerance),
            ));
        }
        if self.chunk == Some(0) || self.samples == SampleCount::First(0) {
            let name = if self.chunk == Some(0) {
                "chunk"
            } else {
                "samples"
            };
            return Err(Error::parameter(name, "must be at least 1"));
        }
        self.rmt.check()
    }
}

/// The files a Jacobian analysis reads, and how many samples the input file holds.
#[derive(Debug, Clone, Copy)]
struct Sources<'a> {
    model: &'a Path,
    input: &'a Path,
    samples_in_file: usize,
}

/// What was differentiated, on what and where: the fields both Jacobian reports open with.
#[derive(Debug, Clone, Serialize)]
pub struct JacobianSetup {
    /// The model file.
    pub model: String,
    /// The input file.
    pub input: String,
    /// Samples in the input file (the report covers the first of them).
    pub samples_in_file: usize,
    /// Where the model ran.
    pub device: String,
    /// The dtype the model ran in.
    pub dtype: String,
    /// Outputs (rows of each J).
    pub outputs: usize,
    /// Inputs per sample (columns of each J), the shape flattened.
    pub inputs: usize,
    /// The shape of one input sample.
    pub input_shape: Vec<i64>,
}

impl JacobianSetup {
    /// The setup of `model` on `batch` ([B, …]) read from `sources`, with `outputs` per sample.
    fn new(sources: Sources, model: &Differentiable, batch: &Tensor, outputs: usize) -> Self {
        let input_shape = batch.size()[1..].to_vec();
        Self {
            model: sources.model.display().to_string(),
            input: sources.input.display().to_string(),
            samples_in_file: sources.samples_in_file,
            device: crate::device::device_name(model.device),
            dtype: crate::model::dtype_name(model.kind),
            outputs,
            inputs: input_shape.iter().product::<i64>().max(0) as usize,
            input_shape,
        }
    }
}

/// Loads the model and the batch, computes every sample's Jacobian and analyses its spectrum.
/// `on_chunk(done, total)` reports progress in rows of J.
pub fn analyze_jacobians(
    model_path: &Path,
    input_path: &Path,
    input_key: Option<&str>,
    options: &JacobianOptions,
    on_chunk: impl FnMut(usize, usize),
) -> Result<JacobianAnalysis> {
    let (model, batch, sources) = load_model_and_batch(model_path, input_path, input_key, options)?;
    analyze_loaded(&model, &batch, sources, options, on_chunk)
}

/// [`analyze_jacobians`] of a model and a batch already in memory (a Python caller's traced
/// module, say); `label` names the model in the report. The batch is cut to `options.samples`.
pub fn analyze_in_memory(
    model: &Differentiable,
    batch: &Tensor,
    label: &str,
    options: &JacobianOptions,
    on_chunk: impl FnMut(usize, usize),
) -> Result<JacobianAnalysis> {
    options.check()?;
    let samples_in_file = batch.size().first().copied().unwrap_or(0).max(0) as usize;
    let batch = batch.f_narrow(0, 0, options.samples.of(samples_in_file) as i64)?;
    let sources = Sources {
        model: Path::new(label),
        input: Path::new("<in memory>"),
        samples_in_file,
    };
    analyze_loaded(model, &batch, sources, options, on_chunk)
}

/// The `lanczos.k` largest singular values of every sample's Jacobian by Lanczos, from
/// products with J and Jᵀ, never forming J: for inputs too large for [`analyze_jacobians`]
/// (an ImageNet model's J is 1000 × 150528 per sample). `on_product(sample, products)`
/// reports progress.
pub fn analyze_top_singular_values(
    model_path: &Path,
    input_path: &Path,
    input_key: Option<&str>,
    options: &JacobianOptions,
    lanczos: LanczosOptions,
    on_product: impl FnMut(usize, usize),
) -> Result<JacobianLanczosAnalysis> {
    let (model, batch, sources) = load_model_and_batch(model_path, input_path, input_key, options)?;
    let prepared = PreparedBatch::new(&model, &batch)?;
    products::top_singular_values(&model, &prepared.x, sources, lanczos, on_product)
}

/// The model (with `options.output_index` selected) and the batch (cut to `options.samples`),
/// after checking the options.
fn load_model_and_batch<'a>(
    model_path: &'a Path,
    input_path: &'a Path,
    input_key: Option<&str>,
    options: &JacobianOptions,
) -> Result<(Differentiable, Tensor, Sources<'a>)> {
    options.check()?;
    let device = options.device.resolve()?;
    let model = Differentiable::load(model_path, device, options.float64, options.output_index)?;
    let (_, batch) = crate::model::load_tensor(input_path, input_key)?;
    let samples_in_file = batch.size().first().copied().unwrap_or(0).max(0) as usize;
    let batch = batch.f_narrow(0, 0, options.samples.of(samples_in_file) as i64)?;
    let sources = Sources {
        model: model_path,
        input: input_path,
        samples_in_file,
    };
    Ok((model, batch, sources))
}

/// [`analyze_jacobians`] for every output of a model that returns a tuple of activations
/// (h₁, …, h_L): the Jacobians ∂h_l/∂x of the partial products of the layer chain, so a user
/// sees at which depth isometry breaks. A model returning one tensor gives one analysis.
/// `on_chunk(output, done, total)` reports progress.
pub fn analyze_each_output(
    model_path: &Path,
    input_path: &Path,
    input_key: Option<&str>,
    options: &JacobianOptions,
    mut on_chunk: impl FnMut(usize, usize, usize),
) -> Result<Vec<JacobianAnalysis>> {
    let options = JacobianOptions {
        output_index: None,
        ..options.clone()
    };
    let (mut model, batch, sources) =
        load_model_and_batch(model_path, input_path, input_key, &options)?;
    if batch.dim() == 0 || batch.size()[0] == 0 {
        return Err(Error::InvalidInput("the input batch is empty".into()));
    }
    let count = model.output_count(&batch)?;
    (0..count)
        .map(|index| {
            model.output_index = (count > 1).then_some(index);
            analyze_loaded(&model, &batch, sources, &options, |done, total| {
                on_chunk(index, done, total)
            })
        })
        .collect()
}
