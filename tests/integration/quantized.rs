//! Hugging Face quantised checkpoints, one directory per format with random codes, scales and
//! zero points: GPTQ (original format, 2, 4 and 8 bits, act-order g_idx), AWQ, compressed-tensors
//! pack-quantized (asymmetric, decompressed by compressed-tensors itself) and bitsandbytes
//! int8, NF4 (plain and nested absmax) and FP4. Every dequantised weight equals its reference
//! bit for bit, and its analysis equals the analysis of the reference floats.
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;
use tch::Kind;

use crate::fixtures::{self, run_ok};

/// Writes argv[1]/<format>/{config.json, model.safetensors} and argv[1]/<format>.reference
/// .safetensors (the weights as float32); prints the formats and numpy's λmax of each weight.
const MAKE: &str = r#"
import json, os, sys, numpy as np, torch
from safetensors.torch import save_file
root = sys.argv[1]
rng = np.random.default_rng(0)
OUT, IN, GROUP = 48, 128, 32
NAME = "model.layers.0.mlp.down_proj"

def write(fmt, tensors, reference, quantization):
    d = os.path.join(root, fmt)
    os.makedirs(d, exist_ok=True)
    tensors = dict(tensors)
    tensors["model.layers.0.input_layernorm.weight"] = torch.ones(IN)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(d, "model.safetensors"))
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"]}
    if quantization is not None:
        config["quantization_config"] = quantization
    json.dump(config, open(os.path.join(d, "config.json"), "w"))
    reference = np.ascontiguousarray(reference, dtype=np.float32)
    save_file({NAME + ".weight": torch.from_numpy(reference)}, os.path.join(root, fmt + ".reference.safetensors"))
    lambda_max[fmt] = float(np.linalg.svd(reference.astype(np.float64), compute_uv=False)[0] ** 2)

