"""A synthetic Llama-shaped bfloat16 checkpoint directory, as `save_pretrained` lays one out.

Usage:
  .venv/bin/python scripts/make_llama_checkpoint.py DIR [--hidden 2048] [--intermediate 5632]
      [--layers 22] [--heads 32] [--kv-heads 4] [--vocab 32000] [--shards 2] [--seed 0]

Writes DIR/config.json (a LlamaConfig), DIR/model-0000k-of-0000N.safetensors and
DIR/model.safetensors.index.json: token embeddings, per block q/k/v/o projections (grouped-query
attention when --kv-heads < --heads), gate/up/down MLP and two RMSNorm vectors, the final norm
and an untied lm_head. The defaults are TinyLlama's shape (Zhang et al. 2024): 1.1 B parameters,
2.2 GB. Weights are seeded Gaussians with std 0.02 plus a rank-8 signal in every matrix, so that
spectra have spikes as trained ones do; the benchmark's cost does not depend on the values.
Tensors are made one shard at a time, so generating needs about one shard of memory.
"""
import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import save_file


def tensor_shapes(args):
    """(name, shape) in the order transformers' LlamaForCausalLM stores them."""
    head_dim = args.hidden // args.heads
    shapes = [("model.embed_tokens.weight", (args.vocab, args.hidden))]
    for block in range(args.layers):
        prefix = f"model.layers.{block}"
        shapes += [
            (f"{prefix}.self_attn.q_proj.weight", (args.heads * head_dim, args.hidden)),
            (f"{prefix}.self_attn.k_proj.weight", (args.kv_heads * head_dim, args.hidden)),
            (f"{prefix}.self_attn.v_proj.weight", (args.kv_heads * head_dim, args.hidden)),
            (f"{prefix}.self_attn.o_proj.weight", (args.hidden, args.heads * head_dim)),
            (f"{prefix}.mlp.gate_proj.weight", (args.intermediate, args.hidden)),
            (f"{prefix}.mlp.up_proj.weight", (args.intermediate, args.hidden)),
            (f"{prefix}.mlp.down_proj.weight", (args.hidden, args.intermediate)),
            (f"{prefix}.input_layernorm.weight", (args.hidden,)),
            (f"{prefix}.post_attention_layernorm.weight", (args.hidden,)),
        ]
    shapes += [("model.norm.weight", (args.hidden,)), ("lm_head.weight", (args.vocab, args.hidden))]
    return shapes


def make_tensor(shape, generator):
    if len(shape) == 1:
        return torch.ones(shape, dtype=torch.bfloat16)
    rows, cols = shape
    weight = torch.randn(shape, generator=generator) * 0.02
    rank = 8
    signal = torch.randn(rows, rank, generator=generator) @ torch.randn(rank, cols, generator=generator)
    weight += signal * (0.02 * 4.0 / (rows * cols) ** 0.25)
    return weight.to(torch.bfloat16)


def split_into_shards(shapes, count):
    """Consecutive runs of tensors with about equal bytes."""
    total = sum(2 * torch.Size(shape).numel() for _, shape in shapes)
    shards, current, size = [], [], 0
    for name, shape in shapes:
        current.append((name, shape))
        size += 2 * torch.Size(shape).numel()
        if size >= total * (len(shards) + 1) / count and len(shards) < count - 1:
            shards.append(current)
            current = []
    shards.append(current)
    return [shard for shard in shards if shard]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--layers", type=int, default=22)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.hidden % args.heads or args.heads % args.kv_heads:
        parser.error("--hidden must divide by --heads, and --heads by --kv-heads")

    args.dir.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(args.seed)
    shards = split_into_shards(tensor_shapes(args), args.shards)
    weight_map, total_size = {}, 0
    for index, shard in enumerate(shards, start=1):
        file_name = f"model-{index:05d}-of-{len(shards):05d}.safetensors"
        tensors = {name: make_tensor(shape, generator) for name, shape in shard}
        save_file(tensors, str(args.dir / file_name), metadata={"format": "pt"})
        for name, tensor in tensors.items():
            weight_map[name] = file_name
            total_size += tensor.numel() * tensor.element_size()
        del tensors
    index = {"metadata": {"total_size": total_size}, "weight_map": weight_map}
    (args.dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": args.hidden,
        "intermediate_size": args.intermediate,
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads,
        "num_key_value_heads": args.kv_heads,
        "vocab_size": args.vocab,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    (args.dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"{args.dir}: {len(weight_map)} tensors, {total_size / 1e9:.2f} GB in {len(shards)} shards")


if __name__ == "__main__":
    main()
