//! A Python pickle reader for the subset `torch.save` writes (protocols 2–5), executing nothing.
//!
//! Globals are recorded by name, never imported or called: `collections.OrderedDict` becomes a
//! dict, `torch._utils._rebuild_tensor_v2` a [`Value::Tensor`] description, and any other
//! `REDUCE`/`NEWOBJ`/`BUILD` on a global becomes an inert [`Value::Object`] that callers refuse
//! with a message naming the class. Instances of TorchScript classes (`__torch__.…`, what
//! `torch.jit.save` pickles a module as) become [`Value::ScriptObject`]s holding their attributes
//! as plain data; their code is never run. Persistent ids (tensor storages) are handed to the
//! caller.
//!
//! Nothing a pickle says is trusted to be small: strings and bytes are shared (`Rc`), so a memo
//! entry fetched a million times costs a million pointers, not a million copies, and containers
//! are freed iteratively ([`Items`]), so a tuple nested 200 000 deep cannot overflow the stack.
use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

/// A value on the unpickler's stack.
#[derive(Debug, Clone)]
pub enum Value {
    /// `None`.
    None,
    /// A bool.
    Bool(bool),
    /// An int that fits in i64.
    Int(i64),
    /// A wider int, as its little-endian two's-complement bytes (legacy checkpoints' magic).
    LargeInt(Vec<u8>),
    /// A float.
    Float(f64),
    /// A str.
    Str(Rc<str>),
    /// bytes or bytearray.
    Bytes(Rc<[u8]>),
    /// A tuple.
    Tuple(Rc<Items>),
    /// A list (shared, since the memo and the stack hold the same object).
    List(Rc<RefCell<Items>>),
    /// A dict or OrderedDict, in insertion order.
    Dict(Rc<RefCell<Pairs>>),
    /// A global `module.name`, not yet called.
    Global(String, String),
    /// A tensor storage named by a persistent id: (storage type, key, numel).
    Storage {
        storage_type: String,
        key: String,
        numel: usize,
    },
    /// A tensor as `_rebuild_tensor_v2` describes it: a view of a storage.
    Tensor(TensorView),
    /// An object of a class that would need Python to rebuild.
    Object(String),
    /// An instance of a TorchScript class, with the attributes its BUILD set.
    ScriptObject(Rc<ScriptObject>),
}

/// An instance of a TorchScript class (`__torch__.torch.nn.modules.linear.Linear`): what
/// `torch.jit.save` pickles a module as. Its state is the dict of its attributes (parameters,
/// buffers, submodules, constants), in the class's slot order.
#[derive(Debug)]
pub struct ScriptObject {
    /// The qualified class name.
    pub class: String,
    /// The attributes, once BUILD has set them.
    pub state: RefCell<Option<Value>>,
}

/// The items of a tuple or list, freed iteratively (see [`dismantle`]).
#[derive(Debug, Clone, Default)]
pub struct Items(pub Vec<Value>);

/// The entries of a dict, freed iteratively (see [`dismantle`]).
#[derive(Debug, Clone, Default)]
pub struct Pairs(pub Vec<(Value, Value)>);

impl Deref for Items {
    type Target = Vec<Value>;
    fn deref(&self) -> &Vec<Value> {
        &self.0
    }
}

impl DerefMut for Items {
    fn deref_mut(&mut self) -> &mut Vec<Value> {
        &mut self.0
    }
}

impl Deref for Pairs {
    type Target = Vec<(Value, Value)>;
    fn deref(&self) -> &Vec<(Value, Value)> {
        &self.0
    }
}

impl Pairs {
    /// Sets `key` to `value`: as in Python, a repeated key replaces the earlier value in place.
    fn insert(&mut self, key: Value, value: Value) {
        match self
            .iter_mut()
            .find(|(existing, _)| same_key(existing, &key))
        {
            Some(entry) => entry.1 = value,
            None => self.push((key, value)),
        }
    }