def pack(codes, bits, axis):
    """Codes (unsigned, < 2**bits) packed into int32 along `axis`: code j of a word at bits j*bits."""
    per = 32 // bits
    codes = np.moveaxis(codes.astype(np.uint32), axis, 0)
    codes = codes.reshape(codes.shape[0] // per, per, *codes.shape[1:])
    words = np.zeros(codes.shape[:1] + codes.shape[2:], dtype=np.uint32)
    for j in range(per):
        words |= codes[:, j] << np.uint32(j * bits)
    return torch.from_numpy(np.moveaxis(words, 0, axis).view(np.int32).copy())

def f16(x):
    return (rng.uniform(0.001, 0.02, size=x)).astype(np.float16)

formats, lambda_max = [], {}
# GPTQ, original checkpoint format: zero points stored minus one; act-order g_idx.
for bits in (2, 4, 8):
    top = (1 << bits) - 1
    codes = rng.integers(0, top + 1, size=(IN, OUT))
    stored_zeros = rng.integers(0, top + 1, size=(IN // GROUP, OUT))
    scales = f16((IN // GROUP, OUT))
    g_idx = rng.permutation(np.repeat(np.arange(IN // GROUP), GROUP)).astype(np.int32)
    zeros = (stored_zeros + 1) & top
    w = ((codes - zeros[g_idx]).astype(np.float32) * scales[g_idx].astype(np.float32)).astype(np.float16)
    write(f"gptq{bits}", {NAME + ".qweight": pack(codes, bits, 0), NAME + ".qzeros": pack(stored_zeros, bits, 1),
        NAME + ".scales": torch.from_numpy(scales), NAME + ".g_idx": torch.from_numpy(g_idx)}, w.T,
        {"quant_method": "gptq", "bits": bits, "group_size": GROUP, "desc_act": True, "checkpoint_format": "gptq"})
    formats.append(f"gptq{bits}")
# AWQ (gemm): packed along the output, order 0 2 4 6 1 3 5 7.
ORDER = [0, 2, 4, 6, 1, 3, 5, 7]
def awq_pack(codes):
    shuffled = codes.reshape(codes.shape[0], -1, 8)[:, :, ORDER].reshape(codes.shape)
    return pack(shuffled, 4, 1)
codes = rng.integers(0, 16, size=(IN, OUT))
zeros = rng.integers(0, 16, size=(IN // GROUP, OUT))
scales = f16((IN // GROUP, OUT))
w = ((codes - np.repeat(zeros, GROUP, 0)).astype(np.float32) * np.repeat(scales, GROUP, 0).astype(np.float32)).astype(np.float16)
write("awq", {NAME + ".qweight": awq_pack(codes), NAME + ".qzeros": awq_pack(zeros), NAME + ".scales": torch.from_numpy(scales)},
      w.T, {"quant_method": "awq", "bits": 4, "group_size": GROUP, "version": "gemm", "zero_point": True})
formats.append("awq")
# compressed-tensors pack-quantized, asymmetric int4 groups of 32, bfloat16 scales:
# packed and decompressed by compressed-tensors itself.
from compressed_tensors.compressors.pack_quantized.helpers import pack_to_int32
from compressed_tensors.compressors.pack_quantized.base import PackedQuantizationCompressor
from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
args = QuantizationArgs(num_bits=4, type="int", symmetric=False, strategy="group", group_size=GROUP)
scheme = QuantizationScheme(targets=["Linear"], weights=args)
q = torch.from_numpy(rng.integers(-8, 8, size=(OUT, IN)).astype(np.int8))
zp = torch.from_numpy(rng.integers(-8, 8, size=(OUT, IN // GROUP)).astype(np.int8))
scale = torch.from_numpy(rng.uniform(0.001, 0.02, size=(OUT, IN // GROUP)).astype(np.float32)).to(torch.bfloat16)
packed = {"weight_packed": pack_to_int32(q, 4), "weight_scale": scale,
          "weight_zero_point": pack_to_int32(zp, 4, packed_dim=0), "weight_shape": torch.tensor([OUT, IN])}
w = PackedQuantizationCompressor.decompress(dict(packed), scheme)["weight"]
write("pack_quantized", {f"{NAME}.{k}": v for k, v in packed.items()}, w.float().numpy(),
      {"quant_method": "compressed-tensors", "format": "pack-quantized",
       "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int",
       "symmetric": False, "strategy": "group", "group_size": GROUP}}}})
formats.append("pack_quantized")
# bitsandbytes int8: w = q * SCB * (1/127 in float32), as int8_vectorwise_dequant.
q = rng.integers(-127, 128, size=(OUT, IN)).astype(np.int8)
scb = rng.uniform(0.01, 0.5, size=OUT).astype(np.float32)
w = q.astype(np.float32) * scb[:, None] * np.float32(7.874015718698502e-3)
write("bnb_int8", {NAME + ".weight": torch.from_numpy(q), NAME + ".SCB": torch.from_numpy(scb),
      NAME + ".weight_format": torch.tensor([0], dtype=torch.uint8)}, w,
      {"quant_method": "bitsandbytes", "load_in_8bit": True})
formats.append("bnb_int8")
# bitsandbytes NF4, blocks of 64, plain and with the absmax itself 8-bit quantised.
NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0],
    dtype=np.float32)
# bitsandbytes FP4's code book (its quant_map), as create_fp4_map gives it.
FP4 = np.array([0.0, 0.005208333333333333, 0.6666666666666666, 1.0, 0.3333333333333333, 0.5,
    0.16666666666666666, 0.25, -0.0, -0.005208333333333333, -0.6666666666666666, -1.0,
    -0.3333333333333333, -0.5, -0.16666666666666666, -0.25], dtype=np.float32)
for kind, nested in (("nf4", False), ("nf4", True), ("fp4", False)):
    book = NF4 if kind == "nf4" else FP4
    n = OUT * IN
    codes = rng.integers(0, 16, size=n).astype(np.uint8)
    byte = (codes[0::2] << 4) | codes[1::2]
    state = {"quant_type": kind, "blocksize": 64, "dtype": "float16", "shape": [OUT, IN]}
    tensors = {NAME + ".weight": torch.from_numpy(byte.reshape(-1, 1)),
               NAME + ".weight.quant_map": torch.from_numpy(book)}
    if nested:
        dynamic = np.sort(rng.uniform(-1, 1, size=256)).astype(np.float32)
        absmax_codes = rng.integers(0, 256, size=n // 64).astype(np.uint8)
        nested_absmax = rng.uniform(0.01, 0.1, size=(n // 64 + 255) // 256).astype(np.float32)
        offset = 0.0625
        absmax = dynamic[absmax_codes] * np.repeat(nested_absmax, 256)[: n // 64] + np.float32(offset)
        state.update({"nested_blocksize": 256, "nested_offset": offset, "nested_dtype": "float32"})
        tensors.update({NAME + ".weight.absmax": torch.from_numpy(absmax_codes),
                        NAME + ".weight.nested_absmax": torch.from_numpy(nested_absmax),
                        NAME + ".weight.nested_quant_map": torch.from_numpy(dynamic)})
    else:
        absmax = rng.uniform(0.01, 0.1, size=n // 64).astype(np.float32)
        tensors[NAME + ".weight.absmax"] = torch.from_numpy(absmax)
    state_bytes = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8).copy()
    tensors[NAME + ".weight.quant_state.bitsandbytes__" + kind] = torch.from_numpy(state_bytes)
    w = (book[codes] * np.repeat(absmax.astype(np.float32), 64)).astype(np.float16).reshape(OUT, IN)
    fmt = f"bnb_{kind}_nested" if nested else f"bnb_{kind}"
    write(fmt, tensors, w, {"quant_method": "bitsandbytes", "load_in_4bit": True,
          "bnb_4bit_quant_type": kind, "bnb_4bit_use_double_quant": nested})
    formats.append(fmt)
print(json.dumps({"formats": formats, "lambda_max": lambda_max}))
"#;

/// The weight's name in every fixture.
const NAME: &str = "model.layers.0.mlp.down_proj.weight";

fn made() -> &'static (PathBuf, Value) {
    static MADE: OnceLock<(PathBuf, Value)> = OnceLock::new();
    MADE.get_or_init(|| {
        let dir = fixtures::output_dir("quantized");
        let made = fixtures::python_json(MAKE, &[&dir]);
        (dir, made)
    })
}

/// Each format's weight equals its reference bit for bit, and its record the reference's.
#[test]
fn every_packed_format_dequantises_to_its_reference_bit_for_bit() {
    let (dir, made) = made();
    let formats: Vec<String> = serde_json::from_value(made["formats"].clone()).unwrap();
    assert_eq!(formats.len(), 9);
    for format in &formats {
        let model = rmt_torch::Model::load(dir.join(format)).unwrap();
        let names: Vec<&str> = model.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), 2, "{format}: {names:?}");
        let ours = model.tensors.iter().find(|t| t.name == NAME).unwrap();
        let reference =
            rmt_torch::Model::load(dir.join(format!("{format}.reference.safetensors"))).unwrap();
        let (a, b) = (ours.load().unwrap(), reference.tensors[0].load().unwrap());
        assert_eq!(a.size(), b.size(), "{format}");
        let differing = a
            .to_kind(Kind::Float)
            .view_dtype(Kind::Int)
            .ne_tensor(&b.view_dtype(Kind::Int))
            .sum(Kind::Int64)
            .int64_value(&[]);
        assert_eq!(differing, 0, "{format}: {differing} values differ");

        let layer = |path: PathBuf| -> Value {
            let json: Value =
                serde_json::from_str(&run_ok(&["analyze", path.to_str().unwrap(), "-f", "json"]))
                    .unwrap();
            json["layers"][0].clone()
        };
        let (a, b) = (
            layer(dir.join(format)),
            layer(dir.join(format!("{format}.reference.safetensors"))),
        );
        for field in ["lambda_max", "alpha", "log_norm", "stable_rank"] {
            assert_eq!(a[field], b[field], "{format}: {field}");
        }
        let numpy = made["lambda_max"][format].as_f64().unwrap();
        let ours = a["lambda_max"].as_f64().unwrap();
        assert!(
            (ours - numpy).abs() <= 1e-10 * numpy,
            "{format}: λmax {ours} vs numpy {numpy}"
        );
        let info = run_ok(&["info", dir.join(format).to_str().unwrap()]);
        let expected = match format.as_str() {
            "gptq2" => "GPTQ int2",
            "gptq4" => "GPTQ int4",
            "gptq8" => "GPTQ int8",
            "awq" => "AWQ int4",
            "pack_quantized" => "pack-quantized int4",
            "bnb_int8" => "bitsandbytes int8",
            "bnb_fp4" => "bitsandbytes FP4",
            _ => "bitsandbytes NF4",
        };
        assert!(info.contains(expected), "{format}: {info}");
    }
}

/// Writes argv[1]/llama (a 2-block Llama, float32, by save_pretrained) and beside it
/// `llama-Q8_0.gguf` and `llama-Q4_0.gguf` as llama.cpp's `convert_hf_to_gguf` writes them: its
/// tensor names (gguf's own name map) and the query and key rows permuted into llama.cpp's rotary
/// order. Prints, per format and HF layer name, numpy's ‖ΔW‖/‖W‖ of the dequantised weight.
const MAKE_LLAMA: &str = r#"
import json, os, sys, numpy as np, torch, gguf
from transformers import LlamaConfig, LlamaForCausalLM
root = sys.argv[1]
torch.manual_seed(0)
heads, kv_heads = 4, 2
model = LlamaForCausalLM(LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128,
    num_hidden_layers=2, num_attention_heads=heads, num_key_value_heads=kv_heads, tie_word_embeddings=False))
model.save_pretrained(os.path.join(root, "llama"))
from safetensors.numpy import load_file
state = load_file(os.path.join(root, "llama", "model.safetensors"))
names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
out = {}
for qtype in ("Q8_0", "Q4_0"):
    t = gguf.GGMLQuantizationType[qtype]
    writer = gguf.GGUFWriter(os.path.join(root, f"llama-{qtype}.gguf"), "llama")
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    errors = {}
    for name, value in state.items():
        w = value.astype(np.float32)
        base, suffix = name.rsplit(".", 1)
        gguf_name = names.get_name(base) + "." + suffix
        if name.endswith("q_proj.weight"):
            w = permute(w, heads)
        elif name.endswith("k_proj.weight"):
            w = permute(w, kv_heads)
        if w.ndim == 2:
            data = gguf.quants.quantize(w, t)
            writer.add_tensor(gguf_name, data, raw_dtype=t)
            back = gguf.quants.dequantize(data, t).astype(np.float64)
            w64 = w.astype(np.float64)
            errors[name] = float(np.linalg.norm(back - w64) / np.linalg.norm(w64))
        else:
            writer.add_tensor(gguf_name, w)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    out[qtype] = errors
print(json.dumps(out))
"#;

/// `compare` of a model with its GGUF quantisations matches every layer by its role, undoes
/// llama.cpp's rotary row order of q and k, and measures the quantisation error numpy measures;
/// the error's own analysis (its ESD against Marchenko-Pastur) is in each record, and rules judge
/// it, in `compare` and over a zoo of the copies (`zoo --base`).
#[test]
fn compare_measures_what_quantisation_did_across_formats() {
    let dir = fixtures::output_dir("quantized-llama");
    let errors: Value = fixtures::python_json(MAKE_LLAMA, &[&dir]);
    let base = dir.join("llama");
    for format in ["Q8_0", "Q4_0"] {
        let gguf = dir.join(format!("llama-{format}.gguf"));
        let json: Value = serde_json::from_str(&run_ok(&[
            "compare",
            base.to_str().unwrap(),
            gguf.to_str().unwrap(),
            "-f",
            "json",
        ]))
        .unwrap();
        let layers = json["layers"].as_array().unwrap();
        let expected = errors[format].as_object().unwrap();
        assert_eq!(
            layers.len(),
            expected.len(),
            "{format}: every matrix matched"
        );
        assert_eq!(
            json["unmatched"].as_array().map_or(0, Vec::len),
            0,
            "{format}"
        );
        for layer in layers {
            let name = layer["name"].as_str().unwrap();
            let numpy = expected[name].as_f64().unwrap();
            let ours = layer["relative_frobenius"].as_f64().unwrap();
            assert!(
                (ours - numpy).abs() <= 1e-9 * numpy,
                "{format} {name}: {ours} vs numpy {numpy}"
            );
            if name.ends_with("q_proj.weight") || name.ends_with("k_proj.weight") {
                assert_eq!(layer["storage"]["rotary"]["other_is_gguf"], true, "{name}");
            }
            assert!(layer["update"]["quality"].is_string(), "{format} {name}");
        }
    }
    let q4 = dir.join("llama-Q4_0.gguf");
    let output = fixtures::run(&[
        "compare",
        base.to_str().unwrap(),
        q4.to_str().unwrap(),
        "--fail-if",
        "max_relative_frobenius>0.05",
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "Q4_0 changes weights by over 5 %"
    );

    // A zoo of the quantised copies judged against the model they were made from.
    let zoo = dir.join("zoo");
    std::fs::create_dir_all(&zoo).unwrap();
    for format in ["Q8_0", "Q4_0"] {
        let name = format!("llama-{format}.gguf");
        std::fs::copy(dir.join(&name), zoo.join(&name)).unwrap();
    }
    let output = fixtures::run(&[
        "zoo",
        zoo.to_str().unwrap(),
        "--base",
        base.to_str().unwrap(),
        "--fail-if-changed",
        "max_relative_frobenius>0.05",
        "--cache",
        "none",
        "-f",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    for model in report["models"].as_array().unwrap() {
        let q4 = model["path"].as_str().unwrap().ends_with("Q4_0.gguf");
        let verdict = if q4 { "violated" } else { "healthy" };
        assert_eq!(model["verdict"], verdict, "{model}");
        assert_eq!(model["changes"]["layers"], 16);
        let format = if q4 { "Q4_0" } else { "Q8_0" };
        let largest = errors[format]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_f64().unwrap())
            .fold(0.0, f64::max);
        let ours = model["changes"]["max_relative_frobenius"].as_f64().unwrap();
        assert!(
            (ours - largest).abs() <= 1e-9 * largest,
            "{ours} vs {largest}"
        );
    }
}
