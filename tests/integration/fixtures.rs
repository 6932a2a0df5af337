//! Test fixtures and helpers: the generated files, numpy's reference values, the binary.
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
        let status = Command::new(&python)
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

/// A shipped model in models/.
pub fn shipped_model(name: &str) -> PathBuf {
    root().join("models").join(name)
}

/// Runs the rmt-torch binary with `args`.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rmt-torch"))
        .args(args)
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

/// A seeded N(0, 1) stream (SplitMix64 + Box-Muller): libtorch's global generator is shared by
/// the tests running in parallel, so it cannot give reproducible samples here.
pub struct Gaussian(pub u64);

impl Gaussian {
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn sample(&mut self) -> f64 {
        let u = self.uniform().max(f64::MIN_POSITIVE);
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * self.uniform()).cos()
    }

    pub fn matrix(&mut self, n: usize, m: usize) -> Vec<f64> {
        (0..n * m).map(|_| self.sample()).collect()
    }
}
