//! Checkpoint directories as Hugging Face writes them: the weights in one file or split over
//! shards (`model-00001-of-00004.safetensors` with `model.safetensors.index.json`, or
//! `pytorch_model-0000X-of-0000N.bin` with `pytorch_model.bin.index.json`), and diffusers-style
//! folders whose components (`unet/`, `text_encoder/`, …) each hold such weights. A directory is
//! one model: its tensors are indexed shard by shard (nothing is read before it is analysed), in
//! the order of the index's weight map.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::file::directory_entries;
use super::NamedTensor;
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
    /// For a LoRA adapter: what its configuration says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapter: Option<super::adapter::AdapterConfig>,
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
    if let Some((layout, map)) = weights_layout(dir)? {
        let tensors = read_layout(&layout, &map)?;
        return Ok((tensors, layout));
    }
    // diffusers: a model_index.json and one folder per component.
    let components: Vec<PathBuf> = directory_entries(dir)?
        .into_iter()
        .filter(|path| path.is_dir())
        .collect();
    let mut tensors = Vec::new();
    let mut layout = DirectoryLayout {
        index: None,
        files: Vec::new(),
        components: Vec::new(),
        adapter: None,
    };
    for component in components {
        let Some((inner, map)) = weights_layout(&component)? else {
            continue;
        };
        let name = component
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for mut tensor in read_layout(&inner, &map)? {
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

/// An index's weight map: (tensor name, shard file) in the index's order.
type WeightMap = Vec<(String, String)>;

/// The weight files of `dir`, if it holds weights directly, and its index's weight map (empty
/// without an index).
fn weights_layout(dir: &Path) -> Result<Option<(DirectoryLayout, WeightMap)>> {
    for index in INDEXES {
        let path = dir.join(index);
        if path.is_file() {
            let map = weight_map(&path)?;
            let mut files: Vec<PathBuf> = Vec::new();
            for (_, shard) in &map {
                let file = dir.join(shard);
                if !files.contains(&file) {
                    files.push(file);
                }
            }
            let layout = DirectoryLayout {
                index: Some(path),
                files,
                components: Vec::new(),
                adapter: None,
            };
            return Ok(Some((layout, map)));
        }
    }
    for single in SINGLE_FILES {
        let path = dir.join(single);
        if path.is_file() {
            let layout = DirectoryLayout {
                index: None,
                files: vec![path],
                components: Vec::new(),
                adapter: None,
            };
            return Ok(Some((layout, Vec::new())));
        }
    }
    // Shards without their index: `model-00001-of-00002.safetensors`, in order.
    let shards: Vec<PathBuf> = directory_entries(dir)?
        .into_iter()
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|name| {
                    name.contains("-of-")
                        && (name.ends_with(".safetensors") || name.ends_with(".bin"))
                })
        })
        .collect();
    let layout = DirectoryLayout {
        index: None,
        files: shards,
        components: Vec::new(),
        adapter: None,
    };
    Ok((!layout.files.is_empty()).then_some((layout, Vec::new())))
}

/// The weight map of the index file `index`.
fn weight_map(index: &Path) -> Result<WeightMap> {
    let corrupt = |message: String| Error::Corrupt {
        path: index.to_path_buf(),
        format: "checkpoint index",
        message,
    };
    let text = super::file::read_json(index, 256 << 20, "checkpoint index")?;
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

/// Every tensor of the layout's files, in the order of the index's weight `map` when there is
/// one; a tensor the index names must be in the shard it names.
fn read_layout(layout: &DirectoryLayout, map: &WeightMap) -> Result<Vec<NamedTensor>> {
    let mut remaining: HashMap<(usize, String), NamedTensor> = HashMap::new();
    let mut shard_order: Vec<(usize, String)> = Vec::new();
    for (position, file) in layout.files.iter().enumerate() {
        if !file.is_file() {
            return Err(Error::Corrupt {
                path: file.parent().unwrap_or(file).to_path_buf(),
                format: "checkpoint directory",
                message: format!("shard {} is missing", file.display()),
            });
        }
        let (_, tensors, _) = super::read_file(file, None)?;
        for tensor in tensors {
            shard_order.push((position, tensor.name.clone()));
            remaining.insert((position, tensor.name.clone()), tensor);
        }
    }
    let mut ordered = Vec::with_capacity(remaining.len());
    if let Some(index) = &layout.index {
        let directory = index.parent().unwrap_or(index);
        for (name, shard) in map {
            let file = directory.join(shard);
            let position = layout.files.iter().position(|f| *f == file);
            let tensor = position
                .and_then(|position| remaining.remove(&(position, name.clone())))
                .ok_or_else(|| Error::Corrupt {
                    path: index.clone(),
                    format: "checkpoint index",
                    message: format!("it maps '{name}' to {shard}, which does not hold it"),
                })?;
            ordered.push(tensor);
        }
    }
    // Without an index, and tensors a shard holds beyond the index (rare): in shard order.
    for key in shard_order {
        if let Some(tensor) = remaining.remove(&key) {
            ordered.push(tensor);
        }
    }
    Ok(ordered)
}
