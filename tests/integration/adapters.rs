//! LoRA adapters made by `peft` itself on tiny random transformers: the updates' spectra from
//! their factors against numpy's SVD of PEFT's own merged update, `--base` against the model
//! PEFT merges (`merge_and_unload`, in f64), `compare` over an adapter, and adapters that lie.
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

use crate::fixtures::{self, floats, run, run_ok};

/// Makes, under argv[1]: `llama/` (a 2-block Llama, f32) and `gpt2/` (a 1-block GPT-2, whose
/// Conv1D weights are stored [in, out]); adapters `lora4` (r = 4, q/v and the embedding,
/// `modules_to_save` the head), `rslora16` (r = 16 rsLoRA on every projection, down_proj at
/// rank 8 and alpha 4 by pattern), `dora` (DoRA on q/v), `gpt2_lora` (fan_in_fan_out) and
/// `dora_embedding` (DoRA on the embedding); and beside each adapter its merged model `<adapter>_merged.safetensors`, by PEFT in f64. Prints
/// per adapter the ESD (σ², ascending) of each update, merged minus base, by numpy.
const MAKE: &str = r#"
import copy, json, os, sys, numpy, torch
from transformers import LlamaConfig, LlamaForCausalLM, GPT2Config, GPT2LMHeadModel
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
root = sys.argv[1]
torch.manual_seed(0)
models = {
    "llama": LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)),
    "gpt2": GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=32, n_layer=1, n_head=2, n_positions=16)),
}
for name, model in models.items():
    model.save_pretrained(os.path.join(root, name))
adapters = {
    "lora4": ("llama", LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "embed_tokens"],
        modules_to_save=["lm_head"], init_lora_weights=False)),
    "rslora16": ("llama", LoraConfig(r=16, lora_alpha=32, use_rslora=True, init_lora_weights=False,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        rank_pattern={"down_proj": 8}, alpha_pattern={"down_proj": 4})),
    "dora": ("llama", LoraConfig(r=4, lora_alpha=4, use_dora=True, target_modules=["q_proj", "v_proj"],
        init_lora_weights=False)),
    "gpt2_lora": ("gpt2", LoraConfig(r=4, lora_alpha=16, target_modules=["c_attn"], fan_in_fan_out=True,
        init_lora_weights=False)),
    "dora_embedding": ("llama", LoraConfig(r=4, lora_alpha=4, use_dora=True, target_modules=["embed_tokens"],
        init_lora_weights=False)),
}
out = {}
for adapter, (base_name, config) in adapters.items():
    base = models[base_name]
    torch.manual_seed(1)
    peft_model = get_peft_model(copy.deepcopy(base).eval(), config)
    for module_name, module in peft_model.named_modules():
        for factor in ("lora_B", "lora_embedding_B"):
            if hasattr(module, factor) and "default" in getattr(module, factor):
                weights = getattr(module, factor)["default"]
                with torch.no_grad():
                    (weights.weight if hasattr(weights, "weight") else weights).normal_()
    directory = os.path.join(root, adapter)
    peft_model.save_pretrained(directory)
    base64 = type(base)(base.config)
    base64.load_state_dict(base.state_dict())
    base64 = base64.double()
    merged = PeftModel.from_pretrained(base64, directory).merge_and_unload()
    state = {k: v.contiguous() for k, v in merged.state_dict().items()}
    base_state = {k: v.double() for k, v in base.state_dict().items()}
    if base_name == "gpt2":
        state.pop("lm_head.weight", None)
    save_file(state, os.path.join(root, adapter + "_merged.safetensors"))
    updates = {}
    for key, value in state.items():
        if value.ndim != 2 or key not in base_state:
            continue
        delta = (value - base_state[key]).numpy()
        if numpy.abs(delta).max() == 0:
            continue
        updates[key] = sorted((numpy.linalg.svd(delta, compute_uv=False) ** 2).tolist())
    out[adapter] = updates
