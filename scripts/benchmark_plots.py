"""Side-by-side benchmark of figures: rmt-torch `analyze --plots` against WeightWatcher's
`analyze(plot=True, savefig=DIR)` on the same models, in one run.

Usage: .venv/bin/python scripts/benchmark_plots.py [MODEL ...] [--out DIR] [--repeat N]

Default models: alexnet resnet18 (torchvision, random initialisation; exported to TorchScript
by scripts/export_torchvision.py). Needs `.venv/bin/pip install torchvision==0.26.0
weightwatcher==0.7.7` and a release build (scripts/rmt-torch builds it).

Each tool runs as a whole process (start-up, imports, loading, analysis, figures), the fastest
of --repeat runs (default 1: WeightWatcher's figures take minutes). rmt-torch draws per layer the
ESD against Marchenko-Pastur, the power-law tail, and (where the layer has enough levels)
spacings and number variance, plus the per-model figure, as PNG; WeightWatcher draws its ESD,
log-log ESD and power-law fit figures per layer with matplotlib. The table counts the PNG files
each wrote, prints the ratio of the times, and times rmt-torch without figures too (what drawing
adds).
"""
import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmark import BINARY, ROOT, export

WEIGHTWATCHER = r"""
import logging, sys, torch, torchvision, weightwatcher as ww
import matplotlib
matplotlib.use("Agg")
logging.getLogger("weightwatcher").setLevel(logging.ERROR)
name, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
model = torchvision.models.get_model(name, weights=None).eval()
ww.WeightWatcher(model=model).analyze(plot=True, savefig=out)
"""


def timed(command, figures):
    """Wall time of a whole process that writes its figures into the fresh folder `figures`."""
    shutil.rmtree(figures, ignore_errors=True)
    figures.mkdir(parents=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return seconds, len(list(figures.rglob("*.png")))


def main():
    parser = argparse.ArgumentParser(description="rmt-torch --plots vs WeightWatcher plot=True, side by side")
    parser.add_argument("models", nargs="*", default=["alexnet", "resnet18"])
    parser.add_argument("--out", default=str(ROOT / "bench-out"))
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the fastest counts")
    args = parser.parse_args()
    if not BINARY.exists():
        sys.exit(f"{BINARY} not found: build it first (scripts/rmt-torch doctor)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.models:
        path = export(name, out)
        ours_dir, theirs_dir = out / f"{name}-figures-rmt", out / f"{name}-figures-ww"
        analyze = [str(BINARY), "analyze", str(path), "--quiet", "--device", "cpu", "--format", "json",
                   "--output", str(out / f"{name}-plots.json")]
        ours = min((timed([*analyze, "--plots", str(ours_dir)], ours_dir) for _ in range(args.repeat)),
                   key=lambda r: r[0])
        bare = min(timed(analyze, out / f"{name}-no-figures")[0] for _ in range(args.repeat))
        theirs = min((timed([sys.executable, "-c", WEIGHTWATCHER, name, str(theirs_dir)], theirs_dir)
                      for _ in range(args.repeat)), key=lambda r: r[0])
        rows.append((name, bare, ours, theirs))
    print(f"{'model':<10} {'rmt-torch no figures s':>22} {'rmt-torch s':>12} {'figures':>8} "
          f"{'WeightWatcher s':>16} {'figures':>8} {'WW/rmt':>7}")
    for name, bare, (ours_s, ours_n), (theirs_s, theirs_n) in rows:
        print(f"{name:<10} {bare:>22.2f} {ours_s:>12.2f} {ours_n:>8} {theirs_s:>16.2f} {theirs_n:>8} "
              f"{theirs_s / ours_s:>7.1f}")


if __name__ == "__main__":
    main()
