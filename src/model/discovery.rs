//! Finding models: the paths given, and directories searched recursively. A checkpoint
//! directory (Hugging Face's layout: an index, shards, `config.json`) is one model, not searched
//! further. Only regular files are listed (a FIFO or a device named `x.pt` would block or never
//! end), and each directory is entered once however many links lead to it.
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::checkpoint_dir::is_checkpoint_dir;
use super::file::directory_entries;
use crate::error::{Error, Result};

/// File extensions taken as model files when a directory is searched.
pub const MODEL_EXTENSIONS: &[&str] = &["pt", "pth", "bin", "ckpt", "safetensors", "tar", "gguf"];

/// An entry of a searched directory that is not taken as a model, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    /// The entry.
    pub path: PathBuf,
    /// Why it is not read.
    pub reason: String,
}

/// What a search found: the models, and every entry of the searched directories passed over.
#[derive(Debug, Default)]
pub struct Found {
    /// Model files and checkpoint directories, sorted, without duplicates.
    pub models: Vec<PathBuf>,
    /// Entries not taken, in the order met.
    pub skipped: Vec<Skipped>,
}

/// Models under `paths`: files as given (they must be regular files), checkpoint directories
/// as one model each, other directories searched recursively for [`MODEL_EXTENSIONS`]; sorted
/// and without duplicates. Finding none
/// is an error that names the paths searched.
pub fn find_models(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    search(paths).map(|found| found.models)
}

/// Like [`find_models`], with the entries of searched directories it passes over (a named
/// pipe, a dangling link, a file of another kind, a second link to a file) and why.
pub fn search(paths: &[PathBuf]) -> Result<Found> {
    let mut found = Found::default();
    let mut visited = HashSet::new();
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        if metadata.is_dir() && is_checkpoint_dir(path) {
            found.models.push(path.clone());
        } else if metadata.is_dir() {
            walk(path, &mut visited, &mut found)?;
        } else if metadata.is_file() {
            found.models.push(path.clone());
        } else {
            return Err(Error::UnsupportedFormat {
                path: path.clone(),
                message: "not a regular file (a pipe, socket or device is never read)".into(),
            });
        }
    }
    found.models.sort();
    found.models.dedup();
    if found.models.is_empty() {
        let searched: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::InvalidInput(format!(
            "no model files (.{}) or checkpoint directories found in {}",
            MODEL_EXTENSIONS.join(" ."),
            searched.join(", ")
        )));
    }
    Ok(found)
}

fn walk(dir: &Path, visited: &mut HashSet<PathBuf>, found: &mut Found) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    // The canonical path identifies a directory whatever link led here: a link to an
    // ancestor is entered once, not until the path length runs out.
    if !visited.insert(std::fs::canonicalize(dir).map_err(io)?) {
        return Ok(());
    }
    for path in directory_entries(dir)? {
        let mut skip = |reason: String| {
            found.skipped.push(Skipped {
                path: path.clone(),
                reason,
            })
        };
        let metadata = match std::fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(err) => {
                skip(format!("cannot be followed ({err})"));
                continue;
            }
        };
        if metadata.is_dir() && is_checkpoint_dir(&path) {
            found.models.push(path);
        } else if metadata.is_dir() {
            if visited.contains(&std::fs::canonicalize(&path).map_err(io)?) {
                skip("a directory already searched (through a link)".into());
            } else {
                walk(&path, visited, found)?;
            }
        } else if !metadata.is_file() {
            skip(format!(
                "{}, never read",
                super::file::describe(metadata.file_type())
            ));
        } else if !has_model_extension(&path) {
            skip(format!(
                "not a model file's extension (.{})",
                MODEL_EXTENSIONS.join(" .")
            ));
        } else if !visited.insert(std::fs::canonicalize(&path).map_err(io)?) {
            skip("a second link to a file already listed".into());
        } else {
            found.models.push(path);
        }
    }
    Ok(())
}

fn has_model_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| MODEL_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_special_files_are_not_followed_twice_or_read() {
        let dir = std::env::temp_dir().join(format!("rmt-torch-discovery-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/m.pt"), b"x").unwrap();
        std::fs::write(dir.join("a/notes.txt"), b"x").unwrap();
        std::os::unix::fs::symlink(&dir, dir.join("a/b/loop")).unwrap();
        std::os::unix::fs::symlink(dir.join("a/b/m.pt"), dir.join("a/same.pt")).unwrap();
        let found = search(std::slice::from_ref(&dir)).unwrap();
        assert_eq!(found.models.len(), 1, "{found:?}");
        let reasons: Vec<String> = found
            .skipped
            .iter()
            .map(|s| {
                format!(
                    "{}: {}",
                    s.path.file_name().unwrap().to_str().unwrap(),
                    s.reason
                )
            })
            .collect();
        assert!(
            reasons.contains(&"loop: a directory already searched (through a link)".into())
                && reasons
                    .iter()
                    .any(|r| r.starts_with("notes.txt: not a model file"))
                && reasons.contains(&"same.pt: a second link to a file already listed".into()),
            "{reasons:?}"
        );
        let fifo = dir.join("pipe.pt");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let found = search(std::slice::from_ref(&dir)).unwrap();
            assert_eq!(found.models.len(), 1);
            assert!(found
                .skipped
                .iter()
                .any(|s| s.path == fifo && s.reason == "a named pipe (FIFO), never read"));
            let err = find_models(&[fifo]).unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
        }
        std::fs::remove_dir_all(dir.join("a")).unwrap();
        let err = find_models(std::slice::from_ref(&dir))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no model files"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
