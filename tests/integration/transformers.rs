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
        // The HTML report has a section per block: the figure, a row per block linking to its
        // layers, and a heading per block among the layers' sections.
        let page = dir.join(format!("{file}.html"));
        run_ok(&[
            "report",
            path.to_str().unwrap(),
            "-o",
            page.to_str().unwrap(),
            "--figures-for-worst",
            "1",
            "-q",
        ]);
        let html = std::fs::read_to_string(&page).unwrap();
        assert!(html.contains("<a href=\"#blocks\">Blocks</a>"), "{file}");
        assert!(html.contains("α by transformer block"), "{file}");
        for (index, _) in blocks.iter().enumerate() {
            assert!(html.contains(&format!("<h3 id=\"block-{index}\">Block {index}</h3>")));
            assert!(html.contains(&format!("<a href=\"#block-{index}\">{index}</a>")));
        }
        for layer in layers.iter().filter(|l| !l["block"].is_null()) {
            let link = format!(
                "<a href=\"#layer-{}\">{}</a>",
                layer["layer_id"],
                layer["role"].as_str().unwrap()
            );
            assert!(html.contains(&link), "{file}: {link}");
        }
    }
}

/// Tiny GPT-2, GPT-NeoX, Phi-3 (grouped-query attention: 4 query heads, 2 key-value heads), BERT
/// and Llama from `transformers` itself, seeded, written by `save_pretrained` in several shards;
/// prints λmax = σmax² of every 2-D weight in the shards' index (`matrices`) and of q, k and v
/// of every fused projection, sliced here by each model's layout (`parts`).
const MAKE_PRETRAINED: &str = r#"
import json, sys, torch, transformers
from safetensors import safe_open
out = sys.argv[1]
configs = {
    "gpt2": transformers.GPT2Config(n_embd=64, n_head=4, n_layer=2, vocab_size=300, n_positions=64),
    "gpt_neox": transformers.GPTNeoXConfig(hidden_size=64, num_attention_heads=4, num_hidden_layers=1,
                                           intermediate_size=128, vocab_size=300),
    "phi3": transformers.Phi3Config(hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                                    num_hidden_layers=1, intermediate_size=128, vocab_size=300,
                                    pad_token_id=0),
    "bert": transformers.BertConfig(hidden_size=64, num_attention_heads=4, num_hidden_layers=1,
                                    intermediate_size=128, vocab_size=300),
    "llama": transformers.LlamaConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                                      num_hidden_layers=1, intermediate_size=128, vocab_size=300),
}
expected = {"parts": {}, "matrices": {}, "order": {}}
sigma_max2 = lambda w: torch.linalg.svdvals(w.detach().double()).max().item() ** 2
for name, config in configs.items():
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.save_pretrained(f"{out}/{name}", max_shard_size="60KB")
    weight_map = json.load(open(f"{out}/{name}/model.safetensors.index.json"))["weight_map"]
    saved = {}
    for key, shard in weight_map.items():
        with safe_open(f"{out}/{name}/{shard}", framework="pt") as f:
            saved[key] = f.get_tensor(key)
    expected["matrices"][name] = {key: sigma_max2(w) for key, w in saved.items() if w.dim() == 2}
    state = model.state_dict()
    expected["order"][name] = [key for key, w in state.items() if w.dim() == 2]
    parts = {}
    for key, w in model.state_dict().items():
        w = w.detach().double()
        if key.endswith("c_attn.weight"):
            q, k, v = w[:, :64], w[:, 64:128], w[:, 128:]
        elif key.endswith("query_key_value.weight"):
            per_head = w.view(4, 3, 16, 64)
            q, k, v = (per_head[:, i].reshape(64, 64) for i in range(3))
        elif key.endswith("qkv_proj.weight"):
            q, k, v = w[:64], w[64:96], w[96:]
        else:
            continue
        for suffix, part in zip(("[q]", "[k]", "[v]"), (q, k, v)):
            parts[key + suffix] = sigma_max2(part)
    if parts:
        expected["parts"][name] = parts
print(json.dumps(expected))
"#;

/// The layer `name` of `model`'s records, its λmax checked against numpy's to 1e-10.
fn layer_with_lambda_max<'a>(
    layers: &'a [Value],
    model: &str,
    name: &str,
    lambda_max: &Value,
) -> &'a Value {
    let layer = layers
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("{model}: no layer {name}"));
    let (ours, want) = (
        layer["lambda_max"].as_f64().unwrap(),
        lambda_max.as_f64().unwrap(),
    );
    assert!(
        (ours - want).abs() <= 1e-10 * want,
        "{model} {name}: {ours} vs {want}"
    );
    layer
}

