"""rmt_torch.analyze against WeightWatcher in one Python process, on the same in-memory models.

Usage:
  .venv/bin/python scripts/benchmark_python.py [--runs N] [--models alexnet,vgg19,resnet50]

Builds each torchvision model at random initialisation (seed 0) once, then times, fastest of
--runs (default 2): rmt_torch.analyze(model) with the default f64 path and with
precision="fast", and ww.WeightWatcher(model=model).analyze(). It checks α against
WeightWatcher layer by layer, and states the binding's own overhead: in-process wall time minus
the engine's own spectra + statistics time (the `timing` the CLI reports for the same work).
"""
import argparse
import logging
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--models", default="alexnet,vgg19,resnet50")
    args = parser.parse_args()
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    print(f"torch threads {torch.get_num_threads()}, runs {args.runs} (fastest kept), seconds")
    print("| model | rmt_torch f64 | rmt_torch fast | WeightWatcher | WW / f64 | WW / fast | binding overhead | max |Δα| vs WW |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = torchvision.models.get_model(name, weights=None).eval()
        f64, analysis = fastest(args.runs, lambda: rmt_torch.analyze(model, device="cpu"))
        fast, _ = fastest(args.runs, lambda: rmt_torch.analyze(model, device="cpu", precision="fast"))
        reference, details = fastest(args.runs, lambda: ww.WeightWatcher(model=model).analyze())
        engine = analysis.record["timing"]["spectra_seconds"] + analysis.record["timing"]["statistics_seconds"]
        theirs = details.set_index("longname")["alpha"]
        ours = {layer["name"].removesuffix(".weight"): layer.get("alpha") for layer in analysis.layers}
        worst = max(abs(ours[name] - alpha) for name, alpha in theirs.items())
        print(
            f"| {name} | {f64:.2f} | {fast:.2f} | {reference:.2f} | {reference / f64:.1f}× | "
            f"{reference / fast:.1f}× | {f64 - engine:.3f} | {worst:.1e} |"
        )


if __name__ == "__main__":
    main()
