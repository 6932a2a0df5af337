"""Side-by-side benchmark of input-output Jacobians: rmt-torch `jacobian` against PyTorch's
`torch.func.vmap(jacrev)` on the same models and batches, in one run.

Usage: .venv/bin/python scripts/benchmark_jacobian.py [--out DIR] [--device cpu|cuda] [--repeat N]

Models: torchvision ResNet18 (random initialisation, 64×64 inputs, batch 8, 1000 outputs) and a
small CNN (28×28, batch 8, 10 outputs), both TorchScript in float32. Timed: rmt-torch's
Jacobian computation from its JSON `timing.jacobian_seconds` (model and batch already loaded,
like the reference) and its whole process; torch.func's jacrev on the loaded model (after one
warm-up call), vmapped over the batch on CUDA and looped over it on the CPU, with jacrev's
chunk_size 50 by default (unchunked, or vmapped over the batch, it needs more than 24 GiB on
ResNet18 and is killed), the fastest of --repeat runs each. The Jacobians themselves are
compared: rmt-torch's singular values of J against numpy's SVD of torch.func's J.

Then `jacobian --lanczos 5` against rmt-torch's own exact path on one ImageNet-size input to
ResNet18 (J is 1000 × 150528, 602 MB in float32), each a whole process under /usr/bin/time -v:
wall time, peak RSS and the five largest σ of both (--skip-lanczos leaves it out).
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchmark_llm import timed  # noqa: E402  (one way of measuring whole processes)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


def models(out):
    import torchvision
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None).eval()
    cnn = SmallCNN().eval()
    cases = {"resnet18": (resnet, torch.randn(8, 3, 64, 64)), "small_cnn": (cnn, torch.randn(8, 1, 28, 28))}
    for name, (model, batch) in cases.items():
        torch.jit.script(model).save(str(out / f"{name}.pt"))
        torch.save(batch, str(out / f"{name}_batch.pt"))
    return cases


def torch_func_seconds(model, batch, device, repeat, chunk):
    from torch.func import jacrev, vmap
    model = model.to(device)
    # Parameters that require grad make every Jacobian keep its sample's autograd graph alive.
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    batch = batch.to(device)
    one = jacrev(lambda v: model(v.unsqueeze(0)).squeeze(0), chunk_size=chunk)
    if device == "cuda":
        f = vmap(one)
    else:
        # vmap over the batch multiplies jacrev's memory by the batch size (ResNet18 at batch 8
        # was killed on the 24 GiB machine even with chunk_size 250): one sample at a time.
        def f(x):
            return torch.stack([one(sample).detach() for sample in x])
    f(batch[:1])
    best = float("inf")
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        jac = f(batch)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, jac.detach().reshape(batch.shape[0], -1, batch[0].numel()).cpu().double().numpy()


def rmt_seconds(binary, out, name, device, repeat):
    best_total, best_jacobian, report = float("inf"), float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = subprocess.run([str(binary), "jacobian", str(out / f"{name}.pt"), "--input",
                                 str(out / f"{name}_batch.pt"), "--device", device, "-f", "json", "-q"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"rmt-torch jacobian {name} failed ({result.returncode}): {result.stderr.strip()}")
        text = result.stdout
        best_total = min(best_total, time.perf_counter() - start)
        report = json.loads(text)
        best_jacobian = min(best_jacobian, report["timing"]["jacobian_seconds"])
    return best_total, best_jacobian, report


def lanczos_versus_exact(binary, out, device):
    """Top-5 σ of ResNet18's J at 224×224 by --lanczos 5 and by forming J, whole processes."""
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    torch.jit.script(model).save(str(out / "resnet18_224.pt"))
    torch.save(torch.randn(1, 3, 224, 224), str(out / "resnet18_224_batch.pt"))
    command = [str(binary), "jacobian", str(out / "resnet18_224.pt"), "--input", str(out / "resnet18_224_batch.pt"),
               "--device", device, "-f", "json", "-q"]
    lanczos_s, lanczos_peak, lanczos_text = timed(command + ["--lanczos", "5"])
    exact_s, exact_peak, exact_text = timed(command)
    ours = json.loads(lanczos_text)["samples"][0]
    exact = json.loads(exact_text)["samples"][0]["singular_values"][:5]
    row = {"case": "resnet18 224x224, J 1000 x 150528", "lanczos_s": lanczos_s, "lanczos_peak_bytes": lanczos_peak,
           "lanczos_products": ours["products"], "exact_s": exact_s, "exact_peak_bytes": exact_peak,
           "speedup": exact_s / lanczos_s, "memory_ratio": exact_peak / lanczos_peak,
           "top5_lanczos": ours["top_singular_values"], "top5_exact": exact,
           "max_relative_difference": max(abs(a - b) / exact[0] for a, b in zip(ours["top_singular_values"], exact))}
    print(json.dumps(row))
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "bench-out"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--binary", default=str(ROOT / "target/release/rmt-torch"))
    # Unchunked, jacrev on ResNet18 needs more than the 24 GiB of the development machine (it
    # was killed); 50 output rows at a time peak at 4 GiB per sample.
    parser.add_argument("--jacrev-chunk", type=int, default=50,
                        help="jacrev's chunk_size (0: all outputs at once, as on a large GPU)")
    parser.add_argument("--skip-lanczos", action="store_true", help="leave out --lanczos against the exact path")
    args = parser.parse_args()
    args.jacrev_chunk = args.jacrev_chunk or None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {torch.get_num_threads()} threads, torch {torch.__version__}, device {args.device}")
    results = []
    for name, (model, batch) in models(out).items():
        func_s, func_jac = torch_func_seconds(model, batch, args.device, args.repeat, args.jacrev_chunk)
        total_s, jac_s, report = rmt_seconds(args.binary, out, name, args.device, args.repeat)
        worst = 0.0
        for sample, j in zip(report["samples"], func_jac):
            theirs = np.linalg.svd(j, compute_uv=False)
            ours = np.array(sample["singular_values"])
            worst = max(worst, float(np.max(np.abs(ours - theirs)) / theirs[0]))
        row = {"model": name, "batch": int(batch.shape[0]), "outputs": report["outputs"], "inputs": report["inputs"],
               "rmt_jacobian_s": jac_s, "rmt_process_s": total_s, "torch_func_s": func_s,
               "ratio_rmt_over_torch_func": jac_s / func_s, "max_singular_value_diff": worst}
        results.append(row)
        print(json.dumps(row))
    if not args.skip_lanczos:
        results.append(lanczos_versus_exact(args.binary, out, args.device))
    (out / "benchmark_jacobian.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
