"""rmt_torch.analyze against WeightWatcher in one Python process, on the same in-memory models.

Usage:
  .venv/bin/python scripts/benchmark_python.py [--runs N] [--models alexnet,vgg19,resnet50] [--floor]

Builds each torchvision model at random initialisation (seed 0) once, then times, fastest of
--runs (default 2): rmt_torch.analyze(model) with the default f64 path and with
precision="fast", and ww.WeightWatcher(model=model).analyze(). It checks α against
WeightWatcher layer by layer, and states the binding's own overhead: in-process wall time minus
the engine's own spectra + statistics time (the `timing` the CLI reports for the same work).

With --floor it also measures each model on one core (a child process with one libtorch and one
rayon thread) and prints the floor that work sets on this process's threads, packed perfectly,
and the WeightWatcher time each target (4× f64, 8× fast) then needs.
"""
import argparse
import json
import logging
import os
import subprocess
import sys
import time

import torch
import torchvision
import weightwatcher as ww

import rmt_torch


def fastest(runs, call):
    """The fastest of `runs` calls: its wall time and its result."""
    best = (float("inf"), None)
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        best = min(best, (time.perf_counter() - started, result), key=lambda pair: pair[0])
    return best


def build(name):
    torch.manual_seed(0)
    return torchvision.models.get_model(name, weights=None).eval()


def engine_seconds(analysis):
    timing = analysis.record["timing"]
    return timing["spectra_seconds"] + timing["statistics_seconds"]


def one_core(name, runs):
    """Engine seconds of the fastest of `runs` analyses per precision, in this process, which
    the parent started with one rayon thread; printed as JSON."""
    torch.set_num_threads(1)
    model = build(name)
    seconds = {
        precision: min(engine_seconds(rmt_torch.analyze(model, device="cpu", precision=precision)) for _ in range(runs))
        for precision in ("f64", "fast")
    }
    print(json.dumps(seconds))


def floor(name, runs, threads):
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    child = subprocess.run(
        [sys.executable, __file__, "--one-core", name, "--runs", str(runs)],
        env=env, check=True, capture_output=True, text=True,
    )
    seconds = json.loads(child.stdout.strip().splitlines()[-1])
    f64, fast = seconds["f64"] / threads, seconds["fast"] / threads
    return (
        f"| {name} | {seconds['f64']:.2f} | {seconds['fast']:.2f} | {f64:.2f} | {fast:.2f} | "
        f"{4 * f64:.2f} | {8 * fast:.2f} |"
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--models", default="alexnet,vgg19,resnet50")
    parser.add_argument("--floor", action="store_true", help="also measure each model on one core")
    parser.add_argument("--one-core", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_core:
        one_core(args.one_core, args.runs)
        return
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    print(f"torch threads {torch.get_num_threads()}, runs {args.runs} (fastest kept), seconds")
    print("| model | rmt_torch f64 | rmt_torch fast | WeightWatcher | WW / f64 | WW / fast | binding overhead | max |Δα| vs WW |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        model = build(name)
        f64, analysis = fastest(args.runs, lambda: rmt_torch.analyze(model, device="cpu"))
        fast, _ = fastest(args.runs, lambda: rmt_torch.analyze(model, device="cpu", precision="fast"))
        reference, details = fastest(args.runs, lambda: ww.WeightWatcher(model=model).analyze())
        engine = engine_seconds(analysis)
        theirs = details.set_index("longname")["alpha"]
        ours = {layer["name"].removesuffix(".weight"): layer.get("alpha") for layer in analysis.layers}
        worst = max(abs(ours[name] - alpha) for name, alpha in theirs.items())
        print(
            f"| {name} | {f64:.2f} | {fast:.2f} | {reference:.2f} | {reference / f64:.1f}× | "
            f"{reference / fast:.1f}× | {f64 - engine:.3f} | {worst:.1e} |"
        )
    if args.floor:
        threads = torch.get_num_threads()
        print(f"\nOne core (engine seconds, fastest of {args.runs}); floor on {threads} threads packed perfectly:")
        print("| model | one core f64 | one core fast | floor f64 | floor fast | WW for 4× f64 | WW for 8× fast |")
        print("|---|---|---|---|---|---|---|")
        for name in args.models.split(","):
            print(floor(name, args.runs, threads))


if __name__ == "__main__":
    main()
