"""`rmt-torch analyze --shard I/N` of one Llama-shaped bfloat16 checkpoint directory against the
single run: wall time of each share and of the whole, in one run.

Usage:
  .venv/bin/python scripts/benchmark_shards.py [--layers 12] [--hidden 2048]
      [--intermediate 5632] [--shares 2] [--out FILE]

Each share runs alone with the whole machine, one after the other, as it would on a machine of
its own (N Slurm tasks on N nodes); the single run likewise. Printed: every share's time, the
slowest share against the single run (target ≤ 0.6× for 2 shares), and whether the merged
shares equal the single run (timing aside).
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_llm import BINARY, ROOT, make_checkpoint, run_rmt_torch  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--shares", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the measurements as JSON")
    args = parser.parse_args()
    directory = ROOT / "target" / "llm" / f"compare-{args.layers}-{args.hidden}-base"
    make_checkpoint(directory, "--layers", str(args.layers), "--hidden", str(args.hidden),
                    "--intermediate", str(args.intermediate), "--seed", "0")
    single_seconds, _, single = run_rmt_torch(directory)
    print(f"single run      {single_seconds:7.1f} s  {len(single['layers'])} layers")
    shares = []
    with tempfile.TemporaryDirectory() as work:
        paths = []
        for index in range(args.shares):
            seconds, _, part = run_rmt_torch(directory, "--shard", f"{index}/{args.shares}")
            path = Path(work) / f"share-{index}.json"
            path.write_text(json.dumps(part))
            paths.append(str(path))
            shares.append(seconds)
            print(f"share {index}/{args.shares}       {seconds:7.1f} s  {len(part['layers'])} layers")
        merged = json.loads(subprocess.run([str(BINARY), "analyze", "merge", *paths, "-f", "json"],
                                           capture_output=True, text=True, check=True).stdout)
    merged.pop("timing")
    single.pop("timing")
    print(f"slowest share / single run: {max(shares) / single_seconds:.2f}× "
          f"(target ≤ 0.6× for 2 shares); merged == single: {merged == single}")
    if args.out:
        args.out.write_text(json.dumps({"single": single_seconds, "shares": shares}, indent=1))


if __name__ == "__main__":
    main()
