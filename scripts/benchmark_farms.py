"""FARMS's α of one 4096 × 11008 matrix (a 7B model's MLP projection; windows b = 2000, Q = 1,
k = 10: 100 windows of 2000 × 2000): `rmt-torch analyze --estimator farms-peak` against the plain
analysis of the same matrix and against FARMS's own code on the same CPU, in one run.

Usage:
  git clone https://github.com/HUST-AI-HYZ/FARMS /tmp/FARMS
  .venv/bin/python scripts/benchmark_farms.py --farms-repo /tmp/FARMS [--grid 10] [--out FILE]

The reference is FARMS's `fixed_sampling` (torch.linalg.svdvals of each window in float32) and
`analysis_esd(fix_fingers='xmin_peak')`, imported from the checkout (LLM_Pruning/lib). rmt-torch runs
as one whole process (reading the file included); its windows' Gram matrices are shared sums
over chunks, each solved in float64. Printed: seconds of each, the ratios, the floor (the
windows' eigensolves alone), and the two α (the reference's in float32).
"""
import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_llm import run_rmt_torch  # noqa: E402


def reference_functions(repo):
    """FARMS's own fixed_sampling and analysis_esd, from the checkout."""
    sys.path.insert(0, str(repo / "LLM_Pruning"))
    from lib.esd_utils_farms import analysis_esd
    from lib.sampling import fixed_sampling
    return fixed_sampling, analysis_esd


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--farms-repo", type=Path, required=True,
                        help="a checkout of github.com/HUST-AI-HYZ/FARMS")
    parser.add_argument("--grid", type=int, default=10)
    parser.add_argument("--out", type=Path, help="write the measurements as JSON")
    args = parser.parse_args()
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    matrix = torch.randn(4096, 11008) / math.sqrt(11008)
    fixed_sampling, analysis_esd = reference_functions(args.farms_repo)
    reference = "FARMS's code"
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "mlp.safetensors"
        save_file({"mlp.down_proj.weight": matrix}, str(path))
        plain_seconds, _, plain = run_rmt_torch(path)
        farms_seconds, _, farms = run_rmt_torch(
            path, "--estimator", "farms-peak", "--farms-window", "2000", "--farms-grid", str(args.grid))
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        pooled = fixed_sampling(matrix.clone(), False, 0.5, 2000, 1.0, args.grid)
        results = analysis_esd({"alpha": [], "spectral_norm": [], "D": [], "eigs": [], "norm": [],
                                "alpha_hat": [], "stable_rank": [], "norm_stable_rank": []},
                               pooled, fix_fingers="xmin_peak", device="cpu")
    reference_seconds = time.perf_counter() - started
    # The floor: the windows' eigensolves alone, f64 on one thread each, the cores in parallel.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    gram = (matrix[:2000, :2000].double() @ matrix[:2000, :2000].double().T)
    started = time.perf_counter()
    for _ in range(3):
        torch.linalg.eigvalsh(gram)
    floor_seconds = (time.perf_counter() - started) / 3 * args.grid ** 2 / threads
    torch.set_num_threads(threads)
    measured = {
        "matrix": [4096, 11008],
        "windows": args.grid * args.grid,
        "threads": torch.get_num_threads(),
        "rmt_torch_farms_seconds": farms_seconds,
        "rmt_torch_plain_seconds": plain_seconds,
        "reference": reference,
        "reference_seconds": reference_seconds,
        "eigensolve_floor_seconds": floor_seconds,
        "alpha_rmt_torch": farms["layers"][0]["alpha"],
        "alpha_reference": results["alpha"][0],
    }
    print(f"FARMS on one 4096 × 11008 matrix, {args.grid}² windows of 2000 × 2000, "
          f"{measured['threads']} threads")
    print(f"  rmt-torch --estimator farms-peak   {farms_seconds:8.2f} s (whole process)")
    print(f"  rmt-torch, plain analysis          {plain_seconds:8.2f} s  → FARMS costs "
          f"{farms_seconds / plain_seconds:.1f}× the plain analysis")
    print(f"  {reference:33s}  {reference_seconds:8.2f} s  → rmt-torch "
          f"{reference_seconds / farms_seconds:.2f}× faster; its FARMS part alone (minus the plain "
          f"analysis) {reference_seconds / (farms_seconds - plain_seconds):.2f}×")
    print(f"  floor: the {args.grid ** 2} float64 eigensolves alone, one thread each, "
          f"{threads} in parallel: {floor_seconds:.2f} s")
    print(f"  α: rmt-torch {measured['alpha_rmt_torch']:.6f}, reference (float32) "
          f"{measured['alpha_reference']:.6f}")
    if args.out:
        args.out.write_text(json.dumps(measured, indent=2))


if __name__ == "__main__":
    main()
