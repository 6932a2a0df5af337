//! `allocate`: each decision against its reference's mapping written in numpy from the published
//! code — AlphaPruning's `ww_sparsity` (Lu et al. 2024), TempBalance's `get_layer_temps` with its
//! first/last-layer and 50-eigenvalue exclusions (the key and value projections here) (Zhou et al. 2023), AlphaLoRA's
//! `exponential_scaling` with its rounding repair — on the α the reference fits (`FITS`) of a
//! tiny Llama's layers, in the model's layer order.
use serde_json::Value;

use crate::estimators::FITS;
use crate::fixtures::{self, run_ok};

/// A 3-block Llama saved by transformers; prints, in module order, each Linear layer's name,
/// block, parameters, eigenvalue count and α by the peak and median rules, then every
/// decision as its reference computes it.
const REFERENCE: &str = r#"
import json, sys
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(3)
model = LlamaForCausalLM(LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=112,
    num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2))
model.save_pretrained(sys.argv[1])
layers = []
for name, m in model.named_modules():
    if isinstance(m, torch.nn.Linear):
        w = m.weight.detach().double().numpy()
        e = esd(w)
        block = int(name.split(".")[2]) if name.startswith("model.layers.") else None
        layers.append({"name": name + ".weight", "block": block, "params": w.size,
                       "evals": len(e), "peak": float(peak(e)), "median": float(median(e))})

def ww_sparsity(metrics, prunables, target, epsilon):
    s1, s2 = 1 - epsilon, 1 + epsilon
    scores, prunables = np.array(metrics), np.array(prunables, dtype=float)
    ratios = (scores - scores.min()) / (scores.max() - scores.min()) * (s2 - s1) + s1
    return ratios * (prunables.sum() * target / (prunables * ratios).sum())

def layer_temps(scores, lr, assign):
    n = len(scores)
    if assign == "linear":
        return np.interp(scores, [min(scores), max(scores)], [0.5 * lr, 1.5 * lr])
    if assign == "sqrt":
        return np.sqrt(scores) / np.sum(np.sqrt(scores)) * n * lr
    if assign == "log2":
        return np.log2(scores) / np.sum(np.log2(scores)) * n * lr
    idx = np.argsort(scores)
    temps = [lr * (0.5 + i / n) for i in range(n)]
    return np.array([v for _, v in sorted(zip(idx, temps), key=lambda p: p[0])])

def exponential_scaling(values, total, exponent):
    scaled = np.power(np.array(values), exponent)
    counts = np.round(scaled / scaled.sum() * total).astype(int)
    while counts.sum() != total:
        if total - counts.sum() > 0:
            counts[np.argmin(scaled - counts)] += 1
        else:
            counts[np.argmax(scaled - counts)] -= 1
    return counts

blocked = [l for l in layers if l["block"] is not None]
peaks = [l["peak"] for l in blocked]
out = {"sparsity": dict(zip([l["name"] for l in blocked],
                            ww_sparsity(peaks, [l["params"] for l in blocked], 0.4, 0.3).tolist()))}
per_block = 7
block_means = [np.mean(peaks[i:i + per_block]) for i in range(0, len(peaks), per_block)]
out["block_wise"] = dict(zip([l["name"] for l in blocked], ww_sparsity(
    [m for m in block_means for _ in range(per_block)], [l["params"] for l in blocked], 0.4, 0.2).tolist()))
tuned = [l for l in layers[1:-1] if l["evals"] >= 50]
for assign in ("linear", "sqrt", "log2", "step"):
    rates = {l["name"]: 0.01 for l in layers}
    rates.update(zip([l["name"] for l in tuned], layer_temps([l["median"] for l in tuned], 0.01, assign).tolist()))
    out["lr_" + assign] = rates
out["lora"] = exponential_scaling(block_means, 40, 2.5).tolist()
out["fixed"] = [l["name"] for l in layers if l not in tuned]
print(json.dumps(out))
"#;

fn decision(args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["-f", "json"]);
    serde_json::from_str(&run_ok(&args)).unwrap()
}

fn assert_values(ours: &Value, theirs: &Value, what: &str) {
    let (ours, theirs) = (ours.as_object().unwrap(), theirs.as_object().unwrap());
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{what}: the layers, in order"
    );
    for (name, value) in theirs {
        let (a, b) = (ours[name].as_f64().unwrap(), value.as_f64().unwrap());
        assert!(
            (a - b).abs() <= 1e-9 * b.abs(),
            "{what} {name}: {a} vs the reference's {b}"
        );
    }
}

#[test]
fn every_decision_equals_its_reference() {
    let dir = fixtures::output_dir("allocate");
    let expected: Value = fixtures::python_json(&format!("{FITS}{REFERENCE}"), &[&dir]);
    let path = dir.to_str().unwrap();

    let sparsity = decision(&["allocate", "sparsity", path, "--target", "0.4"]);
    assert_eq!(sparsity["estimator"], "alpha-peak");
    assert_values(&sparsity["values"], &expected["sparsity"], "sparsity");
    let block_wise = decision(&[
        "allocate",
        "sparsity",
        path,
        "--target",
        "0.4",
        "--epsilon",
        "0.2",
        "--block-wise",
    ]);
    assert_values(
        &block_wise["values"],
        &expected["block_wise"],
        "block-wise sparsity",
    );

    for map in ["linear", "sqrt", "log2", "step"] {
        let rates = decision(&["allocate", "lr", path, "--base", "0.01", "--map", map]);
        assert_eq!(rates["estimator"], "hill-median");
        let theirs = &expected[format!("lr_{map}").as_str()];
        assert_values(&rates["values"], theirs, &format!("{map} learning rates"));
        let fixed: Vec<&str> = rates["shares"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["tuned"] == false)
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            fixed,
            expected["fixed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
                .collect::<Vec<_>>()
        );
    }

    let lora = decision(&["allocate", "lora", path, "--total", "40"]);
    let counts: Vec<u64> = lora["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_f64().unwrap() as u64)
        .collect();
    let theirs: Vec<u64> = serde_json::from_value(expected["lora"].clone()).unwrap();
    assert_eq!(counts, theirs);
    assert_eq!(counts.iter().sum::<u64>(), 40);
}

/// Decisions that cannot be taken say why, naming the option or the model, exit 2.
#[test]
fn impossible_decisions_are_refused() {
    let model = fixtures::shipped_model("digits_cnn_trained.pt");
    let model = model.to_str().unwrap();
    for (args, message) in [
        (
            vec!["allocate", "sparsity", model, "--target", "1.2"],
            "--target",
        ),
        (
            vec!["allocate", "sparsity", model, "--target", "0.95"],
            "lower ε or the target",
        ),
        (vec!["allocate", "lr", model, "--base=-1"], "--base"),
        (vec!["allocate", "lora", model], "no transformer blocks"),
    ] {
        let out = fixtures::run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