#[test]
fn save_pretrained_shards_read_whole_and_fused_projections_split() {
    let dir = fixtures::root().join("target/test-transformers-pretrained");
    std::fs::create_dir_all(&dir).unwrap();
    let expected: Value = fixtures::python_json(MAKE_PRETRAINED, &[dir.as_path()]);
    let mut matrices = 0;
    for (model, weights) in expected["matrices"].as_object().unwrap() {
        let path = dir.join(model);
        let analysis: Value = serde_json::from_str(&run_ok(&[
            "analyze",
            path.to_str().unwrap(),
            "--min-evals",
            "1",
            "-f",
            "json",
        ]))
        .unwrap();
        let layers = analysis["layers"].as_array().unwrap();
        assert_eq!(layers.len(), weights.as_object().unwrap().len(), "{model}");
        // The shards list tensors by name; the layers come in the order of the data through
        // the model: block by block, embeddings before and heads after, attention before the
        // MLP. That is the module's order (the state_dict's) except where a model declares its
        // modules otherwise (Phi-3: o_proj before qkv_proj, gate_up_proj after down_proj).
        let ours: Vec<&str> = layers.iter().map(|l| l["name"].as_str().unwrap()).collect();
        let in_blocks = |names: Vec<&str>| -> Vec<String> {
            names
                .into_iter()
                .filter(|n| n.split('.').any(|s| s.parse::<u64>().is_ok()))
                .map(String::from)
                .collect()
        };
        let module_order: Vec<&str> = expected["order"][model]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .filter(|n| ours.contains(n))
            .collect();
        if model != "phi3" {
            assert_eq!(in_blocks(ours.clone()), in_blocks(module_order), "{model}");
        }
        let flow: Vec<(u64, u8)> = layers
            .iter()
            .filter(|l| !l["block"].is_null())
            .map(|l| {
                let stage = match l["role"].as_str() {
                    Some("query" | "key" | "value" | "fused_qkv") => 0,
                    Some("attention_output") => 1,
                    Some("mlp_gate" | "mlp_up") => 2,
                    Some("mlp_down") => 3,
                    other => panic!("{model}: {other:?} in a block"),
                };
                (l["block"].as_u64().unwrap(), stage)
            })
            .collect();
        assert!(flow.windows(2).all(|p| p[0] <= p[1]), "{model}: {ours:?}");
        let first_block = layers.iter().position(|l| !l["block"].is_null()).unwrap();
        assert!(
            layers[..first_block].iter().all(|l| l["role"] != "head"),
            "{model}: {ours:?}"
        );
        assert!(
            layers[first_block..]
                .iter()
                .all(|l| l["role"] != "embedding"),
            "{model}: {ours:?}"
        );
        for (name, lambda_max) in weights.as_object().unwrap() {
            layer_with_lambda_max(layers, model, name, lambda_max);
            matrices += 1;
        }
    }
    assert!(matrices > 40, "{matrices} matrices compared");
    let mut compared = 0;
    for (model, parts) in expected["parts"].as_object().unwrap() {
        let path = dir.join(model);
        let path = path.to_str().unwrap();
        let shards = std::fs::read_dir(dir.join(model))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".safetensors")
            })
            .count();
        assert!(shards > 1, "{model}: save_pretrained wrote one shard");
        let split: Value = serde_json::from_str(&run_ok(&[
            "analyze",
            path,
            "--split-fused",
            "--min-evals",
            "1",
            "-f",
            "json",
        ]))
        .unwrap();
        let layers = split["layers"].as_array().unwrap();
        for (name, lambda_max) in parts.as_object().unwrap() {
            let layer = layer_with_lambda_max(layers, model, name, lambda_max);
            let role = &layer["role"];
            let part = &name[name.len() - 2..name.len() - 1];
            let want_role = match part {
                "q" => "query",
                "k" => "key",
                _ => "value",
            };
            assert_eq!(role, want_role, "{model} {name}");
            compared += 1;
        }
        // Without the flag the fused projection is one layer, as stored.
        let stored: Value =
            serde_json::from_str(&run_ok(&["analyze", path, "-f", "json"])).unwrap();
        assert!(stored["layers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["role"] == "fused_qkv" && !l["name"].as_str().unwrap().ends_with(']')));
    }
    // GPT-2: 2 blocks, NeoX and Phi-3: 1 block each; q, k and v of each.
    assert_eq!(compared, 12);
}
