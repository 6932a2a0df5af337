//! The training-loop plugin: spectral statistics of a model's weights every k steps, written as
//! JSON lines, with the same layer selection and metrics as `analyze` (it calls it).
//!
//! ```no_run
//! # fn main() -> rmt_torch::Result<()> {
//! use rmt_torch::workflows::monitor::SpectralMonitor;
//! let vs = tch::nn::VarStore::new(tch::Device::Cpu);
//! // … build the model on vs.root() …
//! let mut monitor = SpectralMonitor::new(Default::default(), 100)?.with_jsonl("spectra.jsonl")?;
//! for step in 0..1000 {
//!     // … one optimiser step …
//!     monitor.observe_var_store(step, &vs)?;
//! }
//! # Ok(())
//! # }
//! ```
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::analysis::{analyze, AnalyzeOptions, LayerReport};
use crate::error::{Error, Result};
use crate::model::layers::LayerSelection;
use crate::model::Model;
use crate::workflows::hessian::{analyze_loaded, HessianAnalysis, HessianOptions};
use crate::workflows::jacobian::Differentiable;

/// One layer at one step of training: a line of the monitor's JSONL, and a record of `track`
/// (which adds the checkpoint it read).
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// The training step.
    pub step: u64,
    /// The checkpoint file the layer was read from (`track`); absent in a monitor's JSONL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Everything `analyze` reports for the layer.
    #[serde(flatten)]
    pub layer: LayerReport,
}

/// The records of a monitor's JSONL whose layer `selection` keeps, and its loss Hessian records
/// (which are no layer), as JSON objects with a whole-number `step` and a `name`. A line that is
/// not such a record is an [`Error::UnsupportedFormat`] naming the file and the line.
pub fn read_jsonl(path: &Path, selection: &LayerSelection) -> Result<Vec<serde_json::Value>> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut crate::model::open_regular(path)?.0, &mut text).map_err(
        |source| Error::Io {
            path: path.to_path_buf(),
            source,
        },
    )?;
    let mut records = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let not_a_record = |why: String| Error::UnsupportedFormat {
            path: path.to_path_buf(),
            message: format!("line {}: not a SpectralMonitor record: {why}", number + 1),
        };
        let record: serde_json::Value =
            serde_json::from_str(line).map_err(|err| not_a_record(err.to_string()))?;
        let (Some(_), Some(name)) = (record["step"].as_u64(), record["name"].as_str()) else {
            return Err(not_a_record(
                "a record is a JSON object with a whole-number \"step\" and a \"name\"".into(),
            ));
        };
        if name == HESSIAN_RECORD
            || selection
                .name_pattern
                .as_ref()
                .is_none_or(|pattern| pattern.is_match(name))
        {
            records.push(record);
        }
    }
    if records.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{}: no monitor records (after --layers)",
            path.display()
        )));
    }
    Ok(records)
}

/// The `name` of the loss Hessian's lines in a monitor's JSONL (no layer is called so).
pub const HESSIAN_RECORD: &str = "<loss Hessian>";

/// The fields of a [`HessianRecord`] that `track` can follow besides `step`.
pub const HESSIAN_FIELDS: [&str; 4] = ["sharpness", "loss", "hessian_trace", "hessian_products"];

/// The loss Hessian at one step: a line of the monitor's JSONL beside the layers' (named
/// [`HESSIAN_RECORD`]), so that `track --jsonl` follows the sharpness over training (Cohen et
/// al. 2021: it rises to 2/learning-rate and hovers there, the edge of stability).
#[derive(Debug, Clone, Serialize)]
pub struct HessianRecord {
    /// The training step observed.
    pub step: usize,
    /// [`HESSIAN_RECORD`].
    pub name: &'static str,
    /// The largest eigenvalue of the loss Hessian (`None` when no top eigenvalue was asked).
    pub sharpness: Option<f64>,
    /// The largest eigenvalues, descending.
    pub hessian_top_eigenvalues: Vec<f64>,
    /// Hutchinson's trace, when asked for.
    pub hessian_trace: Option<f64>,
    /// Its standard error.
    pub hessian_trace_stderr: Option<f64>,
    /// The loss on the batch.
    pub loss: f64,
    /// Hessian-vector products spent.
    pub hessian_products: usize,
}

