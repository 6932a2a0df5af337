//! One model's layers over several machines: `analyze --shard I/N` for N ∈ {1, 2, 3, 7}, merged
//! by `analyze merge`, equals the single run's JSON field by field (timing aside), shuffled
//! spectra and a layer skipped for being zero included; an incomplete or mixed set is refused.
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::fixtures::{self, run, run_ok};

/// A model of eleven matrices of different costs, one of them all zeros.
const MAKE: &str = r#"
import sys, torch
from safetensors.torch import save_file
torch.manual_seed(0)
shapes = [(96, 64), (64, 64), (200, 40), (40, 120), (128, 128), (64, 32), (32, 300), (80, 80), (50, 70), (90, 30), (256, 16)]
tensors = {f"layers.{i}.weight": torch.randn(*s) for i, s in enumerate(shapes)}
tensors["layers.5.weight"] = torch.zeros(64, 32)
save_file(tensors, sys.argv[1])
print("{}")
"#;

fn analysed(args: &[&str], out: &Path) -> Value {
    let mut all = args.to_vec();
    all.extend(["-f", "json", "-o", out.to_str().unwrap()]);
    run_ok(&all);
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

fn without_timing(mut value: Value) -> Value {
    value.as_object_mut().unwrap().remove("timing");
    value
}

#[test]
fn shares_merge_into_exactly_the_single_run() {
    let dir = fixtures::output_dir("shards");
    let model = dir.join("eleven.safetensors");
    let _: Value = fixtures::python_json(MAKE, &[&model]);
    let model_text = model.to_str().unwrap();
    let options = ["--randomize", "--eigenvalues"];
    let mut single_args = vec!["analyze", model_text];
    single_args.extend(options);
    let single = analysed(&single_args, &dir.join("single.json"));
    assert_eq!(single["layers"].as_array().unwrap().len(), 10);
    assert!(single["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == "layers.5.weight"));
    for count in [1, 2, 3, 7] {
        let parts: Vec<PathBuf> = (0..count)
            .map(|index| {
                let share = format!("{index}/{count}");
                let path = dir.join(format!("share-{index}-of-{count}.json"));
                let mut args = vec!["analyze", model_text, "--shard", &share];
                args.extend(options);
                let part = analysed(&args, &path);
                assert_eq!(part["share"]["shard"], share.as_str());
                path
            })
            .collect();
        let sizes: Vec<usize> = parts
            .iter()
            .map(|p| {
                let part: Value =
                    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
                part["layers"].as_array().unwrap().len()
            })
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), 10, "{sizes:?}");
        let mut merge = vec!["analyze", "merge"];
        let texts: Vec<&str> = parts.iter().map(|p| p.to_str().unwrap()).collect();
        merge.extend(texts.iter().rev());
        let merged = analysed(&merge, &dir.join(format!("merged-{count}.json")));
        let (a, b) = (without_timing(merged), without_timing(single.clone()));
        let differences = fixtures::json_differences(&a, &b, &|_| Some(0.0));
        assert_eq!(a, b, "{count} shares");
        assert!(differences.is_empty(), "{count} shares: {differences:?}");
    }
    // Incomplete, repeated, mixed and whole sets are refused, naming what is wrong.
    let part = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let refused = |args: &[&str], expected: &str| {
        let output = run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    };
    let (a, b) = (part("share-0-of-3.json"), part("share-1-of-3.json"));
    refused(&["analyze", "merge", &a, &b], "2/3 missing");
    refused(
        &["analyze", "merge", &a, &a, &b],
        "share 0/3 is given twice",
    );
    refused(
        &["analyze", "merge", &a, &part("share-1-of-2.json")],
        "split the model differently",
    );
    refused(
        &["analyze", "merge", &part("single.json")],
        "covers the whole model",
    );
    let other = dir.join("other.json");
    analysed(
        &[
            "analyze",
            fixtures::shipped_model("digits_cnn_trained.pt")
                .to_str()
                .unwrap(),
            "--shard",
            "1/3",
        ],
        &other,
    );
    refused(
        &[
            "analyze",
            "merge",
            &a,
            other.to_str().unwrap(),
            &part("share-2-of-3.json"),
        ],
        "different models or settings",
    );
}

/// The split balances estimated cost, not counts: with two shares of the 22-block-like mix,
/// neither share's cost exceeds 0.6 of the whole when no layer alone does.
#[test]
fn shares_balance_the_eigensolve_cost() {
    let dir = fixtures::output_dir("shards-balance");
    let model = dir.join("eleven.safetensors");
    let _: Value = fixtures::python_json(MAKE, &[&model]);
    let cost = |layer: &Value| {
        let (n, m, rf) = (
            layer["N"].as_f64().unwrap(),
            layer["M"].as_f64().unwrap(),
            layer["rf"].as_f64().unwrap(),
        );
        rf * m * m * (n + m)
    };
    let share_cost = |index: usize| -> f64 {
        let share = format!("{index}/2");
        let part = analysed(
            &["analyze", model.to_str().unwrap(), "--shard", &share],
            &dir.join(format!("{index}.json")),
        );
        part["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(cost)
            .sum::<f64>()
    };
    let (a, b) = (share_cost(0), share_cost(1));
    assert!(a.max(b) <= 0.6 * (a + b), "{a} vs {b}");
}
