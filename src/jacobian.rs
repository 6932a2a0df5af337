//! Input-output Jacobians J(x) = ∂f(x)/∂x of a TorchScript model through autograd, and the
//! random-matrix statistics of their singular values (dynamical isometry: Pennington,
//! Schoenholz & Ganguli).
//!
//! libtorch has no `vmap` from Rust and a backward pass yields one vector-Jacobian product per
//! sample, so J is built from replicated inputs: a chunk of (sample, output-row) pairs is one
//! batch whose k-th copy of sample b is differentiated through output row o_k alone (the sum of
//! the selected outputs is the scalar). This is exact because in eval mode samples do not
//! interact, which is checked before anything is computed.
use std::path::Path;

use serde::Serialize;
use tch::{CModule, Device, IValue, Kind, Tensor};

use crate::device::{device_name, DeviceChoice};
use crate::error::{first_line, Error, Result};
use crate::esd::EsdScale;
use crate::rmt_suite::{rmt_report, LayerSpectrum, RmtOptions, RmtReport};
use crate::spectrum::{self, Precision};

/// The schema name and version written at the top of `jacobian`'s JSON.
pub const JACOBIAN_SCHEMA: &str = "rmt-torch/jacobian/v1";

/// Activations of one replicated sample are assumed to take at most this many times the
/// input's size when the chunk is chosen automatically (ResNet18 at 64×64 needs about 100×).
const ACTIVATION_FACTOR: usize = 256;
/// The automatic chunk never exceeds this many rows on a CPU (measured on ResNet18 at 64×64,
/// 2 cores: 50–64 rows per pass 20–23 s, 256 rows 32 s: larger passes fall out of cache) …
const MAX_AUTO_CHUNK_CPU: usize = 64;
/// … and this many on a GPU, where larger passes keep it busy.
const MAX_AUTO_CHUNK_CUDA: usize = 512;

/// What to compute and how.
#[derive(Debug, Clone)]
pub struct JacobianOptions {
    /// Where the model runs.
    pub device: DeviceChoice,
    /// For models returning a tuple: which element is the output.
    pub output_index: Option<usize>,
    /// (sample, output-row) pairs per backward pass; `None` chooses from available memory.
    pub chunk: Option<usize>,
    /// Run the model in float64 (exact Jacobians; about twice the cost on a CPU).
    pub float64: bool,
    /// Only the first this many samples of the batch.
    pub max_samples: Option<usize>,
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
            max_samples: None,
            isometry_tolerance: 0.1,
            mean_gram: false,
            keep_singular_values: true,
            rmt: RmtOptions::default(),
        }
    }
}

/// A model ready for differentiation: in eval mode, on its device, in its dtype.
pub struct Differentiable {
    module: CModule,
    device: Device,
    kind: Kind,
    output_index: Option<usize>,
}

