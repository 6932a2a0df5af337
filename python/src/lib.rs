//! `rmt_torch._rmt_torch`: the rmt-torch library inside Python. The package's `__init__.py`
//! turns modules, state dicts and paths into the calls below; tensors arrive as the
//! `torch.Tensor`s themselves (pyo3-tch shares their storage), results leave as the CLI's JSON.
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3_tch::PyTensor;
use rmt_torch::stats::heavy_tail::estimator::Estimator;
use rmt_torch::workflows::allocate::{allocate, allocate_layers, Decision};
use serde_json::{Map, Value};

use rmt_torch::report::html::{html_report, summary_html, LayerFigures};
use rmt_torch::report::plots::{write_analysis_figures, FigureFiles, ImageFormat};
use rmt_torch::workflows::hessian::{HessianOptions, Loss, LossDescription};
use rmt_torch::workflows::jacobian::{
    analyze_in_memory, Differentiable, JacobianOptions, SampleCount,
};
use rmt_torch::workflows::lanczos::SymmetricOperator;
use rmt_torch::workflows::monitor::{json_line, SpectralMonitor};
use rmt_torch::{
    analyze, Analysis, AnalysisRequest, AnalyzeOptions, LayerReport, Model, ModelSummary,
};

create_exception!(
    _rmt_torch,
    Error,
    PyException,
    "An rmt-torch error: the CLI's one-line message."
);
create_exception!(
    _rmt_torch,
    FileError,
    Error,
    "A model file that cannot be read: missing, unreadable, not a model, corrupt."
);
create_exception!(
    _rmt_torch,
    OptionError,
    Error,
    "An option that is unknown, out of range or malformed."
);
create_exception!(
    _rmt_torch,
    InputError,
    Error,
    "Weights or inputs that cannot be analysed: non-finite, no weight matrix, out of range."
);
create_exception!(
    _rmt_torch,
    DeviceError,
    Error,
    "A device that is not available, or too small for a layer."
);
create_exception!(_rmt_torch, TorchError, Error, "An error libtorch reported.");
create_exception!(
    _rmt_torch,
    InternalError,
    Error,
    "A failure of rmt-torch itself (a figure, JSON output, a worker thread): a bug to report."
);

/// The library's error as the Python exception of its kind, in Python's words: a parameter is
/// named as its keyword, not as the command line's flag.
fn python_error(err: rmt_torch::Error) -> PyErr {
    use rmt_torch::ErrorKind;
    let message = match &err {
        rmt_torch::Error::InvalidParameter { name, reason } => {
            format!("invalid value for {name}: {reason}")
        }
        other => other.to_string(),
    };
    match err.kind() {
        ErrorKind::File => FileError::new_err(message),
        ErrorKind::Option => OptionError::new_err(message),
        ErrorKind::Input => InputError::new_err(message),
        ErrorKind::Device => DeviceError::new_err(message),
        ErrorKind::Torch => TorchError::new_err(message),
        ErrorKind::Internal => InternalError::new_err(message),
    }
}

fn option_error(message: String) -> PyErr {
    OptionError::new_err(message)
}

/// Keyword arguments as the package passes them: a JSON object of known names (a `None` is as
/// if the keyword were not given).
struct Keywords(Map<String, Value>);

impl Keywords {
    /// The keywords of `text`, refusing any name not in `known`.
    fn parse(text: &str, known: &[&str]) -> PyResult<Self> {
        let keywords: Map<String, Value> = serde_json::from_str(text)
            .map_err(|err| option_error(format!("options are not a JSON object: {err}")))?;
        if let Some(unknown) = keywords.keys().find(|key| !known.contains(&key.as_str())) {
            return Err(option_error(format!(
                "unknown option '{unknown}' (one of {})",
                known.join(", ")
            )));
        }
        Ok(Self(keywords))
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|value| !value.is_null())
    }

    /// The value of `key` read by `read`, or an error saying it must be `what`.
    fn read<'a, T>(
        &'a self,
        key: &str,
        what: &str,
        read: impl Fn(&'a Value) -> Option<T>,
    ) -> PyResult<Option<T>> {
        self.get(key)
            .map(|value| {
                read(value)
                    .ok_or_else(|| option_error(format!("{key} must be {what}, not {value}")))
            })
            .transpose()
    }

    fn text(&self, key: &str) -> PyResult<Option<&str>> {
        self.read(key, "a string", Value::as_str)
    }

    fn count(&self, key: &str) -> PyResult<Option<usize>> {
        self.read(key, "a non-negative integer", |v| {
            v.as_u64().map(|n| n as usize)
        })
    }

    fn flag(&self, key: &str, default: bool) -> PyResult<bool> {
        Ok(self
            .read(key, "True or False", Value::as_bool)?
            .unwrap_or(default))
    }

    fn number(&self, key: &str) -> PyResult<Option<f64>> {
        self.read(key, "a finite number", |v| {
            v.as_f64().filter(|v| v.is_finite())
        })
    }
}

