"""LLM-scale benchmark: rmt-torch against WeightWatcher on a Llama-shaped bfloat16 checkpoint
directory, wall time and peak memory of each whole process, side by side in one run.

Usage:
  .venv/bin/python scripts/benchmark_llm.py [--dir DIR] [--layers 12] [--no-ww] [--estimate-7b]
      [--out FILE]

DIR (default target/llm/llama-<layers>) is made by scripts/make_llama_checkpoint.py when it
has no config.json: hidden 2048, intermediate 5632, 32 heads, 4 key-value heads, vocabulary
32000, in two shards (12 blocks: 1.32 GB; 22 blocks is TinyLlama's shape, 2.2 GB).
Needs a release build (scripts/rmt-torch builds it) and weightwatcher==0.7.7 in .venv.

Each tool runs once as a whole process under `/usr/bin/time -v` (start-up, imports, reading,
analysis): rmt-torch `analyze DIR` with its defaults, WeightWatcher `WeightWatcher(model=DIR)
.analyze()` with its defaults. Printed: wall time, peak RSS, the model's size, the bound
rmt-torch states (libtorch's footprint plus what the layers in flight may hold together: the
largest layer's working set — the layer as stored, one 32 MiB band of it in f64 and its f64
Gram matrix — or, when more, one eigensolve of the largest Gram matrix per thread, its matrix
and the eigensolver's copy, at least 64 MiB each), the ratios, and λmax and α of every layer
both analyse against each other.

--estimate-7b also makes a one-block checkpoint of Llama-2-7B's shape (hidden 4096,
intermediate 11008, 32 heads, vocabulary 32000; 0.93 GB), times rmt-torch on its block and
on the whole, and extrapolates to 32 blocks: wall = whole + 31 × the block's analysis time;
peak memory is measured, since the largest layers (embeddings and head) are the 7B model's.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "rmt-torch"
LIBTORCH_FOOTPRINT = 0.5e9  # bytes: `rmt-torch info` peaks at about 470 MB on this machine
BAND_BYTES = 32 << 20  # src/spectrum/gram.rs GRAM_CHUNK_BYTES
SMALL_LAYER_BYTES = 64 << 20  # src/analysis/schedule.rs

WEIGHTWATCHER = """
import sys, weightwatcher
frame = weightwatcher.WeightWatcher(model=sys.argv[1]).analyze()
frame.to_csv(sys.argv[2])
"""


def timed(command):
    """(wall seconds, peak RSS bytes, stdout) of one process under /usr/bin/time -v."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        result = subprocess.run(["/usr/bin/time", "-v", "-o", report.name, *command],
                                capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"{command[0]} failed:\n{result.stderr[-2000:]}")
        text = report.read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    seconds = sum(float(part) * 60 ** power for power, part in enumerate(reversed(wall.split(":"))))
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) * 1024
    return seconds, peak, result.stdout


def make_checkpoint(directory, *arguments):
    if not (directory / "config.json").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_llama_checkpoint.py"), str(directory),
                        *arguments], check=True)


def matrix_shapes(directory):
    """(name, rows, cols, bytes per entry) of every 2-D tensor, from the safetensors headers."""
    shapes = []
    for shard in sorted(directory.glob("*.safetensors")):
        with open(shard, "rb") as file:
            header = json.loads(file.read(int.from_bytes(file.read(8), "little")))
        for name, entry in header.items():
            if name != "__metadata__" and len(entry["shape"]) == 2:
                rows, cols = entry["shape"]
                shapes.append((name, rows, cols, {"BF16": 2, "F16": 2, "F32": 4}[entry["dtype"]]))
    return shapes


def in_flight_bytes(directory, threads):
    """(largest layer's working set, what the layers in flight may hold together) in bytes, as
    src/analysis/schedule.rs and src/spectrum/memory.rs count them."""
    largest = solving = 0
    for _, rows, cols, element in matrix_shapes(directory):
        n, m = max(rows, cols), min(rows, cols)
        gram = 8 * m * m
        band = min(8 * n * m, BAND_BYTES + 8 * m)
        largest = max(largest, n * m * element + gram + max(band, gram / 8), 2 * gram)
        solving = max(solving, 2 * gram)
    return largest, max(largest, threads * max(solving, SMALL_LAYER_BYTES))


def run_rmt_torch(directory, *extra):
    seconds, peak, stdout = timed([str(BINARY), "analyze", str(directory), "--quiet", "--format", "json", *extra])
    return seconds, peak, json.loads(stdout)


def compare(ours, ww_csv):
    """Worst relative difference of λmax and α over the layers both analysed, and their count."""
    import pandas
    frame = pandas.read_csv(ww_csv)
    theirs = {row["name"]: row for _, row in frame.iterrows()}
    worst = {"lambda_max": 0.0, "alpha": 0.0}
    matched = 0
    for layer in ours["layers"]:
        row = theirs.get(layer["name"].removesuffix(".weight"))
        if row is None:
            continue
        matched += 1
        for ours_key, their_key in (("lambda_max", "lambda_max"), ("alpha", "alpha")):
            if layer.get(ours_key) is not None:
                relative = abs(layer[ours_key] - row[their_key]) / abs(row[their_key])
                worst[ours_key] = max(worst[ours_key], relative)
    return matched, len(frame), worst