    /// The pairs `dict(source)` or `OrderedDict(source)` holds: a dict's pairs, or a list or
    /// tuple of `[key, value]` pairs (as Python 2-era `torch.save` wrote an OrderedDict).
    fn from_source(source: &Value) -> Result<Self> {
        let mut pairs = Self::default();
        let items: Vec<Value> = match source {
            Value::Dict(dict) => return Ok(Self(dict.borrow().0.clone())),
            Value::List(list) => list.borrow().0.clone(),
            Value::Tuple(items) => items.0.clone(),
            other => return error(format!("a dict built from a {}", kind_name(other))),
        };
        for item in items {
            let pair: Vec<Value> = match &item {
                Value::List(list) => list.borrow().0.clone(),
                Value::Tuple(items) => items.0.clone(),
                other => return error(format!("a dict built from a {}", kind_name(other))),
            };
            let [key, value] = <[Value; 2]>::try_from(pair).map_err(|pair| {
                PickleError(format!("a dict built from a {}-item pair", pair.len()))
            })?;
            pairs.insert(key, value);
        }
        Ok(pairs)
    }
}

impl DerefMut for Pairs {
    fn deref_mut(&mut self) -> &mut Vec<(Value, Value)> {
        &mut self.0
    }
}

impl Drop for Items {
    fn drop(&mut self) {
        dismantle(std::mem::take(&mut self.0));
    }
}

impl Drop for Pairs {
    fn drop(&mut self) {
        dismantle(
            std::mem::take(&mut self.0)
                .into_iter()
                .flat_map(|(key, value)| [key, value])
                .collect(),
        );
    }
}

/// Frees values with an explicit stack instead of recursion: every container whose last
/// reference this is hands its children to the stack and is dropped empty.
fn dismantle(mut pending: Vec<Value>) {
    while let Some(value) = pending.pop() {
        match value {
            Value::Tuple(items) => {
                if let Ok(mut items) = Rc::try_unwrap(items) {
                    pending.append(&mut items.0);
                }
            }
            Value::List(list) => {
                if let Ok(list) = Rc::try_unwrap(list) {
                    pending.append(&mut list.into_inner().0);
                }
            }
            Value::Dict(dict) => {
                if let Ok(dict) = Rc::try_unwrap(dict) {
                    let mut pairs = dict.into_inner();
                    for (key, value) in pairs.0.drain(..) {
                        pending.push(key);
                        pending.push(value);
                    }
                }
            }
            Value::ScriptObject(object) => {
                if let Ok(object) = Rc::try_unwrap(object) {
                    pending.extend(object.state.into_inner());
                }
            }
            _ => {}
        }
    }
}

/// A strided view of a storage, as torch pickles a tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorView {
    /// The storage type's name (`FloatStorage`, …).
    pub storage_type: String,
    /// The storage's key in the archive.
    pub key: String,
    /// Elements in the storage.
    pub storage_numel: usize,
    /// Offset of the first element, in elements.
    pub offset: usize,
    /// Shape.
    pub size: Vec<i64>,
    /// Strides, in elements.
    pub stride: Vec<i64>,
}

/// Why a pickle could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct PickleError(pub String);

type Result<T> = std::result::Result<T, PickleError>;

fn error<T>(message: impl Into<String>) -> Result<T> {
    Err(PickleError(message.into()))
}

/// An unpickled value. Pickles may hold reference cycles (a list that contains itself), which
/// `Rc` alone would leak: dropping this empties every container the pickle built.
pub struct Unpickled {
    /// The pickle's value.
    pub root: Value,
    containers: Vec<Value>,
}

impl Drop for Unpickled {
    fn drop(&mut self) {
        // Emptying every container breaks the cycles; what they held is freed iteratively.
        let mut held = Vec::new();
        for container in &self.containers {
            match container {
                Value::List(list) => held.append(&mut list.borrow_mut().0),
                Value::Dict(dict) => {
                    for (key, value) in dict.borrow_mut().0.drain(..) {
                        held.push(key);
                        held.push(value);
                    }
                }
                Value::ScriptObject(object) => held.extend(object.state.borrow_mut().take()),
                _ => {}
            }
        }
        held.push(std::mem::replace(&mut self.root, Value::None));
        dismantle(held);
    }
}

