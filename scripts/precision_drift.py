"""How far WeightWatcher's α moves when its ESD is computed in float32 or from float16 weights,
as it does on CUDA machines (its SVD runs in float32 on the GPU, and it casts weights to float16
there), against the float64 ESD rmt-torch uses.

Usage: .venv/bin/python scripts/precision_drift.py MODEL.pt [MODEL.pt ...] [--json OUT]

For every Linear and Conv2d weight of each TorchScript model (Conv2d as WeightWatcher's pooled
kernel-position slices), the ESD σ² is computed three ways on the CPU — float64 SVD, float32
SVD, float16-rounded weights with a float32 SVD — and fitted with WeightWatcher 0.7.7's own
power-law fit. Prints the worst relative change of α and λmax per model.
"""
import json
import logging
import sys

import numpy as np
import torch
from weightwatcher.WW_powerlaw import WWFit

logging.getLogger("weightwatcher").setLevel(logging.ERROR)


def matrices(weight):
    if weight.dim() == 4:
        kh, kw = weight.shape[2:]
        return [weight[:, :, i, j] for i in range(kh) for j in range(kw)]
    return [weight]


def esd(weight, dtype, round_to_half=False):
    values = []
    for w in matrices(weight):
        w = w.detach()
        if round_to_half:
            w = w.to(torch.float16)
        values.append(torch.linalg.svdvals(w.to(dtype)).double() ** 2)
    return torch.cat(values).numpy()


def alpha(evals):
    evals = np.sort(evals[evals > 1e-5])
    if len(evals) < 8:
        return None
    return WWFit(evals).alpha


def drift(path):
    model = torch.jit.load(path, map_location="cpu")
    rows = []
    for name, p in model.named_parameters():
        if p.dim() not in (2, 4) or min(p.shape[:2]) < 2:
            continue
        exact = esd(p, torch.float64)
        a64 = alpha(exact)
        if a64 is None or not np.isfinite(a64):
            continue
        row = {"name": name, "alpha_f64": a64, "lambda_max_f64": float(exact.max())}
        for label, values in (("f32", esd(p, torch.float32)), ("f16", esd(p, torch.float32, True))):
            a = alpha(values)
            row[f"alpha_{label}"] = a
            row[f"alpha_rel_{label}"] = abs(a - a64) / a64
            row[f"lambda_max_rel_{label}"] = abs(values.max() - exact.max()) / exact.max()
        rows.append(row)
    return rows


def main():
    args = sys.argv[1:]
    out = None
    if "--json" in args:
        i = args.index("--json")
        out = args[i + 1]
        del args[i:i + 2]
    report = {}
    for path in args:
        rows = drift(path)
        report[path] = rows
        worst = {k: max(r[k] for r in rows) for k in ("alpha_rel_f32", "alpha_rel_f16", "lambda_max_rel_f32", "lambda_max_rel_f16")}
        print(f"{path}: {len(rows)} layers; worst relative change of α: float32 {worst['alpha_rel_f32']:.2e}, "
              f"float16 weights {worst['alpha_rel_f16']:.2e}; of λmax: {worst['lambda_max_rel_f32']:.2e}, "
              f"{worst['lambda_max_rel_f16']:.2e}")
    if out:
        with open(out, "w") as f:
            json.dump(report, f)


if __name__ == "__main__":
    main()
