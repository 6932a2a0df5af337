//! LoRA adapters as PEFT saves them: `adapter_config.json` beside `adapter_model.safetensors`
//! (or `.bin`). Each adapted module's pair of factors (`lora_A` [r, in], `lora_B` [out, r]; the
//! `lora_embedding_A/B` of an embedding) becomes one tensor of the model, the update
//! ΔW = s·B·A (s = lora_alpha/r, or lora_alpha/√r with rsLoRA), that is never formed unless
//! something asks for its entries: its spectrum comes from the factors ([`LowRank`]). The
//! other saved tensors (`modules_to_save`, an embedding's saved base layer, DoRA's magnitudes)
//! stay as they are. [`with_base`] lays an adapter over its base model, layer by layer.
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Serialize;
use tch::{Kind, Tensor};

use super::layers::{ConvMode, LayerKind};
use super::{DirectoryLayout, Model, NamedTensor, Source};
use crate::error::{Error, Result};

/// The file that makes a directory an adapter.
pub const CONFIG_FILE: &str = "adapter_config.json";
/// The adapter's weights, in the order they are looked for.
const WEIGHT_FILES: [&str; 2] = ["adapter_model.safetensors", "adapter_model.bin"];
/// The largest rank accepted from a configuration: far beyond any adapter's, far below what
/// would make its factors larger than the layer.
const MAX_RANK: u64 = 1 << 16;
/// The suffix of a DoRA magnitude vector's name.
const MAGNITUDE: &str = ".lora_magnitude_vector";

/// Whether a tensor is a DoRA magnitude vector (`….lora_magnitude_vector`): one norm per row
/// of the weight it rescales, not a weight itself.
pub(crate) fn is_magnitude(name: &str) -> bool {
    name.trim_end_matches(".weight").ends_with(MAGNITUDE)
}

/// Whether `dir` holds a LoRA adapter (an `adapter_config.json`).
pub fn is_adapter_dir(dir: &Path) -> bool {
    dir.join(CONFIG_FILE).is_file()
}

/// What an adapter's configuration says, as `info` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdapterConfig {
    /// The rank r of every update not named in `rank_pattern`.
    pub r: u64,
    /// The scaling numerator: s = lora_alpha / r (or / √r with rsLoRA).
    pub lora_alpha: f64,
    /// rsLoRA's scaling, lora_alpha / √r (Kalajdzievski 2023).
    pub use_rslora: bool,
    /// DoRA (Liu et al. 2024): each adapted weight rescaled row by row to its magnitude vector.
    pub use_dora: bool,
    /// The base stores the adapted weights transposed ([in, out], GPT-2's Conv1D).
    pub fan_in_fan_out: bool,
    /// The modules the adapter targets, as configured.
    pub target_modules: Vec<String>,
    /// Modules saved whole beside the adapter (a classifier head).
    pub modules_to_save: Vec<String>,
    /// Per-module ranks and alphas overriding `r` and `lora_alpha` (PEFT's patterns: a key
    /// matches a module whose name ends in it after a dot, as a regular expression).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rank_pattern: Vec<(String, u64)>,
    /// See `rank_pattern`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alpha_pattern: Vec<(String, f64)>,
}

/// How an update's product lies in its module's weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// ΔW = s·B·A: a Linear's [out, in] weight, a convolution's kernel (B [out, r, 1…],
    /// A [r, in, k…]).
    Product,
    /// ΔW = s·(B·A)ᵀ: an embedding's [num, dim] table (A [r, num], B [dim, r]), or a weight
    /// stored [in, out] (`fan_in_fan_out`).
    Transposed,
}

/// A low-rank update s·B·A held as its factors.
pub struct LowRank {
    /// A, [r, in] (or [r, in, k…] for a convolution).
    pub a: Box<NamedTensor>,
    /// B, [out, r] (or [out, r, 1…]).
    pub b: Box<NamedTensor>,
    /// s.
    pub scale: f64,
    /// How B·A lies in the weight.
    pub layout: Layout,
}

impl LowRank {
    /// The rank r of the factors (A's rows).
    pub fn rank(&self) -> usize {
        self.a.shape[0].max(0) as usize
    }

