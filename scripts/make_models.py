"""Make the small real models shipped in models/ (TorchScript, scripted).

Trains an MLP and a small CNN on scikit-learn's 8x8 digits (bundled with the package, no
download) and saves each at initialisation and after training:

    models/digits_mlp_init.pt     models/digits_mlp_trained.pt
    models/digits_cnn_init.pt     models/digits_cnn_trained.pt

Run with the project's venv: .venv/bin/python scripts/make_models.py [OUT_DIR]
Deterministic for a given torch version (seeded, single-threaded).
"""
import sys
from pathlib import Path

import torch
from torch import nn
from sklearn.datasets import load_digits


class DigitsMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 512)
        self.fc2 = nn.Linear(512, 512)
        self.fc3 = nn.Linear(512, 10)

    def forward(self, x):
        x = x.flatten(1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 4 * 4, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def digits():
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    return x, y


def train(model, x, y, epochs, lr):
    """Full-batch-ish SGD with momentum: long enough to leave Marchenko-Pastur."""
    optimiser = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    generator = torch.Generator().manual_seed(1)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 32):
            batch = order[start:start + 32]
            optimiser.zero_grad()
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    return loss.item(), accuracy


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "models")
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    x, y = digits()
    for name, cls, epochs, lr in [("mlp", DigitsMLP, 200, 0.05), ("cnn", DigitsCNN, 100, 0.05)]:
        torch.manual_seed(0)
        model = cls()
        torch.jit.script(model).save(str(out / f"digits_{name}_init.pt"))
        loss, accuracy = train(model, x, y, epochs, lr)
        model.eval()
        torch.jit.script(model).save(str(out / f"digits_{name}_trained.pt"))
        print(f"digits_{name}: final batch loss {loss:.2e}, training accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
