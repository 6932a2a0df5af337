"""Side-by-side benchmark: rmt-torch against WeightWatcher and PyTorch's own f64 Gram + eigvalsh.

Usage: .venv/bin/python scripts/benchmark.py [MODEL ...] [--out DIR] [--no-ww] [--device cpu|cuda]

Default models: alexnet vgg19 resnet50 (torchvision, random initialisation: the cost does not
depend on the values). Needs `.venv/bin/pip install torchvision==0.26.0 weightwatcher==0.7.7`
and a release build (scripts/rmt-torch builds it).

Timed, on the same machine in one run, each as a whole process (start-up, imports, loading),
every tool the fastest of --repeat runs (default 2):
- rmt-torch `analyze` (every Linear/Conv2d layer, metrics, JSON out), default f64 path and
  `--precision fast`;
- PyTorch: the TorchScript file loaded, the same layers sliced the same way, W in f64, Gram WᵀW
  and `torch.linalg.eigvalsh`;
- WeightWatcher 0.7.7: torchvision builds the model, `analyze()` with its defaults.
The references also report their compute-only time (model already in memory), kept in the JSON.
"stats %" is the share of rmt-torch's f64 run spent on everything computed from the eigenvalues
(power-law fits, Hill, metrics), from its JSON `timing`; "spectra/limit" is rmt-torch's
spectra phase (reading each layer, Gram products, eigensolves) over PyTorch's compute-only time. Also checked: the fast path's eigenvalues and α against the f64 path (max |Δλ|/λmax and max
relative Δα over layers), and our per-layer spectral_norm, log_norm, stable_rank, entropy, alpha,
xmin, D, alpha_weighted against WeightWatcher's (ESD convention ww, same layers).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "rmt-torch"


def export(name, out_dir):
    path = out_dir / f"{name}.pt"
    if not path.exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "export_torchvision.py"), name, str(path), "--random"],
                       check=True)
    return path


def best_of(repeat, run):
    """The fastest of `repeat` runs: (seconds, result). This machine is shared and noisy."""
    runs = [run() for _ in range(repeat)]
    return min(runs, key=lambda r: r[0])


def run_rmt_torch(path, device, *extra):
    start = time.perf_counter()
    result = subprocess.run([str(BINARY), "analyze", str(path), "--quiet", "--device", device, "--format", "json",
                             "--layers", r"(features|classifier|conv|fc|layer|downsample).*weight$", *extra],
                            check=True, capture_output=True, text=True)
    return time.perf_counter() - start, json.loads(result.stdout)


TORCH_REFERENCE = r"""
import sys, time, torch
path, device = sys.argv[1], sys.argv[2]
module = torch.jit.load(path)
weights = [p.detach() for name, p in module.named_parameters() if p.dim() in (2, 4)]
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
start = time.perf_counter()
with torch.no_grad():
    for w in weights:
        w = w.to(device=device, dtype=torch.float64)
        mats = w.permute(2, 3, 0, 1).reshape(-1, w.shape[0], w.shape[1]) if w.dim() == 4 else w.unsqueeze(0)
        if mats.shape[1] < mats.shape[2]:
            mats = mats.transpose(1, 2)
        torch.linalg.eigvalsh(mats.transpose(1, 2) @ mats).cpu()
sync()
print(time.perf_counter() - start)
"""

WEIGHTWATCHER = r"""
import logging, sys, time, torch, torchvision, weightwatcher as ww
logging.getLogger("weightwatcher").setLevel(logging.ERROR)
name, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
model = torchvision.models.get_model(name, weights=None).eval()
start = time.perf_counter()
details = ww.WeightWatcher(model=model).analyze()
print(time.perf_counter() - start)
details.to_csv(out)
"""


def timed_python(code, *args):
    """Whole-process wall time of a Python reference, and the compute time it reports."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], check=True, capture_output=True, text=True)
    return time.perf_counter() - start, float(result.stdout.strip().splitlines()[-1])


def fast_error(exact, fast):
    """Largest |Δλ|/λmax and largest relative change of α between the fast and f64 paths."""
    worst, worst_alpha = 0.0, 0.0
    for a, b in zip(exact["layers"], fast["layers"]):
        lam_max = max(a["eigenvalues"])
        worst = max(worst, max(abs(x - y) for x, y in zip(a["eigenvalues"], b["eigenvalues"])) / lam_max)
        if "alpha" in a and "alpha" in b:
            worst_alpha = max(worst_alpha, abs(a["alpha"] - b["alpha"]) / a["alpha"])
    return worst, worst_alpha


