"""Make the input batches shipped in models/ for `rmt-torch jacobian` and `hessian`: the first
16 digits of scikit-learn's 8x8 digits data set, scaled to [0, 1] as the models were trained
on them, and their labels.

    models/digits_batch.pt         float32 (16, 1, 8, 8), for digits_cnn_*.pt
    models/digits_mlp_batch.pt     float32 (16, 64), for digits_mlp_*.pt
    models/digits_batch_labels.pt  int64 (16,), the classes (hessian --target)

Run with the project's venv: .venv/bin/python scripts/make_batches.py [OUT_DIR]
"""
import sys
from pathlib import Path

import torch

from make_models import digits


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent.parent / "models")
    images, labels = digits()
    batch = images[:16].clone()
    torch.save(batch, out / "digits_batch.pt")
    torch.save(batch.flatten(1).clone(), out / "digits_mlp_batch.pt")
    torch.save(labels[:16].clone(), out / "digits_batch_labels.pt")
    print(f"wrote {out / 'digits_batch.pt'} {tuple(batch.shape)}, digits_mlp_batch.pt and digits_batch_labels.pt")


if __name__ == "__main__":
    main()
