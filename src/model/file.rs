//! Opening the files rmt-torch reads: regular files only (a FIFO would block for ever, a device
//! never end); listing the directories it reads.
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A small JSON file (an index, a `config.json`) of at most `max_bytes`, parsed; errors name
/// the file, calling it a corrupt `format`.
pub fn read_json(path: &Path, max_bytes: u64, format: &'static str) -> Result<serde_json::Value> {
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_path_buf(),
        format,
        message,
    };
    let (file, len) = open_regular(path)?;
    if len > max_bytes {
        return Err(corrupt(format!("{len} bytes is too large for a {format}")));
    }
    serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|err| corrupt(format!("not valid JSON: {err}")))
}

/// Largest `config.json` read (real ones are a few kB).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The `config.json` in `dir`, parsed, when there is one; a malformed one, or one that is not
/// a regular file, is an error naming it.
pub fn config_json(dir: &Path) -> Result<Option<serde_json::Value>> {
    let path = dir.join("config.json");
    if !path.exists() {
        return Ok(None);
    }
    read_json(&path, MAX_CONFIG_BYTES, "config.json").map(Some)
}

/// Opens `path` for reading if it is a regular file (after following symlinks); returns the
/// file and its length.
pub fn open_regular(path: &Path) -> Result<(File, u64)> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let kind = std::fs::metadata(path).map_err(io)?.file_type();
    if !kind.is_file() {
        return Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            message: format!("not a regular file but {}", describe(kind)),
        });
    }
    let file = File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    if !metadata.is_file() {
        return Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            message: format!("not a regular file but {}", describe(metadata.file_type())),
        });
    }
    Ok((file, metadata.len()))
}

/// The paths in directory `dir`, sorted; an unreadable directory or entry is an error naming
/// `dir`.
pub(crate) fn directory_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(io)?;
    entries.sort();
    Ok(entries)
}

pub(crate) fn describe(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_opened() {
        let directory = std::env::temp_dir().join(format!("rmt-file-test-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let fifo = directory.join("model.pt");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        // Opening a FIFO for reading would block until a writer comes: refused before opening.
        let refused = open_regular(&fifo).err().unwrap().to_string();
        assert!(refused.contains("named pipe"), "{refused}");
        let refused = open_regular(&directory).err().unwrap().to_string();
        assert!(refused.contains("a directory"), "{refused}");
        let refused = open_regular(Path::new("/dev/zero"))
            .err()
            .unwrap()
            .to_string();
        assert!(refused.contains("a device"), "{refused}");
        let regular = directory.join("weights.bin");
        std::fs::write(&regular, b"abc").unwrap();
        assert_eq!(open_regular(&regular).unwrap().1, 3);
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
