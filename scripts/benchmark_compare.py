"""`rmt-torch compare` against WeightWatcher 0.7.7's `analyze(base_model=…)` on two Llama-shaped
bfloat16 checkpoint directories, wall time and peak memory of each whole process, side by side
in one run.

Usage:
  .venv/bin/python scripts/benchmark_compare.py [--layers 12] [--hidden 2048]
      [--intermediate 5632] [--out FILE]

The two directories (target/llm/compare-<layers>-{base,tuned}) are made by
scripts/make_llama_checkpoint.py with seeds 0 and 1 (the cost does not depend on the values).
Each tool runs once as a whole process under `/usr/bin/time -v`: rmt-torch `compare BASE TUNED`
with its defaults (each side and the update analysed in f64, distances, CKA), WeightWatcher
`WeightWatcher(model=TUNED, base_model=BASE).analyze()` (the update alone). Printed: wall time,
peak RSS, the ratio, and λmax and α of every update both analyse against each other.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_llm import BINARY, ROOT, make_checkpoint, timed  # noqa: E402

WEIGHTWATCHER = """
import logging, sys, weightwatcher
logging.getLogger("weightwatcher").setLevel(logging.ERROR)
frame = weightwatcher.WeightWatcher(model=sys.argv[2], base_model=sys.argv[1]).analyze()
frame.to_csv(sys.argv[3])
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--out", type=Path, help="write the measurements as JSON")
    args = parser.parse_args()
    if not BINARY.exists():
        sys.exit(f"{BINARY} not found: build it first (cargo build --release)")
    base_dir = ROOT / "target" / "llm"
    shape = ["--layers", str(args.layers), "--hidden", str(args.hidden), "--intermediate", str(args.intermediate)]
    base = base_dir / f"compare-{args.layers}-{args.hidden}-base"
    tuned = base_dir / f"compare-{args.layers}-{args.hidden}-tuned"
    make_checkpoint(base, *shape, "--seed", "0")
    make_checkpoint(tuned, *shape, "--seed", "1")
    size = sum(f.stat().st_size for f in tuned.glob("*.safetensors"))

    ours_seconds, ours_peak, stdout = timed(
        [str(BINARY), "compare", str(base), str(tuned), "--quiet", "--format", "json"])
    ours = json.loads(stdout)
    with tempfile.NamedTemporaryFile(suffix=".csv") as csv:
        ww_seconds, ww_peak, _ = timed([sys.executable, "-c", WEIGHTWATCHER, str(base), str(tuned), csv.name])
        import pandas
        theirs = {row["name"]: row for _, row in pandas.read_csv(csv.name).iterrows()}
    worst = {"lambda_max": 0.0, "alpha": 0.0}
    matched = 0
    for layer in ours["layers"]:
        row = theirs.get(layer["name"].removesuffix(".weight"))
        update = layer.get("update")
        if row is None or update is None:
            continue
        matched += 1
        for key in worst:
            if update.get(key) is not None:
                worst[key] = max(worst[key], abs(update[key] - row[key]) / abs(row[key]))
    print(f"two {args.layers}-block Llama-shaped bf16 directories ({size / 1e9:.2f} GB each), "
          f"{len(ours['layers'])} layers compared, {matched} updates matched with WeightWatcher's")
    print(f"  rmt-torch compare:                     {ours_seconds:7.1f} s, peak RSS {ours_peak / 1e9:.2f} GB "
          "(each side and the update analysed, distances)")
    print(f"  WeightWatcher analyze(base_model=...): {ww_seconds:7.1f} s, peak RSS {ww_peak / 1e9:.2f} GB "
          "(the update alone)")
    print(f"  ratio {ww_seconds / ours_seconds:.2f}x; worst relative difference of the updates: "
          f"λmax {worst['lambda_max']:.1e}, α {worst['alpha']:.1e}")
    if args.out:
        args.out.write_text(json.dumps({
            "layers": args.layers, "bytes": size, "compared": len(ours["layers"]), "matched": matched,
            "rmt_torch": {"seconds": ours_seconds, "peak_rss_bytes": ours_peak},
            "weightwatcher": {"seconds": ww_seconds, "peak_rss_bytes": ww_peak},
            "worst_relative": worst,
        }, indent=2))


if __name__ == "__main__":
    main()
