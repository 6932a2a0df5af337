//! TorchScript archives read as data, never run: `data.pkl` pickles the module tree as
//! instances of `__torch__` classes whose attributes hold the parameters (tensor views of the
//! archive's storages, the same records a `torch.save` zip holds), and each class's compiled
//! code declares which attributes are parameters (`__parameters__ = ["weight", "bias", ]`).
//! Every storage's size, offset and stride is checked before a tensor exists. Where a user
//! asks for the model to be run ([`load_module`]: Jacobians, a service's predictions), libtorch
//! loads it only after those checks.
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use tch::{CModule, Device};

use super::archive::Archive;
use super::pickle::{ScriptObject, TensorView, Value};
use crate::error::{torch_message, Error, Result};
use crate::model::NamedTensor;

/// The stack libtorch gets to load an archive: its deserialiser recurses over the pickles and
/// the code, and deeply nested ones overflow an ordinary thread's stack.
const LOAD_STACK_BYTES: usize = 1 << 30;
/// Loading runs the archive's code (`__setstate__` methods): past this, it is given up on.
pub const LOAD_TIME_LIMIT: Duration = Duration::from_secs(120);

/// Loads a TorchScript archive to run it, on `device`, as `torch.jit.load` does (its code runs).
/// First the file must be a TorchScript archive and every tensor record is checked by
/// rmt-torch's own reader (`validate`: no record is read past its end); libtorch then loads it
/// on a thread with a large stack, given up on after [`LOAD_TIME_LIMIT`]. Returns the module and
/// the example inputs' shapes `torch.jit.trace` recorded, when the archive keeps them.
///
/// ```
/// let (module, _) = rmt_torch::model::load_module(
///     "models/digits_mlp_trained.pt".as_ref(),
///     tch::Device::Cpu,
/// )?;
/// let model = rmt_torch::Model::from_module("digits_mlp", &module)?;
/// # Ok::<(), rmt_torch::Error>(())
/// ```
pub fn load_module(path: &Path, device: Device) -> Result<(CModule, Option<Vec<Vec<i64>>>)> {
    let format = crate::model::detect(path)?;
    if format != crate::model::FileFormat::TorchScript {
        return Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            message: format!(
                "not a TorchScript model but a {format}: weights without a forward pass (running a model needs torch.jit.script or torch.jit.trace, then .save)"
            ),
        });
    }
    let traced_inputs = validate(path)?;
    Ok((load_guarded(path, device)?, traced_inputs))
}

/// `CModule::load_on_device` on its own thread with [`LOAD_STACK_BYTES`] of stack, given up on
/// after [`LOAD_TIME_LIMIT`].
fn load_guarded(path: &Path, device: Device) -> Result<CModule> {
    let refused = |message: String| Error::UnsupportedFormat {
        path: path.to_path_buf(),
        message,
    };
    let (sender, receiver) = mpsc::channel();
    let owned = path.to_path_buf();
    std::thread::Builder::new()
        .name("torchscript-load".into())
        .stack_size(LOAD_STACK_BYTES)
        .spawn(move || {
            let _ = sender.send(CModule::load_on_device(&owned, device));
        })
        .map_err(|err| refused(format!("cannot start the loading thread: {err}")))?;
    match receiver.recv_timeout(LOAD_TIME_LIMIT) {
        Ok(Ok(module)) => Ok(module),
        Ok(Err(err)) => Err(refused(format!(
            "not a TorchScript model libtorch can run: {}",
            torch_message(&err.to_string())
        ))),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(refused(format!(
            "libtorch did not finish loading it in {} s (its code may loop, e.g. in __setstate__)",
            LOAD_TIME_LIMIT.as_secs()
        ))),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(refused(
            "libtorch's loader stopped without an answer".into(),
        )),
    }
}

/// How errors name the format.
const FORMAT: &str = "TorchScript archive";

/// Module trees deeper than this are refused (real networks nest a few dozen levels).
const MAX_MODULE_DEPTH: usize = 512;

/// Indexes the parameters (not buffers) of a scripted or traced module, in the order
/// libtorch's `named_parameters` gives them: each module's attributes in slot order,
/// submodules expanded where they stand.
pub fn load(path: &Path) -> Result<Vec<NamedTensor>> {
    let mut archive = Archive::open(path, FORMAT)?;
    let parameters = {
        let unpickled = archive.unpickle("data.pkl")?;
        let Value::ScriptObject(root) = &unpickled.root else {
            return Err(archive.corrupt("data.pkl does not hold a scripted module"));
        };
        let mut declared = Declarations::default();
        let mut found = Vec::new();
        collect(&mut archive, &mut declared, root, "", 0, &mut found)?;
        found
    };
    parameters
        .into_iter()
        .map(|(name, view)| archive.named_tensor("data", &name, &view))
        .collect()
}

