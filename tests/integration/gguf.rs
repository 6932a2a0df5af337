//! GGUF files written by the `gguf` Python package (llama.cpp's own): every decoded type against
//! `gguf.quants.dequantize` bit for bit on the same bytes — random bytes, so that every bit
//! pattern of the packed integers and scales is decoded — then λmax and α of the dequantised
//! matrices against numpy and against the same floats read from safetensors.
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;
use tch::Kind;

use crate::fixtures::{self, run, run_ok};

/// The types decoded, each one tensor `types.<TYPE>.weight` of shape [24, 512].
const DECODED: [&str; 13] = [
    "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
    "Q6_K",
];

/// Writes argv[1]/every_type.gguf (alignment 64, a string-array vocabulary, head counts, one
/// tensor per decoded type, an IQ2_XXS tensor, a norm vector) and beside it
/// `every_type_reference.safetensors`, `gguf.quants.dequantize` of each tensor in float32.
/// Prints numpy's largest squared singular value of each, in float64.
const MAKE: &str = r#"
import json, os, sys, numpy as np, gguf
from gguf import GGMLQuantizationType as T
from safetensors.numpy import save_file
root, decoded = sys.argv[1], sys.argv[2].split(",")
rng = np.random.default_rng(0)
# Byte offsets of each block's float16 scales, set to sane values (random bytes elsewhere).
SCALES = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
          "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
          "IQ2_XXS": [0]}
rows, cols = 24, 512
writer = gguf.GGUFWriter(os.path.join(root, "every_type.gguf"), "llama")
writer.add_custom_alignment(64)
writer.add_head_count(4)
writer.add_head_count_kv(2)
writer.add_token_list([f"token{i}" for i in range(300)])
reference, lambda_max = {}, {}
def add(name, data, qtype):
    writer.add_tensor(name, data, raw_dtype=qtype)
    if qtype != T.IQ2_XXS:
        values = gguf.quants.dequantize(data, qtype).reshape(rows, cols) if qtype != T.F32 else data
        reference[name] = np.ascontiguousarray(values, dtype=np.float32)
        lambda_max[name] = float(np.linalg.svd(values.astype(np.float64), compute_uv=False)[0] ** 2)