print(json.dumps(out))
"#;

/// The fixtures, made once per run: the directory and numpy's update ESDs per adapter.
fn made() -> &'static (PathBuf, Value) {
    static MADE: OnceLock<(PathBuf, Value)> = OnceLock::new();
    MADE.get_or_init(|| {
        let dir = fixtures::output_dir("adapters");
        let reference = fixtures::python_json(MAKE, &[&dir]);
        (dir, reference)
    })
}

fn path(name: &str) -> PathBuf {
    made().0.join(name)
}

fn layers(json: &str) -> Vec<Value> {
    let value: Value = serde_json::from_str(json).unwrap();
    value["layers"].as_array().unwrap().clone()
}

/// A layer's name as the base model has it: PEFT's `base_model.model.` prefix dropped.
fn base_name(name: &str) -> &str {
    name.strip_prefix("base_model.model.").unwrap_or(name)
}

/// `ours` equals `theirs` value by value, to `tolerance` of the largest.
fn assert_spectra_equal(what: &str, ours: &[f64], theirs: &[f64], tolerance: f64) {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths");
    let largest = theirs.iter().copied().fold(0.0, f64::max);
    for (a, b) in ours.iter().zip(theirs) {
        assert!(
            (a - b).abs() <= tolerance * largest.max(f64::MIN_POSITIVE),
            "{what}: {a} vs {b}"
        );
    }
}

/// The rank-r path: each update's r non-zero eigenvalues equal numpy's of PEFT's merged update
/// (merged minus base, f64) to 1e-10 relative, and its other M − r are exactly zero.
#[test]
fn update_spectra_from_factors_equal_numpy_of_peft_merged_updates() {
    let (_, reference) = made();
    for adapter in ["lora4", "rslora16", "gpt2_lora"] {
        let ours = layers(&run_ok(&[
            "analyze",
            path(adapter).to_str().unwrap(),
            "--eigenvalues",
            "-f",
            "json",
            "-q",
        ]));
        let expected = reference[adapter].as_object().unwrap();
        let mut seen = 0;
        for layer in &ours {
            let Some(rank) = layer["rank"].as_u64() else {
                continue;
            };
            let name = base_name(layer["name"].as_str().unwrap());
            let theirs = floats(&expected[name]);
            let eigenvalues = floats(&layer["eigenvalues"]);
            let zeros = eigenvalues.len() - rank as usize;
            assert!(
                eigenvalues[..zeros].iter().all(|&v| v == 0.0),
                "{adapter} {name}"
            );
            for (a, b) in eigenvalues[zeros..].iter().zip(&theirs[zeros..]) {
                assert!((a - b).abs() <= 1e-10 * b, "{adapter} {name}: {a} vs {b}");
            }
            assert!(layer.get("num_spikes_tw").is_none(), "no bulk, no TW test");
            seen += 1;
        }
        // Every update PEFT merged is one we analysed (modules_to_save are not updates).
        let updates = expected
            .keys()
            .filter(|name| !name.starts_with("lm_head"))
            .count();
        assert_eq!(seen, updates, "{adapter}: updates analysed");
    }
}