/// Checks every tensor record of an archive — the parameters and buffers of `data.pkl` and the
/// tensors of `constants.pkl` — against its storage, as [`load`] does, so that an archive
/// handed to libtorch to be run holds no record that is read past its end. Returns the shapes
/// of the example inputs `torch.jit.trace` recorded for `forward`, when the archive keeps them
/// (`traced_inputs.pkl`, PyTorch ≥ 2.0; only their shapes: torch writes their storages empty).
pub fn validate(path: &Path) -> Result<Option<Vec<Vec<i64>>>> {
    let mut archive = Archive::open(path, FORMAT)?;
    for (record, folder) in [("data.pkl", "data"), ("constants.pkl", "constants")] {
        if !archive.has(record) {
            continue;
        }
        let unpickled = archive.unpickle(record)?;
        let mut views = Vec::new();
        tensors_in(&unpickled.root, &mut views);
        for view in views {
            let label = format!("{record} tensor {}", view.key);
            archive.named_tensor(folder, &label, &view)?;
        }
    }
    if !archive.has("traced_inputs.pkl") {
        return Ok(None);
    }
    let unpickled = archive.unpickle("traced_inputs.pkl")?;
    let Value::Dict(methods) = &unpickled.root else {
        return Ok(None);
    };
    let methods = methods.borrow();
    let Some((_, inputs)) = methods
        .iter()
        .find(|(name, _)| matches!(name, Value::Str(name) if &**name == "forward"))
    else {
        return Ok(None);
    };
    let mut views = Vec::new();
    tensors_in(inputs, &mut views);
    views.reverse();
    Ok(Some(views.into_iter().map(|view| view.size).collect()))
}

/// Every tensor view reachable from `value` (attributes, lists, dicts, tuples), iteratively.
fn tensors_in(value: &Value, out: &mut Vec<TensorView>) {
    let mut pending = vec![value.clone()];
    let mut visits = 0usize;
    while let Some(value) = pending.pop() {
        visits += 1;
        if visits > 10_000_000 {
            return;
        }
        match value {
            Value::Tensor(view) => out.push(view),
            Value::Tuple(items) => pending.extend(items.iter().cloned()),
            Value::List(list) => pending.extend(list.borrow().iter().cloned()),
            Value::Dict(dict) => pending.extend(dict.borrow().iter().map(|(_, v)| v.clone())),
            Value::ScriptObject(object) => pending.extend(object.state.borrow().iter().cloned()),
            _ => {}
        }
    }
}

/// The parameter names each class's code declares, read once per class. `None`: the class
/// declares none, so it is not a module (a TorchScript class held as an attribute).
#[derive(Default)]
struct Declarations(HashMap<String, Option<Vec<String>>>);

impl Declarations {
    fn of(&mut self, archive: &mut Archive, class: &str) -> Result<Option<Vec<String>>> {
        if let Some(known) = self.0.get(class) {
            return Ok(known.clone());
        }
        let (module, name) = class.rsplit_once('.').unwrap_or(("", class));
        let record = format!("code/{}.py", module.replace('.', "/"));
        if !archive.has(&record) {
            return Err(archive.corrupt(format!("{record} (the code of class {class}) is missing")));
        }
        let code = archive.read(&record)?;
        let declared = declared_parameters(&String::from_utf8_lossy(&code), name);
        self.0.insert(class.to_string(), declared.clone());
        Ok(declared)
    }
}

/// The `__parameters__` list of `class Name(…):` in a code file, if it has one.
fn declared_parameters(code: &str, class: &str) -> Option<Vec<String>> {
    let header = format!("class {class}(");
    let mut lines = code.lines().skip_while(|line| !line.starts_with(&header));
    lines.next()?;
    let body = lines.take_while(|line| line.is_empty() || line.starts_with(char::is_whitespace));
    for line in body {
        let Some(list) = line.trim().strip_prefix("__parameters__ = [") else {
            continue;
        };
        let list = list.strip_suffix(']')?;
        return Some(
            list.split(',')
                .map(|item| item.trim().trim_matches('"').to_string())
                .filter(|item| !item.is_empty())
                .collect(),
        );
    }
    None
}

/// The parameters of the module `object` (named under `prefix`) and its submodules, depth
/// first in slot order.
fn collect(
    archive: &mut Archive,
    declared: &mut Declarations,
    object: &ScriptObject,
    prefix: &str,
    depth: usize,
    found: &mut Vec<(String, TensorView)>,
) -> Result<()> {
    if depth > MAX_MODULE_DEPTH {
        return Err(archive.corrupt(format!(
            "modules nested deeper than {MAX_MODULE_DEPTH} levels (at {prefix})"
        )));
    }
    let Some(parameters) = declared.of(archive, &object.class)? else {
        return Ok(());
    };
    let state = object.state.borrow();
    let Some(Value::Dict(attributes)) = &*state else {
        return Err(archive.corrupt(format!(
            "{} at '{prefix}' has no attribute dict",
            object.class
        )));
    };
    for (key, value) in attributes.borrow().iter() {
        let Value::Str(attribute) = key else {
            return Err(archive.corrupt(format!(
                "{} at '{prefix}' has a non-string attribute name",
                object.class
            )));
        };
        let name = format!("{prefix}{attribute}");
        match value {
            Value::Tensor(view) if parameters.iter().any(|p| **p == **attribute) => {
                found.push((name, view.clone()));
            }
            Value::ScriptObject(child) => {
                collect(
                    archive,
                    declared,
                    child,
                    &format!("{name}."),
                    depth + 1,
                    found,
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_declarations_are_read_from_the_class_body() {
        let code = "class Linear(Module):\n  __parameters__ = [\"weight\", \"bias\", ]\n  __buffers__ = []\n  weight : Tensor\nclass Other(Module):\n  __parameters__ = []\n";
        assert_eq!(
            declared_parameters(code, "Linear"),
            Some(vec!["weight".to_string(), "bias".to_string()])
        );
        assert_eq!(declared_parameters(code, "Other"), Some(vec![]));
        assert_eq!(declared_parameters(code, "Missing"), None);
        assert_eq!(
            declared_parameters("class Lin(Module):\n  __parameters__ = [\"w\", ]\n", "Lin"),
            Some(vec!["w".to_string()])
        );
    }
}
