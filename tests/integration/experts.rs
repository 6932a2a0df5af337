//! Mixture-of-experts weights: a tiny transformers-5 Qwen2-MoE with random weights, its state
//! dict saved as it lives in memory (experts fused: `experts.gate_up_proj` [E, 2I, H],
//! `experts.down_proj` [E, H, I]) and by `save_pretrained` (one matrix per expert), and a GGUF
//! with llama.cpp's `ffn_*_exps` tensors in Q8_0: every expert's spectrum equals numpy's on its
//! slice.
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

use crate::fixtures::{self, floats, run_ok};

/// Writes under argv[1]: `fused.safetensors` (the state dict), `per_expert/` (save_pretrained)
/// and `experts.gguf` (8 experts and a router); prints numpy's ESD (σ², ascending) of every
/// expert's gate, up and down matrix by the layer names rmt-torch gives them, per file.
const MAKE: &str = r#"
import json, os, sys, numpy as np, torch, gguf
from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM
from safetensors.torch import save_file
root = sys.argv[1]
torch.manual_seed(0)
config = Qwen2MoeConfig(vocab_size=64, hidden_size=32, intermediate_size=48, moe_intermediate_size=24,
    shared_expert_intermediate_size=40, num_experts=4, num_experts_per_tok=2, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2)
model = Qwen2MoeForCausalLM(config)
state = {k: v.contiguous() for k, v in model.state_dict().items()}
save_file(state, os.path.join(root, "fused.safetensors"))
model.save_pretrained(os.path.join(root, "per_expert"))
esd = lambda w: sorted((np.linalg.svd(np.asarray(w, dtype=np.float64), compute_uv=False) ** 2).tolist())
fused, per_expert = {}, {}
for block in range(2):
    prefix = f"model.layers.{block}.mlp.experts"
    gate_up, down = state[f"{prefix}.gate_up_proj"].numpy(), state[f"{prefix}.down_proj"].numpy()
    for e in range(4):
        parts = {"gate": gate_up[e, :24], "up": gate_up[e, 24:], "down": down[e]}
        for part, w in parts.items():
            fused[f"{prefix}.{e}.{part}"] = esd(w)
            per_expert[f"{prefix}.{e}.{part}_proj.weight"] = esd(w)
rng = np.random.default_rng(1)
writer = gguf.GGUFWriter(os.path.join(root, "experts.gguf"), "qwen2moe")
from_gguf = {}
for part, shape in {"gate": (8, 24, 64), "up": (8, 24, 64), "down": (8, 64, 32)}.items():
    weights = (rng.standard_normal(shape) * 0.05).astype(np.float32)
    data = gguf.quants.quantize(weights, gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor(f"blk.0.ffn_{part}_exps.weight", data, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    values = gguf.quants.dequantize(data, gguf.GGMLQuantizationType.Q8_0)
    for e in range(8):
        from_gguf[f"blk.0.experts.{e}.{part}"] = esd(values[e])
writer.add_tensor("blk.0.ffn_gate_inp.weight", (rng.standard_normal((8, 64)) * 0.05).astype(np.float32))
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()
print(json.dumps({"fused.safetensors": fused, "per_expert": per_expert, "experts.gguf": from_gguf}))
"#;

fn made() -> &'static (PathBuf, Value) {
    static MADE: OnceLock<(PathBuf, Value)> = OnceLock::new();
    MADE.get_or_init(|| {
        let dir = fixtures::output_dir("experts");
        let reference = fixtures::python_json(MAKE, &[&dir]);
        (dir, reference)
    })
}

fn analysed(file: &str) -> Value {
    let path = made().0.join(file);
    serde_json::from_str(&run_ok(&[
        "analyze",
        path.to_str().unwrap(),
        "--eigenvalues",
        "-f",
        "json",
    ]))
    .unwrap()
}

/// Each expert of every layout is a layer of its own, whose ESD equals numpy's of its slice.
#[test]
fn every_expert_spectrum_equals_numpy_on_its_slice() {
    let (_, reference) = made();
    for (file, expected) in reference.as_object().unwrap() {
        let json = analysed(file);
        let layers = json["layers"].as_array().unwrap();
        let expected = expected.as_object().unwrap();
        for (name, esd) in expected {
            let layer = layers
                .iter()
                .find(|l| l["name"] == name.as_str())
                .unwrap_or_else(|| panic!("{file}: no layer {name}"));
            let ours = floats(&layer["eigenvalues"]);
            let theirs = floats(esd);
            assert_eq!(ours.len(), theirs.len(), "{file} {name}");
            let largest = theirs.last().copied().unwrap();
            for (a, b) in ours.iter().zip(&theirs) {
                assert!(
                    (a - b).abs() <= 1e-10 * largest,
                    "{file} {name}: {a} vs {b}"
                );
            }
            assert!(layer["expert"].is_u64(), "{file} {name}: no expert index");
            assert!(
                layer["role"].as_str().unwrap().starts_with("mlp_"),
                "{name}"
            );
        }
    }
}

/// The per-block summary names the experts, their α spread and the outlier; the router is
/// analysed as a dense matrix.
#[test]
fn blocks_summarise_their_experts() {
    let json = analysed("fused.safetensors");
    let blocks = json["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 2);
    for block in blocks {
        let experts = &block["experts"];
        assert_eq!(experts["experts"], 4);
        let layers: Vec<&Value> = json["layers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["block"] == block["block"] && l["expert"].is_u64())
            .collect();
        let mean_of = |expert: u64| {
            let alphas: Vec<f64> = layers
                .iter()
                .filter(|l| l["expert"] == expert)
                .filter_map(|l| l["alpha"].as_f64())
                .collect();
            alphas.iter().sum::<f64>() / alphas.len() as f64
        };
        let means: Vec<f64> = (0..4).map(mean_of).collect();
        let mean = means.iter().sum::<f64>() / 4.0;
        assert!((experts["alpha_mean"].as_f64().unwrap() - mean).abs() < 1e-12);
        let outlier = experts["outlier"].as_u64().unwrap() as usize;
        assert!(means
            .iter()
            .all(|m| (m - mean).abs() <= (means[outlier] - mean).abs()));
    }
    let gguf = analysed("experts.gguf");
    assert!(gguf["layers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["name"] == "blk.0.ffn_gate_inp.weight"));
    let text = run_ok(&["info", made().0.join("fused.safetensors").to_str().unwrap()]);
    assert!(
        text.contains("mixture of experts: 4 experts × (gate, up), each analysed alone"),
        "{text}"
    );
}
