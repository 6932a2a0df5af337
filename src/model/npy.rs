//! NumPy `.npy` arrays (format versions 1–3): the input batches people save with `np.save`.
use std::path::Path;

use super::{Dtype, NamedTensor, SharedFile, StoredTensor, View};
use crate::error::{Error, Result};

/// How errors name the format.
const FORMAT: &str = ".npy array";

/// The magic bytes every `.npy` file starts with.
pub const MAGIC: &[u8] = b"\x93NUMPY";

/// Bytes of header read at most (NumPy writes a few hundred).
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// Indexes the array of a `.npy` file (little-endian or byte-sized numeric, any shape, C or
/// Fortran order) under `name`.
pub fn index(path: &Path, name: &str) -> Result<NamedTensor> {
    let file = SharedFile::open(path)?;
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_path_buf(),
        format: FORMAT,
        message,
    };
    let head = file.read_range(0, file.len().min(12))?;
    if !head.starts_with(MAGIC) || head.len() < 10 {
        return Err(corrupt("no NUMPY header".into()));
    }
    let (header_len, header_start) = match head[6] {
        1 => (u64::from(u16::from_le_bytes([head[8], head[9]])), 10),
        2 | 3 if head.len() >= 12 => (
            u64::from(u32::from_le_bytes([head[8], head[9], head[10], head[11]])),
            12,
        ),
        version => return Err(corrupt(format!("unsupported format version {version}"))),
    };
    if header_len > MAX_HEADER_BYTES || header_start + header_len > file.len() {
        return Err(corrupt("truncated header".into()));
    }
    let data_start = header_start + header_len;
    let header_bytes = file.read_range(header_start, header_len)?;
    let header =
        std::str::from_utf8(&header_bytes).map_err(|_| corrupt("header is not text".into()))?;
    let field = |key: &str| -> Result<&str> {
        let start = header
            .find(&format!("'{key}'"))
            .ok_or_else(|| corrupt(format!("header lacks '{key}'")))?;
        let rest = header[start + key.len() + 2..].trim_start();
        Ok(rest.strip_prefix(':').unwrap_or(rest).trim_start())
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| corrupt("malformed descr".into()))?;
    let dtype = Dtype::of_numpy(descr);
    if dtype.size().is_none() {
        return Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            message: format!(".npy dtype {descr} is not supported (use float32 or float64)"),
        });
    }
    let fortran = field("fortran_order")?.starts_with("True");
    let shape_text = field("shape")?;
    let shape_text = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| corrupt("malformed shape".into()))?;
    let shape: Vec<i64> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .ok()
                .filter(|&d| d >= 0)
                .ok_or_else(|| corrupt(format!("bad dimension '{s}'")))
        })
        .collect::<Result<_>>()?;
    let numel = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| corrupt(format!("impossible shape {shape:?}")))?;
    // Fortran order: the same bytes read with the strides reversed.
    let view = if fortran {
        let reversed: Vec<i64> = shape.iter().rev().copied().collect();
        let mut stride = View::contiguous(&reversed).stride;
        stride.reverse();
        View {
            offset: 0,
            size: shape.clone(),
            stride,
        }
    } else {
        View::contiguous(&shape)
    };
    let stored = StoredTensor::new(&file, FORMAT, name, &dtype, (data_start, numel), view)?;
    Ok(NamedTensor::stored(name, dtype, stored))
}