impl Differentiable {
    /// Loads a TorchScript model onto `device`, in eval mode, converted to float64 when asked.
    pub fn load(
        path: &Path,
        device: Device,
        float64: bool,
        output_index: Option<usize>,
    ) -> Result<Self> {
        let format = crate::model::detect(path)?;
        if format != crate::model::FileFormat::TorchScript {
            return Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                message: format!(
                    "not a TorchScript model but a {format}: weights without a forward pass (Jacobians need torch.jit.script or torch.jit.trace, then .save)"
                ),
            });
        }
        let mut module =
            CModule::load_on_device(path, device).map_err(|err| Error::UnsupportedFormat {
                path: path.to_path_buf(),
                message: format!(
                    "not a TorchScript model libtorch can run: {}",
                    first_line(&err.to_string())
                ),
            })?;
        module.set_eval();
        let stored = module
            .named_parameters()?
            .iter()
            .find(|(_, t)| t.is_floating_point())
            .map_or(Kind::Float, |(_, t)| t.kind());
        let kind = if float64 { Kind::Double } else { stored };
        if float64 {
            module.to(device, Kind::Double, false);
        }
        Ok(Self {
            module,
            device,
            kind,
            output_index,
        })
    }

    /// How many outputs the model returns for `batch`: the length of its tuple, or 1.
    pub fn output_count(&self, batch: &Tensor) -> Result<usize> {
        let _guard = tch::no_grad_guard();
        let first = batch
            .f_narrow(0, 0, 1)?
            .f_to_device(self.device)?
            .f_to_kind(self.kind)?;
        let output = self
            .module
            .forward_is(&[IValue::Tensor(first)])
            .map_err(|err| {
                Error::InvalidInput(format!(
                    "the model rejected the input: {}",
                    first_line(&err.to_string())
                ))
            })?;
        Ok(match output {
            IValue::Tuple(items) | IValue::GenericList(items) => items.len(),
            _ => 1,
        })
    }

    /// f(x) flattened to [batch, outputs].
    pub fn forward(&self, input: &Tensor) -> Result<Tensor> {
        let output = self
            .module
            .forward_is(&[IValue::Tensor(input.shallow_clone())])
            .map_err(|err| {
                Error::InvalidInput(format!(
                    "the model rejected an input of shape {:?}: {}",
                    input.size(),
                    first_line(&err.to_string())
                ))
            })?;
        let tensor = match (output, self.output_index) {
            (IValue::Tensor(t), None | Some(0)) => t,
            (IValue::Tuple(items) | IValue::GenericList(items), index) => {
                let count = items.len();
                let Some(index) = index else {
                    return Err(Error::InvalidInput(format!(
                        "the model returns a tuple of {count}: choose the output with --output-index"
                    )));
                };
                match items.into_iter().nth(index) {
                    Some(IValue::Tensor(t)) => t,
                    Some(_) => {
                        return Err(Error::InvalidInput(format!(
                            "output {index} of the model is not a tensor"
                        )))
                    }
                    None => {
                        return Err(Error::InvalidInput(format!(
                        "--output-index {index} is out of range: the model returns {count} outputs"
                    )))
                    }
                }
            }
            (IValue::Tensor(_), Some(index)) => {
                return Err(Error::InvalidInput(format!(
                    "--output-index {index}: the model returns a single tensor"
                )))
            }
            (other, _) => {
                return Err(Error::InvalidInput(format!(
                    "the model returns {}, not a tensor",
                    ivalue_kind(&other)
                )))
            }
        };
        let batch = input.size()[0];
        if tensor.dim() == 0 || tensor.size()[0] != batch {
            return Err(Error::InvalidInput(format!(
                "the model's output {:?} does not keep the batch dimension {batch} first",
                tensor.size()
            )));
        }
        Ok(tensor.f_reshape([batch, -1])?)
    }
}

fn ivalue_kind(value: &IValue) -> &'static str {
    match value {
        IValue::None => "None",
        IValue::Double(_) | IValue::Int(_) | IValue::Bool(_) => "a scalar",
        IValue::String(_) => "a string",
        IValue::GenericDict(_) => "a dict",
        _ => "a non-tensor value",
    }
}

/// An input batch validated for a model: on its device and in its dtype, with the model's
/// output size known and the samples shown not to interact.
pub struct PreparedBatch {
    x: Tensor,
    outputs: i64,
}

impl PreparedBatch {
    /// Checks `batch` ([B, …], floating point) against `model`: runs it once (which also warms
    /// up TorchScript's executor) and refuses a model whose samples interact.
    pub fn new(model: &Differentiable, batch: &Tensor) -> Result<Self> {
        if !batch.is_floating_point() {
            return Err(Error::InvalidInput(format!(
                "the input batch is {:?}: Jacobians need floating-point inputs; convert it to float the way the model was trained (e.g. torch.save(x.float() / 255, 'batch.pt'))",
                batch.kind()
            )));
        }
        if batch.dim() < 2 || batch.size()[0] == 0 {
            return Err(Error::InvalidInput(format!(
                "the input batch has shape {:?}: expected [batch, …] with at least one sample and one feature dimension",
                batch.size()
            )));
        }
        let x = batch.f_to_device(model.device)?.f_to_kind(model.kind)?;
        let _guard = tch::no_grad_guard();
        let y = model.forward(&x)?;
        check_samples_independent(model, &x, &y)?;
        Ok(Self {
            outputs: y.size()[1],
            x,
        })
    }
}

