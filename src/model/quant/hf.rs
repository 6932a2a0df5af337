//! Finding the quantised layers of a Hugging Face checkpoint: the tensors that store one
//! layer (`q_proj.qweight`, `.qzeros`, `.scales`, `.g_idx`; `.weight_packed`, `.weight_scale`;
//! a bitsandbytes `.weight` with its `SCB` or its `quant_state`) become one tensor
//! `q_proj.weight`, dequantised when read ([`super::packed`]). The format and its bits come from
//! `quantization_config` in `config.json` when there is one, else from the tensors' names and
//! shapes (4 bits).
use std::collections::HashMap;
use std::path::Path;

use tch::Kind;

use super::super::{Dtype, NamedTensor};
use super::packed::{PackedFormat, PackedWeight};
use crate::error::{Error, Result};

/// What `config.json`'s `quantization_config` says.
#[derive(Debug, Default)]
struct QuantizationConfig {
    method: Option<String>,
    bits: Option<u8>,
    gptq_v2: bool,
}

impl QuantizationConfig {
    fn of(config: Option<&serde_json::Value>) -> Self {
        let Some(quantization) = config.and_then(|c| c.get("quantization_config")) else {
            return Self::default();
        };
        let text = |key: &str| quantization.get(key).and_then(|v| v.as_str());
        let bits = quantization
            .get("bits")
            .or_else(|| quantization.get("w_bit"))
            .and_then(|v| v.as_u64())
            .or_else(|| {
                // compressed-tensors: config_groups.<group>.weights.num_bits
                quantization
                    .get("config_groups")?
                    .as_object()?
                    .values()
                    .find_map(|group| group.get("weights")?.get("num_bits")?.as_u64())
            })
            .and_then(|bits| u8::try_from(bits).ok());
        Self {
            method: text("quant_method").map(str::to_lowercase),
            bits,
            gptq_v2: text("checkpoint_format") == Some("gptq_v2"),
        }
    }
}

/// Whether any of `tensors` is named as a quantised layer's part (packed codes, a
/// bitsandbytes scale or quant state).
pub fn holds_quantized(tensors: &[NamedTensor]) -> bool {
    tensors.iter().any(|t| {
        t.name.ends_with("qweight")
            || t.name.ends_with("weight_packed")
            || t.name.ends_with(".SCB")
            || t.name.contains(".quant_state.bitsandbytes__")
    })
}

/// `tensors` with each quantised layer's tensors replaced by one dequantising tensor, at the
/// place of its packed codes; `config` is the checkpoint's parsed `config.json`.
pub fn regroup(
    tensors: Vec<NamedTensor>,
    config: Option<&serde_json::Value>,
    path: &Path,
) -> Result<Vec<NamedTensor>> {
    let quantization = QuantizationConfig::of(config);
    let names: HashMap<String, usize> = tensors
        .iter()
        .enumerate()
        .map(|(index, t)| (t.name.clone(), index))
        .collect();
    let mut plans: Vec<(usize, Plan)> = Vec::new();
    for (index, tensor) in tensors.iter().enumerate() {
        if let Some(plan) = Plan::of(tensor, &tensors, &names, &quantization, path)? {
            plans.push((index, plan));
        }
    }
    if plans.is_empty() {
        return Ok(tensors);
    }
    let mut slots: Vec<Option<NamedTensor>> = tensors.into_iter().map(Some).collect();
    let mut replacements: HashMap<usize, NamedTensor> = HashMap::new();
    for (index, plan) in plans {
        let parts = plan
            .parts
            .iter()
            .filter_map(|(role, part)| Some((*role, slots[*part].take()?)))
            .collect();
        let name = plan.name.clone();
        let weight = PackedWeight::new(plan.format, plan.shape, parts, plan.rounding);
        let weight = match plan.nested {
            Some((blocksize, offset)) => weight.with_nested(blocksize, offset),
            None => weight,
        };
        replacements.insert(index, NamedTensor::packed(name, weight));
        for index in plan.dropped {
            slots[index] = None;
        }
    }
    Ok(slots
        .into_iter()
        .enumerate()
        .filter_map(|(index, slot)| replacements.remove(&index).or(slot))
        .collect())
}