def estimate_7b(base):
    directory = base / "llama-7b-one-block"
    make_checkpoint(directory, "--hidden", "4096", "--intermediate", "11008", "--layers", "1", "--heads", "32",
                    "--kv-heads", "32", "--shards", "1")
    whole_seconds, whole_peak, _ = run_rmt_torch(directory)
    _, _, block = run_rmt_torch(directory, "--layers", r"model\.layers\.0\.")
    per_block = block["timing"]["spectra_seconds"] + block["timing"]["statistics_seconds"]
    wall = whole_seconds + 31 * per_block
    print(f"\nLlama-2-7B shape (32 blocks of 4096/11008, 13.5 GB bf16), rmt-torch on this machine, "
          f"extrapolated from one block ({per_block:.1f} s) and the embeddings and head: "
          f"{wall / 60:.1f} min, peak RSS {whole_peak / 1e9:.2f} GB (measured)")
    return {"per_block_seconds": per_block, "one_block_seconds": whole_seconds, "estimated_seconds": wall,
            "peak_rss_bytes": whole_peak}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--no-ww", action="store_true")
    parser.add_argument("--estimate-7b", action="store_true")
    parser.add_argument("--out", type=Path, help="write the measurements as JSON")
    args = parser.parse_args()
    base = ROOT / "target" / "llm"
    directory = args.dir or base / f"llama-{args.layers}"
    make_checkpoint(directory, "--layers", str(args.layers))
    size = sum(path.stat().st_size for path in directory.iterdir())
    threads = len(os.sched_getaffinity(0))
    largest, in_flight = in_flight_bytes(directory, threads)
    bound = LIBTORCH_FOOTPRINT + in_flight

    ours_seconds, ours_peak, ours = run_rmt_torch(directory)
    fast_seconds, fast_peak, fast = run_rmt_torch(directory, "--precision", "fast")
    results = {"model": str(directory), "model_bytes": size, "stated_bound_bytes": bound,
               "largest_working_set_bytes": largest,
               "rmt_torch": {"seconds": ours_seconds, "peak_rss_bytes": ours_peak, "layers": len(ours["layers"])},
               "rmt_torch_fast": {"seconds": fast_seconds, "peak_rss_bytes": fast_peak, "layers": len(fast["layers"])}}
    rows = [("rmt-torch", ours_seconds, ours_peak), ("rmt-torch --precision fast", fast_seconds, fast_peak)]
    if not args.no_ww:
        with tempfile.NamedTemporaryFile(suffix=".csv") as csv:
            ww_seconds, ww_peak, _ = timed([sys.executable, "-c", WEIGHTWATCHER, str(directory), csv.name])
            matched, ww_layers, worst = compare(ours, csv.name)
        results["weightwatcher"] = {"seconds": ww_seconds, "peak_rss_bytes": ww_peak, "layers": ww_layers}
        results["agreement"] = {"layers_matched": matched, "worst_relative": worst}
        rows.append(("WeightWatcher 0.7.7", ww_seconds, ww_peak))

    print(f"{directory}: {size / 1e9:.2f} GB on disk; largest layer's working set {largest / 1e9:.2f} GB; "
          f"rmt-torch's stated bound (libtorch + what {threads} threads' layers may hold together) "
          f"{bound / 1e9:.2f} GB")
    print("| tool | layers | wall (s) | peak RSS (GB) |")
    print("|---|---|---|---|")
    for (tool, seconds, peak), key in zip(rows, ("rmt_torch", "rmt_torch_fast", "weightwatcher")):
        print(f"| {tool} | {results[key]['layers']} | {seconds:.1f} | {peak / 1e9:.2f} |")
    if not args.no_ww:
        print(f"WeightWatcher / rmt-torch: {ww_seconds / ours_seconds:.1f}× the time "
              f"({ww_seconds / fast_seconds:.1f}× with --precision fast), "
              f"{ww_peak / ours_peak:.1f}× the memory; {matched} layers in both: λmax within "
              f"{worst['lambda_max']:.1e}, α within {worst['alpha']:.1e} (relative; defaults differ, see README)")
    print(f"rmt-torch peak RSS {ours_peak / size:.0%} of the model's size, "
          f"{'within' if ours_peak <= bound else 'ABOVE'} the stated bound, "
          f"{(ours_peak - LIBTORCH_FOOTPRINT - largest) / 1e6:+.0f} MB against libtorch's "
          f"{LIBTORCH_FOOTPRINT / 1e9:.1f} GB plus the largest layer's working set")
    if args.estimate_7b:
        results["estimate_7b"] = estimate_7b(base)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
