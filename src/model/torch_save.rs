//! Python `torch.save` checkpoints in pure Rust: the zip archive (PyTorch ≥ 1.6) and the legacy
//! format, state dicts and nested checkpoints, every real dtype. No Python code ever runs: the
//! pickle is read by [`super::pickle`], which only describes what it would have built.
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use tch::{Kind, Tensor};

use super::pickle::{self, TensorView, Value};
use super::{CheckpointEntry, EntryValue, NamedTensor};
use crate::error::{Error, Result};

/// Keys under which checkpoints commonly keep the model's weights, tried in this order.
const STATE_DICT_KEYS: [&str; 5] = ["state_dict", "model_state_dict", "model", "module", "net"];

/// The legacy format's magic number 0x1950a86a20f9469cfc6c, as pickle's little-endian bytes.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// A checkpoint's tensors, and its other entries described (epochs, optimiser state, …).
pub struct Checkpoint {
    /// The weights, with dotted names.
    pub tensors: Vec<NamedTensor>,
    /// Entries that are not weights.
    pub other_entries: Vec<CheckpointEntry>,
}

/// Reads a zip-format checkpoint.
pub fn load_zip(path: &Path, key: Option<&str>) -> Result<Checkpoint> {
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_path_buf(),
        format: "torch.save checkpoint",
        message,
    };
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut archive = zip::ZipArchive::new(file).map_err(|err| corrupt(err.to_string()))?;
    let pickle_name = archive
        .file_names()
        .find(|name| name.ends_with("data.pkl"))
        .map(str::to_string)
        .ok_or_else(|| corrupt("no data.pkl in the archive".into()))?;
    let prefix = pickle_name.trim_end_matches("data.pkl").to_string();
    let pickle_bytes = {
        let mut entry = archive
            .by_name(&pickle_name)
            .map_err(|err| corrupt(format!("data.pkl: {err}")))?;
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|err| corrupt(format!("data.pkl: {err}")))?;
        bytes
    };
    let (unpickled, _) =
        pickle::read(&pickle_bytes).map_err(|err| corrupt(format!("data.pkl: {}", err.0)))?;
    let root = &unpickled.root;
    build(path, root, key, |view| {
        let (kind, len) = storage_layout(path, view)?;
        let name = format!("{prefix}data/{}", view.key);
        let mut entry = archive
            .by_name(&name)
            .map_err(|err| corrupt(format!("{name}: {err}")))?;
        if entry.size() != len as u64 {
            return Err(corrupt(format!(
                "storage {} holds {} bytes, not {} elements of {}",
                view.key,
                entry.size(),
                view.storage_numel,
                view.storage_type
            )));
        }
        // Straight from the archive into the tensor's memory: one copy of each storage.
        let tensor = Tensor::f_empty([view.storage_numel as i64], (kind, tch::Device::Cpu))?;
        // SAFETY: `tensor` is a fresh, contiguous CPU tensor of exactly `len` bytes that nothing
        // else references until this function returns it.
        let buffer = unsafe { std::slice::from_raw_parts_mut(tensor.data_ptr() as *mut u8, len) };
        entry
            .read_exact(buffer)
            .map_err(|err| corrupt(format!("{name}: {err}")))?;
        Ok(tensor)
    })
}