/// The analysis options that keyword arguments (a JSON object) mean: the library's one options
/// request, read as it is, every error naming its keyword.
fn options(keywords: &str) -> PyResult<AnalyzeOptions> {
    let keywords: Value = serde_json::from_str(keywords)
        .map_err(|err| option_error(format!("options are not a JSON object: {err}")))?;
    AnalysisRequest::from_json(&keywords)
        .and_then(|request| request.resolve())
        .map_err(python_error)
}

/// The analysis keywords (the command line's analysis flags, `_` for `-`).
#[pyfunction]
fn analysis_keywords() -> Vec<String> {
    AnalysisRequest::names()
}

/// Builds the model with `model` and analyses it, the GIL released (tensors are not `Sync`, so
/// the model is made on the thread that analyses it); the analysis as the CLI's JSON.
fn analysis_json(
    py: Python<'_>,
    options: &AnalyzeOptions,
    model: impl FnOnce() -> rmt_torch::Result<Model> + Send,
) -> PyResult<String> {
    py.allow_threads(|| {
        let _no_grad = tch::no_grad_guard();
        let analysis = analyze(&model()?, options)?;
        rmt_torch::report::to_json(&analysis)
    })
    .map_err(python_error)
}

/// The tensors pyo3-tch unpacked (sharing the Python tensors' storage).
fn unwrapped(tensors: Vec<PyTensor>) -> Vec<tch::Tensor> {
    tensors.into_iter().map(|tensor| tensor.0).collect()
}

/// A model as the package passes it: `(path, label, names, tensors)`, a path (read with the
/// checkpoint key) or, with no path, named tensors under a label.
type ModelArguments = (Option<String>, String, Vec<String>, Vec<PyTensor>);

/// A model to build on the thread that uses it (tensors are not `Sync`): a file, or tensors
/// shared with Python (never copied).
struct ModelSource {
    path: Option<String>,
    label: String,
    names: Vec<String>,
    tensors: Vec<tch::Tensor>,
}

impl ModelSource {
    fn new((path, label, names, tensors): ModelArguments) -> Self {
        Self {
            path,
            label,
            names,
            tensors: unwrapped(tensors),
        }
    }

    /// The model, its file read with `key` picking a checkpoint's entry as `--key` does.
    fn model(&self, key: Option<&str>) -> rmt_torch::Result<Model> {
        match &self.path {
            Some(path) => Model::load_entry(path, key),
            None => Ok(Model::from_tensors(
                &self.label,
                self.names.iter().map(String::as_str).zip(&self.tensors),
            )),
        }
    }

    /// The model derived from `base`: a LoRA adapter laid over it (`Model::with_adapter`),
    /// any other model as it is.
    fn derived_from(&self, base: &ModelSource, key: Option<&str>) -> rmt_torch::Result<Model> {
        let model = self.model(key)?;
        if model.is_adapter() {
            base.model(key)?.with_adapter(model)
        } else {
            Ok(model)
        }
    }
}