    /// The factors in f64: B as [out, r] and A as [r, in·k…], whatever the kernel.
    pub fn factors(&self) -> Result<(Tensor, Tensor)> {
        let b = self.b.load()?.f_to_kind(Kind::Double)?;
        let a = self.a.load()?.f_to_kind(Kind::Double)?;
        let b = b.f_reshape([b.size()[0], -1])?;
        let a = a.f_reshape([a.size()[0], -1])?;
        Ok((b, a))
    }

    /// The factors as stacks of the matrices a layer of `kind` is read as under `conv_mode`:
    /// B [slices, out, r] and A [slices, r, in], the update of slice k being s·B_k·A_k. `None`
    /// where the matrices are not such products (WeightWatcher's reading of Conv1d).
    pub fn stacks(&self, kind: LayerKind, conv_mode: ConvMode) -> Result<Option<(Tensor, Tensor)>> {
        let (b, a) = self.factors()?;
        Ok(match (kind, conv_mode) {
            (LayerKind::Dense, _) | (_, ConvMode::Reshape) => {
                Some((b.f_unsqueeze(0)?, a.f_unsqueeze(0)?))
            }
            (LayerKind::Conv1d, ConvMode::WeightWatcher) => None,
            (_, ConvMode::Slices | ConvMode::WeightWatcher) => {
                let (rank, inputs) = (self.a.shape[0], self.a.shape[1]);
                let a = a.f_reshape([rank, inputs, -1])?.f_permute([2, 0, 1])?;
                let slices = a.size()[0];
                let b = b.f_unsqueeze(0)?.f_expand([slices, -1, -1], false)?;
                Some((b, a))
            }
        })
    }

    /// ΔW itself in f64, in the module's weight layout (formed now: [out, in] entries).
    pub fn dense(&self) -> Result<Tensor> {
        let (b, a) = self.factors()?;
        let product = b.f_matmul(&a)?.f_mul_scalar(self.scale)?;
        Ok(match self.layout {
            Layout::Transposed => product.f_tr()?.f_contiguous()?,
            Layout::Product => {
                let mut shape = vec![self.b.shape[0]];
                shape.extend_from_slice(&self.a.shape[1..]);
                product.f_reshape(shape)?
            }
        })
    }

    /// The same update as a tensor of its own named `name`, its factors read into memory.
    pub fn read_into_memory(&self, name: &str) -> Result<NamedTensor> {
        let factor = |t: &NamedTensor| -> Result<Box<NamedTensor>> {
            Ok(Box::new(NamedTensor::in_memory(t.name.clone(), t.load()?)))
        };
        let update = LowRank {
            a: factor(&self.a)?,
            b: factor(&self.b)?,
            scale: self.scale,
            layout: self.layout,
        };
        Ok(NamedTensor {
            name: name.to_string(),
            dtype: self.a.dtype.clone(),
            shape: self.shape(),
            tied_to: None,
            source: Source::LowRank(update),
        })
    }

    /// The update's shape in its module's weight.
    fn shape(&self) -> Vec<i64> {
        match self.layout {
            Layout::Transposed => vec![self.a.shape[1], self.b.shape[0]],
            Layout::Product => {
                let mut shape = vec![self.b.shape[0]];
                shape.extend_from_slice(&self.a.shape[1..]);
                shape
            }
        }
    }
}

/// A weight with an adapter's update merged in, W + ΔW (rescaled row by row to DoRA's
/// magnitude when the adapter has one), formed when read.
pub struct Merged {
    /// W, the base model's tensor.
    pub base: Box<NamedTensor>,
    /// ΔW.
    pub update: LowRank,
    /// DoRA's magnitude vector: one norm per output row (per output channel of a kernel).
    pub magnitude: Option<Box<NamedTensor>>,
}

impl Merged {
    /// W + ΔW in f64 (DoRA: m ⊙ (W + ΔW) / ‖W + ΔW‖ per row, as PEFT merges it).
    pub fn dense(&self) -> Result<Tensor> {
        let merged = self
            .base
            .load()?
            .f_to_kind(Kind::Double)?
            .f_add(&self.update.dense()?)?;
        let Some(magnitude) = &self.magnitude else {
            return Ok(merged);
        };
        if self.update.layout == Layout::Transposed {
            // PEFT normalises such a weight per column of what is stored: not read here.
            return Err(Error::InvalidInput(format!(
                "'{}': DoRA on a weight stored transposed (an embedding, or fan_in_fan_out) is \
                 not supported",
                self.base.name
            )));
        }
        let rows = merged.size()[0];
        let magnitude = magnitude.load()?.f_to_kind(Kind::Double)?.f_reshape([-1])?;
        if magnitude.size()[0] != rows {
            return Err(Error::InvalidInput(format!(
                "DoRA magnitude of '{}' has {} values for {rows} rows",
                self.base.name,
                magnitude.size()[0]
            )));
        }
        let flat = merged.f_reshape([rows, -1])?;
        let norms = flat
            .f_square()?
            .f_sum_dim_intlist([1i64].as_slice(), true, Kind::Double)?
            .f_sqrt()?;
        let factor = magnitude.f_reshape([rows, 1])?.f_div(&norms)?;
        Ok(flat.f_mul(&factor)?.f_reshape(merged.size())?)
    }
}

