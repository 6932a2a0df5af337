//! GGUF files, llama.cpp's format (versions 2 and 3): the magic `GGUF`, a version, the tensor
//! and metadata counts, the metadata key–value pairs, one record per tensor (name, dimensions,
//! ggml type, offset), then the tensor data from the first multiple of the alignment
//! (`general.alignment`, 32 by default).
//!
//! Every count and length is checked against the bytes the file really has before anything of
//! that size is kept; metadata arrays (a tokenizer's vocabulary) are skipped, listed by length.
//! Dimensions are stored innermost first (ggml's `ne`): a weight of `ne = [in, out]` is the
//! `[out, in]` matrix PyTorch would hold, and quantisation blocks run along its rows.
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use super::quant::{GgmlBlocks, GgmlType};
use super::{CheckpointEntry, Dtype, EntryValue, NamedTensor, SharedFile, StoredTensor, View};
use crate::error::{Error, Result};

/// How errors name the format.
const FORMAT: &str = "GGUF file";

/// The first four bytes of every GGUF file.
pub const MAGIC: &[u8; 4] = b"GGUF";

/// The data alignment when the metadata names none.
const DEFAULT_ALIGNMENT: u64 = 32;

/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;

/// Longest tensor name or metadata key accepted (GGUF's own limit on names is 64 bytes).
const MAX_NAME_BYTES: u64 = 65_536;

/// Arrays nested deeper than this are refused (the format nests them; no model needs to).
const MAX_ARRAY_DEPTH: usize = 4;

/// A GGUF file's index: its tensors in the file's order and its metadata.
pub struct Gguf {
    /// The tensors, their bytes checked against the file.
    pub tensors: Vec<NamedTensor>,
    /// The metadata key–value pairs (arrays by length).
    pub metadata: Vec<CheckpointEntry>,
}

/// Reads the index of the GGUF file at `path`.
pub fn load(path: &Path) -> Result<Gguf> {
    let file = SharedFile::open(path)?;
    let mut cursor = Cursor::new(&file)?;
    let magic: [u8; 4] = cursor.bytes()?;
    if &magic != MAGIC {
        return Err(cursor.corrupt("it does not start with GGUF".into()));
    }
    let version = cursor.u32()?;
    match version {
        2 | 3 => {}
        1 => {
            return Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                message: "GGUF version 1 (32-bit counts, before August 2023) is not read; \
                          convert it again with a current llama.cpp"
                    .into(),
            })
        }
        other if other.swap_bytes() <= 3 => {
            return Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                message: "a big-endian GGUF file, which rmt-torch does not read".into(),
            })
        }
        other => {
            return Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                message: format!("GGUF version {other}, which rmt-torch does not read (2 and 3)"),
            })
        }
    }
    let tensor_count = cursor.u64()?;
    let metadata_count = cursor.u64()?;
    // The smallest record of each: an empty name or key, then 16 or 4 bytes of fields.
    let room = file.len() - cursor.position;
    if tensor_count > room / 24 || metadata_count > room / 12 {
        return Err(cursor.corrupt(format!(
            "it claims {tensor_count} tensors and {metadata_count} metadata pairs, more than \
             its {} bytes can hold",
            file.len()
        )));
    }

    let mut metadata = Vec::new();
    let mut keys = HashSet::new();
    let mut alignment = DEFAULT_ALIGNMENT;
    for _ in 0..metadata_count {
        let key = cursor.name("metadata key")?;
        if !keys.insert(key.clone()) {
            return Err(cursor.corrupt(format!("metadata key '{key}' appears twice")));
        }
        let value_type = cursor.u32()?;
        if key == "general.alignment" {
            if value_type != U32 {
                return Err(cursor.corrupt("general.alignment is not a uint32".into()));
            }
            alignment = u64::from(cursor.u32()?);
            if !alignment.is_power_of_two() {
                return Err(cursor.corrupt(format!(
                    "general.alignment {alignment} is not a power of two"
                )));
            }
            metadata.push(CheckpointEntry {
                name: key,
                value: EntryValue::Int(alignment as i64),
            });
            continue;
        }
        let value = cursor.value(value_type, &key, 0)?;
        metadata.push(CheckpointEntry { name: key, value });
    }

    let mut records = Vec::new();
    let mut names = HashSet::new();
    for _ in 0..tensor_count {
        let record = TensorRecord::read(&mut cursor)?;
        if !names.insert(record.name.clone()) {
            return Err(cursor.corrupt(format!("tensor '{}' appears twice", record.name)));
        }
        records.push(record);
    }
    let data_start = cursor.position.div_ceil(alignment) * alignment;
    let tensors = records
        .into_iter()
        .map(|record| record.index(&file, data_start, alignment))
        .collect::<Result<_>>()?;
    Ok(Gguf { tensors, metadata })
}

/// The metadata value type `uint32`.
const U32: u32 = 4;