/// The analysis of a model (every format the CLI reads, or named tensors), as JSON.
#[pyfunction]
#[pyo3(signature = (model, key, keywords, base = None))]
fn analyze_model(
    py: Python<'_>,
    model: ModelArguments,
    key: Option<String>,
    keywords: &str,
    base: Option<ModelArguments>,
) -> PyResult<String> {
    let options = options(keywords)?;
    let source = ModelSource::new(model);
    let base = base.map(ModelSource::new);
    analysis_json(py, &options, move || {
        let key = key.as_deref();
        match &base {
            None => source.model(key),
            Some(base) => {
                let model = source.model(key)?;
                if !model.is_adapter() {
                    return Err(rmt_torch::Error::InvalidOption(format!(
                        "base applies to a LoRA adapter, and {} is a {}",
                        model.path.display(),
                        model.format
                    )));
                }
                base.model(key)?.with_adapter(model)
            }
        }
    })
}

/// The decision (`rmt_torch.allocate_*`'s JSON object), typed.
fn decision_of(decision: &str) -> PyResult<Decision> {
    serde_json::from_str(decision)
        .map_err(|err| option_error(format!("invalid allocation parameters: {err}")))
}

/// The analysis keywords a decision's reference implies where none is given (its estimator,
/// every layer counted), as a JSON object.
#[pyfunction]
fn decision_defaults(decision: &str) -> PyResult<String> {
    let mut request = AnalysisRequest::default();
    decision_of(decision)?.complete(&mut request);
    let fields = |request: &AnalysisRequest| match serde_json::to_value(request) {
        Ok(Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    let untouched = fields(&AnalysisRequest::default());
    let set: serde_json::Map<String, Value> = fields(&request)
        .into_iter()
        .filter(|(name, value)| untouched.get(name) != Some(value))
        .collect();
    Ok(Value::Object(set).to_string())
}

/// The decision taken from an analysis record (`rmt-torch allocate -f json`).
#[pyfunction]
fn allocate_analysis(record: &str, decision: &str) -> PyResult<String> {
    let allocation =
        allocate(&analysis_of(record)?, &decision_of(decision)?).map_err(python_error)?;
    rmt_torch::report::to_json(&allocation).map_err(python_error)
}

/// The decision taken from a monitor's layer records of one step (JSON list), their α by
/// `estimator`: what `rmt_torch.TempBalance` applies.
#[pyfunction]
fn allocate_records(records: &str, estimator: &str, decision: &str) -> PyResult<String> {
    let layers: Vec<LayerReport> = serde_json::from_str(records)
        .map_err(|err| InternalError::new_err(format!("not layer records: {err}")))?;
    let estimator: Estimator = estimator.parse().map_err(python_error)?;
    let allocation = allocate_layers("<training>", estimator, &layers, &decision_of(decision)?)
        .map_err(python_error)?;
    rmt_torch::report::to_json(&allocation).map_err(python_error)
}

/// A model's tensors and what rmt-torch makes of each (`rmt-torch info -f json`), under the
/// selection the keywords mean, as JSON.
#[pyfunction]
#[pyo3(signature = (model, key, keywords))]
fn describe_model(model: ModelArguments, key: Option<&str>, keywords: &str) -> PyResult<String> {
    let options = options(keywords)?;
    let model = ModelSource::new(model).model(key).map_err(python_error)?;
    rmt_torch::report::to_json(&model.inventory(options.selection())).map_err(python_error)
}

/// The analysis `analyze` returned as JSON, typed again.
fn analysis_of(record: &str) -> PyResult<Analysis> {
    serde_json::from_str(record)
        .map_err(|err| InternalError::new_err(format!("not an analysis record: {err}")))
}

/// Writes the figures of `rmt-torch analyze --plots` into `directory`; their paths.
#[pyfunction]
fn plot_analysis(
    py: Python<'_>,
    record: &str,
    directory: &str,
    formats: Vec<String>,
    size: (u32, u32),
    scale: f64,
) -> PyResult<Vec<String>> {
    let analysis = analysis_of(record)?;
    let formats = formats
        .iter()
        .map(|format| format.parse::<ImageFormat>())
        .collect::<rmt_torch::Result<Vec<_>>>()
        .map_err(python_error)?;
    let mut files = FigureFiles::new(&formats);
    files.panel_size = size;
    files.scale = scale;
    let written = py
        .allow_threads(|| {
            write_analysis_figures(&analysis, None, std::path::Path::new(directory), &files)
        })
        .map_err(python_error)?;
    Ok(written
        .iter()
        .map(|path| path.display().to_string())
        .collect())
}

/// Writes the HTML report of `rmt-torch report` to `path` (figures for the `worst` worst
/// layers only, when given).
#[pyfunction]
#[pyo3(signature = (record, path, worst))]
fn report_analysis(py: Python<'_>, record: &str, path: &str, worst: Option<usize>) -> PyResult<()> {
    let analysis = analysis_of(record)?;
    let figures = worst.map_or(LayerFigures::All, LayerFigures::Worst);
    let environment = rmt_torch::environment::Environment::detect();
    let html = py
        .allow_threads(|| html_report(&analysis, Default::default(), &environment, figures))
        .map_err(python_error)?;
    std::fs::write(path, html).map_err(|source| {
        python_error(rmt_torch::Error::Io {
            path: path.into(),
            source,
        })
    })
}

/// The summary cards and layer table of the HTML report, for a notebook.
#[pyfunction]
fn analysis_html(record: &str) -> PyResult<String> {
    Ok(summary_html(&analysis_of(record)?))
}

/// The analysis as WeightWatcher's `details` rows (its columns, names and values), as JSON.
#[pyfunction]
fn weightwatcher_details(record: &str) -> PyResult<String> {
    let rows = rmt_torch::report::weightwatcher::details(&analysis_of(record)?);
    rmt_torch::report::to_json(&rows).map_err(python_error)
}

/// Two models compared layer by layer (`rmt-torch compare`), as JSON, and its rows (the CLI's
/// CSV columns) as JSON.
#[pyfunction]
#[pyo3(signature = (base, other, key, keywords, fail_if = Vec::new()))]
fn compare_models(
    py: Python<'_>,
    base: ModelArguments,
    other: ModelArguments,
    key: Option<String>,
    keywords: &str,
    fail_if: Vec<String>,
) -> PyResult<(String, String)> {
    use rmt_torch::report::Render;
    use rmt_torch::workflows::{compare, health::Rule};
    let options = options(keywords)?;
    let rules = fail_if
        .iter()
        .map(|text| Rule::parse(text, compare::COMPARE_FIELDS))
        .collect::<rmt_torch::Result<Vec<_>>>()
        .map_err(python_error)?;
    let (base, other) = (ModelSource::new(base), ModelSource::new(other));
    py.allow_threads(move || {
        let _no_grad = tch::no_grad_guard();
        let key = key.as_deref();
        let (base_model, other) = (base.model(key)?, other.derived_from(&base, key)?);
        let mut comparison = compare::compare(&base_model, &other, &options)?;
        comparison.judge(&rules);
        let rows = comparison.csv_rows()?;
        Ok((
            rmt_torch::report::to_json(&comparison)?,
            rmt_torch::report::to_json(&rows)?,
        ))
    })
    .map_err(python_error)
}

/// Keywords of [`jacobian_module`]: `rmt-torch jacobian`'s flags.
const JACOBIAN_KEYWORDS: [&str; 9] = [
    "device",
    "output_index",
    "chunk",
    "float64",
    "samples",
    "isometry_tolerance",
    "mean_gram",
    "singular_values",
    "tw_level",
];

/// The Jacobian options that keyword arguments (a JSON object) mean.
fn jacobian_options(keywords: &str) -> PyResult<JacobianOptions> {
    let keywords = Keywords::parse(keywords, &JACOBIAN_KEYWORDS)?;
    let mut options = JacobianOptions::default();
    match keywords.get("samples") {
        None => {}
        Some(Value::String(text)) => options.samples = text.parse().map_err(option_error)?,
        Some(_) => {
            options.samples = SampleCount::First(keywords.count("samples")?.unwrap_or_default())
        }
    }
    if let Some(name) = keywords.text("device")? {
        options.device = name.parse().map_err(python_error)?;
    }
    options.output_index = keywords.count("output_index")?;
    options.chunk = keywords.count("chunk")?;
    options.float64 = keywords.flag("float64", false)?;
    if let Some(tolerance) = keywords.number("isometry_tolerance")? {
        options.isometry_tolerance = tolerance;
    }
    options.mean_gram = keywords.flag("mean_gram", false)?;
    options.keep_singular_values =
        keywords.flag("singular_values", options.keep_singular_values)?;
    if let Some(level) = keywords.number("tw_level")? {
        options.rmt.level = level;
    }
    options.check().map_err(python_error)?;
    Ok(options)
}

/// Jacobian spectra of a TorchScript module serialised in memory (`torch.jit.save` to a
/// buffer: the caller's own module, run as it asked) on `batch`, as `rmt-torch jacobian`'s JSON.
#[pyfunction]
fn jacobian_module(
    py: Python<'_>,
    archive: Vec<u8>,
    batch: PyTensor,
    label: &str,
    keywords: &str,
) -> PyResult<String> {
    let options = jacobian_options(keywords)?;
    let batch = batch.0;
    py.allow_threads(move || {
        let device = options.device.resolve()?;
        let module = tch::CModule::load_data_on_device(&mut std::io::Cursor::new(archive), device)?;
        let model = Differentiable::from_module(
            module,
            device,
            options.float64,
            options.output_index,
            None,
        )?;
        let analysis = analyze_in_memory(&model, &batch, label, &options, |_, _| {})?;
        rmt_torch::report::to_json(&analysis)
    })
    .map_err(python_error)
}

const HESSIAN_KEYWORDS: [&str; 14] = [
    "reorthogonalisation",
    "device",
    "float64",
    "loss",
    "layers",
    "batch_size",
    "top_k",
    "eigenvectors",
    "tolerance",
    "max_iterations",
    "trace",
    "density",
    "density_steps",
    "seed",
];

/// The Hessian options that keyword arguments (a JSON object) mean, with the CLI's defaults.
fn hessian_options(keywords: &str) -> PyResult<HessianOptions> {
    let keywords = Keywords::parse(keywords, &HESSIAN_KEYWORDS)?;
    let mut options = HessianOptions::default();
    if let Some(name) = keywords.text("device")? {
        options.device = name.parse().map_err(python_error)?;
    }
    options.float64 = keywords.flag("float64", options.float64)?;
    if let Some(name) = keywords.text("loss")? {
        options.loss = name.parse::<Loss>().map_err(python_error)?;
    }
    options.parameters = keywords
        .text("layers")?
        .map(|pattern| {
            regex::Regex::new(pattern)
                .map_err(|err| option_error(format!("layers is not a regular expression: {err}")))
        })
        .transpose()?;
    options.batch_size = keywords.count("batch_size")?;
    options.top_k = keywords.count("top_k")?.unwrap_or(options.top_k);
    options.eigenvectors = keywords.flag("eigenvectors", options.eigenvectors)?;
    options.tolerance = keywords.number("tolerance")?.unwrap_or(options.tolerance);
    options.max_iterations = keywords
        .count("max_iterations")?
        .unwrap_or(options.max_iterations);
    options.trace_samples = keywords.count("trace")?.unwrap_or(options.trace_samples);
    options.density.runs = keywords.count("density")?.unwrap_or(options.density.runs);
    options.density.steps = keywords
        .count("density_steps")?
        .unwrap_or(options.density.steps);
    options.seed = keywords
        .count("seed")?
        .map_or(options.seed, |seed| seed as u64);
    if let Some(name) = keywords.text("reorthogonalisation")? {
        options.reorthogonalisation = name.parse().map_err(python_error)?;
    }
    options.check().map_err(python_error)?;
    Ok(options)
}

/// A loss Hessian whose products a Python callable computes (`rmt_torch.hessian` of any loss,
/// over a DataLoader, across a process group): flat float64 vector in, H·v out; the Lanczos
/// engine, the trace and the density stay the library's.
struct PythonProducts<'py> {
    callback: Bound<'py, PyAny>,
    dimension: usize,
    device: tch::Device,
    kind: tch::Kind,
    products: usize,
    /// The callable's exception, raised unchanged once the library has stopped.
    failure: Option<PyErr>,
}

impl SymmetricOperator for PythonProducts<'_> {
    fn dimension(&self) -> usize {
        self.dimension
    }

    fn device(&self) -> tch::Device {
        self.device
    }

    fn kind(&self) -> tch::Kind {
        self.kind
    }

    fn apply(&mut self, v: &tch::Tensor, out: &mut tch::Tensor) -> rmt_torch::Result<()> {
        let product = self
            .callback
            .call1((PyTensor(v.shallow_clone()),))
            .and_then(|result| result.extract::<PyTensor>());
        match product {
            Ok(product) => {
                self.products += 1;
                out.f_copy_(&product.0)?;
                Ok(())
            }
            Err(err) => {
                self.failure = Some(err);
                Err(rmt_torch::Error::InvalidInput(
                    "the Hessian-vector product raised an exception".into(),
                ))
            }
        }
    }

    fn products(&self) -> usize {
        self.products
    }
}