/// Reads the adapter in `dir`: its configuration, then its weights, each pair of factors made
/// one update tensor.
pub fn load(dir: &Path) -> Result<(Vec<NamedTensor>, DirectoryLayout)> {
    let config_path = dir.join(CONFIG_FILE);
    let config = read_config(&config_path)?;
    let weights = WEIGHT_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| Error::UnsupportedFormat {
            path: dir.to_path_buf(),
            message: format!(
                "an adapter directory ({CONFIG_FILE}) without its weights (looked for {})",
                WEIGHT_FILES.join(" and ")
            ),
        })?;
    let (_, stored, _) = super::read_file(&weights, None)?;
    let tensors = updates(stored, &config, &weights)?;
    let layout = DirectoryLayout {
        index: None,
        files: vec![weights],
        components: Vec::new(),
        adapter: Some(config),
    };
    Ok((tensors, layout))
}

/// Which factor of an update a stored tensor is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Factor {
    A,
    B,
}

/// The factor a tensor's name says it is, the module it adapts, and whether it is an
/// embedding's.
fn factor_of(name: &str) -> Option<(Factor, &str, bool)> {
    [
        (".lora_A.weight", Factor::A, false),
        (".lora_B.weight", Factor::B, false),
        (".lora_embedding_A", Factor::A, true),
        (".lora_embedding_B", Factor::B, true),
    ]
    .into_iter()
    .find_map(|(suffix, factor, embedding)| {
        name.strip_suffix(suffix)
            .map(|module| (factor, module, embedding))
    })
}

/// The adapter's tensors with each pair of factors replaced by its update (at the place of
/// its A), checked against the configuration and each other.
fn updates(
    stored: Vec<NamedTensor>,
    config: &AdapterConfig,
    file: &Path,
) -> Result<Vec<NamedTensor>> {
    let corrupt = |message: String| Error::Corrupt {
        path: file.to_path_buf(),
        format: "LoRA adapter",
        message,
    };
    let mut partners: Vec<(String, bool, Option<NamedTensor>, Option<NamedTensor>)> = Vec::new();
    let mut order: Vec<std::result::Result<NamedTensor, usize>> = Vec::new();
    for tensor in stored {
        let Some((factor, module, embedding)) = factor_of(&tensor.name) else {
            order.push(Ok(tensor));
            continue;
        };
        let module = module.to_string();
        let slot = match partners.iter().position(|(name, ..)| *name == module) {
            Some(slot) => slot,
            None => {
                partners.push((module, embedding, None, None));
                order.push(Err(partners.len() - 1));
                partners.len() - 1
            }
        };
        let entry = &mut partners[slot];
        let place = if factor == Factor::A {
            &mut entry.2
        } else {
            &mut entry.3
        };
        *place = Some(tensor);
    }
    let mut updates: Vec<Option<NamedTensor>> = Vec::with_capacity(partners.len());
    for (module, embedding, a, b) in partners {
        let (a, b) = match (a, b) {
            (Some(a), Some(b)) => (a, b),
            (Some(_), None) => return Err(corrupt(format!("{module} has lora_A but no lora_B"))),
            (None, _) => return Err(corrupt(format!("{module} has lora_B but no lora_A"))),
        };
        updates.push(Some(update(module, embedding, a, b, config, &corrupt)?));
    }
    Ok(order
        .into_iter()
        .filter_map(|item| match item {
            Ok(tensor) => Some(tensor),
            Err(slot) => updates[slot].take(),
        })
        .collect())
}