/// `analyze ADAPTER --base BASE` is the analysis of the model PEFT merges: every layer's ESD
/// and α the same (DoRA's rescaling and GPT-2's transposed storage included).
#[test]
fn base_plus_adapter_equals_the_model_peft_merges() {
    for (adapter, base) in [
        ("lora4", "llama"),
        ("rslora16", "llama"),
        ("dora", "llama"),
        ("gpt2_lora", "gpt2"),
    ] {
        let ours = layers(&run_ok(&[
            "analyze",
            path(adapter).to_str().unwrap(),
            "--base",
            path(base).to_str().unwrap(),
            "--eigenvalues",
            "-f",
            "json",
            "-q",
        ]));
        let merged = path(&format!("{adapter}_merged.safetensors"));
        let theirs = layers(&run_ok(&[
            "analyze",
            merged.to_str().unwrap(),
            "--eigenvalues",
            "-f",
            "json",
            "-q",
        ]));
        let by_name =
            |layers: &[Value], name: &str| layers.iter().find(|l| l["name"] == name).cloned();
        let mut compared = 0;
        for layer in &theirs {
            let name = layer["name"].as_str().unwrap();
            let Some(ours) = by_name(&ours, name) else {
                panic!("{adapter}: {name} missing from --base's analysis");
            };
            assert_spectra_equal(
                &format!("{adapter} {name}"),
                &floats(&ours["eigenvalues"]),
                &floats(&layer["eigenvalues"]),
                1e-10,
            );
            if let (Some(a), Some(b)) = (ours["alpha"].as_f64(), layer["alpha"].as_f64()) {
                assert!((a - b).abs() <= 1e-6 * b, "{adapter} {name}: α {a} vs {b}");
            }
            compared += 1;
        }
        assert!(compared >= 4, "{adapter}: {compared} layers");
    }
}