/// The loss Hessian whose products `callback(v)` computes (a flat tensor in `example`'s dtype
/// — float64 or float32 — and on its device in, H·v out) for the loss `description` describes (JSON: loss,
/// samples, batch_size, value, parameters), as `rmt-torch hessian`'s JSON.
#[pyfunction]
fn hessian_products(
    callback: Bound<'_, PyAny>,
    example: PyTensor,
    dimension: usize,
    description: &str,
    keywords: &str,
) -> PyResult<String> {
    let options = hessian_options(keywords)?;
    let described: LossDescription = serde_json::from_str(description)
        .map_err(|err| PyErr::new::<InternalError, _>(format!("loss description: {err}")))?;
    let mut operator = PythonProducts {
        callback,
        dimension,
        device: example.0.device(),
        kind: example.0.kind(),
        products: 0,
        failure: None,
    };
    let analysis = rmt_torch::workflows::hessian::analyze_operator(
        &mut operator,
        described,
        &options,
        |_, _| {},
        std::time::Instant::now(),
    );
    if let Some(failure) = operator.failure.take() {
        return Err(failure);
    }
    let mut analysis = analysis.map_err(python_error)?;
    analysis.input = "<data>".into();
    analysis.target = "<data>".into();
    rmt_torch::report::to_json(&analysis).map_err(python_error)
}