/// One tensor record of the header.
struct TensorRecord {
    name: String,
    /// PyTorch's order: outermost first.
    shape: Vec<i64>,
    type_id: u32,
    offset: u64,
}

impl TensorRecord {
    fn read(cursor: &mut Cursor) -> Result<Self> {
        let name = cursor.name("tensor name")?;
        let dims = cursor.u32()?;
        if dims > MAX_DIMS {
            return Err(cursor.corrupt(format!(
                "tensor '{name}' has {dims} dimensions (ggml has at most {MAX_DIMS})"
            )));
        }
        let mut shape = Vec::with_capacity(dims as usize);
        for _ in 0..dims {
            let extent = cursor.u64()?;
            shape.push(i64::try_from(extent).map_err(|_| {
                cursor.corrupt(format!("tensor '{name}' has a dimension of {extent}"))
            })?);
        }
        shape.reverse();
        let type_id = cursor.u32()?;
        let offset = cursor.u64()?;
        Ok(Self {
            name,
            shape,
            type_id,
            offset,
        })
    }

    /// The tensor, its bytes checked to lie in the file at an aligned offset past `data_start`.
    fn index(self, file: &Arc<SharedFile>, data_start: u64, alignment: u64) -> Result<NamedTensor> {
        let corrupt = |message: String| Error::Corrupt {
            path: file.path().to_path_buf(),
            format: FORMAT,
            message: format!("tensor '{}': {message}", self.name),
        };
        let Some(ggml) = GgmlType::from_id(self.type_id) else {
            let dtype = Dtype::Other {
                name: format!("ggml type {}", self.type_id),
                size: None,
            };
            return Ok(NamedTensor::listed(self.name, dtype, self.shape));
        };
        let numel = self
            .shape
            .iter()
            .try_fold(1u64, |acc, &n| acc.checked_mul(n as u64))
            .ok_or_else(|| corrupt(format!("shape {:?} overflows", self.shape)))?;
        let (block, block_bytes) = ggml.block_layout();
        let row = self.shape.last().copied().unwrap_or(1) as u64;
        if row % block != 0 {
            return Err(corrupt(format!(
                "rows of {row} weights are not a whole number of {ggml} blocks of {block}"
            )));
        }
        let bytes = (numel / block)
            .checked_mul(block_bytes)
            .ok_or_else(|| corrupt(format!("shape {:?} overflows", self.shape)))?;
        if self.offset % alignment != 0 {
            return Err(corrupt(format!(
                "its offset {} is not a multiple of the alignment {alignment}",
                self.offset
            )));
        }
        let start = data_start.checked_add(self.offset);
        if start
            .and_then(|start| start.checked_add(bytes))
            .is_none_or(|end| end > file.len())
        {
            return Err(corrupt(format!(
                "its {bytes} bytes at data offset {} run past the end of the file ({} bytes)",
                self.offset,
                file.len()
            )));
        }
        let start = start.expect("checked above");
        let stored = |dtype: Dtype| -> Result<NamedTensor> {
            let stored = StoredTensor::new(
                file,
                FORMAT,
                &self.name,
                &dtype,
                (start, numel),
                View::contiguous(&self.shape),
            )?;
            Ok(NamedTensor::stored(self.name.clone(), dtype, stored))
        };
        match ggml {
            GgmlType::F32 => stored(Dtype::F32),
            GgmlType::F16 => stored(Dtype::F16),
            GgmlType::BF16 => stored(Dtype::BF16),
            GgmlType::F64 => stored(Dtype::F64),
            GgmlType::Int(1) => stored(Dtype::I8),
            GgmlType::Int(2) => stored(Dtype::I16),
            GgmlType::Int(4) => stored(Dtype::I32),
            GgmlType::Int(_) => stored(Dtype::I64),
            GgmlType::Block(format) => Ok(NamedTensor::ggml(
                self.name.clone(),
                GgmlBlocks::new(file, format, start, self.shape.clone()),
            )),
            GgmlType::Undecoded { name, .. } => Ok(NamedTensor::listed(
                self.name.clone(),
                Dtype::Other {
                    name: format!("ggml {name}"),
                    size: None,
                },
                self.shape.clone(),
            )),
        }
    }
}

/// The header, read in order through a buffer, every length checked against the file's.
struct Cursor<'f> {
    file: &'f SharedFile,
    reader: BufReader<File>,
    position: u64,
}

impl<'f> Cursor<'f> {
    fn new(file: &'f SharedFile) -> Result<Self> {
        Ok(Self {
            file,
            reader: BufReader::with_capacity(1 << 16, file.handle()?),
            position: 0,
        })
    }

    fn corrupt(&self, message: String) -> Error {
        Error::Corrupt {
            path: self.file.path().to_path_buf(),
            format: FORMAT,
            message,
        }
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io {
            path: self.file.path().to_path_buf(),
            source,
        }
    }