/// The Jacobians of every sample of a prepared batch ([B, …] → [B, outputs, inputs], on the
/// model's device in its dtype). `on_chunk(done, total)` reports progress in rows.
pub fn jacobians(
    model: &Differentiable,
    batch: &PreparedBatch,
    chunk: Option<usize>,
    mut on_chunk: impl FnMut(usize, usize),
) -> Result<Tensor> {
    let (x, outputs) = (&batch.x, batch.outputs);
    let samples = x.size()[0] as usize;
    let inputs = (x.numel() / samples) as i64;
    let rows = samples * outputs as usize;
    let chunk = chunk
        .unwrap_or_else(|| automatic_chunk(inputs as usize, model.kind, model.device, rows))
        .max(1);
    // Each sample is replicated `replicas` times and run forward once; every backward pass
    // then seeds replica k with output row p·replicas + k, reusing the retained graph, so the
    // forward cost is samples·replicas rather than samples·outputs.
    let replicas = chunk.min(outputs as usize).max(1);
    let group = (chunk / replicas).clamp(1, samples.max(1));
    let passes = (outputs as usize).div_ceil(replicas);
    check_jacobian_memory(model, samples, outputs as usize, inputs as usize)?;
    let mut jacobian = Tensor::f_zeros([rows as i64, inputs], (model.kind, model.device))?;
    let replica = Tensor::f_arange(replicas as i64, (Kind::Int64, model.device))?;
    let mut done = 0;
    for first in (0..samples).step_by(group) {
        let members = group.min(samples - first);
        let sample_index = Tensor::f_arange_start(
            first as i64,
            (first + members) as i64,
            (Kind::Int64, model.device),
        )?
        .f_repeat_interleave_self_int(replicas as i64, 0, None)?;
        let replicated = x
            .f_index_select(0, &sample_index)?
            .f_detach()?
            .f_requires_grad_(true)?;
        let y = model.forward(&replicated)?;
        if !y.requires_grad() {
            return Err(Error::InvalidInput(
                "the model's output does not depend differentiably on its input".into(),
            ));
        }
        let replica_of_row = replica.f_repeat([members as i64])?;
        for pass in 0..passes {
            on_chunk(done, rows);
            let offset = (pass * replicas) as i64;
            let live = replicas.min(outputs as usize - pass * replicas) as i64;
            let column = (&replica_of_row + offset).f_clamp_max(outputs - 1)?;
            let weight = replica_of_row.f_lt(live)?.f_to_kind(model.kind)?;
            let selected = (y
                .f_gather(1, &column.f_unsqueeze(1)?, false)?
                .f_squeeze_dim(1)?
                * &weight)
                .f_sum(model.kind)?;
            let gradient =
                Tensor::f_run_backward(&[selected], &[&replicated], pass + 1 < passes, false)
                    .map_err(|err| {
                        Error::InvalidInput(format!(
                            "the output cannot be differentiated with respect to the input: {}",
                            first_line(&err.to_string())
                        ))
                    })?
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::InvalidInput("autograd returned no gradient".into()))?;
            // Rows of replicas that seeded a real output go to J[sample, offset + k].
            let keep = replica_of_row.f_lt(live)?.f_nonzero()?.f_squeeze_dim(1)?;
            let target = (&sample_index * outputs + &column).f_index_select(0, &keep)?;
            let values = gradient
                .f_reshape([(members * replicas) as i64, inputs])?
                .f_index_select(0, &keep)?;
            let _ = jacobian.f_index_copy_(0, &target, &values)?;
            done += members * live as usize;
        }
    }
    on_chunk(rows, rows);
    Ok(jacobian.f_reshape([samples as i64, outputs, inputs])?)
}

