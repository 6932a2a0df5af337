"""Hessian benchmark: `rmt-torch hessian` against PyHessian 0.1 on the same model and batch.

Usage:
  .venv/bin/python scripts/benchmark_hessian.py [--model resnet18] [--batch 128] [--top-k 5]
      [--tolerance 1e-3] [--repeat 2] [--out FILE] [--skip-distributed]

The model is a torchvision classifier at random initialisation exported to TorchScript
(scripts/export_torchvision.py), float32, in eval mode; the batch is seeded CIFAR-size
inputs (3 × 32 × 32) with labels in 0…9. Both compute the top-k eigenvalues of the
cross-entropy Hessian on the CPU: PyHessian by power iteration with deflation, stopped at a
relative change of --tolerance (its default 1e-3), rmt-torch by Lanczos stopped at residuals
of --tolerance·|λ|. Printed: each one's eigenvalues, Hessian-vector products, time per product
(rmt-torch's with Lanczos's reorthogonalisation, and alone from five Hutchinson vectors) and
time for the top-k (PyHessian's timed in its process; rmt-torch's from its JSON timing), and
the ratios; each the fastest of --repeat runs, the tools alternated.

Then the data-parallel Hessian of the Python package: `rmt_torch.hessian(..., process_group=)`
in 2 Gloo processes (`torchrun --nproc_per_node 2`, one thread each, half the batches each)
beside 1 process (all threads, every batch) on the same data (python/tests/distributed_hessian.py:
an MLP of --dp-width, --dp-samples samples in batches of --dp-batch, float32, top 3): the wall
times, the speed-up and the largest difference of their eigenvalues (--skip-distributed leaves
it out).

Needs a release build (scripts/rmt-torch builds it), torchvision and pyhessian in .venv and the
Python package (scripts/setup --test installs them).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "rmt-torch"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--out", type=Path, help="write the measurements as JSON")
    parser.add_argument("--repeat", type=int, default=2, help="alternated runs of each; the fastest is reported")
    parser.add_argument("--dp-width", type=int, default=512)
    parser.add_argument("--dp-samples", type=int, default=4096)
    parser.add_argument("--dp-batch", type=int, default=512)
    parser.add_argument("--skip-distributed", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        model = scratch / f"{args.model}.pt"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "export_torchvision.py"), args.model, str(model),
                        "--random"], check=True, capture_output=True)
        generator = torch.Generator().manual_seed(0)
        inputs, labels = scratch / "inputs.pt", scratch / "labels.pt"
        torch.save(torch.randn(args.batch, 3, 32, 32, generator=generator), inputs)
        torch.save(torch.randint(0, 10, (args.batch,), generator=generator), labels)

        def run_json(command):
            return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)

        common = [str(BINARY), "hessian", str(model), "--input", str(inputs), "--target", str(labels), "--device",
                  "cpu", "--quiet", "--format", "json"]
        runs = {"ours": [], "products_only": [], "theirs": []}
        # Alternated, the fastest of --repeat runs each: this shared machine drifts by ±10 %.
        for _ in range(args.repeat):
            runs["ours"].append(run_json(common + ["--top-k", str(args.top_k), "--tolerance", str(args.tolerance)]))
            # The product alone, without Lanczos's reorthogonalisation: Hutchinson's vectors.
            runs["products_only"].append(run_json(common + ["--top-k", "0", "--trace", "5"]))
            runs["theirs"].append(run_json(
                [sys.executable, str(ROOT / "scripts" / "pyhessian_reference.py"), str(model), str(inputs),
                 str(labels), "--top-k", str(args.top_k), "--tolerance", str(args.tolerance)]))
        ours = min(runs["ours"], key=lambda run: run["timing"]["top_seconds"])
        products_only = min(runs["products_only"], key=lambda run: run["timing"]["seconds_per_product"])
        theirs = min(runs["theirs"], key=lambda run: run["top_seconds"])

    ours_per_product = ours["timing"]["seconds_per_product"]
    rows = [
        ("rmt-torch (Lanczos)", ours["top_eigenvalues"], ours["products"], ours_per_product,
         ours["timing"]["top_seconds"]),
        ("PyHessian 0.1 (power iteration)", theirs["top_eigenvalues"], theirs["top_products"],
         theirs["seconds_per_product"], theirs["top_seconds"]),
    ]
    print(f"{args.model}, batch {args.batch} × 3 × 32 × 32, {ours['dimension']} parameters, float32, CPU: "
          f"top {args.top_k} eigenvalues, tolerance {args.tolerance}")
    print("| tool | eigenvalues | products | s / product | top-k s |")
    print("|---|---|---|---|---|")
    for tool, values, products, per_product, total in rows:
        listed = ", ".join(f"{v:.4g}" for v in values)
        print(f"| {tool} | {listed} | {products} | {per_product:.3f} | {total:.1f} |")
    product_alone = products_only["timing"]["seconds_per_product"]
    print(f"a Hessian-vector product alone (Hutchinson): rmt-torch {product_alone:.3f} s, "
          f"{product_alone / theirs['seconds_per_product']:.2f}× PyHessian's")
    print(f"time per product: rmt-torch / PyHessian = {ours_per_product / theirs['seconds_per_product']:.2f}; "
          f"products: {ours['products']} against {theirs['top_products']}; "
          f"top-k time: PyHessian / rmt-torch = {theirs['top_seconds'] / ours['timing']['top_seconds']:.1f}×")
    measured = {"rmt_torch": ours, "rmt_torch_products_only": products_only, "pyhessian": theirs}
    if not args.skip_distributed:
        measured["data_parallel"] = data_parallel(args)
    if args.out:
        args.out.write_text(json.dumps(measured, indent=2) + "\n")


def data_parallel(args):
    """2 Gloo processes against 1 on the same data, through rmt_torch.hessian(process_group=)."""
    script = ROOT / "python" / "tests" / "distributed_hessian.py"
    shape = ["--width", str(args.dp_width), "--samples", str(args.dp_samples), "--batch", str(args.dp_batch),
             "--float32", "--options", json.dumps({"top_k": 3, "tolerance": 1e-3, "seed": 0})]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        subprocess.run([sys.executable, str(script), str(scratch), *shape], check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(script), str(scratch), *shape], check=True, capture_output=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
        single = json.loads((scratch / "single.json").read_text())
        ranks = [json.loads((scratch / f"rank{r}.json").read_text()) for r in range(2)]
    wall = max(rank["wall_seconds"] for rank in ranks)
    difference = max(abs(a - b) / abs(b) for a, b in zip(ranks[0]["top_eigenvalues"], single["top_eigenvalues"]))
    print(f"data-parallel (rmt_torch.hessian, MLP {args.dp_width} wide, {single['dimension']} parameters, "
          f"{args.dp_samples} samples in batches of {args.dp_batch}, top 3): 1 process {single['wall_seconds']:.1f} s "
          f"({single['products']} products), 2 Gloo processes {wall:.1f} s ({ranks[0]['products']} products): "
          f"speed-up {single['wall_seconds'] / wall:.2f}×; eigenvalues equal to {difference:.1e}")
    return {"single": single, "ranks": ranks, "speedup": single["wall_seconds"] / wall}


if __name__ == "__main__":
    main()
