//! The zip container that `torch.save` (PyTorch ≥ 1.6) and `torch.jit.save` both write:
//! `<name>/data.pkl` (the pickled object, tensors as persistent ids naming storages),
//! `<name>/data/<key>` (each storage's raw little-endian bytes) and, for TorchScript,
//! `<name>/code/` and `constants.pkl`. Every record is read against what the file can hold —
//! a header's claim is never allocated — and every tensor view is checked against its storage
//! before it joins the model's index.
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use zip::{CompressionMethod, ZipArchive};

use super::pickle::{self, TensorView, Unpickled};
use super::{Dtype, NamedTensor, SharedFile, StoredTensor, View};
use crate::error::{Error, Result};

/// Deflate expands at most about 1032-fold: a record declaring more than that over its
/// compressed size lies about its size.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// An open archive and the folder its records live in.
pub struct Archive {
    file: Arc<SharedFile>,
    format: &'static str,
    zip: ZipArchive<File>,
    prefix: String,
}

impl Archive {
    /// Opens the archive at `path`; `format` names it in errors.
    pub fn open(path: &Path, format: &'static str) -> Result<Self> {
        let file = SharedFile::open(path)?;
        let corrupt = |message: String| Error::Corrupt {
            path: path.to_path_buf(),
            format,
            message,
        };
        let zip = ZipArchive::new(file.handle()?).map_err(|err| corrupt(err.to_string()))?;
        let prefix = zip
            .file_names()
            .filter(|name| name.ends_with("data.pkl"))
            .map(|name| name.trim_end_matches("data.pkl"))
            .filter(|prefix| prefix.is_empty() || prefix.matches('/').count() == 1)
            .min_by_key(|prefix| prefix.len())
            .map(str::to_string)
            .ok_or_else(|| corrupt("no data.pkl in the archive".into()))?;
        Ok(Self {
            file,
            format,
            zip,
            prefix,
        })
    }

    /// An error naming the file and its format.
    pub fn corrupt(&self, message: impl Into<String>) -> Error {
        Error::Corrupt {
            path: self.file.path().to_path_buf(),
            format: self.format,
            message: message.into(),
        }
    }

    /// Whether the archive holds `record` (relative to its folder).
    pub fn has(&self, record: &str) -> bool {
        self.zip
            .index_for_name(&format!("{}{record}", self.prefix))
            .is_some()
    }

    /// The bytes of `record`, whose declared size must be one its stored bytes can hold.
    pub fn read(&mut self, record: &str) -> Result<Vec<u8>> {
        let name = format!("{}{record}", self.prefix);
        let mut entry = self.zip.by_name(&name).map_err(|err| Error::Corrupt {
            path: self.file.path().to_path_buf(),
            format: self.format,
            message: format!("{record}: {err}"),
        })?;
        let declared = entry.size();
        let capacity = capacity(&entry, self.file.len()).ok_or_else(|| Error::Corrupt {
            path: self.file.path().to_path_buf(),
            format: self.format,
            message: format!(
                "{record} declares {declared} bytes, more than its {} stored bytes can hold",
                entry.compressed_size()
            ),
        })?;
        let mut bytes = Vec::with_capacity(capacity);
        let read = (&mut entry)
            .take(declared)
            .read_to_end(&mut bytes)
            .map_err(|err| Error::Corrupt {
                path: self.file.path().to_path_buf(),
                format: self.format,
                message: format!("{record}: {err}"),
            })?;
        drop(entry);
        if read as u64 != declared {
            return Err(self.corrupt(format!(
                "{record} holds {read} bytes, not the {declared} it declares"
            )));
        }
        Ok(bytes)
    }

    /// The pickle in `record`.
    pub fn unpickle(&mut self, record: &str) -> Result<Unpickled> {
        let bytes = self.read(record)?;
        let (unpickled, _) =
            pickle::read(&bytes).map_err(|err| self.corrupt(format!("{record}: {}", err.0)))?;
        Ok(unpickled)
    }

    /// The tensor `view` describes, named `name`, its storage in the record `folder/<key>`:
    /// indexed where it lies in the file (a stored record) after every size, offset and stride
    /// has been checked, or read now when the record is compressed.
    pub fn named_tensor(
        &mut self,
        folder: &str,
        name: &str,
        view: &TensorView,
    ) -> Result<NamedTensor> {
        let dtype = Dtype::of_storage(&view.storage_type);
        if dtype.size().is_none() {
            return Ok(NamedTensor::listed(name, dtype, view.size.clone()));
        }
        let record = format!("{folder}/{}", view.key);
        let located = self.locate(&record, &dtype, view)?;
        pickled_tensor(&self.file, self.format, name, view, located)
    }

    /// Where the storage record's bytes lie in the file: (byte offset, element count), after
    /// checking its size against the element count the pickle claims.
    fn locate(&mut self, record: &str, dtype: &Dtype, view: &TensorView) -> Result<(u64, u64)> {
        let name = format!("{}{record}", self.prefix);
        let index = self
            .zip
            .index_for_name(&name)
            .ok_or_else(|| self.corrupt(format!("{record} is missing")))?;
        let entry = self.zip.by_index_raw(index).map_err(|err| Error::Corrupt {
            path: self.file.path().to_path_buf(),
            format: self.format,
            message: format!("{record}: {err}"),
        })?;
        let (size, compression, data_start) =
            (entry.size(), entry.compression(), entry.data_start());
        drop(entry);
        let expected = dtype
            .size()
            .and_then(|element| (view.storage_numel as u64).checked_mul(element as u64));
        if expected != Some(size) {
            return Err(self.corrupt(format!(
                "storage {} holds {size} bytes, not {} elements of {}",
                view.key, view.storage_numel, view.storage_type
            )));
        }
        if compression != CompressionMethod::Stored {
            return Err(self.corrupt(format!(
                "storage {} is compressed ({compression}); torch.save and torch.jit.save store \
                 storages uncompressed, so the archive was rewritten: re-save it with torch",
                view.key
            )));
        }
        Ok((data_start, view.storage_numel as u64))
    }
}

/// The tensor a pickled view describes, over a storage at `location` (byte offset, element
/// count) of `file`, indexed once its view has been checked against the storage.
pub fn pickled_tensor(
    file: &Arc<SharedFile>,
    format: &'static str,
    name: &str,
    view: &TensorView,
    location: (u64, u64),
) -> Result<NamedTensor> {
    let dtype = Dtype::of_storage(&view.storage_type);
    let stored = StoredTensor::new(
        file,
        format,
        name,
        &dtype,
        location,
        View {
            offset: view.offset as u64,
            size: view.size.clone(),
            stride: view.stride.clone(),
        },
    )?;
    Ok(NamedTensor::stored(name, dtype, stored))
}

/// The bytes to reserve for an entry: its declared size when its stored bytes (within the
/// file) can hold it, `None` when the declaration is impossible.
fn capacity(entry: &zip::read::ZipFile<'_, File>, file_len: u64) -> Option<usize> {
    let (declared, stored) = (entry.size(), entry.compressed_size());
    let possible = match entry.compression() {
        CompressionMethod::Stored => stored,
        _ => stored.saturating_mul(MAX_DEFLATE_RATIO),
    };
    (stored <= file_len && declared <= possible)
        .then(|| usize::try_from(declared).ok())
        .flatten()
}