/// Reads one pickle from the start of `data`; returns the value and the bytes consumed.
pub fn read(data: &[u8]) -> Result<(Unpickled, usize)> {
    let mut machine = Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Vec::new(),
        containers: Vec::new(),
    };
    let result = machine.run();
    // Owned by an Unpickled whatever the outcome, so that a failed read frees its cycles too.
    let mut unpickled = Unpickled {
        root: Value::None,
        containers: std::mem::take(&mut machine.containers),
    };
    unpickled.root = result?;
    Ok((unpickled, machine.pos))
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: Vec<Option<Value>>,
    containers: Vec<Value>,
}

impl Machine<'_> {
    /// Pushes a new list or dict, remembered so that [`Unpickled`] can break its cycles.
    fn push_container(&mut self, container: Value) {
        self.containers.push(container.clone());
        self.stack.push(container);
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len());
        let Some(end) = end else {
            return error(format!(
                "truncated at byte {} (wanted {n} more bytes)",
                self.pos
            ));
        };
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return error("truncated text argument");
        };
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(text)
    }

    /// A memo index written as a text line (protocol 0's PUT and GET).
    fn line_index(&mut self) -> Result<usize> {
        let text = self.line()?;
        text.trim()
            .parse()
            .map_err(|_| PickleError(format!("bad memo index {text:?}")))
    }

    fn string(&mut self, len: usize) -> Result<Value> {
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Value::Str(text.into())),
            Err(_) => error("a str that is not UTF-8"),
        }
    }

    fn pop(&mut self) -> Result<Value> {
        match self.stack.pop() {
            Some(value) => Ok(value),
            None => error("stack underflow"),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let Some(mark) = self.marks.pop() else {
            return error("no MARK on the stack");
        };
        if mark > self.stack.len() {
            return error("MARK beyond the stack");
        }
        Ok(self.stack.split_off(mark))
    }

    fn top(&mut self) -> Result<&mut Value> {
        match self.stack.last_mut() {
            Some(value) => Ok(value),
            None => error("stack underflow"),
        }
    }

    fn memo_put(&mut self, index: usize) -> Result<()> {
        // Memo indices are small and dense in practice; refuse absurd ones instead of allocating.
        if index > self.data.len() {
            return error(format!("memo index {index} out of range"));
        }
        let value = self.top()?.clone();
        if self.memo.len() <= index {
            self.memo.resize(index + 1, None);
        }
        self.memo[index] = Some(value);
        Ok(())
    }

    fn memo_get(&mut self, index: usize) -> Result<()> {
        match self.memo.get(index).cloned().flatten() {
            Some(value) => {
                self.stack.push(value);
                Ok(())
            }
            None => error(format!("memo index {index} never set")),
        }
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<()> {
        if items.len() % 2 != 0 {
            return error("SETITEMS with an odd number of items");
        }
        match self.top()? {
            Value::Dict(dict) => {
                let mut dict = dict.borrow_mut();
                let mut items = items.into_iter();
                while let (Some(key), Some(value)) = (items.next(), items.next()) {
                    dict.insert(key, value);
                }
                Ok(())
            }
            // Items of an object we will refuse anyway are dropped.
            Value::Object(_) => Ok(()),
            other => error(format!("SETITEM on a {}", kind_name(other))),
        }
    }

    fn append(&mut self, items: Vec<Value>) -> Result<()> {
        match self.top()? {
            Value::List(list) => {
                list.borrow_mut().extend(items);
                Ok(())
            }
            Value::Object(_) => Ok(()),
            other => error(format!("APPEND on a {}", kind_name(other))),
        }
    }

    fn run(&mut self) -> Result<Value> {
        loop {
            let opcode = self.u8()?;
            match opcode {
                0x80 => {
                    let protocol = self.u8()?;
                    if protocol > 5 {
                        return error(format!("pickle protocol {protocol} is newer than 5"));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME length: frames are only a buffering hint
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
                    self.stack.push(Value::Int(v.into()));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v.into()));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes"));
                    self.stack.push(Value::Int(v.into()));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let bytes = self.take(n)?;
                    if n > 8 {
                        let wide = bytes.to_vec();
                        self.stack.push(Value::LargeInt(wide));
                        continue;
                    }
                    let mut buf = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                        [0xff; 8]
                    } else {
                        [0; 8]
                    };
                    buf[..n].copy_from_slice(bytes);
                    self.stack.push(Value::Int(i64::from_le_bytes(buf)));
                }
                b'I' => {
                    let text = self.line()?;
                    let value = match text.as_str() {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        t => Value::Int(
                            t.trim()
                                .parse()
                                .map_err(|_| PickleError(format!("bad INT {t}")))?,
                        ),
                    };
                    self.stack.push(value);
                }
                b'L' => {
                    let text = self.line()?;
                    let t = text.trim_end_matches('L');
                    self.stack.push(Value::Int(
                        t.parse()
                            .map_err(|_| PickleError(format!("bad LONG {t}")))?,
                    ));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"));
                    self.stack.push(Value::Float(v));
                }
                b'F' => {
                    let text = self.line()?;
                    self.stack.push(Value::Float(
                        text.trim()
                            .parse()
                            .map_err(|_| PickleError(format!("bad FLOAT {text}")))?,
                    ));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                0x8d => {
                    let n = usize::try_from(self.u64()?)
                        .map_err(|_| PickleError("string too long".into()))?;
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                b'V' => {
                    let text = self.line()?;
                    self.stack.push(Value::Str(text.into()));
                }
                b'S' => {
                    let text = self.line()?;
                    let unquoted = text.trim().trim_matches(|c| c == '\'' || c == '"');
                    self.stack.push(Value::Str(unquoted.into()));
                }
                // Python 2's str (BINSTRING, SHORT_BINSTRING): text, as torch.load reads it
                // (encoding='utf-8'); bytes when it is not UTF-8.
                b'T' | b'U' => {
                    let n = if opcode == b'T' {
                        self.u32()? as usize
                    } else {
                        self.u8()? as usize
                    };
                    let bytes = self.take(n)?;
                    let value = match std::str::from_utf8(bytes) {
                        Ok(text) => Value::Str(text.into()),
                        Err(_) => Value::Bytes(bytes.into()),
                    };
                    self.stack.push(value);
                }
                b'B' | b'C' => {
                    let n = if opcode == b'B' {
                        self.u32()? as usize
                    } else {
                        self.u8()? as usize
                    };
                    let bytes = self.take(n)?.into();
                    self.stack.push(Value::Bytes(bytes));
                }
                0x8e | 0x96 => {
                    let n = usize::try_from(self.u64()?)
                        .map_err(|_| PickleError("bytes too long".into()))?;
                    let bytes = self.take(n)?.into();
                    self.stack.push(Value::Bytes(bytes));
                }
                b')' => self.stack.push(Value::Tuple(Rc::new(Items::default()))),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(Rc::new(Items(items))));
                }
                0x85..=0x87 => {
                    let n = (opcode - 0x84) as usize;
                    if self.stack.len() < n {
                        return error("stack underflow");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(Rc::new(Items(items))));
                }
                b']' => self.push_container(Value::List(Rc::new(RefCell::new(Items::default())))),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push_container(Value::List(Rc::new(RefCell::new(Items(items)))));
                }
                b'}' => self.push_container(Value::Dict(Rc::new(RefCell::new(Pairs::default())))),
                b'd' => {
                    let items = self.pop_mark()?;
                    self.push_container(Value::Dict(Rc::new(RefCell::new(Pairs::default()))));
                    self.set_items(items)?;
                }
                b'a' => {
                    let item = self.pop()?;
                    self.append(vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.set_items(vec![key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'q' => {
                    let i = self.u8()? as usize;
                    self.memo_put(i)?;
                }
                b'r' => {
                    let i = self.u32()? as usize;
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i = self.memo.len();
                    self.memo_put(i)?;
                }
                b'h' => {
                    let i = self.u8()? as usize;
                    self.memo_get(i)?;
                }
                b'j' => {
                    let i = self.u32()? as usize;
                    self.memo_get(i)?;
                }
                b'p' => {
                    let i = self.line_index()?;
                    self.memo_put(i)?;
                }
                b'g' => {
                    let i = self.line_index()?;
                    self.memo_get(i)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(module, name));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(module), Value::Str(name)) => self
                            .stack
                            .push(Value::Global(module.to_string(), name.to_string())),
                        _ => return error("STACK_GLOBAL without two strings"),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.stack.push(storage_from_persistent_id(&pid)?);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let value = reduce(callable, args)?;
                    if matches!(value, Value::Dict(_)) {
                        self.push_container(value);
                    } else {
                        self.stack.push(value);
                    }
                }
                0x81 => {
                    let _args = self.pop()?;
                    let class = self.pop()?;
                    match &class {
                        Value::Global(module, _) if is_torchscript_module(module) => {
                            let object = Value::ScriptObject(Rc::new(ScriptObject {
                                class: class_name(&class),
                                state: RefCell::new(None),
                            }));
                            self.push_container(object);
                        }
                        _ => self.stack.push(Value::Object(class_name(&class))),
                    }
                }
                b'b' => {
                    let state = self.pop()?;
                    // BUILD sets attributes: kept on a TorchScript object, harmless on dicts
                    // (OrderedDict._metadata), and any other object stays inert.
                    if let Value::ScriptObject(object) = self.top()? {
                        let mut slot = object.state.borrow_mut();
                        if slot.is_some() {
                            return error(format!("{} is built twice", object.class));
                        }
                        *slot = Some(state);
                    }
                }
                b'0' => {
                    self.pop()?;
                }
                b'2' => {
                    let top = self.top()?.clone();
                    self.stack.push(top);
                }
                b'1' => {
                    self.pop_mark()?;
                }
                other => {
                    return error(format!(
                        "unsupported pickle opcode 0x{other:02x} at byte {}",
                        self.pos - 1
                    ));
                }
            }
        }
    }
}