impl HessianRecord {
    /// The record of `analysis` at `step`.
    pub fn of(step: usize, analysis: &HessianAnalysis) -> Self {
        Self {
            step,
            name: HESSIAN_RECORD,
            sharpness: analysis.top_eigenvalues.first().copied(),
            hessian_top_eigenvalues: analysis.top_eigenvalues.clone(),
            hessian_trace: analysis.trace,
            hessian_trace_stderr: analysis.trace_stderr,
            loss: analysis.loss_value,
            hessian_products: analysis.products,
        }
    }
}

/// Observes a model's weights during training.
pub struct SpectralMonitor {
    options: AnalyzeOptions,
    every: usize,
    writer: Option<std::io::BufWriter<std::fs::File>>,
    seconds: f64,
    observations: usize,
    /// The observation running on a background thread, if any.
    pending: Option<std::thread::JoinHandle<Result<Vec<StepRecord>>>>,
}

impl SpectralMonitor {
    /// A monitor analysing with `options` (the same validated options as `analyze`) at every
    /// step divisible by `every` (≥ 1).
    pub fn new(options: AnalyzeOptions, every: usize) -> Result<Self> {
        if every == 0 {
            return Err(Error::parameter("every", "must be at least 1"));
        }
        Ok(Self {
            options,
            every,
            writer: None,
            seconds: 0.0,
            observations: 0,
            pending: None,
        })
    }