/// How one quantised layer is put together from the checkpoint's tensors.
struct Plan {
    name: String,
    format: PackedFormat,
    shape: Vec<i64>,
    parts: Vec<(&'static str, usize)>,
    /// Tensors of the layer that dequantising does not need (bitsandbytes' `weight_format`).
    dropped: Vec<usize>,
    rounding: Kind,
    nested: Option<(i64, f32)>,
}

impl Plan {
    /// The plan of the layer whose packed codes `tensor` holds, if it is one.
    fn of(
        tensor: &NamedTensor,
        tensors: &[NamedTensor],
        names: &HashMap<String, usize>,
        quantization: &QuantizationConfig,
        path: &Path,
    ) -> Result<Option<Self>> {
        let name = tensor.name.as_str();
        let find = |suffix: &str, prefix: &str| names.get(&format!("{prefix}{suffix}")).copied();
        let lie = |message: String| corrupt(path, name, message);
        let shape_of = |index: usize| tensors[index].shape.clone();
        let kind_of = |index: usize| crate::model::stored::kind_of(&tensors[index].dtype);
        if let Some(prefix) = name.strip_suffix("qweight") {
            let (Some(scales), Some(zeros)) = (find("scales", prefix), find("qzeros", prefix))
            else {
                return Err(lie("packed codes without their scales and qzeros".into()));
            };
            let (codes_shape, scales_shape) = (&tensor.shape, shape_of(scales));
            if codes_shape.len() != 2 || scales_shape.len() != 2 {
                return Err(lie(format!(
                    "qweight {codes_shape:?} and scales {scales_shape:?} are not matrices"
                )));
            }
            let bits = quantization.bits.unwrap_or(4);
            let awq = match quantization.method.as_deref() {
                Some("awq") => true,
                Some("gptq") => false,
                _ => codes_shape[1] != scales_shape[1],
            };
            if ![2, 4, 8].contains(&bits) || (awq && bits != 4) {
                return Err(lie(format!(
                    "{} with {bits}-bit codes, which rmt-torch does not unpack ({})",
                    if awq { "AWQ" } else { "GPTQ" },
                    if awq { "4 bits" } else { "2, 4 or 8 bits" }
                )));
            }
            let per_word = 32 / i64::from(bits);
            let (format, shape) = if awq {
                (
                    PackedFormat::Awq { bits },
                    vec![codes_shape[1] * per_word, codes_shape[0]],
                )
            } else {
                let inputs = match find("g_idx", prefix) {
                    Some(g_idx) => shape_of(g_idx).first().copied().unwrap_or(0),
                    None => codes_shape[0] * per_word,
                };
                (
                    PackedFormat::Gptq {
                        bits,
                        zeros_minus_one: !quantization.gptq_v2,
                    },
                    vec![scales_shape[1], inputs],
                )
            };
            let mut parts = vec![
                ("qweight", names[name]),
                ("scales", scales),
                ("qzeros", zeros),
            ];
            parts.extend(find("g_idx", prefix).map(|g_idx| ("g_idx", g_idx)));
            return Ok(Some(Self {
                name: format!("{prefix}weight"),
                format,
                shape,
                parts,
                dropped: Vec::new(),
                rounding: rounding(kind_of(scales)),
                nested: None,
            }));
        }
        if let Some(prefix) = name.strip_suffix("weight_packed") {
            let (Some(scales), Some(shape)) =
                (find("weight_scale", prefix), find("weight_shape", prefix))
            else {
                return Err(lie(
                    "packed codes without weight_scale and weight_shape".into()
                ));
            };
            let shape: Vec<i64> = Vec::try_from(
                tensors[shape]
                    .load()?
                    .f_to_kind(Kind::Int64)?
                    .f_flatten(0, -1)?,
            )
            .map_err(|_| lie("weight_shape is not a list of integers".into()))?;
            if shape.len() != 2 || shape.iter().any(|&n| n <= 0) {
                return Err(lie(format!("weight_shape {shape:?} is not a matrix's")));
            }
            let bits = quantization.bits.unwrap_or(4);
            if !(1..=8).contains(&bits) || 32 % bits != 0 {
                return Err(lie(format!(
                    "pack-quantized with {bits}-bit codes, which rmt-torch does not unpack \
                     (1, 2, 4 or 8 bits)"
                )));
            }
            let mut parts = vec![("qweight", names[name]), ("scales", scales)];
            parts.extend(find("weight_zero_point", prefix).map(|z| ("zero_point", z)));
            let dropped = find("weight_shape", prefix).into_iter().collect();
            return Ok(Some(Self {
                name: format!("{prefix}weight"),
                format: PackedFormat::PackQuantized { bits },
                shape,
                parts,
                dropped,
                rounding: rounding(kind_of(scales)),
                nested: None,
            }));
        }
        if let Some(prefix) = name.strip_suffix("weight") {
            if tensor.dtype == Dtype::I8 {
                if let Some(scb) = find("SCB", prefix) {
                    let dropped = find("weight_format", prefix).into_iter().collect();
                    return Ok(Some(Self {
                        name: name.to_string(),
                        format: PackedFormat::BnbInt8,
                        shape: tensor.shape.clone(),
                        parts: vec![("qweight", names[name]), ("SCB", scb)],
                        dropped,
                        rounding: Kind::Float,
                        nested: None,
                    }));
                }
            }
            for kind in ["nf4", "fp4"] {
                let Some(state) = find(&format!("weight.quant_state.bitsandbytes__{kind}"), prefix)
                else {
                    continue;
                };
                return Self::bnb4(name, tensors, names, state, kind == "nf4", path).map(Some);
            }
        }
        Ok(None)
    }

