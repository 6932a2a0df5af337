//! Tensors that stay in their file until they are analysed. The index of a model records where
//! each tensor's bytes are (a storage at a byte offset) and the strided view over them, checked
//! against the file when the index is built; [`StoredTensor::read`] then reads just the bytes
//! the view spans, with positional reads straight into tensor memory, one tensor at a time.
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tch::{Kind, Tensor};

use super::Dtype;
use crate::error::{Error, Result};

/// A regular file opened once and shared by the tensors stored in it.
#[derive(Debug)]
pub struct SharedFile {
    path: PathBuf,
    file: File,
    len: u64,
}

impl SharedFile {
    /// Opens a regular file (see [`super::open_regular`]).
    pub fn open(path: &Path) -> Result<Arc<Self>> {
        let (file, len) = super::file::open_regular(path)?;
        Ok(Arc::new(Self {
            path: path.to_path_buf(),
            file,
            len,
        }))
    }

    /// Another handle on the same open file (for readers that need their own cursor).
    pub fn handle(&self) -> Result<File> {
        self.file.try_clone().map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills `buffer` from byte `offset`.
    pub fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> Result<()> {
        self.file
            .read_exact_at(buffer, offset)
            .map_err(|source| Error::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// `len` bytes from `offset`, which must lie inside the file.
    pub fn read_range(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                format: "file",
                message: format!(
                    "bytes {offset}..{} lie past its end ({} bytes)",
                    offset.saturating_add(len),
                    self.len
                ),
            });
        }
        let mut buffer = vec![0; usize::try_from(len).unwrap_or(usize::MAX)];
        self.read_exact_at(&mut buffer, offset)?;
        Ok(buffer)
    }
}

/// A strided view of a storage, in elements: what `torch.save` pickles for a tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The first element's index in the storage.
    pub offset: u64,
    /// The shape.
    pub size: Vec<i64>,
    /// Strides, in elements.
    pub stride: Vec<i64>,
}

impl View {
    /// The contiguous view of a whole storage of `shape`.
    pub fn contiguous(shape: &[i64]) -> Self {
        let mut stride = vec![1i64; shape.len()];
        for axis in (0..shape.len().saturating_sub(1)).rev() {
            stride[axis] = stride[axis + 1].saturating_mul(shape[axis + 1].max(1));
        }
        Self {
            offset: 0,
            size: shape.to_vec(),
            stride,
        }
    }

    /// Elements the view addresses (its shape's product), if it fits in 64 bits.
    fn numel(&self) -> Option<u64> {
        self.size
            .iter()
            .try_fold(1u64, |acc, &n| acc.checked_mul(u64::try_from(n).ok()?))
    }

    /// The storage elements a non-empty view touches, `first..=last` (sizes and strides
    /// non-negative); `None` when the last index overflows 64 bits.
    fn span(&self) -> Option<(u64, u64)> {
        let last = self
            .size
            .iter()
            .zip(&self.stride)
            .try_fold(self.offset, |acc, (&n, &s)| {
                (n.max(1) as u64 - 1)
                    .checked_mul(s as u64)
                    .and_then(|step| acc.checked_add(step))
            })?;
        Some((self.offset, last))
    }
}

/// A tensor in a file: a storage of `storage_numel` elements at byte `offset`, and a view of it.
#[derive(Debug, Clone)]
pub struct StoredTensor {
    file: Arc<SharedFile>,
    offset: u64,
    view: View,
}

impl StoredTensor {
    /// Checks that the storage's bytes lie in the file and that every element of the view lies
    /// in the storage; `label` and `format` name the tensor and the file's format in errors.
    pub fn new(
        file: &Arc<SharedFile>,
        format: &'static str,
        label: &str,
        dtype: &Dtype,
        (offset, storage_numel): (u64, u64),
        view: View,
    ) -> Result<Self> {
        let corrupt = |message: String| Error::Corrupt {
            path: file.path.clone(),
            format,
            message: format!("{label}: {message}"),
        };
        let element = dtype.size().ok_or_else(|| {
            corrupt(format!(
                "elements of type {dtype} have no size rmt-torch knows"
            ))
        })? as u64;
        let bytes = storage_numel.checked_mul(element).ok_or_else(|| {
            corrupt(format!(
                "a storage of {storage_numel} elements is impossible"
            ))
        })?;
        if offset.checked_add(bytes).is_none_or(|end| end > file.len) {
            return Err(corrupt(format!(
                "its storage of {bytes} bytes at byte {offset} runs past the end of the file ({} bytes)",
                file.len
            )));
        }
        if view.size.len() != view.stride.len()
            || view.size.iter().chain(&view.stride).any(|&d| d < 0)
        {
            return Err(corrupt(format!(
                "bad size {:?} / stride {:?}",
                view.size, view.stride
            )));
        }
        view.numel()
            .ok_or_else(|| corrupt(format!("shape {:?} overflows", view.size)))?;
        if !view.size.contains(&0) && view.span().is_none_or(|(_, last)| last >= storage_numel) {
            return Err(corrupt(format!(
                "view (offset {}, size {:?}, stride {:?}) reaches past its storage of {storage_numel} elements",
                view.offset, view.size, view.stride
            )));
        }
        Ok(Self {
            file: file.clone(),
            offset,
            view,
        })
    }