    /// Refuses to go `len` bytes further than the file has.
    fn ensure(&self, len: u64, what: &str) -> Result<()> {
        let left = self.file.len().saturating_sub(self.position);
        if len > left {
            return Err(self.corrupt(format!(
                "{what} of {len} bytes at byte {} runs past the end of the file ({} bytes)",
                self.position,
                self.file.len()
            )));
        }
        Ok(())
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.ensure(N as u64, "the header")?;
        let mut buffer = [0u8; N];
        self.reader
            .read_exact(&mut buffer)
            .map_err(|err| self.io(err))?;
        self.position += N as u64;
        Ok(buffer)
    }

    fn u32(&mut self) -> Result<u32> {
        self.bytes().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64> {
        self.bytes().map(u64::from_le_bytes)
    }

    fn skip(&mut self, len: u64, what: &str) -> Result<()> {
        self.ensure(len, what)?;
        self.reader
            .seek_relative(len as i64)
            .map_err(|err| self.io(err))?;
        self.position += len;
        Ok(())
    }

    /// A string: its length (u64), then its UTF-8 bytes, refused past `limit` bytes.
    fn string_of_at_most(&mut self, limit: u64, what: &str) -> Result<String> {
        let at = self.position;
        let len = self.u64()?;
        if len > limit {
            return Err(self.corrupt(format!(
                "{what} of {len} bytes at byte {at} (at most {limit})"
            )));
        }
        self.ensure(len, what)?;
        let mut buffer = vec![0u8; len as usize];
        self.reader
            .read_exact(&mut buffer)
            .map_err(|err| self.io(err))?;
        self.position += len;
        String::from_utf8(buffer).map_err(|_| self.corrupt(format!("{what} is not UTF-8")))
    }

    /// A string value, as long as the file allows.
    fn string(&mut self, what: &str) -> Result<String> {
        self.string_of_at_most(u64::MAX, what)
    }

    /// A key or tensor name: a string of at most [`MAX_NAME_BYTES`].
    fn name(&mut self, what: &str) -> Result<String> {
        self.string_of_at_most(MAX_NAME_BYTES, &format!("a {what}"))
    }

    /// A metadata value of type `value_type`; arrays are skipped and kept by length.
    fn value(&mut self, value_type: u32, key: &str, depth: usize) -> Result<EntryValue> {
        Ok(match value_type {
            0 => EntryValue::Int(i64::from(self.bytes::<1>()?[0])),
            1 => EntryValue::Int(i64::from(self.bytes::<1>()?[0] as i8)),
            2 => EntryValue::Int(i64::from(u16::from_le_bytes(self.bytes()?))),
            3 => EntryValue::Int(i64::from(i16::from_le_bytes(self.bytes()?))),
            U32 => EntryValue::Int(i64::from(self.u32()?)),
            5 => EntryValue::Int(i64::from(i32::from_le_bytes(self.bytes()?))),
            6 => EntryValue::Float(f64::from(f32::from_le_bytes(self.bytes()?))),
            7 => EntryValue::Bool(self.bytes::<1>()?[0] != 0),
            8 => EntryValue::Str(self.string(&format!("the string of '{key}'"))?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(self.corrupt(format!(
                        "'{key}' nests arrays deeper than {MAX_ARRAY_DEPTH}"
                    )));
                }
                let element_type = self.u32()?;
                let len = self.u64()?;
                match element_size(element_type) {
                    Some(size) => {
                        let bytes = len.checked_mul(size).ok_or_else(|| {
                            self.corrupt(format!("'{key}' claims an array of {len} elements"))
                        })?;
                        self.skip(bytes, &format!("the array '{key}'"))?;
                    }
                    None => {
                        for _ in 0..len {
                            self.skip_value(element_type, key, depth + 1)?;
                        }
                    }
                }
                EntryValue::List(usize::try_from(len).unwrap_or(usize::MAX))
            }
            10 => {
                let value = self.u64()?;
                i64::try_from(value).map_or(EntryValue::WideInt, EntryValue::Int)
            }
            11 => EntryValue::Int(i64::from_le_bytes(self.bytes()?)),
            12 => EntryValue::Float(f64::from_le_bytes(self.bytes()?)),
            other => {
                return Err(self.corrupt(format!("'{key}' has the unknown value type {other}")))
            }
        })
    }

    /// Steps over one array element of a type of no fixed size (a string or an array).
    fn skip_value(&mut self, value_type: u32, key: &str, depth: usize) -> Result<()> {
        if value_type == 8 {
            let len = self.u64()?;
            return self.skip(len, &format!("a string of '{key}'"));
        }
        self.value(value_type, key, depth).map(|_| ())
    }
}

/// Bytes per element of the fixed-size metadata types; `None` for strings, arrays and
/// unknown types.
fn element_size(value_type: u32) -> Option<u64> {
    match value_type {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}