    /// A bitsandbytes 4-bit weight: its quant state (a JSON stored as bytes) gives its shape,
    /// block sizes and the nested absmax's offset.
    fn bnb4(
        name: &str,
        tensors: &[NamedTensor],
        names: &HashMap<String, usize>,
        state: usize,
        normal_float: bool,
        path: &Path,
    ) -> Result<Self> {
        let lie = |message: String| corrupt(path, name, message);
        let bytes: Vec<u8> = Vec::try_from(tensors[state].load()?.f_flatten(0, -1)?)
            .map_err(|_| lie("its quant_state is not bytes".into()))?;
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|err| lie(format!("its quant_state is not JSON: {err}")))?;
        let shape: Vec<i64> = json["shape"]
            .as_array()
            .map(|dims| dims.iter().filter_map(|d| d.as_i64()).collect())
            .unwrap_or_default();
        let blocksize = json["blocksize"].as_i64().unwrap_or(0);
        if shape.len() != 2 || shape.iter().any(|&n| n <= 0) || !(1..=1 << 20).contains(&blocksize)
        {
            return Err(lie(format!(
                "its quant_state gives shape {:?} and blocksize {}",
                json["shape"], json["blocksize"]
            )));
        }
        let find = |suffix: &str| names.get(&format!("{name}.{suffix}")).copied();
        let mut parts = vec![("qweight", names[name])];
        for (role, suffix) in [
            ("absmax", "absmax"),
            ("quant_map", "quant_map"),
            ("nested_absmax", "nested_absmax"),
            ("nested_quant_map", "nested_quant_map"),
        ] {
            parts.extend(find(suffix).map(|index| (role, index)));
        }
        if !parts.iter().any(|(role, _)| *role == "absmax")
            || !parts.iter().any(|(role, _)| *role == "quant_map")
        {
            return Err(lie("a 4-bit weight without its absmax and quant_map".into()));
        }
        let nested = match json["nested_blocksize"].as_i64() {
            Some(block) if (1..=1 << 20).contains(&block) => {
                Some((block, json["nested_offset"].as_f64().unwrap_or(0.0) as f32))
            }
            Some(block) => return Err(lie(format!("a nested block size of {block}"))),
            None => None,
        };
        let rounding = match json["dtype"].as_str() {
            Some("float16") => Kind::Half,
            Some("bfloat16") => Kind::BFloat16,
            _ => Kind::Float,
        };
        Ok(Self {
            name: name.to_string(),
            format: PackedFormat::Bnb4 {
                normal_float,
                blocksize: blocksize as u32,
            },
            shape,
            parts,
            dropped: vec![state],
            rounding,
            nested,
        })
    }
}

/// A quantised layer whose tensors do not fit together, in the file or directory at `path`.
fn corrupt(path: &Path, name: &str, message: String) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        format: "quantised checkpoint",
        message: format!("'{name}': {message}"),
    }
}

/// The float type a format's kernels round to: the scales' (float32 for any other).
fn rounding(kind: Option<Kind>) -> Kind {
    match kind {
        Some(kind @ (Kind::Half | Kind::BFloat16)) => kind,
        _ => Kind::Float,
    }
}
