//! safetensors files: an 8-byte little-endian header length, a JSON header mapping each tensor
//! to its dtype, shape and byte range, then the raw little-endian data.
//!
//! Read here rather than through tch so that tensors keep the file's order (the state dict's),
//! every malformed header gets a precise message, and no tensor is read before it is analysed:
//! the index records each tensor's byte range, checked against the file.
use std::path::Path;

use serde::Deserialize;

use super::{Dtype, NamedTensor, SharedFile, StoredTensor, View};
use crate::error::{Error, Result};

/// How errors name the format.
const FORMAT: &str = "safetensors file";

/// Headers longer than this are refused (the format's own reference limit is 100 MB).
const MAX_HEADER_BYTES: u64 = 100_000_000;

#[derive(Deserialize)]
struct TensorEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

/// Indexes every tensor of a safetensors file, in the order of their data in the file.
pub fn load(path: &Path) -> Result<Vec<NamedTensor>> {
    let file = SharedFile::open(path)?;
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_path_buf(),
        format: FORMAT,
        message,
    };
    let length = file
        .read_range(0, 8)
        .map_err(|_| corrupt("shorter than its 8-byte header length".into()))?;
    let header_len = u64::from_le_bytes(length.try_into().expect("8 bytes"));
    if header_len > MAX_HEADER_BYTES || 8 + header_len > file.len() {
        return Err(corrupt(format!(
            "header of {header_len} bytes runs past the end of the file ({} bytes) or over {MAX_HEADER_BYTES}",
            file.len()
        )));
    }
    let data_start = 8 + header_len;
    let data_len = file.len() - data_start;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&file.read_range(8, header_len)?)
            .map_err(|err| corrupt(format!("header is not valid JSON: {err}")))?;

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
            let dtype = Dtype::of_safetensors(&entry.dtype);
            let [begin, end] = entry.data_offsets;
            let shape: Option<Vec<i64>> = entry
                .shape
                .iter()
                .map(|&d| i64::try_from(d).ok())
                .collect();
            let numel = entry
                .shape
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d));
            let expected = numel.zip(dtype.size()).and_then(|(n, s)| n.checked_mul(s as u64));
            let (Some(shape), Some(numel)) = (shape, numel) else {
                return Err(corrupt(format!("tensor '{name}': impossible shape {:?}", entry.shape)));
            };
            if begin > end || end > data_len || expected.is_some_and(|bytes| bytes != end - begin) {
                return Err(corrupt(format!(
                    "tensor '{name}': bytes {begin}..{end} do not hold a {} {:?} tensor within the {data_len} data bytes",
                    entry.dtype, entry.shape
                )));
            }
            if dtype.size().is_none() {
                // A type rmt-torch does not read (4-bit packed, say): listed, never loaded.
                return Ok(NamedTensor::listed(name, dtype, shape));
            }
            let stored = StoredTensor::new(
                &file,
                FORMAT,
                &name,
                &dtype,
                (data_start + begin, numel),
                View::contiguous(&shape),
            )?;
            Ok(NamedTensor::stored(name, dtype, stored))
        })
        .collect()
}