/// The loss Hessian of a TorchScript module serialised in memory on (`inputs`, `targets`), as
/// `rmt-torch hessian`'s JSON.
#[pyfunction]
fn hessian_module(
    py: Python<'_>,
    archive: Vec<u8>,
    inputs: PyTensor,
    targets: PyTensor,
    label: &str,
    keywords: &str,
) -> PyResult<String> {
    let options = hessian_options(keywords)?;
    let (inputs, targets) = (inputs.0, targets.0);
    py.allow_threads(move || {
        let started = std::time::Instant::now();
        let model = differentiable_archive(archive, &options)?;
        let mut analysis = rmt_torch::workflows::hessian::analyze_loaded(
            &model,
            &inputs,
            &targets,
            &options,
            |_, _| {},
            started,
        )?;
        analysis.model = label.to_string();
        rmt_torch::report::to_json(&analysis)
    })
    .map_err(python_error)
}

/// A TorchScript archive in memory, loaded on the options' device to be differentiated.
fn differentiable_archive(
    archive: Vec<u8>,
    options: &HessianOptions,
) -> rmt_torch::Result<Differentiable> {
    let device = options.device.resolve()?;
    let module = tch::CModule::load_data_on_device(&mut std::io::Cursor::new(archive), device)?;
    Differentiable::from_module(module, device, options.float64, None, None)
}

