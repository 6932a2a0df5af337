//! Loading models: every supported file format becomes the same [`Model`], an index of named
//! tensors. Reading a file builds the index — names, dtypes, shapes and where each tensor's
//! bytes are, all checked against the file — and no tensor is read until it is asked for
//! ([`NamedTensor::load`]), so that analysing a model holds one layer at a time in memory.
pub mod adapter;
mod archive;
mod checkpoint_dir;
pub mod discovery;
mod dtype;
pub mod experts;
mod file;
mod format;
pub mod fused;
mod gguf;
pub mod layers;
mod npy;
mod order;
mod pickle;
pub mod quant;
pub mod roles;
mod safetensors;
mod stored;
mod torch_save;
pub(crate) mod torchscript;
pub use torchscript::{load_module, LOAD_TIME_LIMIT};

use std::path::{Path, PathBuf};

pub use checkpoint_dir::DirectoryLayout;
pub use dtype::Dtype;
pub(crate) use file::directory_entries;
pub use file::open_regular;
pub use format::{detect, FileFormat};
pub use stored::{SharedFile, StoredTensor, View};

use crate::error::{Error, Result};

/// A tensor of a model, by the dotted name it has there (`features.0.weight`): what it is, and
/// where to read it from.
pub struct NamedTensor {
    /// The parameter's dotted name.
    pub name: String,
    /// The stored element type.
    pub dtype: Dtype,
    /// The stored shape.
    pub shape: Vec<i64>,
    /// The earlier tensor this one shares its storage and view with (tied weights, such as a
    /// language model's head and its embeddings): analysed once, under the earlier name.
    pub tied_to: Option<String>,
    source: Source,
}

/// Where a tensor's values come from.
enum Source {
    /// Already in memory (a training loop's variables): shared, never copied or written.
    Memory(tch::Tensor),
    /// In a file, read when asked for.
    Stored(StoredTensor),
    /// In a file, in a type rmt-torch does not read: listed, never loaded.
    Unreadable,
    /// An adapter's low-rank update, held as its factors.
    LowRank(adapter::LowRank),
    /// A base weight with an adapter's update merged in when read.
    Merged(adapter::Merged),
    /// ggml blocks in a file, dequantised when read.
    Ggml(quant::GgmlBlocks),
    /// A Hugging Face quantised layer, stored as several tensors, dequantised when read.
    Packed(quant::packed::PackedWeight),
}

impl NamedTensor {
    /// A tensor already in memory, shared (not copied).
    pub fn in_memory(name: impl Into<String>, tensor: tch::Tensor) -> Self {
        Self {
            name: name.into(),
            dtype: stored::dtype_of(tensor.kind()),
            shape: tensor.size(),
            tied_to: None,
            source: Source::Memory(tensor),
        }
    }

    /// A tensor stored in a file.
    pub fn stored(name: impl Into<String>, dtype: Dtype, stored: StoredTensor) -> Self {
        let shape = stored.shape().to_vec();
        Self {
            name: name.into(),
            dtype,
            shape,
            tied_to: None,
            source: Source::Stored(stored),
        }
    }

    /// A tensor of ggml blocks in a file (GGUF), dequantised to float32 when loaded.
    pub fn ggml(name: impl Into<String>, blocks: quant::GgmlBlocks) -> Self {
        Self {
            name: name.into(),
            dtype: Dtype::Quantized(quant::Scheme::Ggml(blocks.format)),
            shape: blocks.shape().to_vec(),
            tied_to: None,
            source: Source::Ggml(blocks),
        }
    }

    /// A Hugging Face quantised layer, dequantised to float32 when loaded.
    pub fn packed(name: impl Into<String>, weight: quant::packed::PackedWeight) -> Self {
        Self {
            name: name.into(),
            dtype: Dtype::Quantized(quant::Scheme::Packed(weight.format)),
            shape: weight.shape.clone(),
            tied_to: None,
            source: Source::Packed(weight),
        }
    }

    /// Slice `index` along the first dimension (one expert of a 3-D expert tensor), reading
    /// only its bytes where the tensor is in a file.
    pub fn load_slice(&self, index: usize) -> Result<tch::Tensor> {
        match &self.source {
            Source::Stored(stored) => stored.slice(index).read(&self.dtype, &self.name),
            Source::Ggml(blocks) => blocks.slice(index).dense(&self.name),
            _ => Ok(self.load()?.f_select(0, index as i64)?),
        }
    }

