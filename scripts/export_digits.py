"""The scikit-learn digits data set (UCI optical digits, 8×8 images, 1797 samples) as NumPy
arrays for the Rust examples: models/digits_images.npy (uint8, 1797 × 64, values 0–16) and
models/digits_labels.npy (uint8, 1797).

Usage: .venv/bin/python scripts/export_digits.py [OUT_DIR]   (needs scikit-learn)
"""
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "models"
    digits = load_digits()
    np.save(out / "digits_images.npy", digits.data.astype(np.uint8))
    np.save(out / "digits_labels.npy", digits.target.astype(np.uint8))


if __name__ == "__main__":
    main()
