"""WeightWatcher's per-layer details for a model, as the reference the tests compare against.

Usage:
  .venv/bin/python scripts/ww_reference.py digits-mlp|digits-cnn MODEL.pt OUT.csv
      rebuilds the shipped digits model's nn.Module, loads the TorchScript file's weights
  .venv/bin/python scripts/ww_reference.py torchvision:NAME MODEL.pt OUT.csv
      builds torchvision NAME (seeded random init), saves it as TorchScript to MODEL.pt

Writes WeightWatcher 0.7.7 analyze()'s details to OUT.csv; an optional fourth argument is a
JSON object of analyze() keyword arguments (e.g. '{"fix_fingers": "clip_xmax"}').
"""
import json
import logging
import sys
from pathlib import Path

import torch
import weightwatcher as ww

sys.path.insert(0, str(Path(__file__).resolve().parent))


def module_for(kind, path):
    if kind.startswith("torchvision:"):
        import torchvision
        torch.manual_seed(0)
        model = torchvision.models.get_model(kind.split(":", 1)[1], weights=None).eval()
        torch.jit.script(model).save(path)
        return model
    from make_models import DigitsCNN, DigitsMLP
    model = {"digits-mlp": DigitsMLP, "digits-cnn": DigitsCNN}[kind]()
    model.load_state_dict(torch.jit.load(path).state_dict())
    return model.eval()


def main():
    kind, path, out = sys.argv[1:4]
    kwargs = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    details = ww.WeightWatcher(model=module_for(kind, path)).analyze(**kwargs)
    details.to_csv(out, index=False)


if __name__ == "__main__":
    main()