/// Refuses a model whose output for one sample changes with the rest of the batch (batch
/// statistics in the forward pass): the replication trick would then be wrong.
fn check_samples_independent(model: &Differentiable, x: &Tensor, y: &Tensor) -> Result<()> {
    let first = x.f_narrow(0, 0, 1)?;
    let companion = (&first * 0.5 + 0.25).f_to_kind(model.kind)?;
    let pair = Tensor::f_cat(&[&first, &companion], 0)?;
    let alone = model.forward(&first)?;
    let together = model.forward(&pair)?.f_narrow(0, 0, 1)?;
    let in_batch = y.f_narrow(0, 0, 1)?;
    let scale = f64::try_from(alone.f_abs()?.f_max()?.f_to_kind(Kind::Double)?)?.max(1e-30);
    let tolerance = if model.kind == Kind::Double {
        1e-10
    } else {
        1e-4
    };
    for other in [&together, &in_batch] {
        let difference =
            f64::try_from((other - &alone).f_abs()?.f_max()?.f_to_kind(Kind::Double)?)?;
        if difference > tolerance * scale {
            return Err(Error::InvalidInput(format!(
                "the model's output for a sample depends on the other samples in its batch (difference {:.2e} in eval mode, e.g. batch statistics in forward): per-sample Jacobians are undefined",
                difference / scale
            )));
        }
    }
    Ok(())
}

/// Refuses Jacobians whose storage, with a float64 copy of one sample's for its spectrum, would
/// not fit in the host's available memory (checked on the CPU, where running out kills the
/// process).
fn check_jacobian_memory(
    model: &Differentiable,
    samples: usize,
    outputs: usize,
    inputs: usize,
) -> Result<()> {
    let entries = (samples * outputs * inputs) as f64;
    let needed =
        entries * model.kind.elt_size_in_bytes() as f64 + 8.0 * (outputs * inputs) as f64 * 2.0;
    crate::environment::ensure_host_memory(
        || format!("the Jacobians ({samples} × {outputs} × {inputs}; try --samples)"),
        model.device,
        needed,
    )
}

/// Rows per backward pass from the host's available memory (half of it for activations).
fn automatic_chunk(inputs: usize, kind: Kind, device: Device, rows: usize) -> usize {
    let element = kind.elt_size_in_bytes();
    let per_row = inputs * element * ACTIVATION_FACTOR;
    let available =
        crate::environment::available_memory_bytes().unwrap_or(4.0 * 1024.0 * 1024.0 * 1024.0);
    let cap = if device == Device::Cpu {
        MAX_AUTO_CHUNK_CPU
    } else {
        MAX_AUTO_CHUNK_CUDA
    };
    ((available / 2.0) as usize / per_row.max(1)).clamp(1, cap.min(rows.max(1)))
}

/// The singular values of one sample's Jacobian and what they say.
#[derive(Debug, Clone, Serialize)]
pub struct SampleReport {
    /// Index in the batch.
    pub sample: usize,
    /// Largest singular value.
    pub sigma_max: f64,
    /// Smallest of the min(outputs, inputs) singular values.
    pub sigma_min: f64,
    /// Mean of σ² (Pennington et al.'s χ when J is the end-to-end Jacobian).
    pub mean_sigma2: f64,
    /// Variance of σ²: the spread that dynamical isometry drives to 0.
    pub var_sigma2: f64,
    /// σmax/σmin; absent when σmin = 0.
    pub condition_number: Option<f64>,
    /// Share of singular values with |σ − 1| ≤ the isometry tolerance.
    pub isometry_fraction: f64,
    /// The RMT suite on σ² (eigenvalue fields in units of σ²).
    #[serde(flatten)]
    pub rmt: RmtReport,
    /// Singular values, descending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub singular_values: Option<Vec<f64>>,
}

/// A batch's Jacobian analysis.
#[derive(Debug, Clone, Serialize)]
pub struct JacobianAnalysis {
    /// [`JACOBIAN_SCHEMA`].
    pub schema: &'static str,
    /// The model file.
    pub model: String,
    /// The input file.
    pub input: String,
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
    /// Rows per backward pass.
    pub chunk: usize,
    /// Isometry tolerance used.
    pub isometry_tolerance: f64,
    /// One record per sample.
    pub samples: Vec<SampleReport>,
    /// Means over the samples.
    pub summary: JacobianSummary,
    /// The spectrum of the batch-mean JᵀJ, when asked for: its eigenvalues descending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_gram_eigenvalues: Option<Vec<f64>>,
    /// Seconds spent on the Jacobians, their spectra and the statistics.
    pub timing: JacobianTiming,
}

