//! Transformer-aware reading: every weight of a Llama-shaped and a GPT-2-shaped checkpoint gets
//! its block and part, and the per-block summary (table, JSON, figure) is the mean α of each
//! half of each block.
use serde_json::Value;

use crate::fixtures::{self, run_ok};

/// Two blocks of each scheme, random weights (torch's generator, seeded), as safetensors.
const MAKE: &str = r#"
import sys, torch
from safetensors.torch import save_file
torch.manual_seed(0)
d, f = 64, 176
weights = {"model.embed_tokens.weight": torch.randn(500, d), "lm_head.weight": torch.randn(500, d)}
for i in range(2):
    p = f"model.layers.{i}."
    for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
        weights[p + f"self_attn.{name}.weight"] = torch.randn(d, d)
    weights[p + "mlp.gate_proj.weight"] = torch.randn(f, d)
    weights[p + "mlp.up_proj.weight"] = torch.randn(f, d)
    weights[p + "mlp.down_proj.weight"] = torch.randn(d, f)
    weights[p + "input_layernorm.weight"] = torch.ones(d)
save_file(weights, sys.argv[1] + "/llama.safetensors")
gpt = {"transformer.wte.weight": torch.randn(500, d)}
for i in range(2):
    p = f"transformer.h.{i}."
    gpt[p + "attn.c_attn.weight"] = torch.randn(d, 3 * d)
    gpt[p + "attn.c_proj.weight"] = torch.randn(d, d)
    gpt[p + "mlp.c_fc.weight"] = torch.randn(d, 4 * d)
    gpt[p + "mlp.c_proj.weight"] = torch.randn(4 * d, d)
save_file(gpt, sys.argv[1] + "/gpt2.safetensors")
"#;

#[test]
fn transformer_weights_get_their_block_and_part() {
    let dir = fixtures::root().join("target/test-transformers");
    std::fs::create_dir_all(&dir).unwrap();
    let status = fixtures::reference_python()
        .args(["-c", MAKE])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    for (file, roles) in [
        (
            "llama.safetensors",
            &[
                "query",
                "key",
                "value",
                "attention_output",
                "mlp_gate",
                "mlp_up",
                "mlp_down",
            ][..],
        ),
        (
            "gpt2.safetensors",
            &["fused_qkv", "attention_output", "mlp_up", "mlp_down"][..],
        ),
    ] {
        let path = dir.join(file);
        let json: Value = serde_json::from_str(&run_ok(&[
            "analyze",
            path.to_str().unwrap(),
            "-f",
            "json",
            "-q",
        ]))
        .unwrap();
        let layers = json["layers"].as_array().unwrap();
        for layer in layers {
            let name = layer["name"].as_str().unwrap();
            let expected_block = ["layers.", "h."]
                .iter()
                .find_map(|list| name.split(list).nth(1))
                .map(|rest| rest.split('.').next().unwrap().parse::<u64>().unwrap());
            assert_eq!(layer["block"].as_u64(), expected_block, "{name}");
            let role = layer["role"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no role"));
            if expected_block.is_none() {
                assert!(["embedding", "head"].contains(&role), "{name}: {role}");
            }
        }
        let blocks = json["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 2, "{file}");
        for (index, block) in blocks.iter().enumerate() {
            assert_eq!(block["block"], index as u64);
            let members = |half: &[&str]| -> Vec<&Value> {
                layers
                    .iter()
                    .filter(|l| {
                        l["block"] == index as u64 && half.contains(&l["role"].as_str().unwrap())
                    })
                    .collect()
            };
            let (attention, mlp) =
                roles.split_at(roles.iter().position(|r| r.starts_with("mlp")).unwrap());
            for (half, key) in [(attention, "attention"), (mlp, "mlp")] {
                let members = members(half);
                assert_eq!(members.len(), half.len(), "{file} block {index} {key}");
                assert_eq!(block[format!("{key}_layers")], half.len() as u64);
                let alphas: Vec<f64> = members.iter().filter_map(|l| l["alpha"].as_f64()).collect();
                let mean = alphas.iter().sum::<f64>() / alphas.len() as f64;
                let reported = block[format!("{key}_alpha")].as_f64().unwrap();
                assert!(
                    (reported - mean).abs() <= 1e-12 * mean,
                    "{file} block {index} {key}"
                );
            }
        }
        let figures = dir.join(format!("{file}-figures"));
        let table = run_ok(&[
            "analyze",
            path.to_str().unwrap(),
            "--plots",
            figures.to_str().unwrap(),
            "--plot-format",
            "svg",
        ]);
        assert!(table.contains("per transformer block"), "{table}");
        let figure = std::fs::read_to_string(figures.join("blocks.svg")).unwrap();
        for text in [
            "α by transformer block",
            "attention (q, k, v, o)",
            "MLP (gate, up, down)",
        ] {
            assert!(figure.contains(text), "{file}: blocks.svg lacks {text}");
        }
    }
}
