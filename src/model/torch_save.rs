//! Python `torch.save` checkpoints in pure Rust: the zip archive (PyTorch ≥ 1.6) and the legacy
//! format, state dicts and nested checkpoints, every real dtype. No Python code ever runs: the
//! pickle is read by [`super::pickle`], which only describes what it would have built.
use std::collections::HashMap;
use std::path::Path;

use super::archive::{pickled_tensor, Archive};
use super::pickle::{self, TensorView, Value};
use super::{CheckpointEntry, Dtype, EntryValue, NamedTensor, SharedFile};
use crate::error::{Error, Result};

/// How errors name a zip checkpoint …
const FORMAT: &str = "torch.save checkpoint";
/// … and a legacy one.
const LEGACY_FORMAT: &str = "legacy torch.save checkpoint";

/// Keys under which checkpoints commonly keep the model's weights, tried in this order.
const STATE_DICT_KEYS: [&str; 6] = [
    "state_dict",
    "model_state_dict",
    "model_state",
    "model",
    "module",
    "net",
];

/// The legacy format's magic number 0x1950a86a20f9469cfc6c, as pickle's little-endian bytes.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// A checkpoint's tensors, and its other entries described (epochs, optimiser state, …).
pub struct Checkpoint {
    /// The weights, with dotted names.
    pub tensors: Vec<NamedTensor>,
    /// Entries that are not weights.
    pub other_entries: Vec<CheckpointEntry>,
}

/// Reads a zip-format checkpoint's index.
pub fn load_zip(path: &Path, key: Option<&str>) -> Result<Checkpoint> {
    let mut archive = Archive::open(path, FORMAT)?;
    let unpickled = archive.unpickle("data.pkl")?;
    build(path, &unpickled.root, key, |name, view| {
        archive.named_tensor("data", name, view)
    })
}

/// The legacy format's pickles come first and are small: they are parsed from a prefix of the
/// file this long, and from the whole file only if they do not fit in it.
const LEGACY_PICKLES_PREFIX: u64 = 64 << 20;

/// Reads a legacy (pre-1.6) checkpoint's index: magic number, protocol, system info, the
/// object, the storage keys, then each storage as an 8-byte element count and its raw bytes.
pub fn load_legacy(path: &Path, key: Option<&str>) -> Result<Checkpoint> {
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_path_buf(),
        format: LEGACY_FORMAT,
        message,
    };
    let file = SharedFile::open(path)?;
    let prefix = file.read_range(0, file.len().min(LEGACY_PICKLES_PREFIX))?;
    let pickles = match legacy_pickles(&prefix) {
        Err(_) if (prefix.len() as u64) < file.len() => {
            legacy_pickles(&file.read_range(0, file.len())?)
        }
        parsed => parsed,
    }
    .map_err(corrupt)?;
    let LegacyPickles {
        object,
        keys,
        end: mut pos,
    } = pickles;
    let root = &object.root;
    let element_sizes = storage_element_sizes(root);
    let mut storages = HashMap::new();
    for key in keys {
        let Some(&element_size) = element_sizes.get(&key) else {
            return Err(corrupt(format!("storage {key} is used by no tensor")));
        };
        let count_bytes = file
            .read_range(pos, 8)
            .map_err(|_| corrupt(format!("truncated before storage {key}")))?;
        let count = u64::from_le_bytes(count_bytes.try_into().expect("8 bytes"));
        let start = pos + 8;
        let end = count
            .checked_mul(element_size)
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= file.len())
            .ok_or_else(|| corrupt(format!("storage {key} runs past the end of the file")))?;
        storages.insert(key, (start, count));
        pos = end;
    }
    build(path, root, key, |name, view| {
        let &(start, count) = storages
            .get(&view.key)
            .ok_or_else(|| corrupt(format!("storage {} is missing", view.key)))?;
        if count != view.storage_numel as u64 {
            return Err(corrupt(format!(
                "storage {} holds {count} elements, not the {} its tensors claim",
                view.key, view.storage_numel
            )));
        }
        pickled_tensor(&file, LEGACY_FORMAT, name, view, (start, count))
    })
}

/// What a legacy checkpoint's pickles hold, and the byte where its storages begin.
struct LegacyPickles {
    object: pickle::Unpickled,
    keys: Vec<String>,
    end: u64,
}