/// Key equality for the key types checkpoints use (str, int, bool, None).
fn same_key(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::None, Value::None) => true,
        _ => false,
    }
}

/// `__torch__` and its submodules: where `torch.jit.save` puts a scripted module's classes.
fn is_torchscript_module(module: &str) -> bool {
    module == "__torch__" || module.starts_with("__torch__.")
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::None => "None",
        Value::Bool(_) => "bool",
        Value::Int(_) | Value::LargeInt(_) => "int",
        Value::Float(_) => "float",
        Value::Str(_) => "str",
        Value::Bytes(_) => "bytes",
        Value::Tuple(_) => "tuple",
        Value::List(_) => "list",
        Value::Dict(_) => "dict",
        Value::Global(..) => "global",
        Value::Storage { .. } => "storage",
        Value::Tensor(_) => "tensor",
        Value::Object(_) | Value::ScriptObject(_) => "object",
    }
}

fn class_name(value: &Value) -> String {
    match value {
        Value::Global(module, name) => format!("{module}.{name}"),
        other => kind_name(other).to_string(),
    }
}

/// `('storage', storage_type, key, location, numel[, view_metadata])` → [`Value::Storage`].
fn storage_from_persistent_id(pid: &Value) -> Result<Value> {
    let Value::Tuple(items) = pid else {
        return error("a persistent id that is not a tuple");
    };
    match items.as_slice() {
        [Value::Str(tag), storage_type, Value::Str(key), _location, Value::Int(numel), ..]
            if &**tag == "storage" && *numel >= 0 =>
        {
            let storage_type = match storage_type {
                Value::Global(_, name) => name.clone(),
                other => return error(format!("storage type is a {}", kind_name(other))),
            };
            Ok(Value::Storage {
                storage_type,
                key: key.to_string(),
                numel: *numel as usize,
            })
        }
        _ => error("an unrecognised persistent id (not a torch storage)"),
    }
}