/// The update of `module` from its factors, its shapes and rank checked.
fn update(
    module: String,
    embedding: bool,
    a: NamedTensor,
    b: NamedTensor,
    config: &AdapterConfig,
    corrupt: &dyn Fn(String) -> Error,
) -> Result<NamedTensor> {
    let (sa, sb) = (a.shape.clone(), b.shape.clone());
    let conv_tail = |shape: &[i64]| shape.len() > 2 && shape[2..].iter().all(|&d| d == 1);
    let shapes_fit = sa.len() >= 2
        && sa.len() == sb.len()
        && sa.iter().chain(&sb).all(|&d| d > 0)
        && sa[0] == sb[1]
        && (sb.len() == 2 || conv_tail(&sb))
        && !(embedding && sa.len() != 2);
    if !shapes_fit {
        return Err(corrupt(format!(
            "{module}: lora_A {sa:?} and lora_B {sb:?} are not the factors of one update \
             (A [r, in, …], B [out, r, 1, …])"
        )));
    }
    let rank = sa[0] as u64;
    let relative = module.strip_prefix("base_model.model.").unwrap_or(&module);
    let configured = pattern_value(&config.rank_pattern, relative).unwrap_or(config.r);
    if configured != rank {
        return Err(corrupt(format!(
            "{CONFIG_FILE} gives {module} rank {configured}, its factors have rank {rank}"
        )));
    }
    let alpha = pattern_value(&config.alpha_pattern, relative).unwrap_or(config.lora_alpha);
    let scale = if config.use_rslora {
        alpha / (rank as f64).sqrt()
    } else {
        alpha / rank as f64
    };
    let layout = if embedding || (config.fan_in_fan_out && sa.len() == 2) {
        Layout::Transposed
    } else {
        Layout::Product
    };
    let low_rank = LowRank {
        a: Box::new(a),
        b: Box::new(b),
        scale,
        layout,
    };
    Ok(NamedTensor {
        name: format!("{module}.weight"),
        dtype: low_rank.a.dtype.clone(),
        shape: low_rank.shape(),
        tied_to: None,
        source: Source::LowRank(low_rank),
    })
}

/// The value PEFT's pattern rules give `module`: the first key that matches it whole, or its
/// end after a dot, as a regular expression.
fn pattern_value<T: Copy>(patterns: &[(String, T)], module: &str) -> Option<T> {
    patterns.iter().find_map(|(key, value)| {
        let matches = key == module
            || Regex::new(&format!(r"^(.*\.)?({key})$")).is_ok_and(|re| re.is_match(module));
        matches.then_some(*value)
    })
}