/// Reads a legacy (pre-1.6) checkpoint: magic number, protocol, system info, the object, the
/// storage keys, then each storage as an 8-byte element count and its raw bytes.
pub fn load_legacy(path: &Path, key: Option<&str>) -> Result<Checkpoint> {
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_path_buf(),
        format: "legacy torch.save checkpoint",
        message,
    };
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut pos = 0;
    let mut next_pickle = |what: &str| -> Result<pickle::Unpickled> {
        let (unpickled, used) =
            pickle::read(&bytes[pos..]).map_err(|err| corrupt(format!("{what}: {}", err.0)))?;
        pos += used;
        Ok(unpickled)
    };
    match &next_pickle("magic number")?.root {
        Value::LargeInt(bytes) if bytes[..] == LEGACY_MAGIC => {}
        _ => return Err(corrupt("not a torch.save file (wrong magic number)".into())),
    }
    next_pickle("protocol version")?;
    next_pickle("system info")?;
    let object = next_pickle("object")?;
    let root = &object.root;
    let keys_pickle = next_pickle("storage keys")?;
    let keys = match &keys_pickle.root {
        Value::List(list) => list
            .borrow()
            .iter()
            .map(|key| match key {
                Value::Str(key) => Ok(key.clone()),
                _ => Err(corrupt("a storage key that is not a string".into())),
            })
            .collect::<Result<Vec<_>>>()?,
        _ => return Err(corrupt("storage keys are not a list".into())),
    };
    let element_sizes = storage_element_sizes(root);
    let mut storages = HashMap::new();
    for key in keys {
        let Some(&element_size) = element_sizes.get(&key) else {
            return Err(corrupt(format!("storage {key} is used by no tensor")));
        };
        let count = bytes
            .get(pos..pos + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
            .ok_or_else(|| corrupt(format!("truncated before storage {key}")))?;
        let start = pos + 8;
        let end = count
            .checked_mul(element_size)
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| corrupt(format!("storage {key} runs past the end of the file")))?;
        storages.insert(key, &bytes[start..end]);
        pos = end;
    }
    build(path, root, key, |view| {
        let (kind, len) = storage_layout(path, view)?;
        let bytes = storages
            .get(&view.key)
            .ok_or_else(|| corrupt(format!("storage {} is missing", view.key)))?;
        if bytes.len() != len {
            return Err(corrupt(format!(
                "storage {} holds {} bytes, not {} elements of {}",
                view.key,
                bytes.len(),
                view.storage_numel,
                view.storage_type
            )));
        }
        Ok(Tensor::f_from_data_size(
            bytes,
            &[view.storage_numel as i64],
            kind,
        )?)
    })
}

/// The element size of every storage the object's tensors use, by key.
fn storage_element_sizes(root: &Value) -> HashMap<String, usize> {
    walk(root)
        .into_iter()
        .filter_map(|(_, value)| match value {
            Value::Tensor(view) => {
                storage_kind(&view.storage_type).map(|kind| (view.key, kind.elt_size_in_bytes()))
            }
            _ => None,
        })
        .collect()
}

/// libtorch's kind for a pickled storage type.
fn storage_kind(storage_type: &str) -> Option<Kind> {
    Some(match storage_type {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

/// Finds the weights in the unpickled object and materialises them from their storages.
fn build(
    path: &Path,
    root: &Value,
    key: Option<&str>,
    mut read_storage: impl FnMut(&TensorView) -> Result<Tensor>,
) -> Result<Checkpoint> {
    if let Value::Object(class) = root {
        return Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            message: format!(
                "this checkpoint is a pickled {class} object, which only Python can rebuild, by running code \
                 the pickle names; rmt-torch never runs pickled code. If it is a whole model \
                 (torch.save(model)), re-save its weights: torch.save(model.state_dict(), path), or as \
                 TorchScript: torch.jit.script(model).save(path)"
            ),
        });
    }
    let (weights, prefix) = match key {
        Some(key) => (
            entry_at(path, root, key)?,
            key.split('.').next().map(str::to_string),
        ),
        None => weights_root(root),
    };
    let entries = walk(&weights);
    let mut tensors = Vec::new();
    let mut other_entries = Vec::new();
    let mut storages: HashMap<String, Tensor> = HashMap::new();
    for (name, value) in entries {
        match value {
            Value::Tensor(view) => {
                let storage = match storages.get(&view.key) {
                    Some(storage) => storage,
                    None => {
                        let tensor = read_storage(&view)?;
                        storages.entry(view.key.clone()).or_insert(tensor)
                    }
                };
                let tensor = tensor_view(path, &name, storage, &view)?;
                tensors.push(NamedTensor { name, tensor });
            }
            other => other_entries.push(CheckpointEntry {
                name,
                value: entry_value(&other),
            }),
        }
    }
    if let Some(prefix) = prefix {
        // Report what sits beside the weights too (epochs, optimiser state, …).
        if let Value::Dict(dict) = root {
            for (key, value) in dict.borrow().iter() {
                let key = key_text(key);
                if key != prefix {
                    other_entries.push(CheckpointEntry {
                        name: key,
                        value: entry_value(value),
                    });
                }
            }
        }
    }
    Ok(Checkpoint {
        tensors,
        other_entries,
    })
}

/// The entry at a dotted path (`a.b.c`; list items by index) of a checkpoint.
fn entry_at(path: &Path, root: &Value, key: &str) -> Result<Value> {
    let mut current = root.clone();
    for segment in key.split('.') {
        let next = match &current {
            Value::Dict(dict) => dict
                .borrow()
                .iter()
                .find(|(k, _)| key_text(k) == segment)
                .map(|(_, v)| v.clone()),
            Value::List(list) => segment
                .parse::<usize>()
                .ok()
                .and_then(|i| list.borrow().get(i).cloned()),
            Value::Tuple(items) => segment
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i).cloned()),
            _ => None,
        };
        current = next.ok_or_else(|| {
            let available = match &current {
                Value::Dict(dict) => dict
                    .borrow()
                    .iter()
                    .map(|(k, _)| key_text(k))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => format!("a {} has no entries", entry_value(other)),
            };
            Error::InvalidOption(format!(
                "--key {key}: no entry '{segment}' in {} (available: {available})",
                path.display()
            ))
        })?;
    }
    Ok(current)
}

