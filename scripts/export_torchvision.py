"""Export a torchvision classifier to TorchScript for rmt-torch.

Usage: .venv/bin/python scripts/export_torchvision.py NAME OUT.pt [--random]

NAME is any torchvision classification model (alexnet, vgg11 ... vgg19_bn, resnet18 ... resnet152,
densenet121, ...). Pretrained ImageNet weights are used when they are already in the local torch
hub cache (torchvision downloads nothing here); otherwise, or with --random, the model keeps its
seeded random initialisation. The module is scripted (traced if scripting fails) in eval mode.
Requires torchvision: .venv/bin/pip install torchvision==0.26.0
"""
import argparse
import sys

import torch
import torchvision


def build(name, random_init):
    if name not in torchvision.models.list_models(module=torchvision.models):
        sys.exit(f"unknown torchvision classifier '{name}'; try one of: "
                 + ", ".join(torchvision.models.list_models(module=torchvision.models)))
    torch.manual_seed(0)
    if not random_init:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        try:
            model = torchvision.models.get_model(name, weights=weights, progress=False)
            return model, f"pretrained {weights}"
        except Exception as err:  # no network here: the weights are usable only when cached
            print(f"{name}: pretrained weights not available locally ({type(err).__name__}); "
                  "using random initialisation", file=sys.stderr)
    return torchvision.models.get_model(name, weights=None), "random initialisation"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("out")
    parser.add_argument("--random", action="store_true", help="skip pretrained weights")
    args = parser.parse_args()
    model, source = build(args.name, args.random)
    model.eval()
    try:
        module = torch.jit.script(model)
    except Exception:
        module = torch.jit.trace(model, torch.randn(1, 3, 224, 224))
    module.save(args.out)
    print(f"{args.name} ({source}) -> {args.out}")


if __name__ == "__main__":
    main()
