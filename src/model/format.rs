//! Recognising a model file by its content, never by its extension.
use std::fmt;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// The container formats rmt-torch recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// A TorchScript archive (`torch.jit.script(m).save`, `torch.jit.trace(m, x).save`).
    TorchScript,
    /// A safetensors file: 8-byte header length, JSON header, raw little-endian data.
    SafeTensors,
    /// A Python `torch.save` zip archive (PyTorch ≥ 1.6): `data.pkl` and raw storages.
    TorchSaveZip,
    /// A Python `torch.save` file in the legacy (pre-1.6) pickle format.
    TorchSaveLegacy,
    /// A GGUF file (llama.cpp): metadata, tensor records, float or block-quantised data.
    Gguf,
    /// A checkpoint directory: weights in one file or over shards, with or without an index
    /// (Hugging Face's layout), or diffusers-style component folders.
    CheckpointDirectory,
    /// A LoRA adapter directory (`adapter_config.json` and `adapter_model.safetensors` or
    /// `.bin`): its low-rank updates.
    LoraAdapter,
    /// Tensors handed over in memory (a training loop's variables), not read from a file.
    InMemory,
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TorchScript => "TorchScript archive",
            Self::SafeTensors => "safetensors file",
            Self::TorchSaveZip => "torch.save checkpoint (zip)",
            Self::TorchSaveLegacy => "torch.save checkpoint (legacy pickle)",
            Self::Gguf => "GGUF file",
            Self::CheckpointDirectory => "checkpoint directory",
            Self::LoraAdapter => "LoRA adapter directory",
            Self::InMemory => "tensors in memory",
        })
    }
}

/// What [`detect`] says of a file in none of the formats.
pub(crate) const UNRECOGNISED: &str = "not a model file rmt-torch reads (expected a TorchScript archive, a safetensors file, a torch.save checkpoint or a GGUF file)";

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const PICKLE_PROTO: u8 = 0x80;

/// Detects a file's format from its first bytes and, for zip archives, its entry names.
pub fn detect(path: &Path) -> Result<FileFormat> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let (mut file, file_len) = super::file::open_regular(path)?;
    let mut head = [0u8; 16];
    let read = read_up_to(&mut file, &mut head).map_err(io_error)?;
    let head = &head[..read];
    let unsupported = |message: String| Error::UnsupportedFormat {
        path: path.to_path_buf(),
        message,
    };

    if head.is_empty() {
        return Err(unsupported("the file is empty".into()));
    }
    if head.starts_with(super::gguf::MAGIC) {
        return Ok(FileFormat::Gguf);
    }
    if head.starts_with(ZIP_MAGIC) {
        return detect_zip(path, file);
    }
    if head[0] == PICKLE_PROTO && head.len() >= 2 && (2..=5).contains(&head[1]) {
        return Ok(FileFormat::TorchSaveLegacy);
    }
    if head.len() >= 9 && head[8] == b'{' {
        let header_len = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        if header_len.saturating_add(8) > file_len {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                format: "safetensors file",
                message: format!(
                    "header claims {header_len} bytes but the file has only {file_len}"
                ),
            });
        }
        return Ok(FileFormat::SafeTensors);
    }
    Err(unsupported(UNRECOGNISED.into()))
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// TorchScript archives carry compiled code (`code/`, `constants.pkl`); `torch.save` archives
/// carry only `data.pkl` and the storages.
fn detect_zip(path: &Path, file: std::fs::File) -> Result<FileFormat> {
    let archive = zip::ZipArchive::new(file).map_err(|err| Error::Corrupt {
        path: path.to_path_buf(),
        format: "zip archive",
        message: err.to_string(),
    })?;
    let mut has_code = false;
    let mut has_data_pkl = false;
    for name in archive.file_names() {
        let entry = name.split_once('/').map_or(name, |(_, rest)| rest);
        has_code |= entry == "constants.pkl" || entry.starts_with("code/");
        has_data_pkl |= entry == "data.pkl";
    }
    match (has_code, has_data_pkl) {
        (true, _) => Ok(FileFormat::TorchScript),
        (false, true) => Ok(FileFormat::TorchSaveZip),
        (false, false) => Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            message: "a zip archive with neither TorchScript code nor a torch.save data.pkl".into(),
        }),
    }
}
