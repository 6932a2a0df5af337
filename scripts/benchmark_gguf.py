"""`rmt-torch analyze` of a Q8_0 GGUF against the same model's bfloat16 checkpoint directory:
wall time and peak memory of each whole process, side by side in one run.

Usage:
  .venv/bin/python scripts/benchmark_gguf.py [--layers 12] [--hidden 2048]
      [--intermediate 5632] [--out FILE]

The directory (target/llm/compare-<layers>-<hidden>-base) is made by
scripts/make_llama_checkpoint.py; the GGUF beside it by the `gguf` package (llama.cpp's own
writer and Q8_0 quantiser) from the same weights, with llama.cpp's tensor names. Each run is one
process under `/usr/bin/time -v`: `rmt-torch analyze PATH --format json` with its defaults.
Printed: wall time, peak RSS and the ratios (target: GGUF within 1.2× the time and 10 % the
memory of the bf16 directory), and the largest relative difference of λmax between the two
(Q8_0's error, not the tool's).
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_llm import ROOT, make_checkpoint, run_rmt_torch  # noqa: E402


def write_gguf(directory, target):
    """The directory's weights as a Q8_0 GGUF (norm vectors in float32), llama.cpp's names."""
    import gguf
    import numpy as np
    import torch
    from safetensors.torch import load_file

    config = json.loads((directory / "config.json").read_text())
    blocks = config["num_hidden_layers"]
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, blocks)
    writer = gguf.GGUFWriter(str(target), "llama")
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config.get("num_key_value_heads", config["num_attention_heads"]))
    for shard in sorted(directory.glob("*.safetensors")):
        for name, tensor in load_file(str(shard)).items():
            base, suffix = name.rsplit(".", 1)
            values = tensor.to(torch.float32).numpy()
            if values.ndim == 2 and values.shape[1] % 32 == 0:
                writer.add_tensor(f"{names.get_name(base)}.{suffix}",
                                  gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q8_0),
                                  raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            else:
                writer.add_tensor(f"{names.get_name(base)}.{suffix}", np.ascontiguousarray(values))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--out", type=Path, help="write the measurements as JSON")
    args = parser.parse_args()
    directory = ROOT / "target" / "llm" / f"compare-{args.layers}-{args.hidden}-base"
    make_checkpoint(directory, "--layers", str(args.layers), "--hidden", str(args.hidden),
                    "--intermediate", str(args.intermediate), "--seed", "0")
    gguf_path = directory.parent / f"{directory.name}-Q8_0.gguf"
    if not gguf_path.exists():
        write_gguf(directory, gguf_path)
    size = lambda path: sum(p.stat().st_size for p in ([path] if path.is_file() else path.iterdir()))
    results = {}
    for label, path in (("bf16 directory", directory), ("Q8_0 GGUF", gguf_path)):
        seconds, peak, report = run_rmt_torch(path)
        results[label] = {"seconds": seconds, "peak_bytes": peak, "bytes": size(path),
                          "lambda_max": [layer["lambda_max"] for layer in report["layers"]]}
        print(f"{label:15} {size(path) / 1e9:5.2f} GB  {seconds:7.1f} s  peak {peak / 1e9:5.2f} GB")
    base, quantised = results["bf16 directory"], results["Q8_0 GGUF"]
    print(f"GGUF / directory: time {quantised['seconds'] / base['seconds']:.2f}× (target ≤ 1.2×), "
          f"peak memory {quantised['peak_bytes'] / base['peak_bytes']:.2f}× (target ≤ 1.10×)")
    pairs = zip(sorted(base["lambda_max"]), sorted(quantised["lambda_max"]))
    print(f"largest relative difference of λmax (sorted): "
          f"{max(abs(a - b) / a for a, b in pairs):.2e} (Q8_0's rounding)")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
