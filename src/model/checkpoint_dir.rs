//! Checkpoint directories as Hugging Face writes them: the weights in one file or split over
//! shards (`model-00001-of-00004.safetensors` with `model.safetensors.index.json`, or
//! `pytorch_model-0000X-of-0000N.bin` with `pytorch_model.bin.index.json`), and diffusers-style
//! folders whose components (`unet/`, `text_encoder/`, …) each hold such weights. A directory is
//! one model: its tensors are indexed shard by shard (nothing is read before it is analysed), in
//! the order of the index's weight map.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{FileFormat, NamedTensor};
use crate::error::{Error, Result};

/// The index files that map tensor names to shards, in the order they are looked for.
const INDEXES: [&str; 2] = [
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
];
/// Single-file weights, in the order they are looked for.
const SINGLE_FILES: [&str; 3] = [
    "model.safetensors",
    "pytorch_model.bin",
    "diffusion_pytorch_model.safetensors",
];

/// What a checkpoint directory holds, as `info` reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DirectoryLayout {
    /// The index file read, if any.
    pub index: Option<PathBuf>,
    /// The weight files read, in order.
    pub files: Vec<PathBuf>,
    /// Component subfolders (diffusers), whose tensor names carry the folder as a prefix.
    pub components: Vec<String>,
}

/// Whether `dir` is a checkpoint directory (rather than a folder of separate models): it holds
/// a `config.json`, a `model_index.json`, an index, or one of the standard weight files.
pub fn is_checkpoint_dir(dir: &Path) -> bool {
    ["config.json", "model_index.json"]
        .iter()
        .chain(&INDEXES)
        .chain(&SINGLE_FILES)
        .any(|name| dir.join(name).is_file())
}

/// Indexes every tensor of the checkpoint directory `dir`.
pub fn load(dir: &Path) -> Result<(Vec<NamedTensor>, DirectoryLayout)> {
    if let Some(layout) = weights_layout(dir)? {
        let tensors = read_layout(dir, &layout)?;
        return Ok((tensors, layout));
    }
    // diffusers: a model_index.json and one folder per component.
    let mut components: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir())
        .collect();
    components.sort();
    let mut tensors = Vec::new();
    let mut layout = DirectoryLayout {
        index: None,
        files: Vec::new(),
        components: Vec::new(),
    };
    for component in components {
        let Some(inner) = weights_layout(&component)? else {
            continue;
        };
        let name = component
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for mut tensor in read_layout(&component, &inner)? {
            tensor.name = format!("{name}.{}", tensor.name);
            tensors.push(tensor);
        }
        layout.files.extend(inner.files);
        layout.components.push(name);
    }
    if layout.files.is_empty() {
        return Err(Error::UnsupportedFormat {
            path: dir.to_path_buf(),
            message: format!(
                "a directory without model weights (looked for {}, {} and component folders holding them)",
                INDEXES.join(", "),
                SINGLE_FILES.join(", ")
            ),
        });
    }
    Ok((tensors, layout))
}

/// The weight files of `dir` and its index, if it holds weights directly.
fn weights_layout(dir: &Path) -> Result<Option<DirectoryLayout>> {
    for index in INDEXES {
        let path = dir.join(index);
        if path.is_file() {
            let files = index_shards(&path)?
                .into_iter()
                .map(|shard| dir.join(shard))
                .collect();
            return Ok(Some(DirectoryLayout {
                index: Some(path),
                files,
                components: Vec::new(),
            }));
        }
    }
    for single in SINGLE_FILES {
        let path = dir.join(single);
        if path.is_file() {
            return Ok(Some(DirectoryLayout {
                index: None,
                files: vec![path],
                components: Vec::new(),
            }));
        }
    }
    // Shards without their index: `model-00001-of-00002.safetensors`, in order.
    let mut shards: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|name| {
                    name.contains("-of-")
                        && (name.ends_with(".safetensors") || name.ends_with(".bin"))
                })
        })
        .collect();
    shards.sort();
    Ok((!shards.is_empty()).then_some(DirectoryLayout {
        index: None,
        files: shards,
        components: Vec::new(),
    }))
}