    /// A tensor of a type rmt-torch does not read: listed with its shape, never loaded.
    pub fn listed(name: impl Into<String>, dtype: Dtype, shape: Vec<i64>) -> Self {
        Self {
            name: name.into(),
            dtype,
            shape,
            tied_to: None,
            source: Source::Unreadable,
        }
    }

    /// Whether the values are already in memory rather than read from a file when loaded.
    pub fn is_in_memory(&self) -> bool {
        matches!(self.source, Source::Memory(_))
    }

    /// Whether `other` holds the very same values: the same view of the same bytes of the same
    /// file (tied weights that `torch.save` stored once).
    pub fn shares_storage_with(&self, other: &NamedTensor) -> bool {
        match (&self.source, &other.source) {
            (Source::Stored(a), Source::Stored(b)) => a.same_place(b),
            _ => false,
        }
    }

    /// The ggml blocks this tensor is stored as, for a GGUF tensor read by rmt-torch's
    /// decoder: the analysis decodes them a band of rows at a time.
    pub fn ggml_blocks(&self) -> Option<&quant::GgmlBlocks> {
        match &self.source {
            Source::Ggml(blocks) => Some(blocks),
            _ => None,
        }
    }

    /// The low-rank update this tensor is, held as its factors (a LoRA adapter's s·B·A), whose
    /// spectrum the analysis reads from the factors without forming it.
    pub fn low_rank(&self) -> Option<&adapter::LowRank> {
        match &self.source {
            Source::LowRank(update) => Some(update),
            _ => None,
        }
    }

    /// The low-rank update merged into this weight, when it is a base weight with an adapter's
    /// update W + ΔW and nothing more (no DoRA rescaling): then ΔW is exactly the update.
    pub fn merged_update(&self) -> Option<&adapter::LowRank> {
        match &self.source {
            Source::Merged(merged) if merged.magnitude.is_none() => Some(&merged.update),
            _ => None,
        }
    }

    /// The tensor's values on the CPU in the stored dtype, float8 upcast to float32 (read from
    /// the file now, for a stored tensor: only the bytes its view spans); a quantised tensor
    /// dequantised to float32. An adapter's update,
    /// and a weight with one merged in, are formed now, in f64.
    pub fn load(&self) -> Result<tch::Tensor> {
        match &self.source {
            Source::Memory(tensor) => Ok(tensor.shallow_clone()),
            Source::Stored(stored) => stored.read(&self.dtype, &self.name),
            Source::LowRank(update) => update.dense(),
            Source::Merged(merged) => merged.dense(),
            Source::Ggml(blocks) => blocks.dense(&self.name),
            Source::Packed(weight) => weight.dense(&self.name),
            Source::Unreadable => Err(Error::InvalidInput(format!(
                "tensor '{}' is of type {}, which rmt-torch does not read",
                self.name, self.dtype
            ))),
        }
    }
}

/// A model's tensors, whichever format they came from.
pub struct Model {
    /// The file it was read from.
    pub path: PathBuf,
    /// The file's format, detected from its content.
    pub format: FileFormat,
    /// Its tensors in the model's order: the file's, or the one its names imply when the file
    /// lists them by name (safetensors does).
    pub tensors: Vec<NamedTensor>,
    /// Checkpoint entries that are not weight tensors (epochs, optimiser settings, …). Empty
    /// for TorchScript and safetensors files.
    pub other_entries: Vec<CheckpointEntry>,
    /// For a checkpoint directory: the index and the files it was read from.
    pub directory: Option<DirectoryLayout>,
}

/// A checkpoint entry that is not a weight tensor: its dotted name and its value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckpointEntry {
    /// The dotted name (`epoch`, `optimizer.param_groups.0.lr`).
    pub name: String,
    /// What the entry holds.
    #[serde(flatten)]
    pub value: EntryValue,
}