def ww_agreement(ours, details_csv):
    """Largest relative difference per metric over layers matched by module name."""
    import pandas
    details = pandas.read_csv(details_csv)
    by_name = {layer["name"].removesuffix(".weight"): layer for layer in ours["layers"]}
    worst = {"spectral_norm": 0.0, "log_norm": 0.0, "stable_rank": 0.0, "entropy": 0.0, "alpha": 0.0, "xmin": 0.0,
             "D": 0.0, "alpha_weighted": 0.0}
    matched = 0
    for _, row in details.iterrows():
        layer = by_name.get(row["longname"] if "longname" in row else row["name"])
        if layer is None:
            continue
        matched += 1
        for key in worst:
            theirs, mine = float(row[key]), layer.get(key, float("nan"))
            worst[key] = max(worst[key], abs(mine - theirs) / max(abs(theirs), 1e-12))
    return matched, worst


def main():
    parser = argparse.ArgumentParser(description="rmt-torch vs WeightWatcher vs PyTorch, side by side")
    parser.add_argument("models", nargs="*", default=["alexnet", "vgg19", "resnet50"])
    parser.add_argument("--out", default=str(ROOT / "bench-out"))
    parser.add_argument("--no-ww", action="store_true", help="skip WeightWatcher")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeat", type=int, default=2, help="runs per tool; the fastest counts (default 2)")
    args = parser.parse_args()
    if not BINARY.exists():
        sys.exit(f"{BINARY} missing: run scripts/rmt-torch doctor (or cargo build --release) first")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, device {args.device}", flush=True)
    rows = []
    for name in args.models:
        path = export(name, out_dir)
        t_rmt, exact = best_of(args.repeat, lambda: run_rmt_torch(path, args.device, "--eigenvalues"))
        t_fast, fast = best_of(args.repeat, lambda: run_rmt_torch(path, args.device, "--precision", "fast", "--eigenvalues"))
        t_torch, t_torch_compute = best_of(args.repeat, lambda: timed_python(TORCH_REFERENCE, path, args.device))
        row = {"model": name, "layers": len(exact["layers"]), "rmt_f64_s": t_rmt, "rmt_fast_s": t_fast,
               "torch_f64_s": t_torch, "torch_f64_compute_only_s": t_torch_compute,
               "rmt_statistics_share": exact["timing"]["statistics_seconds"] / t_rmt,
               "rmt_spectra_s": exact["timing"]["spectra_seconds"],
               "rmt_spectra_over_torch_compute": exact["timing"]["spectra_seconds"] / t_torch_compute,
               **dict(zip(["fast_max_eig_err", "fast_max_alpha_err"], fast_error(exact, fast)))}
        if not args.no_ww:
            details_csv = out_dir / f"{name}_ww_details.csv"
            t_ww, t_ww_compute = best_of(args.repeat, lambda: timed_python(WEIGHTWATCHER, name, details_csv))
            matched, worst = ww_agreement(exact, details_csv)
            row.update({"ww_s": t_ww, "ww_compute_only_s": t_ww_compute, "ww_layers_matched": matched,
                        **{f"ww_max_rel_diff_{k}": v for k, v in worst.items()}})
        rows.append(row)
        print(json.dumps(row), flush=True)

    print()
    header = (f"{'model':10} {'rmt f64':>8} {'rmt fast':>9} {'torch f64':>10} {'WW':>8} {'torch/rmt':>10} "
              f"{'WW/rmt':>7} {'WW/fast':>8} {'fast err':>9} {'stats %':>8} {'spectra/limit':>14}")
    print(header)
    print("-" * len(header))
    def cell(value, width, spec):
        return f"{value:{width}{spec}}" if value is not None else " " * (width - 1) + "-"

    for r in rows:
        ww = r.get("ww_s")
        print(f"{r['model']:10} {r['rmt_f64_s']:8.2f} {r['rmt_fast_s']:9.2f} {r['torch_f64_s']:10.2f} "
              f"{cell(ww, 8, '.2f')} {r['torch_f64_s'] / r['rmt_f64_s']:10.2f} "
              f"{cell(ww and ww / r['rmt_f64_s'], 7, '.1f')} {cell(ww and ww / r['rmt_fast_s'], 8, '.1f')} "
              f"{r['fast_max_eig_err']:9.1e} {100 * r['rmt_statistics_share']:8.1f} "
              f"{r['rmt_spectra_over_torch_compute']:14.2f}")
    (out_dir / "benchmark.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