/// The shard files an index names, in the order they first appear in its weight map.
fn index_shards(index: &Path) -> Result<Vec<String>> {
    let map = weight_map(index)?;
    let mut shards: Vec<String> = Vec::new();
    for (_, shard) in &map {
        if !shards.contains(shard) {
            shards.push(shard.clone());
        }
    }
    Ok(shards)
}

/// An index's weight map: (tensor name, shard file) in the index's order.
fn weight_map(index: &Path) -> Result<Vec<(String, String)>> {
    let corrupt = |message: String| Error::Corrupt {
        path: index.to_path_buf(),
        format: "checkpoint index",
        message,
    };
    let (file, len) = super::file::open_regular(index)?;
    if len > 256 << 20 {
        return Err(corrupt(format!("{len} bytes is too large for an index")));
    }
    let text: serde_json::Value = serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|err| corrupt(format!("not valid JSON: {err}")))?;
    let map = text
        .get("weight_map")
        .and_then(|map| map.as_object())
        .ok_or_else(|| corrupt("no weight_map object".into()))?;
    map.iter()
        .map(|(tensor, shard)| {
            let shard = shard
                .as_str()
                .filter(|shard| is_plain_file_name(shard))
                .ok_or_else(|| {
                    corrupt(format!(
                        "'{tensor}' maps to {shard}, not a file name in the directory"
                    ))
                })?;
            Ok((tensor.clone(), shard.to_string()))
        })
        .collect()
}

/// A file name inside the directory: no path separators, no `..`.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && !name.contains('\\') && name != ".." && name != "."
}

/// Every tensor of the layout's files, in the index's order when there is one.
fn read_layout(dir: &Path, layout: &DirectoryLayout) -> Result<Vec<NamedTensor>> {
    let mut by_file: Vec<Vec<NamedTensor>> = Vec::new();
    for file in &layout.files {
        if !file.is_file() {
            return Err(Error::Corrupt {
                path: dir.to_path_buf(),
                format: "checkpoint directory",
                message: format!("shard {} is missing", file.display()),
            });
        }
        let format = super::detect(file)?;
        let tensors = match format {
            FileFormat::SafeTensors => super::safetensors::load(file)?,
            FileFormat::TorchSaveZip => super::torch_save::load_zip(file, None)?.tensors,
            FileFormat::TorchSaveLegacy => super::torch_save::load_legacy(file, None)?.tensors,
            other => {
                return Err(Error::UnsupportedFormat {
                    path: file.clone(),
                    message: format!("a {other} cannot be a checkpoint shard"),
                })
            }
        };
        by_file.push(tensors);
    }
    let Some(index) = &layout.index else {
        return Ok(by_file.into_iter().flatten().collect());
    };
    // The index's order; a tensor the index names must be in the shard it names.
    let mut remaining: HashMap<(usize, String), NamedTensor> = HashMap::new();
    let mut shard_order: Vec<(usize, String)> = Vec::new();
    for (position, tensors) in by_file.into_iter().enumerate() {
        for tensor in tensors {
            shard_order.push((position, tensor.name.clone()));
            remaining.insert((position, tensor.name.clone()), tensor);
        }
    }
    let mut ordered = Vec::with_capacity(remaining.len());
    for (name, shard) in weight_map(index)? {
        let position = layout
            .files
            .iter()
            .position(|file| {
                file.file_name()
                    .is_some_and(|n| n.to_string_lossy() == shard)
            })
            .expect("every shard of the weight map is in the layout");
        let tensor = remaining
            .remove(&(position, name.clone()))
            .ok_or_else(|| Error::Corrupt {
                path: index.clone(),
                format: "checkpoint index",
                message: format!("it maps '{name}' to {shard}, which does not hold it"),
            })?;
        ordered.push(tensor);
    }
    // Tensors a shard holds beyond the index (rare): after, in shard order.
    for key in shard_order {
        if let Some(tensor) = remaining.remove(&key) {
            ordered.push(tensor);
        }
    }
    Ok(ordered)
}
