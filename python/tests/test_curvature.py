"""rmt_torch.hessian over any loss, any data and a process group, against dense Hessians from
torch.autograd.functional.hessian, a transformers causal LM's own loss, and one process."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import torch
import transformers
from torch.nn.attention import SDPBackend, sdpa_kernel

import rmt_torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from distributed_hessian import model_and_batches  # noqa: E402


def dense_hessian(model, names, loss):
    """H of ``loss()`` with respect to the parameters ``names`` of ``model``, formed entry by
    entry by torch.autograd.functional.hessian."""
    parameters = dict(model.named_parameters())
    shapes = [parameters[name].shape for name in names]
    flat = torch.cat([parameters[name].detach().reshape(-1) for name in names])

    def of(theta):
        replaced, offset = {}, 0
        for name, shape in zip(names, shapes):
            replaced[name] = theta[offset:offset + shape.numel()].reshape(shape)
            offset += shape.numel()
        return loss(replaced)

    # The math attention kernel: the fused ones have no second derivative.
    with sdpa_kernel(SDPBackend.MATH):
        return torch.autograd.functional.hessian(of, flat)


def top(matrix, k):
    return torch.linalg.eigvalsh(matrix).flip(0)[:k].tolist()


@pytest.mark.parametrize("reorthogonalisation", ["partial", "full"])
def test_products_over_batches_equal_the_dense_hessian(reorthogonalisation):
    model, batches = model_and_batches(width=10, samples=48, batch=16, dtype=torch.float64)
    inputs = torch.cat([x for x, _ in batches])
    labels = torch.cat([y for _, y in batches])
    names = [name for name, _ in model.named_parameters()]

    def loss(replaced):
        return torch.nn.functional.cross_entropy(torch.func.functional_call(model, replaced, (inputs,)), labels)

    exact = dense_hessian(model, names, loss)
    options = dict(top_k=4, tolerance=1e-12, trace=8, reorthogonalisation=reorthogonalisation)
    several = rmt_torch.hessian(model, data=batches, **options)
    numpy.testing.assert_allclose(several["top_eigenvalues"], top(exact, 4), rtol=1e-8)
    assert several["samples"] == 48 and several["batch_size"] == 16
    assert abs(several["loss_value"] - float(loss(dict(model.named_parameters())))) < 1e-12
    # One batch keeps its gradient's graph; the same products, the same Lanczos run.
    one = rmt_torch.hessian(model, inputs, labels, loss_fn=rmt_torch.losses.cross_entropy, **options)
    numpy.testing.assert_allclose(one["top_eigenvalues"], several["top_eigenvalues"], rtol=1e-10)
    assert one["trace"] == pytest.approx(several["trace"], rel=1e-10)
    # The CLI's engine (TorchScript, per-tensor products in Rust) on the same batch.
    archived = rmt_torch.hessian(model, inputs, labels, float64=True, **options)
    numpy.testing.assert_allclose(archived["top_eigenvalues"], one["top_eigenvalues"], rtol=1e-10)


def test_any_loss_and_the_block_of_some_layers():
    model, batches = model_and_batches(width=8, samples=32, batch=32, dtype=torch.float64)
    (inputs, labels), = batches
    targets = torch.nn.functional.one_hot(labels, 10).double()

    def huber(m, batch):
        x, y = batch
        return torch.nn.functional.huber_loss(m(x), y, delta=0.5)

    report = rmt_torch.hessian(model, data=[(inputs, targets)], loss_fn=huber, layers=r"^4\.", top_k=3,
                               tolerance=1e-12)
    assert report["loss"].endswith("huber")
    assert [name for name, _ in report["parameters"]] == ["4.weight", "4.bias"]

    def loss(replaced):
        return huber(lambda x: torch.func.functional_call(model, replaced, (x,)), (inputs, targets))

    exact = dense_hessian(model, ["4.weight", "4.bias"], loss)
    numpy.testing.assert_allclose(report["top_eigenvalues"], top(exact, 3), rtol=1e-8)


def test_hessian_density_and_refusals():
    model, batches = model_and_batches(width=8, samples=32, batch=8, dtype=torch.float64)
    density = rmt_torch.hessian_density(model, data=batches, runs=2, steps=15, seed=1)
    assert density["top_eigenvalues"] == [] and len(density["density"]["nodes"]) == 2
    assert sum(density["density"]["weights"][0]) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(TypeError, match="iterable again"):
        rmt_torch.hessian(model, data=iter(batches))
    with pytest.raises(rmt_torch.OptionError, match="device applies to hessian"):
        rmt_torch.hessian(model, data=batches, device="cpu")
    with pytest.raises(rmt_torch.OptionError, match="no parameter matches"):
        rmt_torch.hessian(model, data=batches, layers="attention")
    with pytest.raises(rmt_torch.OptionError, match="found no block"):
        rmt_torch.hessian(model, data=batches, blocks="transformer")
    with pytest.raises(rmt_torch.OptionError, match="reorthogonalisation"):
        rmt_torch.hessian(model, data=batches, reorthogonalisation="sometimes")
    with pytest.raises(ZeroDivisionError):
        rmt_torch.hessian(model, data=batches, loss_fn=lambda m, b: 1 / 0)


def tiny_llama():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    model = transformers.LlamaForCausalLM(config).double().eval()
    input_ids = torch.randint(0, 40, (3, 9))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 6:] = 0
    attention_mask[2, 4:] = 0
    return model, {"input_ids": input_ids, "attention_mask": attention_mask}


def test_causal_lm_loss_and_the_per_block_spectra_of_a_language_model():
    model, batch = tiny_llama()
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    own = model(**batch, labels=labels).loss
    # transformers computes its loss from float32 logits whatever the model's dtype.
    assert float(rmt_torch.losses.causal_lm(model, batch)) == pytest.approx(float(own), rel=1e-6)
    assert float(rmt_torch.losses.causal_lm(model.float(), batch)) == pytest.approx(float(own), rel=1e-7)
    model.double()
    assert float(rmt_torch.losses.causal_lm(model, {**batch, "labels": labels})) == \
        float(rmt_torch.losses.causal_lm(model, batch))

    blocks = rmt_torch.hessian(model, data=[batch], loss_fn=rmt_torch.losses.causal_lm, blocks="transformer",
                               top_k=2, tolerance=1e-12)
    assert list(blocks) == ["model.layers.0", "model.layers.1"]
    for block, report in blocks.items():
        names = [name for name, _ in report["parameters"]]
        assert names and all(name.startswith(block + ".") for name in names)

        def loss(replaced):
            return rmt_torch.losses.causal_lm(lambda **kw: torch.func.functional_call(model, replaced, (), kw), batch)

        exact = dense_hessian(model, names, loss)
        # Llama's normalisations and rotary embeddings compute in float32 inside the float64
        # model: its products, and the dense H (asymmetric by 2e-8), are only that exact.
        numpy.testing.assert_allclose(report["top_eigenvalues"], top(exact, 2), rtol=1e-7)
    head = rmt_torch.hessian(model, data=[batch], loss_fn=rmt_torch.losses.causal_lm, layers=r"^lm_head\.",
                             top_k=2, tolerance=1e-12)
    exact = dense_hessian(model, ["lm_head.weight"],
                          lambda replaced: rmt_torch.losses.causal_lm(
                              lambda **kw: torch.func.functional_call(model, replaced, (), kw), batch))
    numpy.testing.assert_allclose(head["top_eigenvalues"], top(exact, 2), rtol=1e-7)


def test_two_gloo_processes_equal_one_process_on_the_whole_data(tmp_path):
    """torchrun --nproc_per_node 2, Gloo on this CPU, the batches split between the ranks:
    top eigenvalues, the trace (same seeds) and the density equal one process's (1e-10)."""
    script = HERE / "distributed_hessian.py"
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    str(script), str(tmp_path)], check=True, capture_output=True, env=environment, timeout=300)
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, capture_output=True, timeout=300)
    single = json.loads((tmp_path / "single.json").read_text())
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert single["samples"] == 64 and all(rank["samples"] == 64 for rank in ranks)
    for rank in ranks:
        assert rank["top_eigenvalues"] == ranks[0]["top_eigenvalues"], "every rank ends with the same result"
        numpy.testing.assert_allclose(rank["top_eigenvalues"], single["top_eigenvalues"], rtol=1e-10)
        assert rank["trace"] == pytest.approx(single["trace"], rel=1e-10)
        assert rank["loss_value"] == pytest.approx(single["loss_value"], rel=1e-12)
        for ours, theirs in zip(rank["density"]["nodes"], single["density"]["nodes"]):
            numpy.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
        numpy.testing.assert_allclose(rank["density"]["y"], single["density"]["y"], rtol=1e-8, atol=1e-10)