for name in decoded + ["IQ2_XXS"]:
    qtype = T[name]
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    if name in SCALES:
        blocks = rng.integers(0, 256, size=(rows * cols // block, size), dtype=np.uint8)
        for at in SCALES[name]:
            scale = rng.uniform(0.002, 0.05, size=len(blocks)).astype(np.float16)
            blocks[:, at:at + 2] = scale.view(np.uint8).reshape(-1, 2)
        data = blocks.reshape(rows, -1)
    else:
        weights = (rng.standard_t(3, size=(rows, cols)) * 0.05).astype(np.float32)
        data = weights if name == "F32" else gguf.quants.quantize(weights, qtype)
    add(f"types.{name}.weight", data, qtype)
# Tall matrices (N > M as stored), which the analysis decodes a band of rows at a time.
for name in ("Q8_0", "Q4_K"):
    qtype = T[name]
    weights = (rng.standard_t(3, size=(1024, 256)) * 0.05).astype(np.float32)
    if name == "Q8_0":
        data = gguf.quants.quantize(weights, qtype)
    else:
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        blocks = rng.integers(0, 256, size=(1024 * 256 // block, size), dtype=np.uint8)
        for at in SCALES[name]:
            blocks[:, at:at + 2] = rng.uniform(0.002, 0.05, size=len(blocks)).astype(np.float16).view(np.uint8).reshape(-1, 2)
        data = blocks.reshape(1024, -1)
    tall = f"tall.{name}.weight"
    writer.add_tensor(tall, data, raw_dtype=qtype)
    values = gguf.quants.dequantize(data, qtype).reshape(1024, 256)
    reference[tall] = np.ascontiguousarray(values, dtype=np.float32)
    lambda_max[tall] = float(np.linalg.svd(values.astype(np.float64), compute_uv=False)[0] ** 2)
writer.add_tensor("output_norm.weight", np.ones(cols, dtype=np.float32))
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()
save_file(reference, os.path.join(root, "every_type_reference.safetensors"))
print(json.dumps(lambda_max))
"#;

/// The fixtures, made once per run: the directory and numpy's λmax per tensor.
fn made() -> &'static (PathBuf, Value) {
    static MADE: OnceLock<(PathBuf, Value)> = OnceLock::new();
    MADE.get_or_init(|| {
        let dir = fixtures::output_dir("gguf");
        let output = fixtures::reference_python()
            .args(["-c", MAKE])
            .arg(&dir)
            .arg(DECODED.join(","))
            .output()
            .expect("run python");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let lambda_max = serde_json::from_slice(&output.stdout).expect("JSON");
        (dir, lambda_max)
    })
}

fn path(name: &str) -> PathBuf {
    made().0.join(name)
}

/// Every decoded type equals `gguf.quants.dequantize` bit for bit.
#[test]
fn every_decoded_type_equals_the_gguf_package_bit_for_bit() {
    let ours = rmt_torch::Model::load(path("every_type.gguf")).unwrap();
    let theirs = rmt_torch::Model::load(path("every_type_reference.safetensors")).unwrap();
    assert_eq!(ours.format, rmt_torch::model::FileFormat::Gguf);
    for name in DECODED {
        let key = format!("types.{name}.weight");
        let find = |model: &rmt_torch::Model| {
            let tensor = model.tensors.iter().find(|t| t.name == key);
            tensor
                .unwrap_or_else(|| panic!("{key} missing"))
                .load()
                .unwrap()
        };
        let (a, b) = (find(&ours).to_kind(Kind::Float), find(&theirs));
        assert_eq!(a.size(), vec![24, 512], "{key}");
        let differing = a
            .view_dtype(Kind::Int)
            .ne_tensor(&b.view_dtype(Kind::Int))
            .sum(Kind::Int64)
            .int64_value(&[]);
        assert_eq!(
            differing, 0,
            "{key}: {differing} values differ in their bits"
        );
    }
}

/// `analyze` of the GGUF gives every decoded matrix the λmax numpy finds (1e-10 relative) and
/// exactly the λmax and α of the same floats read from safetensors — the tall ones decoded a
/// band of rows at a time as their Gram matrices are formed.
#[test]
fn analysing_a_gguf_equals_numpy_and_the_dequantised_floats() {
    let layers = |file: &str| -> Vec<Value> {
        let json: Value = serde_json::from_str(&run_ok(&[
            "analyze",
            path(file).to_str().unwrap(),
            "-f",
            "json",
        ]))
        .unwrap();
        json["layers"].as_array().unwrap().clone()
    };
    let ours = layers("every_type.gguf");
    let theirs = layers("every_type_reference.safetensors");
    let numpy = &made().1;
    assert_eq!(ours.len(), DECODED.len() + 2, "and two tall matrices");
    for a in &ours {
        let name = a["name"].as_str().unwrap();
        let b = theirs.iter().find(|b| b["name"] == name).unwrap();
        assert_eq!(a["lambda_max"], b["lambda_max"], "{name}");
        assert_eq!(a["alpha"], b["alpha"], "{name}");
        let expected = numpy[name].as_f64().unwrap();
        let lambda_max = a["lambda_max"].as_f64().unwrap();
        assert!(
            (lambda_max - expected).abs() <= 1e-10 * expected,
            "{name}: {lambda_max} vs numpy {expected}"
        );
    }
}

/// `info` names each tensor's storage and how it is dequantised, the types it skips and why,
/// and the file's metadata.
#[test]
fn info_says_how_each_tensor_is_stored_and_dequantised() {
    let text = run_ok(&["info", path("every_type.gguf").to_str().unwrap()]);
    for expected in [
        "GGUF file",
        "Q4_K",
        "ggml Q6_K: blocks of 256 weights, 6.5625 bits each",
        "ggml IQ2_XXS, a quantisation rmt-torch does not decode",
        "llama.attention.head_count",
        "general.alignment",
        "tokenizer.ggml.tokens",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    let json: Value = serde_json::from_str(&run_ok(&[
        "info",
        path("every_type.gguf").to_str().unwrap(),
        "-f",
        "json",
    ]))
    .unwrap();
    let tensors = json["tensors"].as_array().unwrap();
    let q8 = tensors
        .iter()
        .find(|t| t["name"] == "types.Q8_0.weight")
        .unwrap();
    assert_eq!(q8["dtype"], "Q8_0");
    assert_eq!(q8["shape"], serde_json::json!([24, 512]));
    assert!(q8["dequantised"].as_str().unwrap().starts_with("ggml Q8_0"));
    let output = run(&["analyze", path("every_type.gguf").to_str().unwrap()]);
    assert!(output.status.success());
}