fn legacy_pickles(bytes: &[u8]) -> std::result::Result<LegacyPickles, String> {
    let mut pos = 0;
    let mut next_pickle = |what: &str| -> std::result::Result<pickle::Unpickled, String> {
        let (unpickled, used) =
            pickle::read(&bytes[pos..]).map_err(|err| format!("{what}: {}", err.0))?;
        pos += used;
        Ok(unpickled)
    };
    match &next_pickle("magic number")?.root {
        Value::LargeInt(bytes) if bytes[..] == LEGACY_MAGIC => {}
        _ => return Err("not a torch.save file (wrong magic number)".into()),
    }
    next_pickle("protocol version")?;
    next_pickle("system info")?;
    let object = next_pickle("object")?;
    let keys_pickle = next_pickle("storage keys")?;
    let keys = match &keys_pickle.root {
        Value::List(list) => list
            .borrow()
            .iter()
            .map(|key| match key {
                Value::Str(key) => Ok(key.to_string()),
                _ => Err("a storage key that is not a string".to_string()),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?,
        _ => return Err("storage keys are not a list".into()),
    };
    Ok(LegacyPickles {
        object,
        keys,
        end: pos as u64,
    })
}

/// The element size of every storage the object's tensors use, by key.
fn storage_element_sizes(root: &Value) -> HashMap<String, u64> {
    walk(root)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(_, value)| match value {
            Value::Tensor(view) => Dtype::of_storage(&view.storage_type)
                .size()
                .map(|size| (view.key, size as u64)),
            _ => None,
        })
        .collect()
}

/// Finds the weights in the unpickled object and indexes each with `tensor(name, view)`.
fn build(
    path: &Path,
    root: &Value,
    key: Option<&str>,
    mut tensor: impl FnMut(&str, &TensorView) -> Result<NamedTensor>,
) -> Result<Checkpoint> {
    let class = match root {
        Value::Object(class) => Some(class.as_str()),
        Value::ScriptObject(object) => Some(object.class.as_str()),
        _ => None,
    };
    if let Some(class) = class {
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
    let entries = walk(&weights).map_err(|message| Error::Corrupt {
        path: path.to_path_buf(),
        format: "torch.save checkpoint",
        message,
    })?;
    let mut tensors = Vec::new();
    let mut other_entries = Vec::new();
    for (name, value) in entries {
        match value {
            Value::Tensor(view) => tensors.push(tensor(&name, &view)?),
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
        Value::Str(text) => shortened(text),
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

/// A str of the pickle is kept (as a name or an entry's value) to this many bytes: one string
/// memoised once can be referenced from thousands of places.
const MAX_TEXT_BYTES: usize = 1024;
/// The names of the leaves may take this many bytes in all: a few levels of long keys over
/// many shared sub-structures would otherwise spell out gigabytes of names.
const MAX_NAME_BYTES: usize = 64 << 20;

/// `text`, cut to [`MAX_TEXT_BYTES`] (at a character boundary) with its length said.
fn shortened(text: &str) -> String {
    if text.len() <= MAX_TEXT_BYTES {
        return text.to_string();
    }
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// What walking may still spend: values visited and bytes of names.
struct Budget {
    visits: usize,
    name_bytes: usize,
}

/// Every leaf under `value` with its dotted name; dicts, lists and tuples are walked. Refused
/// when the names would take more than [`MAX_NAME_BYTES`].
fn walk(value: &Value) -> std::result::Result<Vec<(String, Value)>, String> {
    let mut out = Vec::new();
    let mut budget = Budget {
        visits: MAX_VISITS,
        name_bytes: MAX_NAME_BYTES,
    };
    flatten(value, None, 0, &mut budget, &mut out);
    if budget.name_bytes == 0 {
        return Err(format!(
            "its entries' names would take more than {} MiB (a pickle whose memo references \
             repeat long keys)",
            MAX_NAME_BYTES >> 20
        ));
    }
    Ok(out)
}

fn flatten(
    value: &Value,
    name: Option<String>,
    depth: usize,
    budget: &mut Budget,
    out: &mut Vec<(String, Value)>,
) {
    let name_or_root =
        |name: Option<String>| name.unwrap_or_else(|| super::ROOT_TENSOR_NAME.to_string());
    let name_bytes = name.as_ref().map_or(0, String::len);
    if budget.visits == 0 || budget.name_bytes == 0 {
        return;
    }
    if name_bytes >= budget.name_bytes {
        budget.name_bytes = 0;
        return;
    }
    budget.name_bytes -= name_bytes;
    budget.visits -= 1;
    if depth > MAX_DEPTH || budget.visits == 0 {
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
        Value::Str(s) => EntryValue::Str(shortened(s)),
        Value::Bytes(b) => EntryValue::Bytes(b.len()),
        Value::Tuple(items) => EntryValue::Tuple(items.len()),
        Value::List(list) => EntryValue::List(list.borrow().len()),
        Value::Dict(dict) => EntryValue::Dict(dict.borrow().len()),
        Value::Global(module, name) => EntryValue::Reference(format!("{module}.{name}")),
        Value::Storage { storage_type, .. } => EntryValue::Storage(storage_type.clone()),
        Value::Tensor(view) => EntryValue::Tensor(view.size.clone()),
        Value::Object(class) => EntryValue::Object(class.clone()),
        Value::ScriptObject(object) => EntryValue::Object(object.class.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    #[test]
    fn walking_is_bounded_for_cycles_and_shared_structures() {
        // l = [l]: a cycle, cut at the depth limit.
        let cycle = Rc::new(RefCell::new(pickle::Items::default()));
        cycle.borrow_mut().push(Value::List(cycle.clone()));
        let leaves = walk(&Value::List(cycle.clone())).unwrap();
        assert_eq!(leaves.len(), 1);
        cycle.borrow_mut().clear();
        // lₖ = [lₖ₊₁, lₖ₊₁] over k levels: 2ᵏ paths, cut by the visit budget (20 levels of
        // short names) or refused for the bytes of their names (60 levels).
        let shared = |levels: usize| {
            let mut level = Value::Int(0);
            for _ in 0..levels {
                level = Value::List(Rc::new(RefCell::new(pickle::Items(vec![
                    level.clone(),
                    level,
                ]))));
            }
            level
        };
        let start = std::time::Instant::now();
        let leaves = walk(&shared(20)).unwrap();
        assert!(leaves.len() <= MAX_VISITS);
        assert!(matches!(leaves.last(), Some((_, Value::Object(why))) if why.contains("over")));
        assert!(walk(&shared(60)).unwrap_err().contains("more than 64 MiB"));
        assert!(start.elapsed().as_secs() < 10);
    }
}