/// The value of a [`CheckpointEntry`]: scalars as they are, containers and objects by size or
/// class (JSON: `{"type": "int", "value": 7}`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum EntryValue {
    /// Python's `None`.
    None,
    /// A bool.
    Bool(bool),
    /// An int that fits in 64 bits.
    Int(i64),
    /// An int wider than 64 bits.
    WideInt,
    /// A float.
    Float(f64),
    /// A str.
    Str(String),
    /// bytes, by length.
    Bytes(usize),
    /// A tuple, by length.
    Tuple(usize),
    /// A list, by length.
    List(usize),
    /// A dict, by length.
    Dict(usize),
    /// A reference to a Python global `module.name`.
    Reference(String),
    /// A storage not wrapped in a tensor, by storage type.
    Storage(String),
    /// A tensor outside the weights, by shape.
    Tensor(Vec<i64>),
    /// An object only Python could rebuild, by class (never rebuilt).
    Object(String),
}

impl std::fmt::Display for EntryValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => write!(f, "None"),
            Self::Bool(b) => write!(f, "bool {b}"),
            Self::Int(i) => write!(f, "int {i}"),
            Self::WideInt => write!(f, "int (wider than 64 bits)"),
            Self::Float(x) => write!(f, "float {x}"),
            Self::Str(s) => write!(f, "str {s:?}"),
            Self::Bytes(n) => write!(f, "{n} bytes"),
            Self::Tuple(n) => write!(f, "tuple of {n}"),
            Self::List(n) => write!(f, "list of {n}"),
            Self::Dict(n) => write!(f, "dict of {n}"),
            Self::Reference(name) => write!(f, "reference to {name}"),
            Self::Storage(kind) => write!(f, "bare {kind}"),
            Self::Tensor(shape) => write!(f, "tensor {shape:?}"),
            Self::Object(class) => write!(f, "{class} object (skipped)"),
        }
    }
}

/// Marks each tensor that shares its storage and view with an earlier one as tied to it.
fn with_ties(mut tensors: Vec<NamedTensor>) -> Vec<NamedTensor> {
    for later in 1..tensors.len() {
        let (earlier, rest) = tensors.split_at_mut(later);
        if let Some(first) = earlier.iter().find(|t| t.shares_storage_with(&rest[0])) {
            rest[0].tied_to = Some(first.tied_to.clone().unwrap_or_else(|| first.name.clone()));
        }
    }
    tensors
}

/// The name given to the tensor of a `torch.save(tensor)` file, whose root is no dict.
pub const ROOT_TENSOR_NAME: &str = "tensor";

/// The dtype's PyTorch name (`float32`, `bfloat16`, …).
pub fn dtype_name(kind: tch::Kind) -> String {
    stored::dtype_of(kind).to_string()
}

impl Model {
    /// Reads a model file, detecting its format from its content.
    ///
    /// TorchScript archives yield their parameters; safetensors files every tensor; `torch.save`
    /// checkpoints the tensors of their state dict (found under `state_dict`, `model_state_dict`,
    /// `model`, `module` or `net` when nested), read without Python.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_entry(path, None)
    }

    /// Like [`Model::load`], with the weights of a `torch.save` checkpoint taken from the entry
    /// at a dotted `key` (`a.b.c`; list items by index) instead of found automatically.
    pub fn load_entry(path: impl AsRef<Path>, key: Option<&str>) -> Result<Self> {
        let path = path.as_ref();
        if let Some(dir) = adapter_dir_of(path) {
            return Self::load_adapter(dir, key);
        }
        if path.is_dir() {
            if key.is_some() {
                return Err(Error::InvalidOption(
                    "--key applies to torch.save checkpoints, and this is a checkpoint directory"
                        .into(),
                ));
            }
            let (tensors, layout) = checkpoint_dir::load(path)?;
            let tensors = dequantised_layers(tensors, path)?;
            return Ok(Self {
                path: path.to_path_buf(),
                format: FileFormat::CheckpointDirectory,
                tensors: with_ties(order::in_model_order(tensors)),
                other_entries: Vec::new(),
                directory: Some(layout),
            });
        }
        let (format, mut tensors, other_entries) = read_file(path, key)?;
        if format == FileFormat::SafeTensors {
            tensors = dequantised_layers(tensors, path)?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            format,
            tensors: with_ties(order::in_model_order(tensors)),
            other_entries,
            directory: None,
        })
    }
}

