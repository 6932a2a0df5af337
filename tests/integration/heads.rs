//! `--split-heads`: each attention head's block of q, k, v (rows) and o (columns) of a
//! grouped-query Llama saved by transformers, against numpy's SVD of the same block; a query
//! projection built so that head h's block is (h + 1)·[I 0] gives exactly (h + 1)² per
//! eigenvalue; the whole matrices are still there, and the summaries count each matrix once.
use serde_json::Value;

use crate::fixtures::{self, floats, run_ok};

/// A 1-block Llama (4 query heads, 2 key-value heads of 16) with the known query projection;
/// prints numpy's ESD (σ², ascending) of every head block, by layer name.
const MAKE: &str = r#"
import json, os, sys, numpy as np, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=96,
    num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2))
q = torch.zeros(64, 64)
for h in range(4):
    q[h * 16:(h + 1) * 16, :16] = (h + 1) * torch.eye(16)
with torch.no_grad():
    model.model.layers[0].self_attn.q_proj.weight.copy_(q)
model.save_pretrained(sys.argv[1])
esd = lambda w: sorted((np.linalg.svd(w.astype(np.float64), compute_uv=False) ** 2).tolist())
out = {}
for part, heads, rows in (("q_proj", 4, True), ("k_proj", 2, True), ("v_proj", 2, True), ("o_proj", 4, False)):
    w = getattr(model.model.layers[0].self_attn, part).weight.detach().numpy()
    width = (w.shape[0] if rows else w.shape[1]) // heads
    for h in range(heads):
        block = w[h * width:(h + 1) * width] if rows else w[:, h * width:(h + 1) * width]
        out[f"model.layers.0.self_attn.{part}.weight[h{h}]"] = esd(block)
print(json.dumps(out))
"#;

#[test]
fn each_head_block_is_analysed_beside_its_matrix() {
    let dir = fixtures::output_dir("heads");
    let expected: Value = fixtures::python_json(MAKE, &[&dir]);
    let path = dir.to_str().unwrap();
    let json: Value = serde_json::from_str(&run_ok(&[
        "analyze",
        path,
        "--split-heads",
        "--eigenvalues",
        "-f",
        "json",
    ]))
    .unwrap();
    let layers = json["layers"].as_array().unwrap();
    let expected = expected.as_object().unwrap();
    assert_eq!(expected.len(), 12);
    for (name, esd) in expected {
        let layer = layers
            .iter()
            .find(|l| l["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no layer {name}"));
        let (ours, theirs) = (floats(&layer["eigenvalues"]), floats(esd));
        assert_eq!(ours.len(), theirs.len(), "{name}");
        let largest = theirs.last().copied().unwrap();
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() <= 1e-10 * largest, "{name}: {a} vs {b}");
        }
        assert!(layer["head"].is_u64(), "{name}");
    }
    for head in 0..4 {
        let name = format!("model.layers.0.self_attn.q_proj.weight[h{head}]");
        let layer = layers.iter().find(|l| l["name"] == name.as_str()).unwrap();
        let square = ((head + 1) * (head + 1)) as f64;
        assert!(floats(&layer["eigenvalues"])
            .iter()
            .all(|&l| (l - square).abs() < 1e-12));
    }
    // The whole matrices are analysed too, and the summaries count each matrix once.
    let whole: Value = serde_json::from_str(&run_ok(&["analyze", path, "-f", "json"])).unwrap();
    assert_eq!(layers.len(), whole["layers"].as_array().unwrap().len() + 12);
    assert_eq!(json["summary"], whole["summary"]);
    assert_eq!(json["blocks"], whole["blocks"]);
}
