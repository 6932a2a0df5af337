"""LoRA update spectra: rmt-torch's rank-r path (the update s·B·A read from its factors: two thin
QRs and an r × r SVD) against forming B·A and solving it (rmt-torch's own dense path: the
N × M update, its Gram matrix and eigensolve), and against WeightWatcher 0.7.7's `peft=True`
(which forms B·A and takes its SVD), on the same PEFT adapter, in one run.

Usage:
  .venv/bin/python scripts/benchmark_lora.py [--size 4096] [--rank 16] [--repeats 5] [--out FILE]

The adapter is made by `peft` on one size × size Linear layer (seeded; B drawn at random rather
than PEFT's zeros, as after training). Times are the median of --repeats calls in this process
(after one warm-up), each a whole `analyze` of the layer: reading, spectrum and statistics.
Printed: the three times, the ratios, and the largest relative difference of the r non-zero
eigenvalues between the two rmt-torch paths. WeightWatcher's B·A omits PEFT's scaling
s = lora_alpha / r, so its λmax is compared after multiplying by s².
"""
import argparse
import copy
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy
import torch

import rmt_torch


def median_seconds(call, repeats):
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, help="write the measurements as JSON")
    args = parser.parse_args()
    import peft

    torch.manual_seed(0)
    base = torch.nn.Sequential(torch.nn.Linear(args.size, args.size, bias=False))
    config = peft.LoraConfig(r=args.rank, lora_alpha=2 * args.rank, target_modules=["0"], init_lora_weights=False)
    adapted = peft.get_peft_model(copy.deepcopy(base), config)
    scale = config.lora_alpha / config.r
    with tempfile.TemporaryDirectory() as directory:
        adapter = Path(directory) / "adapter"
        adapted.save_pretrained(str(adapter))
        layer = adapted.base_model.model[0]
        a = layer.lora_A["default"].weight.detach().double()
        b = layer.lora_B["default"].weight.detach().double()
        update = {"0.weight": (b @ a * scale).contiguous()}
        options = dict(device="cpu", eigenvalues=True, min_evals=1)
        rank_seconds, rank_path = median_seconds(lambda: rmt_torch.analyze(adapter, **options), args.repeats)
        dense_seconds, dense_path = median_seconds(lambda: rmt_torch.analyze(update, **options), args.repeats)
    ours = numpy.array(rank_path.layers[0]["eigenvalues"][-args.rank:])
    dense = numpy.array(dense_path.layers[0]["eigenvalues"][-args.rank:])
    difference = float(numpy.max(numpy.abs(ours - dense) / dense))

    import weightwatcher
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    watcher = weightwatcher.WeightWatcher(model=adapted)
    ww_seconds, details = median_seconds(lambda: watcher.analyze(peft=True), max(1, args.repeats // 2))
    row = details[details["longname"].str.contains("lora_BA")].iloc[0]
    ww_lambda = float(row["lambda_max"]) * scale ** 2
    ww_difference = abs(ww_lambda - ours[-1]) / ours[-1]

    print(f"a {args.size} × {args.size} update of rank {args.rank} (PEFT adapter), median of {args.repeats}:")
    print(f"  rmt-torch, rank-r path (from the factors): {rank_seconds * 1e3:9.2f} ms")
    print(f"  rmt-torch, B·A formed and solved:          {dense_seconds * 1e3:9.2f} ms  "
          f"({dense_seconds / rank_seconds:.0f}x the rank-r path)")
    print(f"  WeightWatcher 0.7.7 peft=True:             {ww_seconds * 1e3:9.2f} ms  "
          f"({ww_seconds / rank_seconds:.0f}x the rank-r path)")
    print(f"  the {args.rank} non-zero eigenvalues: largest relative difference between the two paths "
          f"{difference:.1e}; WeightWatcher's λmax × s² against ours {ww_difference:.1e}")
    if args.out:
        args.out.write_text(json.dumps({
            "size": args.size, "rank": args.rank,
            "rank_path_seconds": rank_seconds, "dense_seconds": dense_seconds, "weightwatcher_seconds": ww_seconds,
            "eigenvalue_difference": difference, "weightwatcher_lambda_difference": ww_difference,
        }, indent=2))


if __name__ == "__main__":
    sys.exit(main())