    /// Whether `other` is the same view of the same bytes of the same file.
    pub fn same_place(&self, other: &StoredTensor) -> bool {
        Arc::ptr_eq(&self.file, &other.file)
            && self.offset == other.offset
            && self.view == other.view
    }

    /// Slice `index` of the first dimension, a view inside this one (`index` below its size).
    pub fn slice(&self, index: usize) -> Self {
        Self {
            view: View {
                offset: self.view.offset + index as u64 * self.view.stride[0] as u64,
                size: self.view.size[1..].to_vec(),
                stride: self.view.stride[1..].to_vec(),
            },
            ..self.clone()
        }
    }

    /// The view's shape.
    pub fn shape(&self) -> &[i64] {
        &self.view.size
    }

    /// The tensor, read from the file (only the bytes its view spans) on the CPU, contiguous, in
    /// the stored dtype (float8 upcast to float32).
    pub fn read(&self, dtype: &Dtype, label: &str) -> Result<Tensor> {
        let kind = kind_of(dtype).ok_or_else(|| Error::UnsupportedFormat {
            path: self.file.path.clone(),
            message: format!("{label}: tensors of type {dtype} are not read"),
        })?;
        let element = kind.elt_size_in_bytes() as u64;
        let numel = self.view.numel().unwrap_or(u64::MAX);
        // Checked when the view joined the index: non-empty views have a span.
        let span = (!self.view.size.contains(&0))
            .then(|| self.view.span())
            .flatten();
        let Some((first, last)) = span else {
            return Ok(Tensor::f_empty(
                self.view.size.as_slice(),
                (kind, tch::Device::Cpu),
            )?);
        };
        let span = last - first + 1;
        crate::environment::ensure_host_memory(
            || format!("{label} ({numel} elements of {dtype})"),
            tch::Device::Cpu,
            (span + numel) as f64 * element as f64,
        )?;
        let storage = Tensor::f_empty([span as i64], (kind, tch::Device::Cpu))?;
        // SAFETY: `storage` is a fresh, contiguous CPU tensor of exactly `span · element` > 0
        // bytes (its data pointer is not null) that nothing else references until it is
        // returned.
        let buffer = unsafe {
            std::slice::from_raw_parts_mut(storage.data_ptr() as *mut u8, (span * element) as usize)
        };
        self.file
            .read_exact_at(buffer, self.offset + first * element)?;
        let storage = match dtype {
            // float8 is analysed by upcasting: libtorch's CPU kernels (max, matmul) lack it.
            Dtype::F8E4M3 | Dtype::F8E5M2 => storage.f_to_kind(Kind::Float)?,
            _ => storage,
        };
        let contiguous = View {
            offset: first,
            ..View::contiguous(&self.view.size)
        };
        if span == numel && self.view == contiguous {
            return Ok(storage.f_reshape(self.view.size.as_slice())?);
        }
        Ok(storage
            .f_as_strided(&self.view.size, &self.view.stride, 0)?
            .f_contiguous()?)
    }
}

/// libtorch's kind for a dtype it can hold.
pub fn kind_of(dtype: &Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F64 => Kind::Double,
        Dtype::F32 => Kind::Float,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F8E4M3 => Kind::Float8e4m3fn,
        Dtype::F8E5M2 => Kind::Float8e5m2,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::I16 => Kind::Int16,
        Dtype::I8 => Kind::Int8,
        Dtype::U8 => Kind::Uint8,
        Dtype::Bool => Kind::Bool,
        Dtype::Other { .. } | Dtype::Quantized(_) => return None,
    })
}

/// The dtype of a libtorch kind (tensors handed over in memory).
pub fn dtype_of(kind: Kind) -> Dtype {
    match kind {
        Kind::Double => Dtype::F64,
        Kind::Float => Dtype::F32,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Float8e4m3fn => Dtype::F8E4M3,
        Kind::Float8e5m2 => Dtype::F8E5M2,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Int16 => Dtype::I16,
        Kind::Int8 => Dtype::I8,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::Bool,
        other => Dtype::Other {
            name: format!("{other:?}").to_lowercase(),
            size: Some(other.elt_size_in_bytes()),
        },
    }
}
