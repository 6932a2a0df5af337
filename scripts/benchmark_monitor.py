"""Side-by-side benchmark of spectra during training: rmt-torch's SpectralMonitor against
WeightWatcher's analyze() called from a PyTorch training loop, on the same network and data.

Usage: .venv/bin/python scripts/benchmark_monitor.py [--steps 300]

rmt-torch: `examples/lazy_rich` (built by `cargo build --release --examples`) trains the digits
MLP 64-256-256-10 with full-batch SGD for each of its three output scales and reports the
monitor's mean wall time per observation of the network (every Linear layer, everything
`analyze` computes). WeightWatcher 0.7.7: the same MLP in PyTorch, trained the same way, with
`analyze()` (its defaults) at the same steps; its mean wall time per call. Both run on the CPU
in this process's environment; the ratio is printed.
"""
import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "target" / "release" / "examples" / "lazy_rich"


def weightwatcher_cost(steps, every):
    import weightwatcher as ww
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    x = torch.from_numpy(np.load(ROOT / "models" / "digits_images.npy")).float() / 16.0
    y = torch.from_numpy(np.load(ROOT / "models" / "digits_labels.npy")).long()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                              torch.nn.ReLU(), torch.nn.Linear(256, 10))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.2)
    seconds = []
    for step in range(steps + 1):
        if step > 0:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()
        if step % every == 0:
            start = time.perf_counter()
            ww.WeightWatcher(model=net).analyze()
            seconds.append(time.perf_counter() - start)
    return sum(seconds) / len(seconds), len(seconds)


def main():
    parser = argparse.ArgumentParser(description="SpectralMonitor vs WeightWatcher in a training loop")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    if not EXAMPLE.exists():
        sys.exit(f"{EXAMPLE} not found: cargo build --release --examples")
    every = max(1, -(-args.steps // 3))
    result = subprocess.run([str(EXAMPLE), "--steps", str(args.steps), "--json"], check=True,
                            capture_output=True, text=True)
    regimes = json.loads(result.stdout)
    ours = sum(r["seconds_per_observation"] for r in regimes) / len(regimes)
    theirs, calls = weightwatcher_cost(args.steps, every)
    print(f"digits MLP 64-256-256-10, an observation every {every} steps")
    print(f"{'tool':<34} {'s per observation':>18}")
    print(f"{'rmt-torch SpectralMonitor':<34} {ours:>18.4f}")
    print(f"{'WeightWatcher analyze() (' + str(calls) + ' calls)':<34} {theirs:>18.4f}")
    print(f"ratio WW / rmt-torch: {theirs / ours:.1f}")


if __name__ == "__main__":
    main()