fn int_list(value: &Value, what: &str) -> Result<Vec<i64>> {
    let Value::Tuple(items) = value else {
        return error(format!("tensor {what} is a {}", kind_name(value)));
    };
    items
        .iter()
        .map(|item| match item {
            Value::Int(v) => Ok(*v),
            other => error(format!("tensor {what} holds a {}", kind_name(other))),
        })
        .collect()
}

/// Calls a global the way `REDUCE` would, for the few torch and Python functions that build
/// plain data; every other call becomes an inert [`Value::Object`].
fn reduce(callable: Value, args: Value) -> Result<Value> {
    let Value::Global(module, name) = &callable else {
        return Ok(Value::Object(class_name(&callable)));
    };
    let args_list: &[Value] = match &args {
        Value::Tuple(items) => items,
        _ => &[],
    };
    match (module.as_str(), name.as_str()) {
        ("collections", "OrderedDict") | ("builtins", "dict") | ("__builtin__", "dict") => {
            let pairs = match args_list.first() {
                Some(source) => Pairs::from_source(source)?,
                None => Pairs::default(),
            };
            Ok(Value::Dict(Rc::new(RefCell::new(pairs))))
        }
        ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
            match args_list {
                [Value::Storage {
                    storage_type,
                    key,
                    numel,
                }, Value::Int(offset), size, stride, ..]
                    if *offset >= 0 =>
                {
                    Ok(Value::Tensor(TensorView {
                        storage_type: storage_type.clone(),
                        key: key.clone(),
                        storage_numel: *numel,
                        offset: *offset as usize,
                        size: int_list(size, "size")?,
                        stride: int_list(stride, "stride")?,
                    }))
                }
                _ => error("_rebuild_tensor_v2 with unexpected arguments"),
            }
        }
        // TorchScript's typed containers: the data is the first argument; the type tag is
        // only a hint for TorchScript's own loader.
        ("torch.jit._pickle", "restore_type_tag")
        | ("torch.jit._pickle", "build_intlist")
        | ("torch.jit._pickle", "build_doublelist")
        | ("torch.jit._pickle", "build_boollist")
        | ("torch.jit._pickle", "build_tensorlist") => match args_list.first() {
            Some(data) => Ok(data.clone()),
            None => error(format!("{module}.{name} without arguments")),
        },
        ("torch._utils", "_rebuild_parameter")
        | ("torch._utils", "_rebuild_parameter_with_state") => match args_list.first() {
            Some(tensor @ Value::Tensor(_)) => Ok(tensor.clone()),
            _ => error("_rebuild_parameter without a tensor"),
        },
        _ => Ok(Value::Object(format!("{module}.{name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_containers() {
        // pickle.dumps({'a': [1, 2.5, None], 'b': (True, 'x')}, protocol=2)
        let data = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00Neh\x01\x88X\x01\x00\x00\x00xq\x03\x86q\x04u.";
        // It reuses memo 1 ('a') as the second key: Python gives {'a': (True, 'x')}.
        let (unpickled, used) = read(data).unwrap();
        let value = unpickled.root.clone();
        assert_eq!(used, data.len());
        let Value::Dict(dict) = value else {
            panic!("not a dict")
        };
        let dict = dict.borrow();
        assert_eq!(dict.len(), 1);
        let Value::Tuple(tuple) = &dict[0].1 else {
            panic!("not a tuple")
        };
        assert!(matches!(tuple[0], Value::Bool(true)));
        assert!(matches!(&tuple[1], Value::Str(s) if &**s == "x"));
        // pickle.dumps([1, 2.5, None], protocol=2)
        let (list, _) = read(b"\x80\x02]q\x00(K\x01G@\x04\x00\x00\x00\x00\x00\x00Ne.").unwrap();
        let Value::List(list) = list.root.clone() else {
            panic!("not a list")
        };
        assert_eq!(list.borrow().len(), 3);
        assert!(matches!(list.borrow()[1], Value::Float(f) if f == 2.5));
    }

    #[test]
    fn refuses_garbage_without_panicking() {
        for data in [
            &b""[..],
            b"\x80\x02",
            b"\x80\x02}q\x00(X\xff\xff\xff\x7f",
            b"\x80\x02\xff",
            b"\x80\x02u.",
            b"\x80\x02h\x05.",
        ] {
            assert!(read(data).is_err(), "{data:?}");
        }
    }

    /// torch.save({'epoch': 1, 'state_dict': nn.Linear(3, 2).state_dict(),
    /// 'lst': [1.5, 'x', None, True]})'s data.pkl.
    const CHECKPOINT_PICKLE: &[u8] = b"\x80\x02\x7d\x71\x00\x28\x58\x05\x00\x00\x00\x65\x70\x6f\x63\x68\x71\x01\x4b\x01\x58\x0a\x00\x00\
          \x00\x73\x74\x61\x74\x65\x5f\x64\x69\x63\x74\x71\x02\x63\x63\x6f\x6c\x6c\x65\x63\x74\x69\x6f\x6e\
          \x73\x0a\x4f\x72\x64\x65\x72\x65\x64\x44\x69\x63\x74\x0a\x71\x03\x29\x52\x71\x04\x28\x58\x06\x00\
          \x00\x00\x77\x65\x69\x67\x68\x74\x71\x05\x63\x74\x6f\x72\x63\x68\x2e\x5f\x75\x74\x69\x6c\x73\x0a\
          \x5f\x72\x65\x62\x75\x69\x6c\x64\x5f\x74\x65\x6e\x73\x6f\x72\x5f\x76\x32\x0a\x71\x06\x28\x28\x58\
          \x07\x00\x00\x00\x73\x74\x6f\x72\x61\x67\x65\x71\x07\x63\x74\x6f\x72\x63\x68\x0a\x46\x6c\x6f\x61\
          \x74\x53\x74\x6f\x72\x61\x67\x65\x0a\x71\x08\x58\x01\x00\x00\x00\x30\x71\x09\x58\x03\x00\x00\x00\
          \x63\x70\x75\x71\x0a\x4b\x06\x74\x71\x0b\x51\x4b\x00\x4b\x02\x4b\x03\x86\x71\x0c\x4b\x03\x4b\x01\
          \x86\x71\x0d\x89\x68\x03\x29\x52\x71\x0e\x74\x71\x0f\x52\x71\x10\x58\x04\x00\x00\x00\x62\x69\x61\
          \x73\x71\x11\x68\x06\x28\x28\x68\x07\x68\x08\x58\x01\x00\x00\x00\x31\x71\x12\x68\x0a\x4b\x02\x74\
          \x71\x13\x51\x4b\x00\x4b\x02\x85\x71\x14\x4b\x01\x85\x71\x15\x89\x68\x03\x29\x52\x71\x16\x74\x71\
          \x17\x52\x71\x18\x75\x7d\x71\x19\x58\x09\x00\x00\x00\x5f\x6d\x65\x74\x61\x64\x61\x74\x61\x71\x1a\
          \x68\x03\x29\x52\x71\x1b\x58\x00\x00\x00\x00\x71\x1c\x7d\x71\x1d\x58\x07\x00\x00\x00\x76\x65\x72\
          \x73\x69\x6f\x6e\x71\x1e\x4b\x01\x73\x73\x73\x62\x58\x03\x00\x00\x00\x6c\x73\x74\x71\x1f\x5d\x71\
          \x20\x28\x47\x3f\xf8\x00\x00\x00\x00\x00\x00\x58\x01\x00\x00\x00\x78\x71\x21\x4e\x88\x65\x75\x2e";

    #[test]
    fn reads_a_torch_checkpoint_pickle() {
        let (unpickled, used) = read(CHECKPOINT_PICKLE).unwrap();
        let value = unpickled.root.clone();
        assert_eq!(used, CHECKPOINT_PICKLE.len());
        let Value::Dict(root) = value else {
            panic!("not a dict")
        };
        let root = root.borrow();
        assert!(matches!(&root[0], (Value::Str(k), Value::Int(1)) if &**k == "epoch"));
        let Value::Dict(state) = &root[1].1 else {
            panic!("no state dict")
        };
        let state = state.borrow();
        let Value::Tensor(weight) = &state[0].1 else {
            panic!("no weight tensor")
        };
        assert_eq!(
            (weight.size.as_slice(), weight.stride.as_slice()),
            (&[2, 3][..], &[3, 1][..])
        );
        assert_eq!(
            (
                weight.storage_type.as_str(),
                weight.key.as_str(),
                weight.storage_numel
            ),
            ("FloatStorage", "0", 6)
        );
    }

    /// Mutation fuzzing with a fixed seed: flipped, dropped and inserted bytes in a real
    /// checkpoint pickle must give values or errors, never a panic or a hang.
    #[test]
    fn mutated_pickles_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut data = CHECKPOINT_PICKLE.to_vec();
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % data.len();
                match next() % 3 {
                    0 => data[at] = next() as u8,
                    1 => {
                        data.remove(at);
                    }
                    _ => data.insert(at, next() as u8),
                }
            }
            let _ = read(&data);
        }
    }

    #[test]
    fn unknown_globals_are_inert_objects() {
        // cos\nsystem\n(S'echo hi'\ntR.  -- os.system('echo hi'), never run
        let data = b"cos\nsystem\n(S'echo hi'\ntR.";
        let (unpickled, _) = read(data).unwrap();
        assert!(matches!(unpickled.root, Value::Object(ref class) if class == "os.system"));
    }

    /// 200 000 nested tuples, `((((…),),),)`: read and freed without recursion (the default
    /// 2 MiB test thread's stack would overflow otherwise), and a list holding itself.
    #[test]
    fn deep_and_cyclic_pickles_are_freed_iteratively() {
        const DEPTH: usize = 200_000;
        let mut data = b"\x80\x02)".to_vec();
        data.extend(std::iter::repeat_n(0x85u8, DEPTH)); // TUPLE1
        data.push(b'.');
        let (unpickled, _) = read(&data).unwrap();
        let mut depth = 0;
        let mut current = unpickled.root.clone();
        while let Value::Tuple(items) = current {
            depth += 1;
            match items.first() {
                Some(inner) => current = inner.clone(),
                None => break,
            }
        }
        assert_eq!(depth, DEPTH + 1);
        drop(unpickled);
        // The same nesting left on the stack of a pickle that then fails.
        let mut failing = b"\x80\x02)".to_vec();
        failing.extend(std::iter::repeat_n(0x85u8, DEPTH));
        failing.push(0xff);
        assert!(read(&failing).is_err());
        // l = []; l.append(l)
        let (cyclic, _) = read(b"\x80\x02]q\x00h\x00a.").unwrap();
        drop(cyclic);
    }

    /// A 1 MiB bytes object memoised once and fetched 100 000 times: shared, not copied (a
    /// copy per fetch would be 100 GB).
    #[test]
    fn memo_fetches_share_instead_of_copying() {
        let mut data = b"\x80\x02(".to_vec();
        data.push(b'B');
        data.extend((1u32 << 20).to_le_bytes());
        data.extend(std::iter::repeat_n(7u8, 1 << 20));
        data.extend(b"q\x00");
        for _ in 0..100_000 {
            data.extend(b"h\x00");
        }
        data.extend(b"l.");
        let (unpickled, _) = read(&data).unwrap();
        let Value::List(list) = &unpickled.root else {
            panic!("not a list")
        };
        let list = list.borrow();
        assert_eq!(list.len(), 100_001);
        let (Value::Bytes(first), Value::Bytes(last)) = (&list[0], &list[100_000]) else {
            panic!("not bytes")
        };
        assert!(Rc::ptr_eq(first, last));
    }

    /// What `torch.jit.save` writes: a `__torch__` class instance whose BUILD state holds its
    /// attributes; another class's instance stays inert.
    #[test]
    fn torchscript_objects_keep_their_attributes() {
        // GLOBAL '__torch__ M', EMPTY_TUPLE, NEWOBJ, {'training': False, 'n': 3}, BUILD
        let data = b"\x80\x02c__torch__\nM\n)\x81}(X\x08\x00\x00\x00training\x89X\x01\x00\x00\x00nK\x03ub.";
        let (unpickled, _) = read(data).unwrap();
        let Value::ScriptObject(object) = &unpickled.root else {
            panic!("not a script object: {:?}", unpickled.root)
        };
        assert_eq!(object.class, "__torch__.M");
        let state = object.state.borrow();
        let Some(Value::Dict(attributes)) = &*state else {
            panic!("no state")
        };
        assert_eq!(attributes.borrow().len(), 2);
        let other = b"\x80\x02cos\nM\n)\x81}b.";
        let (unpickled, _) = read(other).unwrap();
        assert!(matches!(unpickled.root, Value::Object(ref class) if class == "os.M"));
    }
}
