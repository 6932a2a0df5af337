"""WeightWatcher's per-layer details for a model, as the reference the tests compare against.

Usage:
  .venv/bin/python scripts/ww_reference.py digits-mlp|digits-cnn MODEL.pt OUT.csv
      rebuilds the shipped digits model's nn.Module, loads the TorchScript file's weights
  .venv/bin/python scripts/ww_reference.py torchvision:NAME MODEL.pt OUT.csv
      builds torchvision NAME (seeded random init), saves it as TorchScript to MODEL.pt
  .venv/bin/python scripts/ww_reference.py weights MODEL OUT.csv
      a state dict (torch.save or safetensors; a checkpoint's model_state) as the nn.Module its
      names and shapes describe: recurrent weights as nn.LSTM/GRU/RNN (or their cells), 4-D as
      Conv2d, 3-D as Conv1d, 2-D as Embedding when named so, else Linear
  .venv/bin/python scripts/ww_reference.py synthetic MODEL.pt OUT.csv
      a seeded model with what WeightWatcher's rules single out (a 60001-row embedding, Conv1d
      with k = 9 and k = 3, an LSTM, a small head, five dead output units), its state dict saved
      to MODEL.pt

Writes WeightWatcher 0.7.7 analyze()'s details to OUT.csv; an optional fourth argument is a
JSON object of analyze() keyword arguments (e.g. '{"fix_fingers": "clip_xmax"}'), in which
"base_model": PATH names a second model of the same kind: WeightWatcher then analyses each
layer's difference from it (its base_model=).
"""
import json
import logging
import re
import sys
from pathlib import Path

import torch
import weightwatcher as ww

sys.path.insert(0, str(Path(__file__).resolve().parent))


RECURRENT = re.compile(r"^weight_(ih|hh)(_l\d+)?(_reverse)?$")


def state_dict_of(path):
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file
        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("model_state", state)


def recurrent_module(params):
    """nn.LSTM/GRU/RNN (or the cell) with these parameters; the gate count is rows/columns of
    the hidden weights."""
    hidden_key = "weight_hh_l0" if "weight_hh_l0" in params else "weight_hh"
    rows, hidden = params[hidden_key].shape
    gates = rows // hidden
    input_size = params[hidden_key.replace("hh", "ih")].shape[1]
    bias = any(key.startswith("bias") for key in params)
    if hidden_key == "weight_hh":
        cell = {4: torch.nn.LSTMCell, 3: torch.nn.GRUCell, 1: torch.nn.RNNCell}[gates]
        return cell(input_size, hidden, bias=bias)
    layers = sum(1 for key in params if re.match(r"^weight_ih_l\d+$", key))
    kind = {4: torch.nn.LSTM, 3: torch.nn.GRU, 1: torch.nn.RNN}[gates]
    bidirectional = any(key.endswith("_reverse") for key in params)
    return kind(input_size, hidden, num_layers=layers, bias=bias, bidirectional=bidirectional)


class Holder(torch.nn.Module):
    """A module of no type WeightWatcher knows, holding 1-D (or other) parameters."""


def leaf_module(name, params):
    weight = params.get("weight")
    if any(RECURRENT.match(key) for key in params):
        module = recurrent_module(params)
    elif weight is not None and weight.dim() == 4:
        module = torch.nn.Conv2d(weight.shape[1], weight.shape[0], tuple(weight.shape[2:]))
    elif weight is not None and weight.dim() == 3:
        module = torch.nn.Conv1d(weight.shape[1], weight.shape[0], weight.shape[2])
    elif weight is not None and weight.dim() == 2 and "embed" in name.lower():
        module = torch.nn.Embedding(weight.shape[0], weight.shape[1])
    elif weight is not None and weight.dim() == 2:
        module = torch.nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in params)
    elif "prelu" in name.lower():
        module = torch.nn.PReLU(weight.shape[0])
    else:
        module = Holder()
    for key, value in params.items():
        if hasattr(module, key) and not isinstance(getattr(module, key), torch.nn.Parameter):
            delattr(module, key)
        setattr(module, key, torch.nn.Parameter(value.clone(), requires_grad=False))
    return module


def module_from_weights(state):
    """The nn.Module tree that `state`'s dotted names describe, leaves in order of appearance."""
    leaves = {}
    for name, tensor in state.items():
        prefix, _, key = name.rpartition(".")
        leaves.setdefault(prefix, {})[key] = tensor
    root = torch.nn.Module()
    for prefix, params in leaves.items():
        if not prefix:
            for key, value in params.items():
                setattr(root, key, torch.nn.Parameter(value.clone(), requires_grad=False))
            continue
        parent = root
        parts = prefix.split(".")
        for part in parts[:-1]:
            if not hasattr(parent, part):
                parent.add_module(part, torch.nn.Module())
            parent = getattr(parent, part)
        parent.add_module(parts[-1], leaf_module(prefix, params))
    return root.eval()


def synthetic(path):
    torch.manual_seed(0)
    model = torch.nn.Module()
    model.conv_wide = torch.nn.Conv1d(40, 30, 9)
    model.conv_narrow = torch.nn.Conv1d(30, 20, 3)
    model.lstm = torch.nn.LSTM(20, 32)
    model.word_embeddings = torch.nn.Embedding(60001, 16)
    model.proj = torch.nn.Linear(64, 48)
    model.head = torch.nn.Linear(64, 10)
    with torch.no_grad():
        model.proj.weight[:5] *= 1e-9
    torch.save(model.state_dict(), path)
    return model.eval()


def module_for(kind, path):
    if kind == "weights":
        return module_from_weights(state_dict_of(path))
    if kind == "synthetic":
        return synthetic(path)
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
    base = kwargs.pop("base_model", None)
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    watcher = ww.WeightWatcher(
        model=module_for(kind, path),
        base_model=None if base is None else module_for(kind, base),
    )
    details = watcher.analyze(**kwargs)
    details.to_csv(out, index=False)


if __name__ == "__main__":
    main()
