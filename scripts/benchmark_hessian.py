"""Hessian benchmark: `rmt-torch hessian` against PyHessian 0.1 on the same model and batch.

Usage:
  .venv/bin/python scripts/benchmark_hessian.py [--model resnet18] [--batch 128] [--top-k 5]
      [--tolerance 1e-3] [--out FILE]

The model is a torchvision classifier at random initialisation exported to TorchScript
(scripts/export_torchvision.py), float32, in eval mode; the batch is seeded CIFAR-size
inputs (3 × 32 × 32) with labels in 0…9. Both compute the top-k eigenvalues of the
cross-entropy Hessian on the CPU: PyHessian by power iteration with deflation, stopped at a
relative change of --tolerance (its default 1e-3), rmt-torch by Lanczos stopped at residuals
of --tolerance·|λ|. Printed: each one's eigenvalues, Hessian-vector products, time per product
(rmt-torch's with Lanczos's reorthogonalisation, and alone from five Hutchinson vectors) and
time for the top-k (PyHessian's timed in its process; rmt-torch's from its JSON timing), and
the ratios. Needs a release build (scripts/rmt-torch builds it), torchvision and pyhessian
in .venv (scripts/setup --test installs them).
"""
import argparse
import json
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

        ours = json.loads(subprocess.run(
            [str(BINARY), "hessian", str(model), "--input", str(inputs), "--target", str(labels), "--device", "cpu",
             "--top-k", str(args.top_k), "--tolerance", str(args.tolerance), "--quiet", "--format", "json"],
            check=True, capture_output=True, text=True).stdout)
        # The product alone, without Lanczos's reorthogonalisation: Hutchinson's vectors.
        products_only = json.loads(subprocess.run(
            [str(BINARY), "hessian", str(model), "--input", str(inputs), "--target", str(labels), "--device", "cpu",
             "--top-k", "0", "--trace", "5", "--quiet", "--format", "json"],
            check=True, capture_output=True, text=True).stdout)
        theirs = json.loads(subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "pyhessian_reference.py"), str(model), str(inputs), str(labels),
             "--top-k", str(args.top_k), "--tolerance", str(args.tolerance)],
            check=True, capture_output=True, text=True).stdout)

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
    if args.out:
        args.out.write_text(json.dumps({"rmt_torch": ours, "rmt_torch_products_only": products_only,
                                        "pyhessian": theirs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