/// `tensors` with each Hugging Face quantised layer's tensors made one dequantising tensor
/// ([`quant::hf`]), read with the `config.json` beside the file or in the directory at `path`
/// (read only when some tensor's name is a quantised layer's).
fn dequantised_layers(tensors: Vec<NamedTensor>, path: &Path) -> Result<Vec<NamedTensor>> {
    if !quant::hf::holds_quantized(&tensors) {
        return Ok(tensors);
    }
    let dir = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(Path::new("."))
    };
    let config = file::config_json(dir)?;
    quant::hf::regroup(tensors, config.as_ref(), path)
}

/// The adapter directory `path` names: the directory itself, or its `adapter_model.*` file.
fn adapter_dir_of(path: &Path) -> Option<&Path> {
    if path.is_dir() {
        return adapter::is_adapter_dir(path).then_some(path);
    }
    let name = path.file_name()?.to_str()?;
    let dir = path.parent()?;
    (name.starts_with("adapter_model.") && adapter::is_adapter_dir(dir)).then_some(dir)
}

impl Model {
    /// Reads the LoRA adapter in `dir` ([`adapter`]); a directory that also holds a model is
    /// refused, since which of the two is meant cannot be told.
    fn load_adapter(dir: &Path, key: Option<&str>) -> Result<Self> {
        if key.is_some() {
            return Err(Error::InvalidOption(
                "--key applies to torch.save checkpoints, and this is a LoRA adapter".into(),
            ));
        }
        if checkpoint_dir::is_checkpoint_dir(dir) {
            return Err(Error::UnsupportedFormat {
                path: dir.to_path_buf(),
                message: format!(
                    "holds both a model and a LoRA adapter ({}): put the adapter in its own \
                     directory and name the model with --base",
                    adapter::CONFIG_FILE
                ),
            });
        }
        let (tensors, layout) = adapter::load(dir)?;
        Ok(Self {
            path: dir.to_path_buf(),
            format: FileFormat::LoraAdapter,
            tensors: order::in_model_order(tensors),
            other_entries: Vec::new(),
            directory: Some(layout),
        })
    }

    /// Whether the model is a LoRA adapter (its updates, not a whole model).
    pub fn is_adapter(&self) -> bool {
        self.format == FileFormat::LoraAdapter
    }

    /// Reads `path` as a model derived from the one at `base`: a LoRA adapter is laid over the
    /// base ([`adapter::with_base`], W + ΔW formed layer by layer when read, no merged model
    /// written); any other model is read as it is. `key` picks a `torch.save` checkpoint's
    /// entry in either.
    pub fn load_derived(
        path: impl AsRef<Path>,
        base: impl AsRef<Path>,
        key: Option<&str>,
    ) -> Result<Self> {
        let model = Self::load_entry(path, key)?;
        if !model.is_adapter() {
            return Ok(model);
        }
        Self::load_entry(base, key)?.with_adapter(model)
    }

    /// This model with the LoRA `adapter` laid over it ([`adapter::with_base`]).
    pub fn with_adapter(self, adapter: Model) -> Result<Self> {
        if !adapter.is_adapter() {
            return Err(Error::InvalidInput(format!(
                "{} is a {}, not a LoRA adapter",
                adapter.path.display(),
                adapter.format
            )));
        }
        adapter::with_base(self, adapter)
    }
}

/// The index of one model file, whatever its format (detected from its content), and the
/// checkpoint entries beside the weights; `key` picks a `torch.save` checkpoint's entry.
fn read_file(
    path: &Path,
    key: Option<&str>,
) -> Result<(FileFormat, Vec<NamedTensor>, Vec<CheckpointEntry>)> {
    let format = format::detect(path)?;
    if key.is_some()
        && !matches!(
            format,
            FileFormat::TorchSaveZip | FileFormat::TorchSaveLegacy
        )
    {
        return Err(Error::InvalidOption(format!(
            "--key applies to torch.save checkpoints, and this is a {format}"
        )));
    }
    let (tensors, other_entries) = match format {
        FileFormat::TorchScript => (torchscript::load(path)?, Vec::new()),
        FileFormat::Gguf => {
            let gguf = gguf::load(path)?;
            (gguf.tensors, gguf.metadata)
        }
        FileFormat::SafeTensors => (safetensors::load(path)?, Vec::new()),
        FileFormat::TorchSaveZip | FileFormat::TorchSaveLegacy => {
            let checkpoint = if format == FileFormat::TorchSaveZip {
                torch_save::load_zip(path, key)?
            } else {
                torch_save::load_legacy(path, key)?
            };
            (checkpoint.tensors, checkpoint.other_entries)
        }
        FileFormat::InMemory | FileFormat::CheckpointDirectory | FileFormat::LoraAdapter => {
            return Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                message: format!("a {format} is not read as a file"),
            })
        }
    };
    Ok((format, tensors, other_entries))
}

