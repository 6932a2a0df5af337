"""Installs the built wheel where there is no Rust and checks it as a new user would.

    .venv/bin/python scripts/check_wheel.py DIST ENV

Makes ENV, a fresh virtual environment whose torch 2.11 (and the test suite's other packages)
are .venv's own, linked in rather than copied (5 GB), installs DIST's wheel into it without
dependencies, and checks, with only ENV/bin, /usr/bin and /bin on PATH (no cargo, no rustc):

- the wheel: its tag (abi3, manylinux_2_X no newer than the glibc symbols the extension needs),
  its size (at most 10 MB), `Requires-Dist: torch==2.11.*`, the `rmt-torch` console script, no
  torch or CUDA library inside, the extension's run path into the torch package beside it; the
  source distribution beside it;
- the extension loads before and without torch (the console script's way), and
  `import rmt_torch._rmt_torch` works;
- `rmt-torch analyze models/digits_cnn_trained.pt -f json` equals the cargo-built binary's JSON
  (timings aside), `rmt-torch zoo models --fail-if 'alpha>0'` exits 1, a missing file exits 2
  with the binary's one-line error, `--version` is the binary's, Ctrl-C ends a long command.

Prints the measurements (size, install time) and exits non-zero on the first failed check.
scripts/test then runs the pytest suite with ENV's python.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "rmt-torch"
MAX_MEGABYTES = 10


def fail(message):
    sys.exit(f"check_wheel: {message}")


def check(condition, message):
    if not condition:
        fail(message)


def make_environment(env):
    """A fresh environment with .venv's packages linked in, rmt_torch's own left out."""
    if env.exists():
        shutil.rmtree(env)
    venv.create(env, with_pip=True, symlinks=True)
    python = env / "bin" / "python"
    site = Path(subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    ours = Path(sysconfig.get_paths()["purelib"])
    for entry in ours.iterdir():
        if entry.name.startswith(("rmt_torch", "_rmt_torch_cli", "pip", "__pycache__", "__editable__")) \
                or entry.suffix == ".pth" or (site / entry.name).exists():
            continue
        (site / entry.name).symlink_to(entry)
    return python


def sanitized(env):
    """The environment of a machine without Rust: the venv's scripts and the system's."""
    path = os.pathsep.join([str(env / "bin"), "/usr/bin", "/bin"])
    variables = {"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    for tool in ("cargo", "rustc"):
        check(shutil.which(tool, path=path) is None, f"{tool} is on the clean PATH ({shutil.which(tool, path=path)})")
    return variables


def check_wheel_file(wheel):
    name = wheel.name
    match = re.fullmatch(r"rmt_torch-[\w.]+-cp310-abi3-manylinux_2_(\d+)_x86_64\.whl", name)
    check(match, f"{name}: not an abi3 manylinux x86_64 wheel")
    megabytes = wheel.stat().st_size / 1e6
    check(megabytes <= MAX_MEGABYTES, f"{name}: {megabytes:.1f} MB, more than {MAX_MEGABYTES}")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
        library = next(n for n in names if re.search(r"_rmt_torch\.abi3\.so$", n))
        scratch = ROOT / "target" / "wheel" / "unpacked"
        archive.extract(library, scratch)
    check("Requires-Dist: torch==2.11.*" in metadata.splitlines(), "Requires-Dist: torch==2.11.* missing")
    check("rmt-torch=_rmt_torch_cli:main" in entry_points.replace(" ", ""), "no rmt-torch console script")
    bundled = [n for n in names if re.search(r"lib(torch|c10|cuda|cudnn|nv)\w*\.so", n)]
    check(not bundled, f"torch or CUDA libraries inside the wheel: {bundled}")
    dynamic = subprocess.check_output(["objdump", "-p", scratch / library], text=True)
    check(re.search(r"RUNPATH\s+\$ORIGIN/\.\./torch/lib", dynamic), "no run path $ORIGIN/../torch/lib")
    symbols = subprocess.check_output(["objdump", "-T", scratch / library], text=True)
    needed = max(int(v) for v in re.findall(r"GLIBC_2\.(\d+)", symbols))
    check(needed <= int(match.group(1)), f"tagged manylinux_2_{match.group(1)} but needs GLIBC_2.{needed}")
    sdists = list(wheel.parent.glob("rmt_torch-*.tar.gz"))
    check(len(sdists) == 1, f"no source distribution beside {name}")
    print(f"check_wheel: {name}, {megabytes:.1f} MB, needs glibc 2.{needed}; "
          f"source distribution {sdists[0].stat().st_size / 1e6:.1f} MB")


def run(command, variables, **kwargs):
    return subprocess.run(command, env=variables, capture_output=True, text=True, cwd=ROOT, **kwargs)


def without_timing(text):
    value = json.loads(text)
    value.pop("timing", None)
    return value


def main():
    dist, env = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    wheels = list(dist.glob("rmt_torch-*.whl"))
    check(len(wheels) == 1, f"expected one wheel in {dist}, found {[w.name for w in wheels]}")
    check_wheel_file(wheels[0])

    python = make_environment(env)
    variables = sanitized(env)
    started = time.perf_counter()
    installed = run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                     "--disable-pip-version-check", wheels[0]], variables)
    check(installed.returncode == 0, f"pip install failed: {installed.stderr.strip()}")
    print(f"check_wheel: pip install took {time.perf_counter() - started:.1f} s")

    loaded = run([python, "-c", "import sys, _rmt_torch_cli\n"
                  "extension = _rmt_torch_cli._extension()\n"
                  "assert 'torch' not in sys.modules, 'torch was imported'\n"
                  "import rmt_torch._rmt_torch, rmt_torch\n"
                  "assert rmt_torch.__file__.startswith(sys.prefix), rmt_torch.__file__\n"
                  "print(extension.__version__)"], variables)
    check(loaded.returncode == 0, f"the extension does not load by itself: {loaded.stderr.strip()}")

    command = env / "bin" / "rmt-torch"
    check(command.is_file(), "pip installed no rmt-torch command")
    binary_env = dict(os.environ)
    model = "models/digits_cnn_trained.pt"
    ours = run([command, "analyze", model, "-f", "json"], variables)
    theirs = run([BINARY, "analyze", model, "-f", "json"], binary_env)
    check(ours.returncode == 0 and theirs.returncode == 0, f"analyze failed: {ours.stderr}{theirs.stderr}")
    check(without_timing(ours.stdout) == without_timing(theirs.stdout),
          "the wheel's analyze JSON differs from the binary's")

    zoo = run([command, "zoo", "models", "--fail-if", "alpha>0", "--quiet"], variables)
    check(zoo.returncode == 1, f"zoo --fail-if 'alpha>0' exited {zoo.returncode}: {zoo.stderr.strip()}")

    for arguments in (["analyze", "models/no-such-model.pt"], ["analyze", model, "--bogus"], ["--version"]):
        ours = run([command, *arguments], variables)
        theirs = run([BINARY, *arguments], binary_env)
        check((ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr),
              f"rmt-torch {' '.join(arguments)}: the wheel's {ours.returncode} {ours.stderr!r} "
              f"against the binary's {theirs.returncode} {theirs.stderr!r}")
    # Ctrl-C ends a long command at once, as it ends the binary (killed by SIGINT).
    long = subprocess.Popen([command, "hessian", model, "--input", "models/digits_batch.pt", "--target",
                             "models/digits_batch_labels.pt", "--trace", "5000", "--top-k", "0", "--quiet"],
                            env=variables, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)
    check(long.poll() is None, "the long command ended before Ctrl-C")
    long.send_signal(signal.SIGINT)
    try:
        status = long.wait(timeout=10)
    except subprocess.TimeoutExpired:
        long.kill()
        fail("Ctrl-C did not end rmt-torch hessian within 10 s")
    check(status == -signal.SIGINT, f"Ctrl-C: exit status {status}, not killed by SIGINT")
    print("check_wheel: the wheel's rmt-torch equals the binary (analyze JSON, zoo exit 1, errors, "
          "--version; Ctrl-C)")


if __name__ == "__main__":
    main()