/// Means over a batch.
#[derive(Debug, Clone, Serialize)]
pub struct JacobianSummary {
    /// Samples analysed.
    pub samples: usize,
    /// Mean of the samples' mean σ².
    pub mean_sigma2: f64,
    /// Mean of the samples' σ² variance.
    pub var_sigma2: f64,
    /// Mean isometry fraction.
    pub isometry_fraction: f64,
    /// Largest σmax over the batch.
    pub sigma_max: f64,
    /// Median condition number (over samples where it is finite).
    pub median_condition_number: Option<f64>,
}

/// Where the time went.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct JacobianTiming {
    /// The first forward passes: validating the batch, the sample-independence check and
    /// TorchScript's warm-up.
    pub check_seconds: f64,
    /// Forward and backward passes.
    pub jacobian_seconds: f64,
    /// Singular values (Gram eigenvalues in f64).
    pub spectra_seconds: f64,
    /// Everything computed from them.
    pub statistics_seconds: f64,
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
    let (model, batch) = load_model_and_batch(model_path, input_path, input_key, options)?;
    analyze_loaded(&model, &batch, (model_path, input_path), options, on_chunk)
}

/// The model (with `options.output_index` selected) and the batch (cut to `max_samples`),
/// after checking the options.
fn load_model_and_batch(
    model_path: &Path,
    input_path: &Path,
    input_key: Option<&str>,
    options: &JacobianOptions,
) -> Result<(Differentiable, Tensor)> {
    if options.isometry_tolerance.is_nan() || options.isometry_tolerance < 0.0 {
        return Err(Error::InvalidOption(format!(
            "the isometry tolerance must be ≥ 0, got {}",
            options.isometry_tolerance
        )));
    }
    let device = options.device.resolve()?;
    let model = Differentiable::load(model_path, device, options.float64, options.output_index)?;
    let (_, mut batch) = crate::model::load_tensor(input_path, input_key)?;
    if let Some(limit) = options.max_samples {
        let count = batch.size().first().copied().unwrap_or(0).min(limit as i64);
        batch = batch.f_narrow(0, 0, count)?;
    }
    Ok((model, batch))
}

