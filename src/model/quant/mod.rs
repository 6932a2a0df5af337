//! Quantised weights, dequantised when read: the stored bytes and the scheme that turns them
//! into float32, one tensor at a time, exactly as the format's own reference decodes them.
pub mod ggml;
pub mod hf;
pub mod packed;

use std::fmt;
use std::sync::Arc;

use rayon::prelude::*;
use tch::{Kind, Tensor};

use super::SharedFile;
use crate::error::Result;

pub use ggml::{BlockFormat, GgmlType};

/// How a quantised tensor is stored: what `info` names as its dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// A ggml block quantisation (GGUF files).
    Ggml(BlockFormat),
    /// A Hugging Face packed format (GPTQ, AWQ, compressed-tensors, bitsandbytes).
    Packed(packed::PackedFormat),
}

impl Scheme {
    /// How the tensor is turned into floats, in words (what `info` says).
    pub fn describe(&self) -> String {
        match self {
            Self::Ggml(format) => format!(
                "ggml {format}: blocks of {} weights, {:.4} bits each, dequantised to float32 as \
                 llama.cpp does",
                format.block_size(),
                format.bits_per_weight()
            ),
            Self::Packed(format) => format.describe(),
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ggml(format) => format.fmt(f),
            Self::Packed(format) => format.fmt(f),
        }
    }
}

/// A tensor of ggml blocks in a file: its format, shape and bytes, checked against the file when
/// indexed and decoded when read.
#[derive(Debug, Clone)]
pub struct GgmlBlocks {
    /// How the bytes encode the values.
    pub format: BlockFormat,
    file: Arc<SharedFile>,
    offset: u64,
    shape: Vec<i64>,
}

/// Blocks decoded per parallel task (a few hundred KiB of output).
const BLOCKS_PER_TASK: usize = 2048;

impl GgmlBlocks {
    /// A tensor of ggml blocks at byte `offset` of `file`: `shape`'s last axis is a whole
    /// number of blocks and the bytes lie in the file (checked by the caller's index).
    pub fn new(file: &Arc<SharedFile>, format: BlockFormat, offset: u64, shape: Vec<i64>) -> Self {
        Self {
            format,
            file: file.clone(),
            offset,
            shape,
        }
    }

    /// Slice `index` of the first dimension: its blocks are contiguous, since blocks run along
    /// the last.
    pub fn slice(&self, index: usize) -> Self {
        let format = self.format;
        let numel: u64 = self.shape[1..].iter().map(|&n| n as u64).product();
        let bytes = numel / format.block_size() as u64 * format.block_bytes() as u64;
        Self {
            offset: self.offset + index as u64 * bytes,
            shape: self.shape[1..].to_vec(),
            ..self.clone()
        }
    }

    /// The shape of the dequantised tensor.
    pub fn shape(&self) -> &[i64] {
        &self.shape
    }

    /// The values as a float32 CPU tensor, decoded from the bytes read now: each parallel task
    /// reads and decodes its own run of blocks, so the stored bytes are never all in memory
    /// beside the floats.
    pub fn dense(&self, label: &str) -> Result<Tensor> {
        let rows = self.shape.first().copied().unwrap_or(1);
        let tensor = self.rows(label, 0, rows)?;
        Ok(tensor.f_reshape(self.shape.as_slice())?)
    }

    /// Rows `start..start + count` along the first dimension, decoded now as a float32 CPU
    /// tensor [count, …] (blocks run along the last dimension, so each row is whole blocks).
    pub fn rows(&self, label: &str, start: i64, count: i64) -> Result<Tensor> {
        let format = self.format;
        let inner: usize = self.shape.iter().skip(1).map(|&n| n as usize).product();
        let inner = if self.shape.is_empty() { 1 } else { inner };
        let numel = inner * count as usize;
        let row_bytes = (inner / format.block_size() * format.block_bytes()) as u64;
        let offset = self.offset + start as u64 * row_bytes;
        let bytes = row_bytes * count as u64;
        crate::environment::ensure_host_memory(
            || format!("{label} ({numel} weights of {format})"),
            tch::Device::Cpu,
            4.0 * numel as f64,
        )?;
        if offset
            .checked_add(bytes)
            .is_none_or(|end| end > self.file.len())
        {
            return Err(crate::error::Error::Corrupt {
                path: self.file.path().to_path_buf(),
                format: "GGUF file",
                message: format!("{label}: its {bytes} bytes run past the end of the file"),
            });
        }
        let mut shape = vec![count];
        shape.extend(self.shape.iter().skip(1));
        let tensor = Tensor::f_empty([numel as i64], (Kind::Float, tch::Device::Cpu))?;
        if numel == 0 {
            return Ok(tensor.f_reshape(shape.as_slice())?);
        }
        // SAFETY: `tensor` is a fresh, contiguous float32 CPU tensor of `numel` > 0 elements
        // that nothing else references until it is returned.
        let out = unsafe { std::slice::from_raw_parts_mut(tensor.data_ptr() as *mut f32, numel) };
        let task_bytes = (BLOCKS_PER_TASK * format.block_bytes()) as u64;
        out.par_chunks_mut(BLOCKS_PER_TASK * format.block_size())
            .enumerate()
            .try_for_each(|(task, values)| -> Result<()> {
                let blocks = values.len() / format.block_size();
                let mut stored = vec![0u8; blocks * format.block_bytes()];
                self.file
                    .read_exact_at(&mut stored, offset + task as u64 * task_bytes)?;
                format.decode(&stored, values);
                Ok(())
            })?;
        Ok(tensor.f_reshape(shape.as_slice())?)
    }
}
