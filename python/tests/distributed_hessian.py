"""One rank of a data-parallel loss Hessian: launched by `torchrun --nproc_per_node N`, each rank
takes every N-th batch of the same seeded data set and calls rmt_torch.hessian with the world's
process group (Gloo); rank r writes its record to OUT/rank{r}.json. Without torchrun (no
RANK in the environment) it runs one process on every batch and writes OUT/single.json.

Used by test_curvature.py (the records of 2 ranks equal one process's) and
scripts/benchmark_hessian.py (the 2-process speed-up).
"""
import argparse
import json
import os
import time
from pathlib import Path

import torch

import rmt_torch


def model_and_batches(width, samples, batch, dtype):
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, width), torch.nn.Tanh(), torch.nn.Linear(width, width),
                                torch.nn.Tanh(), torch.nn.Linear(width, 10)).to(dtype)
    inputs = torch.randn(samples, 16, generator=generator, dtype=dtype)
    labels = torch.randint(0, 10, (samples,), generator=generator)
    return model, [(inputs[i:i + batch], labels[i:i + batch]) for i in range(0, samples, batch)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=12)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--float32", action="store_true")
    parser.add_argument("--options", default='{"top_k": 3, "tolerance": 1e-10, "trace": 6, "density": 2, '
                                             '"density_steps": 20, "seed": 4}')
    args = parser.parse_args()
    model, batches = model_and_batches(args.width, args.samples, args.batch,
                                       torch.float32 if args.float32 else torch.float64)
    options = json.loads(args.options)
    if "RANK" in os.environ:
        torch.set_num_threads(1)
        torch.distributed.init_process_group("gloo")
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        group, shard, name = torch.distributed.group.WORLD, batches[rank::world], f"rank{rank}"
    else:
        group, shard, name = None, batches, "single"
    start = time.perf_counter()
    record = rmt_torch.hessian(model, data=shard, process_group=group, **options)
    record["wall_seconds"] = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(record))
    if group is not None:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