/// Reads and checks `adapter_config.json`.
fn read_config(path: &Path) -> Result<AdapterConfig> {
    let json = super::file::read_json(path, 16 << 20, "adapter configuration")?;
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_path_buf(),
        format: "adapter configuration",
        message,
    };
    let kind = json
        .get("peft_type")
        .and_then(|v| v.as_str())
        .unwrap_or("LORA");
    if kind != "LORA" {
        return Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            message: format!("a {kind} adapter; rmt-torch reads LoRA adapters (peft_type LORA)"),
        });
    }
    let rank = |value: &serde_json::Value, what: &str| -> Result<u64> {
        value
            .as_u64()
            .filter(|r| (1..=MAX_RANK).contains(r))
            .ok_or_else(|| {
                corrupt(format!(
                    "{what} is {value}, not a rank from 1 to {MAX_RANK}"
                ))
            })
    };
    let alpha = |value: &serde_json::Value, what: &str| -> Result<f64> {
        value
            .as_f64()
            .filter(|a| a.is_finite())
            .ok_or_else(|| corrupt(format!("{what} is {value}, not a number")))
    };
    let r = rank(json.get("r").unwrap_or(&serde_json::Value::Null), "r")?;
    let lora_alpha = alpha(
        json.get("lora_alpha").unwrap_or(&serde_json::Value::Null),
        "lora_alpha",
    )?;
    let flag = |key: &str| json.get(key).and_then(|v| v.as_bool()).unwrap_or(false);
    let names = |key: &str| -> Vec<String> {
        match json.get(key) {
            Some(serde_json::Value::String(pattern)) => vec![pattern.clone()],
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let pattern = |key: &str| json.get(key).and_then(|v| v.as_object()).cloned();
    let rank_pattern = pattern("rank_pattern")
        .unwrap_or_default()
        .iter()
        .map(|(key, value)| Ok((key.clone(), rank(value, &format!("rank_pattern[{key}]"))?)))
        .collect::<Result<Vec<_>>>()?;
    let alpha_pattern = pattern("alpha_pattern")
        .unwrap_or_default()
        .iter()
        .map(|(key, value)| Ok((key.clone(), alpha(value, &format!("alpha_pattern[{key}]"))?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(AdapterConfig {
        r,
        lora_alpha,
        use_rslora: flag("use_rslora"),
        use_dora: flag("use_dora"),
        fan_in_fan_out: flag("fan_in_fan_out"),
        target_modules: names("target_modules"),
        modules_to_save: names("modules_to_save"),
        rank_pattern,
        alpha_pattern,
    })
}

/// A tensor's name as the base model would have it: without PEFT's wrappers
/// (`base_model.model.`, a `.base_layer` module) or the other wrappers' prefixes
/// ([`crate::workflows::compare::match_key`]).
fn base_key(name: &str) -> String {
    crate::workflows::compare::match_key(&name.replace(".base_layer.", ".")).to_string()
}

/// `base` with `adapter` laid over it, read layer by layer: each update merged into the weight
/// it adapts (W + ΔW, formed when the layer is read), each tensor the adapter saves whole
/// (`modules_to_save`) in place of the base's. An update or saved tensor without a weight of
/// its name and shape in `base` is an error: the adapter is another model's.
pub fn with_base(base: Model, adapter: Model) -> Result<Model> {
    let label = PathBuf::from(format!(
        "{}+{}",
        base.path.display(),
        adapter.path.display()
    ));
    let mismatch = |name: &str, why: String| {
        Error::InvalidInput(format!(
            "the adapter {} does not fit {}: {name} {why}",
            adapter.path.display(),
            base.path.display()
        ))
    };
    let Model {
        tensors: mut merged,
        format,
        other_entries,
        directory,
        ..
    } = base;
    let position =
        |tensors: &[NamedTensor], key: &str| tensors.iter().position(|t| base_key(&t.name) == key);
    let mut magnitudes = Vec::new();
    let mut updates = Vec::new();
    for tensor in adapter.tensors {
        match tensor.source {
            Source::LowRank(_) => updates.push(tensor),
            _ if is_magnitude(&tensor.name) => magnitudes.push(tensor),
            _ if tensor.shape.len() < 2 => {}
            _ => {
                let key = base_key(&tensor.name);
                let index = position(&merged, &key)
                    .ok_or_else(|| mismatch(&tensor.name, "has no tensor of that name".into()))?;
                if merged[index].shape != tensor.shape {
                    return Err(mismatch(
                        &tensor.name,
                        format!(
                            "is {:?} in the adapter and {:?} in the base",
                            tensor.shape, merged[index].shape
                        ),
                    ));
                }
                merged[index] = NamedTensor {
                    name: merged[index].name.clone(),
                    ..tensor
                };
            }
        }
    }
    for tensor in updates {
        let key = base_key(&tensor.name);
        let index = position(&merged, &key)
            .ok_or_else(|| mismatch(&tensor.name, "adapts a weight the base has not".into()))?;
        if merged[index].shape != tensor.shape {
            return Err(mismatch(
                &tensor.name,
                format!(
                    "is an update of shape {:?}, the base's weight is {:?}",
                    tensor.shape, merged[index].shape
                ),
            ));
        }
        let Source::LowRank(update) = tensor.source else {
            unreachable!("only updates were kept")
        };
        let module = tensor.name.trim_end_matches(".weight");
        let magnitude = magnitudes
            .iter()
            .position(|m| m.name.trim_end_matches(".weight") == format!("{module}{MAGNITUDE}"))
            .map(|found| Box::new(magnitudes.swap_remove(found)));
        let base_tensor = merged.remove(index);
        for tied in merged.iter_mut() {
            if tied.tied_to.as_deref() == Some(base_tensor.name.as_str()) {
                tied.tied_to = None;
            }
        }
        let merged_tensor = NamedTensor {
            name: base_tensor.name.clone(),
            dtype: base_tensor.dtype.clone(),
            shape: base_tensor.shape.clone(),
            tied_to: None,
            source: Source::Merged(Merged {
                base: Box::new(base_tensor),
                update,
                magnitude,
            }),
        };
        merged.insert(index, merged_tensor);
    }
    Ok(Model {
        path: label,
        format,
        tensors: merged,
        other_entries,
        directory,
    })
}