/// The data pointers of the tensors as the library sees them: equal to `t.data_ptr()` when
/// nothing was copied on the way in.
#[pyfunction]
fn shared_data_pointers(tensors: Vec<PyTensor>) -> Vec<usize> {
    tensors.iter().map(|t| t.data_ptr() as usize).collect()
}

/// The training monitor: `analyze` of the weights every `every`-th step, records appended to a
/// JSONL file that `rmt-torch track --jsonl` reads.
#[pyclass(name = "Monitor")]
struct Monitor {
    monitor: SpectralMonitor,
}

#[pymethods]
impl Monitor {
    #[new]
    #[pyo3(signature = (keywords, every, jsonl=None))]
    fn new(keywords: &str, every: usize, jsonl: Option<&str>) -> PyResult<Self> {
        let monitor = SpectralMonitor::new(options(keywords)?, every).map_err(python_error)?;
        let monitor = match jsonl {
            Some(path) => monitor.with_jsonl(path).map_err(python_error)?,
            None => monitor,
        };
        Ok(Self { monitor })
    }

    /// Analyses the named tensors at `step` (the GIL released) and writes their records;
    /// returns them as JSON lines, with the model summary of this step (`analyze`'s).
    fn observe(
        &mut self,
        py: Python<'_>,
        step: usize,
        names: Vec<String>,
        tensors: Vec<PyTensor>,
    ) -> PyResult<(Vec<String>, String)> {
        let monitor = &mut self.monitor;
        let tensors = unwrapped(tensors);
        py.allow_threads(move || {
            let model =
                Model::from_tensors("<training>", names.iter().map(String::as_str).zip(&tensors));
            let records = monitor.observe_model(step, &model)?;
            let layers: Vec<LayerReport> = records.iter().map(|r| r.layer.clone()).collect();
            let summary = serde_json::to_string(&ModelSummary::of(&layers))
                .map_err(|err| rmt_torch::Error::serialize("a model summary", err))?;
            let lines = records
                .iter()
                .map(json_line)
                .collect::<rmt_torch::Result<Vec<_>>>()?;
            Ok((lines, summary))
        })
        .map_err(python_error)
    }