/// The state dict inside a nested checkpoint (`{"state_dict": …}` and the like) with its key,
/// or the root itself.
fn weights_root(root: &Value) -> (Value, Option<String>) {
    if let Value::Dict(dict) = root {
        for wanted in STATE_DICT_KEYS {
            let found = dict
                .borrow()
                .iter()
                .find(|(k, _)| key_text(k) == wanted)
                .map(|(_, v)| v.clone());
            if let Some(inner @ Value::Dict(_)) = found {
                return (inner, Some(wanted.to_string()));
            }
        }
    }
    (root.clone(), None)
}

fn key_text(key: &Value) -> String {
    match key {
        Value::Str(text) => text.clone(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::None => "None".into(),
        other => entry_value(other).to_string(),
    }
}

/// Nesting deeper than this is not walked: real checkpoints nest a few levels, hostile ones
/// could nest until the stack overflows.
const MAX_DEPTH: usize = 64;
/// At most this many values are visited: shared sub-structures could otherwise make a small
/// pickle describe exponentially many paths.
const MAX_VISITS: usize = 1_000_000;

/// Every leaf under `value` with its dotted name; dicts, lists and tuples are walked.
fn walk(value: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut budget = MAX_VISITS;
    flatten(value, None, 0, &mut budget, &mut out);
    out
}

fn flatten(
    value: &Value,
    name: Option<String>,
    depth: usize,
    budget: &mut usize,
    out: &mut Vec<(String, Value)>,
) {
    let name_or_root =
        |name: Option<String>| name.unwrap_or_else(|| super::ROOT_TENSOR_NAME.to_string());
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    if depth > MAX_DEPTH || *budget == 0 {
        let why = format!("nested deeper than {MAX_DEPTH} levels or over {MAX_VISITS} values");
        out.push((name_or_root(name), Value::Object(why)));
        return;
    }
    let child = |key: String| match &name {
        Some(prefix) => format!("{prefix}.{key}"),
        None => key,
    };
    match value {
        Value::Dict(dict) => {
            for (key, item) in dict.borrow().iter() {
                flatten(item, Some(child(key_text(key))), depth + 1, budget, out);
            }
        }
        Value::List(list) => {
            for (i, item) in list.borrow().iter().enumerate() {
                flatten(item, Some(child(i.to_string())), depth + 1, budget, out);
            }
        }
        Value::Tuple(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(item, Some(child(i.to_string())), depth + 1, budget, out);
            }
        }
        leaf => out.push((name_or_root(name), leaf.clone())),
    }
}