/// [`analyze_jacobians`] on a loaded model and batch; `paths` (model, input) label the report.
fn analyze_loaded(
    model: &Differentiable,
    batch: &Tensor,
    (model_path, input_path): (&Path, &Path),
    options: &JacobianOptions,
    on_chunk: impl FnMut(usize, usize),
) -> Result<JacobianAnalysis> {
    let device = model.device;
    let started = std::time::Instant::now();
    let prepared = PreparedBatch::new(model, batch)?;
    let check_seconds = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let inputs_per_sample: usize = batch.size().iter().skip(1).product::<i64>().max(1) as usize;
    let chunk = options.chunk.unwrap_or_else(|| {
        automatic_chunk(inputs_per_sample, model.kind, model.device, usize::MAX)
    });
    let jacobian = jacobians(model, &prepared, Some(chunk), on_chunk)?;
    let jacobian_seconds = started.elapsed().as_secs_f64();
    let size = jacobian.size();
    let (samples, outputs, inputs) = (size[0] as usize, size[1] as usize, size[2] as usize);
    let started = std::time::Instant::now();
    let oriented = if outputs >= inputs {
        jacobian.shallow_clone()
    } else {
        jacobian.f_transpose(1, 2)?
    };
    let spectra = (0..samples)
        .map(|b| {
            spectrum::spectrum(
                &format!("J[{b}]"),
                &oriented.f_narrow(0, b as i64, 1)?,
                device,
                Precision::F64,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let mean_gram_eigenvalues = if options.mean_gram {
        let stacked = jacobian.f_reshape([1, (samples * outputs) as i64, inputs as i64])?;
        let stacked = if samples * outputs >= inputs {
            stacked
        } else {
            stacked.f_transpose(1, 2)?
        };
        let gram = spectrum::spectrum("mean JᵀJ", &stacked, device, Precision::F64)?;
        Some(
            gram.squared_singular_values
                .iter()
                .rev()
                .map(|s| s / samples as f64)
                .collect(),
        )
    } else {
        None
    };
    let spectra_seconds = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let (n, m) = (outputs.max(inputs), outputs.min(inputs));
    let reports: Vec<SampleReport> = spectra
        .iter()
        .enumerate()
        .map(|(sample, spectrum)| sample_report(sample, spectrum, n, m, options))
        .collect();
    let summary = JacobianSummary::of(&reports);
    Ok(JacobianAnalysis {
        schema: JACOBIAN_SCHEMA,
        model: model_path.display().to_string(),
        input: input_path.display().to_string(),
        device: device_name(device),
        dtype: crate::model::dtype_name(model.kind),
        outputs,
        inputs,
        input_shape: batch.size()[1..].to_vec(),
        chunk,
        isometry_tolerance: options.isometry_tolerance,
        samples: reports,
        summary,
        mean_gram_eigenvalues,
        timing: JacobianTiming {
            check_seconds,
            jacobian_seconds,
            spectra_seconds,
            statistics_seconds: started.elapsed().as_secs_f64(),
        },
    })
}

fn sample_report(
    sample: usize,
    spectrum: &spectrum::Spectrum,
    n: usize,
    m: usize,
    options: &JacobianOptions,
) -> SampleReport {
    let squared = &spectrum.squared_singular_values;
    let count = squared.len().max(1) as f64;
    let mean_sigma2 = squared.iter().sum::<f64>() / count;
    let var_sigma2 = squared
        .iter()
        .map(|s| (s - mean_sigma2).powi(2))
        .sum::<f64>()
        / count;
    let singular: Vec<f64> = squared.iter().rev().map(|s| s.sqrt()).collect();
    let sigma_max = singular.first().copied().unwrap_or(0.0);
    let sigma_min = singular.last().copied().unwrap_or(0.0);
    let isometric = singular
        .iter()
        .filter(|s| (*s - 1.0).abs() <= options.isometry_tolerance)
        .count();
    let rmt = rmt_report(
        LayerSpectrum {
            pooled: squared,
            by_matrix: &spectrum.by_matrix,
            n,
            m,
            entry_variance: spectrum.entry_variance,
            scale: EsdScale::unscaled(n),
        },
        &options.rmt,
        None,
        None,
    );
    SampleReport {
        sample,
        sigma_max,
        sigma_min,
        mean_sigma2,
        var_sigma2,
        condition_number: (sigma_min > 0.0).then(|| sigma_max / sigma_min),
        isometry_fraction: isometric as f64 / count,
        rmt,
        singular_values: options.keep_singular_values.then_some(singular),
    }
}

impl JacobianSummary {
    /// Means over sample reports.
    pub fn of(samples: &[SampleReport]) -> Self {
        let count = samples.len().max(1) as f64;
        let mean = |f: fn(&SampleReport) -> f64| samples.iter().map(f).sum::<f64>() / count;
        let mut conditions: Vec<f64> = samples.iter().filter_map(|s| s.condition_number).collect();
        conditions.sort_by(f64::total_cmp);
        Self {
            samples: samples.len(),
            mean_sigma2: mean(|s| s.mean_sigma2),
            var_sigma2: mean(|s| s.var_sigma2),
            isometry_fraction: mean(|s| s.isometry_fraction),
            sigma_max: samples.iter().map(|s| s.sigma_max).fold(0.0, f64::max),
            median_condition_number: (!conditions.is_empty())
                .then(|| conditions[conditions.len() / 2]),
        }
    }
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
    let (mut model, batch) = load_model_and_batch(model_path, input_path, input_key, &options)?;
    if batch.dim() == 0 || batch.size()[0] == 0 {
        return Err(Error::InvalidInput("the input batch is empty".into()));
    }
    let count = model.output_count(&batch)?;
    (0..count)
        .map(|index| {
            model.output_index = (count > 1).then_some(index);
            analyze_loaded(
                &model,
                &batch,
                (model_path, input_path),
                &options,
                |done, total| on_chunk(index, done, total),
            )
        })
        .collect()
}