/// `compare BASE ADAPTER` compares the base with the base plus the adapter, layer by layer,
/// and analyses each update from its factors (rank r, exact zeros).
#[test]
fn compare_with_an_adapter_reads_the_updates_from_their_factors() {
    let (_, reference) = made();
    let json: Value = serde_json::from_str(&run_ok(&[
        "compare",
        path("llama").to_str().unwrap(),
        path("rslora16").to_str().unwrap(),
        "--eigenvalues",
        "-f",
        "json",
        "-q",
    ]))
    .unwrap();
    let expected = reference["rslora16"].as_object().unwrap();
    let changed: Vec<&Value> = json["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| !l["update"].is_null())
        .collect();
    assert_eq!(changed.len(), expected.len());
    for layer in changed {
        let name = layer["name"].as_str().unwrap();
        let update = &layer["update"];
        let rank = if name.contains("down_proj") { 8 } else { 16 };
        assert_eq!(update["rank"], rank, "{name}");
        let eigenvalues = floats(&update["eigenvalues"]);
        let theirs = floats(&expected[name]);
        let zeros = eigenvalues.len() - rank;
        for (a, b) in eigenvalues[zeros..].iter().zip(&theirs[zeros..]) {
            assert!((a - b).abs() <= 1e-10 * b, "{name}: {a} vs {b}");
        }
    }
}

/// Writes an adapter directory `name` from the `lora4` fixture with its configuration edited by
/// `edit` and its tensors by `tensors` (a Python expression over `t`, the dict of tensors).
fn lying_adapter(name: &str, edit: &str, tensors: &str) -> PathBuf {
    let source = path("lora4");
    let target = path(name);
    let _ = std::fs::remove_dir_all(&target);
    std::fs::create_dir_all(&target).unwrap();
    let script = format!(
        r#"
import json, sys, torch
from safetensors.torch import load_file, save_file
source, target = sys.argv[1], sys.argv[2]
c = json.load(open(source + "/adapter_config.json"))
{edit}
json.dump(c, open(target + "/adapter_config.json", "w"))
t = load_file(source + "/adapter_model.safetensors")
t = {tensors}
save_file(t, target + "/adapter_model.safetensors")
print("{{}}")
"#
    );
    let _: Value = fixtures::python_json(&script, &[&source, &target]);
    target
}

fn fails_with(args: &[&str], expected: &str) {
    let output = run(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

/// Adapters whose configuration or tensors lie, and adapters laid over the wrong model, are
/// refused with the file and the cause; nothing is zero-filled or guessed.
#[test]
fn adapters_that_lie_are_refused() {
    let cases: [(&str, &str, &str, &str); 7] = [
        ("lie_rank", "c['r'] = 8", "t", "gives"),
        ("lie_absurd_rank", "c['r'] = 10**12", "t", "not a rank"),
        (
            "lie_missing_b",
            "",
            "{k: v for k, v in t.items() if 'layers.0.self_attn.q_proj.lora_B' not in k}",
            "has lora_A but no lora_B",
        ),
        (
            "lie_shapes",
            "",
            "{k: (v[:3] if 'layers.1.self_attn.v_proj.lora_A' in k else v) for k, v in t.items()}",
            "not the factors of one update",
        ),
        ("lie_type", "c['peft_type'] = 'IA3'", "t", "a IA3 adapter"),
        (
            "lie_nan",
            "",
            "{k: (v.index_fill(0, torch.tensor([0]), float('nan')) if 'layers.0.self_attn.q_proj.lora_A' in k else v) for k, v in t.items()}",
            "32 non-finite values (NaN or Inf)",
        ),
        ("lie_alpha", "c['lora_alpha'] = 'eight'", "t", "lora_alpha"),
    ];
    for (name, edit, tensors, expected) in cases {
        let dir = lying_adapter(name, edit, tensors);
        fails_with(&["analyze", dir.to_str().unwrap(), "-q"], expected);
    }
    // A non-finite weight in a compared pair: the update's Gram matrix, formed in bands, says
    // so as the other readers do.
    let poisoned = path("llama_nan");
    let _ = std::fs::remove_dir_all(&poisoned);
    std::fs::create_dir_all(&poisoned).unwrap();
    std::fs::copy(
        path("llama").join("config.json"),
        poisoned.join("config.json"),
    )
    .unwrap();
    let _: Value = fixtures::python_json(
        r#"
import sys, torch
from safetensors.torch import load_file, save_file
t = load_file(sys.argv[1] + "/model.safetensors")
t["model.layers.1.mlp.up_proj.weight"][3, 5] = float("inf")
save_file(t, sys.argv[2] + "/model.safetensors")
print("{}")
"#,
        &[&path("llama"), &poisoned],
    );
    fails_with(
        &[
            "compare",
            path("llama").to_str().unwrap(),
            poisoned.to_str().unwrap(),
            "-q",
        ],
        "1 non-finite values (NaN or Inf)",
    );
    // An adapter of another model: its updates have no weight of their shape there.
    let lora = path("lora4");
    fails_with(
        &[
            "analyze",
            lora.to_str().unwrap(),
            "--base",
            path("gpt2").to_str().unwrap(),
            "-q",
        ],
        "does not fit",
    );
    // --base on a model that is no adapter.
    fails_with(
        &[
            "analyze",
            path("llama").to_str().unwrap(),
            "--base",
            path("llama").to_str().unwrap(),
            "-q",
        ],
        "--base applies to a LoRA adapter",
    );
    // A directory holding both a model and an adapter.
    let both = path("both");
    let _ = std::fs::remove_dir_all(&both);
    std::fs::create_dir_all(&both).unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(path("llama").join(file), both.join(file)).unwrap();
    }
    for file in ["adapter_config.json", "adapter_model.safetensors"] {
        std::fs::copy(lora.join(file), both.join(file)).unwrap();
    }
    fails_with(
        &["analyze", both.to_str().unwrap(), "-q"],
        "holds both a model and a LoRA adapter",
    );
    // DoRA on an embedding: PEFT normalises the stored table per column; not read here.
    fails_with(
        &[
            "analyze",
            path("dora_embedding").to_str().unwrap(),
            "--base",
            path("llama").to_str().unwrap(),
            "-q",
        ],
        "DoRA on a weight stored transposed",
    );
    // No weights beside the configuration.
    let empty = path("config_only");
    let _ = std::fs::remove_dir_all(&empty);
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::copy(
        lora.join("adapter_config.json"),
        empty.join("adapter_config.json"),
    )
    .unwrap();
    fails_with(
        &["analyze", empty.to_str().unwrap(), "-q"],
        "without its weights",
    );
}