    /// Also appends each record as a JSON line to `path` (created or truncated).
    pub fn with_jsonl(mut self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::create(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.writer = Some(std::io::BufWriter::new(file));
        Ok(self)
    }

    /// Observes a `tch` VarStore's variables (sorted by name) at `step`; `None` between
    /// observation steps. Reads the variables under `no_grad` and never modifies them.
    pub fn observe_var_store(
        &mut self,
        step: usize,
        vs: &tch::nn::VarStore,
    ) -> Result<Option<Vec<StepRecord>>> {
        if step % self.every != 0 {
            return Ok(None);
        }
        self.observe_model(step, &Model::from_var_store(TRAINING, vs))
            .map(Some)
    }

    /// Observes named tensors at `step`, whatever the step (the caller decides when).
    pub fn observe(
        &mut self,
        step: usize,
        tensors: Vec<(String, tch::Tensor)>,
    ) -> Result<Vec<StepRecord>> {
        let shared: Vec<(String, tch::Tensor)> = {
            let _guard = tch::no_grad_guard();
            tensors
                .into_iter()
                .map(|(name, tensor)| (name, tensor.detach()))
                .collect()
        };
        let model = Model::from_tensors(
            TRAINING,
            shared.iter().map(|(name, tensor)| (name.as_str(), tensor)),
        );
        self.observe_model(step, &model)
    }

    /// Observes a model's tensors at `step`, whatever the step (the caller decides when).
    pub fn observe_model(&mut self, step: usize, model: &Model) -> Result<Vec<StepRecord>> {
        let started = std::time::Instant::now();
        let records = records_of(step, model, &self.options)?;
        self.write(&records)?;
        self.seconds += started.elapsed().as_secs_f64();
        self.observations += 1;
        Ok(records)
    }

    /// The loss Hessian of `model` on (`inputs`, `targets`) at `step` (whatever the step),
    /// computed with `options` as [`crate::workflows::hessian::analyze_loaded`] does and written as a
    /// line beside the layers'. The sharpness is `options.top_k = 1` away.
    pub fn observe_hessian(
        &mut self,
        step: usize,
        model: &Differentiable,
        inputs: &tch::Tensor,
        targets: &tch::Tensor,
        options: &HessianOptions,
    ) -> Result<HessianRecord> {
        let started = std::time::Instant::now();
        let analysis = analyze_loaded(model, inputs, targets, options, |_, _| {}, started)?;
        let record = HessianRecord::of(step, &analysis);
        self.write(std::slice::from_ref(&record))?;
        self.seconds += started.elapsed().as_secs_f64();
        self.observations += 1;
        Ok(record)
    }

    /// Like [`SpectralMonitor::observe_var_store`], but the variables are copied (on their
    /// device) and analysed on a background thread while training goes on; at most one
    /// observation is in flight, the next waits for it. Its records reach the JSONL when it is
    /// joined: at the next observation or at [`SpectralMonitor::finish`], which returns them.
    /// On the CPU, while one of its eigensolves runs, libtorch runs on one thread for the whole
    /// process (the price of numbers that do not depend on the thread count): training on the
    /// CPU slows for that time; on a GPU nothing changes.
    pub fn observe_var_store_in_background(
        &mut self,
        step: usize,
        vs: &tch::nn::VarStore,
    ) -> Result<Vec<StepRecord>> {
        if step % self.every != 0 {
            return Ok(Vec::new());
        }
        let finished = self.finish()?;
        let started = std::time::Instant::now();
        let mut copies: Vec<(String, tch::Tensor)> = {
            let _guard = tch::no_grad_guard();
            vs.variables()
                .into_iter()
                .map(|(name, tensor)| (name, tensor.detach().copy()))
                .collect()
        };
        copies.sort_by(|a, b| a.0.cmp(&b.0));
        let options = self.options.clone();
        self.pending = Some(std::thread::spawn(move || {
            let model = Model::from_tensors(
                TRAINING,
                copies.iter().map(|(name, tensor)| (name.as_str(), tensor)),
            );
            records_of(step, &model, &options)
        }));
        self.seconds += started.elapsed().as_secs_f64();
        self.observations += 1;
        Ok(finished)
    }

    /// Waits for a background observation, writes its records and returns them (empty when
    /// none was running).
    pub fn finish(&mut self) -> Result<Vec<StepRecord>> {
        let Some(handle) = self.pending.take() else {
            return Ok(Vec::new());
        };
        let records = handle.join().map_err(|_| Error::Panicked {
            task: "observing the model in the background".into(),
        })??;
        self.write(&records)?;
        Ok(records)
    }

    fn write(&mut self, records: &[impl Serialize]) -> Result<()> {
        let Some(writer) = &mut self.writer else {
            return Ok(());
        };
        for record in records {
            let line = json_line(record)?;
            writeln!(writer, "{line}")
                .and_then(|()| writer.flush())
                .map_err(|source| Error::Io {
                    path: "monitor JSONL".into(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Mean wall time of an observation so far, in seconds: its cost to the training loop (for
    /// background observations only the copy, not the analysis).
    pub fn mean_seconds_per_observation(&self) -> Option<f64> {
        (self.observations > 0).then(|| self.seconds / self.observations as f64)
    }
}

/// A record as one line of JSON (no newline).
pub fn json_line(record: &impl Serialize) -> Result<String> {
    serde_json::to_string(record).map_err(|err| Error::serialize("a monitor record", err))
}

/// The label of the models a monitor observes.
const TRAINING: &str = "<training>";

/// The records of `model` at `step`: `analyze` on it, read under `no_grad`.
fn records_of(step: usize, model: &Model, options: &AnalyzeOptions) -> Result<Vec<StepRecord>> {
    let _guard = tch::no_grad_guard();
    let analysis = analyze(model, options)?;
    Ok(analysis
        .layers
        .into_iter()
        .map(|layer| StepRecord {
            step: step as u64,
            source: None,
            layer,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `track` accepts exactly what a Hessian record carries.
    #[test]
    fn hessian_fields_are_the_records_fields() {
        let record = HessianRecord {
            step: 3,
            name: HESSIAN_RECORD,
            sharpness: Some(2.0),
            hessian_top_eigenvalues: vec![2.0],
            hessian_trace: Some(5.0),
            hessian_trace_stderr: Some(0.1),
            loss: 0.7,
            hessian_products: 12,
        };
        let line: serde_json::Value = serde_json::from_str(&json_line(&record).unwrap()).unwrap();
        for field in HESSIAN_FIELDS {
            assert!(line[field].is_number(), "{field} missing from {line}");
        }
    }
}
