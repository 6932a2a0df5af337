"""The wheel's `rmt-torch` console script beside the cargo-built binary: whole-process time of
the same commands, alternated, the fastest of --repeat runs each, and the ratio.

    .venv/bin/python scripts/benchmark_wheel.py [--env target/wheel/env] [--repeat 5]

ENV is the environment scripts/check_wheel.py installs the wheel into (scripts/test makes it).
The console script adds Python's start-up and the extension's load to the binary's own work;
it never imports torch.
"""
import argparse
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "rmt-torch"
COMMANDS = [
    ["info", "models/digits_cnn_trained.pt"],
    ["analyze", "models/digits_cnn_trained.pt", "--quiet"],
    ["zoo", "models", "--quiet", "--cache", "none"],
]


def seconds(command, env):
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", type=Path, default=ROOT / "target" / "wheel" / "env")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    script = args.env / "bin" / "rmt-torch"
    if not script.is_file():
        raise SystemExit(f"benchmark_wheel: no {script}: run scripts/check_wheel.py (scripts/test does)")
    clean = {"PATH": f"{args.env / 'bin'}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    print("| command | binary s | wheel script s | wheel / binary |")
    print("|---|---|---|---|")
    for arguments in COMMANDS:
        ours, wheel = [], []
        for _ in range(args.repeat):
            ours.append(seconds([str(BINARY), *arguments], dict(os.environ)))
            wheel.append(seconds([str(script), *arguments], clean))
        print(f"| `rmt-torch {' '.join(arguments)}` | {min(ours):.3f} | {min(wheel):.3f} | "
              f"{min(wheel) / min(ours):.2f} |")


if __name__ == "__main__":
    main()
