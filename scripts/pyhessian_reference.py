"""PyHessian (Yao, Gholami, Keutzer & Mahoney 2020; PyPI `pyhessian==0.1`) on a TorchScript
model and a batch: the reference `rmt-torch hessian` is compared with and timed against.

Usage:
  .venv/bin/python scripts/pyhessian_reference.py MODEL INPUT TARGET [--loss cross-entropy|mse]
      [--top-k K] [--tolerance TOL] [--trace N] [--seed S]

INPUT and TARGET are .npy or torch.save files. Prints JSON: `top_eigenvalues` (PyHessian's
power iteration with deflation, `tolerance` on the relative change between iterations),
`top_products` (the Hessian-vector products it took), `trace` and `trace_stderr` (Hutchinson
over exactly N Rademacher vectors: its tolerance is set to 0 so it never stops early),
`seconds_per_product` and `top_seconds` (wall time). Runs on the CPU in float64 when the model
is float64, as stored otherwise.
"""
import argparse
import json
import sys
import time

import numpy as np
import torch
from pyhessian import hessian


def load(path):
    if path.endswith(".npy"):
        return torch.from_numpy(np.load(path))
    return torch.load(path, weights_only=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("input")
    parser.add_argument("target")
    parser.add_argument("--loss", default="cross-entropy", choices=["cross-entropy", "mse"])
    parser.add_argument("--top-k", type=int, default=1)
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--trace", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    model = torch.jit.load(args.model)
    dtype = next(model.parameters()).dtype
    inputs = load(args.input).to(dtype)
    targets = load(args.target)
    if args.loss == "cross-entropy":
        criterion, targets = torch.nn.functional.cross_entropy, targets.long()
    else:
        criterion, targets = torch.nn.functional.mse_loss, targets.to(dtype).reshape(len(inputs), -1)

    # Count the products: the package exports the class under the module's name.
    pyhessian_module = sys.modules["pyhessian.hessian"]
    products = [0]
    product = pyhessian_module.hessian_vector_product

    def counted(*a, **k):
        products[0] += 1
        return product(*a, **k)

    pyhessian_module.hessian_vector_product = counted
    # PyHessian makes its random vectors with torch.randn in the parameters' default dtype.
    torch.set_default_dtype(dtype)
    computer = hessian(model, criterion, data=(inputs, targets), cuda=False)
    start = time.perf_counter()
    eigenvalues, _ = computer.eigenvalues(maxIter=10000, tol=args.tolerance, top_n=args.top_k)
    top_seconds = time.perf_counter() - start
    result = {"top_eigenvalues": eigenvalues, "top_products": products[0], "top_seconds": top_seconds,
              "seconds_per_product": top_seconds / max(products[0], 1)}
    if args.trace:
        samples = computer.trace(maxIter=args.trace, tol=0.0)
        result["trace"] = float(np.mean(samples))
        result["trace_stderr"] = float(np.std(samples, ddof=1) / np.sqrt(len(samples)))
        result["trace_samples"] = len(samples)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