impl Model {
    /// True for a `torch.save(tensor)` file: one bare tensor, no names, no other entries —
    /// typically data (an input batch), not a model's weights.
    pub fn is_bare_tensor(&self) -> bool {
        matches!(
            self.format,
            FileFormat::TorchSaveZip | FileFormat::TorchSaveLegacy
        ) && self.other_entries.is_empty()
            && self.tensors.len() == 1
            && self.tensors[0].name == ROOT_TENSOR_NAME
    }

    /// A model of tensors already in memory, labelled `label` (what reports show as its path),
    /// from `(name, tensor)` pairs in order. The tensors are shared (shallow clones of the same
    /// storage, on whatever device they live), never copied or written.
    ///
    /// ```
    /// let weight = tch::Tensor::randn([64, 32], (tch::Kind::Float, tch::Device::Cpu));
    /// let model = rmt_torch::Model::from_tensors("in memory", [("fc.weight", &weight)]);
    /// assert_eq!(model.tensors[0].name, "fc.weight");
    /// ```
    pub fn from_tensors<'t, N: Into<String>>(
        label: &str,
        tensors: impl IntoIterator<Item = (N, &'t tch::Tensor)>,
    ) -> Self {
        Self {
            path: PathBuf::from(label),
            format: FileFormat::InMemory,
            tensors: tensors
                .into_iter()
                .map(|(name, tensor)| NamedTensor::in_memory(name, tensor.shallow_clone()))
                .collect(),
            other_entries: Vec::new(),
            directory: None,
        }
    }

    /// Where the model's `config.json` would be: the checkpoint directory itself, or the folder
    /// of a single weight file (a Hugging Face snapshot's `model.safetensors`).
    pub fn config_dir(&self) -> Option<&Path> {
        match self.directory {
            Some(_) => Some(&self.path),
            None if self.format == FileFormat::InMemory => None,
            None => self.path.parent(),
        }
    }

    /// The parameters of a loaded TorchScript module as its `named_parameters()` lists them
    /// (dotted names, the same as in its file), shared with the module: a service analyses the
    /// model it already holds without reading its file again. libtorch lists no buffers, and no
    /// weight matrix is one.
    ///
    /// ```
    /// let module = tch::CModule::load("models/digits_cnn_trained.pt")?;
    /// let model = rmt_torch::Model::from_module("digits_cnn", &module)?;
    /// assert_eq!(model.tensors[0].name, "conv1.weight");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_module(label: &str, module: &tch::CModule) -> Result<Self> {
        let parameters = module.named_parameters()?;
        Ok(Self::from_tensors(
            label,
            parameters
                .iter()
                .map(|(name, tensor)| (name.as_str(), tensor)),
        ))
    }

    /// The variables of a `tch` VarStore, shared with it, in the order their names imply (a
    /// VarStore keeps none; the same order as a safetensors file of them): what the training
    /// monitor analyses.
    ///
    /// ```
    /// let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    /// let _layer = tch::nn::linear(vs.root() / "fc", 32, 64, Default::default());
    /// let model = rmt_torch::Model::from_var_store("training", &vs);
    /// assert_eq!(model.tensors.len(), 2);
    /// ```
    pub fn from_var_store(label: &str, vs: &tch::nn::VarStore) -> Self {
        let mut variables: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
        variables.sort_by(|a, b| a.0.cmp(&b.0));
        let mut model = Self::from_tensors(
            label,
            variables
                .iter()
                .map(|(name, tensor)| (name.as_str(), tensor)),
        );
        model.tensors = order::in_model_order(model.tensors);
        model
    }
}