    /// The loss Hessian of a TorchScript archive (the model as it is at `step`) on (`inputs`,
    /// `targets`), written as a line beside the layers'; returns that line.
    fn observe_hessian(
        &mut self,
        py: Python<'_>,
        step: usize,
        archive: Vec<u8>,
        inputs: PyTensor,
        targets: PyTensor,
        keywords: &str,
    ) -> PyResult<String> {
        let options = hessian_options(keywords)?;
        let monitor = &mut self.monitor;
        let (inputs, targets) = (inputs.0, targets.0);
        py.allow_threads(move || {
            let model = differentiable_archive(archive, &options)?;
            json_line(&monitor.observe_hessian(step, &model, &inputs, &targets, &options)?)
        })
        .map_err(python_error)
    }

    /// Seconds per observation so far (None before the first).
    fn mean_seconds(&self) -> Option<f64> {
        self.monitor.mean_seconds_per_observation()
    }
}

/// The extension module; `rmt_torch/__init__.py` imports torch before it, whose libtorch it uses.
/// Runs the `rmt-torch` command line in this process, as the binary does: `argv` as
/// `sys.argv` gives it (the program's name first); returns the exit status. The console
/// script's entry point (`_rmt_torch_cli`); the GIL is released while it runs.
#[pyfunction]
fn command_line(py: Python<'_>, argv: Vec<std::ffi::OsString>) -> u8 {
    py.allow_threads(|| rmt_torch::cli::main(argv))
}

#[pymodule]
fn _rmt_torch(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(analyze_model, m)?)?;
    m.add_function(wrap_pyfunction!(command_line, m)?)?;
    m.add_function(wrap_pyfunction!(decision_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(allocate_analysis, m)?)?;
    m.add_function(wrap_pyfunction!(allocate_records, m)?)?;
    m.add_function(wrap_pyfunction!(shared_data_pointers, m)?)?;
    m.add_function(wrap_pyfunction!(jacobian_module, m)?)?;
    m.add_function(wrap_pyfunction!(hessian_module, m)?)?;
    m.add_function(wrap_pyfunction!(hessian_products, m)?)?;
    m.add_function(wrap_pyfunction!(analysis_keywords, m)?)?;
    m.add_function(wrap_pyfunction!(describe_model, m)?)?;
    m.add_function(wrap_pyfunction!(plot_analysis, m)?)?;
    m.add_function(wrap_pyfunction!(report_analysis, m)?)?;
    m.add_function(wrap_pyfunction!(analysis_html, m)?)?;
    m.add_function(wrap_pyfunction!(weightwatcher_details, m)?)?;
    m.add_function(wrap_pyfunction!(compare_models, m)?)?;
    m.add_class::<Monitor>()?;
    m.add("Error", py.get_type::<Error>())?;
    m.add("FileError", py.get_type::<FileError>())?;
    m.add("OptionError", py.get_type::<OptionError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("DeviceError", py.get_type::<DeviceError>())?;
    m.add("TorchError", py.get_type::<TorchError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