fn entry_value(value: &Value) -> EntryValue {
    match value {
        Value::None => EntryValue::None,
        Value::Bool(b) => EntryValue::Bool(*b),
        Value::Int(i) => EntryValue::Int(*i),
        Value::LargeInt(_) => EntryValue::WideInt,
        Value::Float(f) => EntryValue::Float(*f),
        Value::Str(s) => EntryValue::Str(s.clone()),
        Value::Bytes(b) => EntryValue::Bytes(b.len()),
        Value::Tuple(items) => EntryValue::Tuple(items.len()),
        Value::List(list) => EntryValue::List(list.borrow().len()),
        Value::Dict(dict) => EntryValue::Dict(dict.borrow().len()),
        Value::Global(module, name) => EntryValue::Reference(format!("{module}.{name}")),
        Value::Storage { storage_type, .. } => EntryValue::Storage(storage_type.clone()),
        Value::Tensor(view) => EntryValue::Tensor(view.size.clone()),
        Value::Object(class) => EntryValue::Object(class.clone()),
    }
}

/// A storage's element kind and its size in bytes.
fn storage_layout(path: &Path, view: &TensorView) -> Result<(Kind, usize)> {
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_path_buf(),
        format: "torch.save checkpoint",
        message,
    };
    let kind = storage_kind(&view.storage_type).ok_or_else(|| {
        corrupt(format!(
            "storage {} has unsupported type {}",
            view.key, view.storage_type
        ))
    })?;
    let len = view
        .storage_numel
        .checked_mul(kind.elt_size_in_bytes())
        .ok_or_else(|| corrupt(format!("storage {} is impossibly large", view.key)))?;
    Ok((kind, len))
}

/// The tensor a view describes, copied out of its storage (contiguous).
fn tensor_view(path: &Path, label: &str, storage: &Tensor, view: &TensorView) -> Result<Tensor> {
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_path_buf(),
        format: "torch.save checkpoint",
        message,
    };
    if view.size.len() != view.stride.len() || view.size.iter().chain(&view.stride).any(|&d| d < 0)
    {
        return Err(corrupt(format!(
            "{label}: bad size {:?} / stride {:?}",
            view.size, view.stride
        )));
    }
    let empty = view.size.contains(&0);
    let last = view
        .size
        .iter()
        .zip(&view.stride)
        .try_fold(view.offset as i64, |acc, (&n, &s)| {
            (n.max(1) - 1)
                .checked_mul(s)
                .and_then(|step| acc.checked_add(step))
        });
    if !empty && last.is_none_or(|last| last as usize >= view.storage_numel) {
        return Err(corrupt(format!(
            "{label}: view (offset {}, size {:?}, stride {:?}) reaches past its {} elements",
            view.offset, view.size, view.stride, view.storage_numel
        )));
    }
    Ok(storage
        .f_as_strided(&view.size, &view.stride, view.offset as i64)?
        .f_contiguous()?)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    #[test]
    fn walking_is_bounded_for_cycles_and_shared_structures() {
        // l = [l]: a cycle, cut at the depth limit.
        let cycle = Rc::new(RefCell::new(Vec::new()));
        cycle.borrow_mut().push(Value::List(cycle.clone()));
        let leaves = walk(&Value::List(cycle.clone()));
        assert_eq!(leaves.len(), 1);
        cycle.borrow_mut().clear();
        // lₖ = [lₖ₊₁, lₖ₊₁] over 60 levels: 2⁶⁰ paths, cut by the visit budget.
        let mut level = Value::Int(0);
        for _ in 0..60 {
            level = Value::List(Rc::new(RefCell::new(vec![level.clone(), level])));
        }
        let start = std::time::Instant::now();
        let leaves = walk(&level);
        assert!(leaves.len() <= MAX_VISITS);
        assert!(matches!(leaves.last(), Some((_, Value::Object(why))) if why.contains("over")));
        assert!(start.elapsed().as_secs() < 10);
    }
}
