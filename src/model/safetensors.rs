//! safetensors files: an 8-byte little-endian header length, a JSON header mapping each tensor
//! to its dtype, shape and byte range, then the raw little-endian data.
//!
//! Read here rather than through tch so that tensors keep the file's order (the state dict's)
//! and every malformed header gets a precise message.
use std::path::Path;

use serde::Deserialize;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::model::NamedTensor;

#[derive(Deserialize)]
struct TensorEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

/// Loads every tensor of a safetensors file, in the order of their data in the file, on the CPU.
pub fn load(path: &Path) -> Result<Vec<NamedTensor>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_path_buf(),
        format: "safetensors file",
        message,
    };
    let header_len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .ok_or_else(|| corrupt("shorter than its 8-byte header length".into()))?;
    let data_start = 8usize
        .checked_add(header_len)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            corrupt(format!(
                "header of {header_len} bytes runs past the end of the file"
            ))
        })?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..data_start])
            .map_err(|err| corrupt(format!("header is not valid JSON: {err}")))?;
    let data = &bytes[data_start..];

    let mut entries = Vec::new();
    for (name, value) in header {
        if name == "__metadata__" {
            continue;
        }
        let entry: TensorEntry = serde_json::from_value(value)
            .map_err(|err| corrupt(format!("tensor '{name}': {err}")))?;
        entries.push((name, entry));
    }
    entries.sort_by_key(|(_, entry)| entry.data_offsets[0]);

    entries
        .into_iter()
        .map(|(name, entry)| {
            let kind = kind_of(&entry.dtype)
                .ok_or_else(|| corrupt(format!("tensor '{name}': unsupported dtype {}", entry.dtype)))?;
            let [begin, end] = entry.data_offsets;
            let numel = entry.shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
            let expected = numel.and_then(|n| n.checked_mul(kind.elt_size_in_bytes()));
            if begin > end || end > data.len() || expected != Some(end - begin) {
                return Err(corrupt(format!(
                    "tensor '{name}': bytes {begin}..{end} do not hold a {} {:?} tensor within the {} data bytes",
                    entry.dtype,
                    entry.shape,
                    data.len()
                )));
            }
            let shape: Vec<i64> = entry.shape.iter().map(|&d| d as i64).collect();
            let tensor = Tensor::f_from_data_size(&data[begin..end], &shape, kind)?;
            Ok(NamedTensor { name, tensor })
        })
        .collect()
}

/// libtorch's kind for a safetensors dtype name.
fn kind_of(dtype: &str) -> Option<Kind> {
    Some(match dtype {
        "F64" => Kind::Double,
        "F32" => Kind::Float,
        "F16" => Kind::Half,
        "BF16" => Kind::BFloat16,
        "I64" => Kind::Int64,
        "I32" => Kind::Int,
        "I16" => Kind::Int16,
        "I8" => Kind::Int8,
        "U8" => Kind::Uint8,
        "BOOL" => Kind::Bool,
        _ => return None,
    })
}
