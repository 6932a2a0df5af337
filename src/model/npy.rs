//! NumPy `.npy` arrays (format versions 1–3): the input batches people save with `np.save`.
use std::path::Path;

use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// The magic bytes every `.npy` file starts with.
pub const MAGIC: &[u8] = b"\x93NUMPY";

/// Reads a little-endian (or byte-sized) numeric array of any shape, C or Fortran order.
pub fn read(path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_path_buf(),
        format: ".npy array",
        message,
    };
    if !bytes.starts_with(MAGIC) || bytes.len() < 10 {
        return Err(corrupt("no NUMPY header".into()));
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        version => return Err(corrupt(format!("unsupported format version {version}"))),
    };
    let data_start = header_start + header_len;
    let header = bytes
        .get(header_start..data_start)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| corrupt("truncated header".into()))?;
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
    let (kind, size) = match descr {
        "<f8" => (Kind::Double, 8),
        "<f4" => (Kind::Float, 4),
        "<f2" => (Kind::Half, 2),
        "<i8" => (Kind::Int64, 8),
        "<i4" => (Kind::Int, 4),
        "|u1" => (Kind::Uint8, 1),
        "|i1" => (Kind::Int8, 1),
        "|b1" => (Kind::Bool, 1),
        other => {
            return Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                message: format!(".npy dtype {other} is not supported (use float32 or float64)"),
            })
        }
    };
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
                .map_err(|_| corrupt(format!("bad dimension '{s}'")))
        })
        .collect::<Result<_>>()?;
    let length = shape
        .iter()
        .try_fold(size as usize, |bytes: usize, &d| {
            usize::try_from(d).ok().and_then(|d| bytes.checked_mul(d))
        })
        .ok_or_else(|| corrupt(format!("impossible shape {shape:?}")))?;
    let data = bytes
        .get(data_start..data_start.saturating_add(length))
        .ok_or_else(|| corrupt(format!("expected {length} data bytes")))?;
    let stored: Vec<i64> = if fortran {
        shape.iter().rev().copied().collect()
    } else {
        shape.clone()
    };
    let tensor = Tensor::f_from_data_size(data, &stored, kind)?;
    if fortran && shape.len() > 1 {
        let reversed: Vec<i64> = (0..shape.len() as i64).rev().collect();
        return Ok(tensor.f_permute(&reversed)?.f_contiguous()?);
    }
    Ok(tensor)
}