/// One tensor from a data file — an input batch, say: a `.npy` array, a `torch.save`d tensor
/// (or one entry of a saved dict), or one tensor of a safetensors file. `key` names the tensor
/// when the file holds several. Returns the tensor's name (empty for `.npy`) and the tensor.
pub fn load_tensor(path: impl AsRef<Path>, key: Option<&str>) -> Result<(String, tch::Tensor)> {
    let path = path.as_ref();
    let mut head = [0u8; 6];
    if let Ok((mut file, _)) = file::open_regular(path) {
        use std::io::Read;
        let _ = file.read(&mut head);
    }
    if head == npy::MAGIC {
        return Ok((String::new(), npy::index(path, "array")?.load()?));
    }
    let model = Model::load(path).map_err(|err| match err {
        Error::UnsupportedFormat { message, .. } if message == format::UNRECOGNISED => {
            Error::UnsupportedFormat {
                path: path.to_path_buf(),
                message: "not a tensor file rmt-torch reads (expected a NumPy .npy array, a torch.save tensor or dict of tensors, or a safetensors file)".into(),
            }
        }
        other => other,
    })?;
    if model.format == FileFormat::TorchScript {
        return Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            message: "a TorchScript model, not a tensor file (save the batch with torch.save(tensor), np.save or safetensors)".into(),
        });
    }
    let names = || {
        model
            .tensors
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let index = match key {
        Some(key) => model
            .tensors
            .iter()
            .position(|t| t.name == key)
            .ok_or_else(|| {
                Error::InvalidOption(format!(
                    "{} has no tensor '{key}' (it has: {})",
                    path.display(),
                    names()
                ))
            })?,
        None if model.tensors.len() == 1 => 0,
        None => {
            return Err(Error::InvalidOption(format!(
                "{} holds {} tensors; name one with --input-key (it has: {})",
                path.display(),
                model.tensors.len(),
                names()
            )))
        }
    };
    let named = &model.tensors[index];
    Ok((named.name.clone(), named.load()?))
}

/// One tensor of a model as `rmt-torch info` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TensorInfo {
    /// Dotted name.
    pub name: String,
    /// Shape as stored.
    pub shape: Vec<i64>,
    /// Stored dtype.
    pub dtype: String,
    /// Whether it is analysed as a weight matrix under the selection.
    pub analysed: bool,
    /// What it is analysed as, or why it is skipped.
    pub verdict: String,
    /// How a quantised tensor is turned into floats when read; `None` for float tensors.
    pub dequantised: Option<String>,
}

impl Model {
    /// Every tensor with the verdict of [`layers::classify`] under `selection`.
    pub fn inventory(&self, selection: &layers::LayerSelection) -> Vec<TensorInfo> {
        self.tensors
            .iter()
            .map(|named| {
                let verdict = layers::classify(named, selection);
                let (analysed, verdict) = match verdict {
                    layers::Verdict::Weight { kind, shape } => (
                        true,
                        format!(
                            "{kind}: {} matri{} {}×{} (Q = {:.3}, {} eigenvalues)",
                            shape.slices,
                            if shape.slices == 1 { "x" } else { "ces" },
                            shape.n,
                            shape.m,
                            shape.q(),
                            shape.num_evals()
                        ),
                    ),
                    layers::Verdict::Skipped(reason) => (false, format!("skipped: {reason}")),
                };
                let verdict = match named.low_rank() {
                    Some(update) => format!(
                        "LoRA update s·B·A of rank {}, s = {}, read from its factors; {verdict}",
                        update.rank(),
                        update.scale
                    ),
                    None => verdict,
                };
                let verdict = match experts::ExpertLayout::of(&named.name, &named.shape) {
                    Some(layout) if analysed => format!(
                        "mixture of experts: {} experts × ({}), each analysed alone as \
                         {}N.{}; {verdict}",
                        layout.experts,
                        layout.parts.join(", "),
                        layout.prefix,
                        layout.parts.join("|")
                    ),
                    _ => verdict,
                };
                let dequantised = match &named.dtype {
                    Dtype::Quantized(scheme) => Some(scheme.describe()),
                    _ => None,
                };
                let verdict = match &dequantised {
                    Some(how) => format!("{how}; {verdict}"),
                    None => verdict,
                };
                TensorInfo {
                    name: named.name.clone(),
                    shape: named.shape.clone(),
                    dtype: named.dtype.to_string(),
                    analysed,
                    verdict,
                    dequantised,
                }
            })
            .collect()
    }
}
