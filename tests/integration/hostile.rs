//! The hostile-input corpus (`scripts/make_hostile.py`): every broken or malicious file and
//! every absurd option gets its exact outcome — a one-line error naming the file and the cause
//! with exit 2, or a correct result — and none crashes, hangs or exits 0 with a wrong answer.
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fixtures;

/// No case may take longer than this (a hang is a failure, not a slow pass).
const CASE_TIME_LIMIT: Duration = Duration::from_secs(60);

fn corpus() -> (PathBuf, Vec<Value>) {
    let dir = fixtures::root().join("target/hostile");
    let status = Command::new(fixtures::python())
        .arg(fixtures::root().join("scripts/make_hostile.py"))
        .arg(&dir)
        .stdout(Stdio::null())
        .status()
        .expect("run make_hostile.py");
    assert!(status.success(), "make_hostile.py failed");
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    (dir, cases)
}

/// Runs one case; `None` when it met its outcome, else what went wrong.
fn check(dir: &std::path::Path, case: &Value) -> Option<String> {
    let name = case["name"].as_str().unwrap();
    let file = dir.join(name);
    let names_file = case["args"]
        .as_array()
        .unwrap()
        .iter()
        .any(|arg| arg.as_str().unwrap().contains("{file}"));
    let args: Vec<String> = case["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| {
            arg.as_str()
                .unwrap()
                .replace("{file}", file.to_str().unwrap())
        })
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rmt-torch"))
        .args(&args)
        .env("CI", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained while the case runs: a full pipe would stall a case that prints a lot.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > CASE_TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Some(format!("{name}: still running after {CASE_TIME_LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let stdout = String::from_utf8_lossy(&stdout);
    let stderr = String::from_utf8_lossy(&stderr);
    let expected = case["exit"].as_i64().unwrap() as i32;
    let Some(code) = status.code() else {
        return Some(format!("{name}: killed by a signal ({status}): {stderr}"));
    };
    if code != expected {
        return Some(format!(
            "{name}: exit {code}, expected {expected}: {}{}",
            stderr.trim_end(),
            stdout.chars().take(300).collect::<String>()
        ));
    }
    if let Some(wanted) = case["stdout"].as_str() {
        if !stdout.contains(wanted) {
            return Some(format!("{name}: stdout lacks {wanted:?}: {stdout}"));
        }
    }
    if code == 2 && case["args"][0] != "zoo" {
        let line = stderr.trim_end();
        if line.lines().count() != 1 || !line.starts_with("error: ") {
            return Some(format!("{name}: not a one-line error: {stderr}"));
        }
        if names_file && !line.contains(name) {
            return Some(format!("{name}: the error does not name the file: {line}"));
        }
        if let Some(wanted) = case["stderr"].as_str() {
            if !line.contains(wanted) {
                return Some(format!("{name}: the error lacks {wanted:?}: {line}"));
            }
        }
    }
    None
}

#[test]
fn every_hostile_input_gets_its_exact_outcome() {
    let (dir, cases) = corpus();
    assert!(cases.len() >= 150, "{} cases", cases.len());
    let next = Mutex::new(cases.iter());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let Some(case) = next.lock().unwrap().next() else {
                    break;
                };
                if let Some(failure) = check(&dir, case) {
                    failures.lock().unwrap().push(failure);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
