"""Test fixtures for rmt-torch's integration tests, with reference values from numpy.

Usage: .venv/bin/python scripts/make_fixtures.py OUT_DIR

Writes model files in every format the loaders read (scripted and traced TorchScript,
safetensors in f32/f16/bf16/f64), files that must be refused (corrupt, truncated, NaN, Python
torch.save pickles), and `reference.json`: for every weight tensor of every model, its shape,
dtype and the squared singular values that numpy's float64 SVD gives (pooled over conv slices,
and for the reshaped kernel), plus WeightWatcher-style metrics computed by numpy.
"""
import io
import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from safetensors.torch import save_file


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(40, 120)
        self.fc2 = nn.Linear(120, 60)
        self.out = nn.Linear(60, 10)

    def forward(self, x):
        return self.out(torch.tanh(self.fc2(torch.relu(self.fc1(x)))))


class Mixed(nn.Module):
    """Conv1d, Conv2d, LSTM and Embedding in one module."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.lstm = nn.LSTM(16, 24, batch_first=True)
        self.conv1d = nn.Conv1d(24, 32, 5)
        self.conv2d = nn.Conv2d(8, 20, (3, 2))
        self.norm = nn.LayerNorm(20)

    def forward(self, tokens, image):
        h, _ = self.lstm(self.embed(tokens))
        a = self.conv1d(h.transpose(1, 2)).mean()
        b = self.norm(self.conv2d(image).mean((2, 3)))
        return b + a


class Tree(nn.Module):
    """TorchScript's module tree in its corners: nested Sequential and ModuleList, BatchNorm
    buffers, a bias-free Linear, a frozen parameter, a submodule used twice, a parameter
    registered after the submodules, and a tensor constant in the code."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
        self.blocks = nn.ModuleList([nn.Linear(8, 8, bias=False), nn.Linear(8, 8)])
        self.shared = nn.Linear(8, 8)
        self.head = nn.Sequential(nn.Sequential(nn.Linear(8, 4)))
        self.head[0][0].weight.requires_grad_(False)
        self.scale = nn.Parameter(torch.randn(4, 4))

    def forward(self, x):
        h = self.stem(x).mean((2, 3))
        for block in self.blocks:
            h = torch.relu(block(h))
        h = self.shared(self.shared(h))
        return self.head(h) @ self.scale * torch.tensor([1.0, 2.0, 3.0, 4.0])


def gaussian(shape, generator):
    return torch.randn(shape, generator=generator, dtype=torch.float64)


def squared_singular_values(matrices):
    evals = np.concatenate([np.linalg.svd(w, compute_uv=False) ** 2 for w in matrices])
    return np.sort(evals)


def as_matrices(w, mode):
    """The same conv rule as rmt-torch: slices per kernel position, or out x (in*k)."""
    if w.ndim == 2:
        return [w]
    if mode == "reshape":
        return [w.reshape(w.shape[0], -1)]
    kernel = w.shape[2:]
    return [w[(slice(None), slice(None)) + idx] for idx in np.ndindex(*kernel)]


def ww_metrics(evals, n):
    """Norm metrics as WeightWatcher defines them (apply_norm_metrics), from the evals."""
    norm = evals.sum()
    rank = int(np.count_nonzero(evals > evals.max() * n * np.finfo(float).eps))
    p = evals / norm
    p = p[p > 0]
    return {
        "norm": float(norm),
        "log_norm": float(np.log10(norm)),
        "lambda_max": float(evals.max()),
        "log_spectral_norm": float(np.log10(evals.max())),
        "stable_rank": float(norm / evals.max()),
        "entropy": float(-(p * np.log(p)).sum() / np.log(rank)),
    }


def reference_for(tensors):
    entries = {}
    for name, t in tensors.items():
        w = t.detach().to(torch.float64).numpy()
        entry = {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", "")}
        if w.ndim in (2, 3, 4):
            for mode in ("slices", "reshape"):
                mats = as_matrices(w, mode)
                evals = squared_singular_values(mats)
                n = max(mats[0].shape)
                entry[mode] = {"n": n, "m": min(mats[0].shape), "squared_singular_values": evals.tolist(),
                               "metrics": ww_metrics(evals, n)}
            entry["sigma2"] = float(w.var())
        entries[name] = entry
    return entries


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    reference = {}

    mlp = MLP().eval()
    torch.jit.script(mlp).save(str(out / "mlp_scripted.pt"))
    torch.jit.trace(mlp, torch.randn(3, 40)).save(str(out / "mlp_traced.pt"))
    params = dict(mlp.named_parameters())
    reference["mlp_scripted.pt"] = reference_for(params)
    reference["mlp_traced.pt"] = reference_for(params)

    tree = Tree().eval()
    torch.jit.script(tree).save(str(out / "tree_scripted.pt"))
    torch.jit.trace(tree, torch.randn(2, 3, 6, 6)).save(str(out / "tree_traced.pt"))

    mixed = Mixed().eval()
    torch.jit.script(mixed).save(str(out / "mixed_scripted.pt"))
    reference["mixed_scripted.pt"] = reference_for(dict(mixed.named_parameters()))

    weights = {
        "dense.weight": gaussian((70, 30), gen),
        "wide.weight": gaussian((12, 90), gen),
        "conv1d.weight": gaussian((16, 6, 3), gen),
        "conv2d.weight": gaussian((24, 10, 3, 3), gen),
        "dense.bias": gaussian((70,), gen),
        "steps": torch.arange(5),
    }
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        name = f"weights_{str(dtype).replace('torch.', '')}.safetensors"
        cast = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in weights.items()}
        save_file(cast, str(out / name))
        reference[name] = reference_for(cast)

    # M = 1030 > 2 x 512: exercises the blocked lower-triangular Gram product (blocks 512, 512, 6).
    large = {"large.weight": gaussian((1030, 1100), gen).to(torch.float32)}
    save_file(large, str(out / "large_gram.safetensors"))
    reference["large_gram.safetensors"] = reference_for(large)

    # Marchenko-Pastur: unit-variance Gaussian matrices at Q = 1, 2, 4, 8.
    mp = {f"q{q}.weight": gaussian((500 * q, 500), gen) for q in (1, 2, 4, 8)}
    save_file(mp, str(out / "gaussian_mp.safetensors"))

    # Inputs that must be refused with a clear error.
    bad = {"w": gaussian((20, 20), gen)}
    bad["w"][3, 4] = float("nan")
    bad["w"][5, 6] = float("inf")
    save_file(bad, str(out / "nan_weights.safetensors"))
    save_file({"bias": gaussian((20,), gen), "row": gaussian((1, 50), gen)}, str(out / "no_weights.safetensors"))
    data = (out / "mlp_scripted.pt").read_bytes()
    (out / "truncated.pt").write_bytes(data[: len(data) // 2])
    (out / "random.bin").write_bytes(np.random.default_rng(7).bytes(4096))
    (out / "empty.pt").write_bytes(b"")
    header = json.dumps({"w": {"dtype": "F32", "shape": [100, 100], "data_offsets": [0, 40000]}}).encode()
    (out / "truncated.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(1000))

    checkpoint_fixtures(out)
    checkpoint_directory_fixtures(out)
    powerlaw_fixtures(out)
    jacobian_fixtures(out)
    hessian_fixtures(out)
    (out / "reference.json").write_text(json.dumps(reference))


def powerlaw_fixtures(out):
    """Synthetic samples and the `powerlaw` package's continuous fit of each (Clauset et al.)."""
    import warnings
    import powerlaw
    rng = np.random.default_rng(3)
    samples = {
        "pareto_alpha_2.5": (rng.pareto(1.5, 2000) + 1) * 0.3,
        "pareto_alpha_1.8": (rng.pareto(0.8, 3000) + 1) * 2.0,
        "pareto_alpha_4": (rng.pareto(3.0, 3000) + 1) * 2.0,
        "lognormal": rng.lognormal(0.0, 1.0, 2000),
        "exponential": rng.exponential(2.0, 2000),
    }
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, sample in samples.items():
            # powerlaw 2.0 keeps only α < 3 by default; WeightWatcher's fit has no such bound.
            fit = powerlaw.Fit(sample, verbose=False, parameter_ranges={"alpha": [1, 100]})
            fits[name] = {"sample": sample.tolist(), "alpha": fit.alpha, "xmin": fit.xmin, "D": fit.D,
                          "sigma": fit.sigma, "n_tail": int(len(fit.data))}
            # Likelihood ratios of the power law against the alternatives (R > 0 favours it).
            for alternative in ("exponential", "lognormal", "truncated_power_law"):
                r, p = fit.distribution_compare("power_law", alternative)
                fits[name][f"llr_{alternative}"] = float(r)
                fits[name][f"p_{alternative}"] = float(p)
                fits[name][f"loglikelihood_{alternative}"] = float(sum(getattr(fit, alternative).loglikelihoods(fit.data)))
            fits[name]["loglikelihood_power_law"] = float(sum(fit.power_law.loglikelihoods(fit.data)))
            # powerlaw floors underflowed likelihoods at 1e-308, which flatters a bad fit: the
            # same parameters' log-likelihood computed in log space, to compare fits honestly.
            fits[name]["exact_loglikelihood"] = exact_loglikelihoods(fit)
            # fix_fingers='xmin_peak' as intended: xmin in [0.95·p, 1.5·p], p the left edge of
            # the fullest of 100 bins of log10 x.
            counts, edges = np.histogram(np.log10(sample), bins=100)
            peak = 10 ** edges[np.argmax(counts)]
            ranged = powerlaw.Fit(sample, xmin=(0.95 * peak, 1.5 * peak), verbose=False,
                                  parameter_ranges={"alpha": [1, 100]})
            fits[name]["xmin_peak"] = {"alpha": ranged.alpha, "xmin": ranged.xmin, "D": ranged.D}
            fits[name]["exponential_lambda"] = float(fit.exponential.Lambda)
            fits[name]["lognormal_mu"] = float(fit.lognormal.mu)
            fits[name]["lognormal_sigma"] = float(fit.lognormal.sigma)
            fits[name]["tpl_alpha"] = float(fit.truncated_power_law.alpha)
            fits[name]["tpl_lambda"] = float(fit.truncated_power_law.Lambda)
    (out / "powerlaw_reference.json").write_text(json.dumps(fits))
    # WeightWatcher's α from float32 and float16-weight ESDs (its CUDA path) on the shipped models.
    from precision_drift import drift
    models = Path(__file__).resolve().parent.parent / "models"
    drifts = {name: drift(str(models / name)) for name in ("digits_mlp_trained.pt", "digits_cnn_trained.pt")}
    (out / "precision_drift.json").write_text(json.dumps(drifts))


def exact_loglikelihoods(fit):
    """Log-likelihoods of powerlaw's fitted alternatives on its tail, computed in log space."""
    import mpmath
    from scipy import stats
    t, xmin = np.asarray(fit.data), fit.xmin
    n = len(t)
    lam = fit.exponential.Lambda
    lognormal = stats.lognorm(fit.lognormal.sigma, scale=np.exp(fit.lognormal.mu))
    a, cut = fit.truncated_power_law.alpha, fit.truncated_power_law.Lambda
    log_c = float((1 - a) * mpmath.log(cut) - mpmath.log(mpmath.gammainc(1 - a, cut * xmin)))
    return {
        "exponential": float(n * np.log(lam) - lam * np.sum(t - xmin)),
        "lognormal": float(np.sum(lognormal.logpdf(t)) - n * lognormal.logsf(xmin)),
        "truncated_power_law": float(n * log_c - a * np.sum(np.log(t)) - cut * np.sum(t)),
    }


def as_python2_pickles(data, count):
    """The first `count` pickles of `data` rewritten the way Python 2 pickled str (as
    SHORT_BINSTRING or BINSTRING, where Python 3 writes BINUNICODE); the rest copied."""
    import pickletools
    stream = io.BytesIO(data)
    out = bytearray()
    for _ in range(count):
        ops = list(pickletools.genops(stream))
        end = stream.tell()
        for k, (op, arg, pos) in enumerate(ops):
            next_pos = ops[k + 1][2] if k + 1 < len(ops) else end
            if op.name == "BINUNICODE":
                raw = arg.encode()
                if len(raw) < 256:
                    out += b"U" + bytes([len(raw)]) + raw
                else:
                    out += b"T" + struct.pack("<I", len(raw)) + raw
            else:
                out += data[pos:next_pos]
        stream.seek(end)
    return bytes(out) + data[stream.tell():]


def checkpoint_directory_fixtures(out):
    """Hugging Face checkpoint directories written the way `save_pretrained` writes them:
    sharded safetensors with their index, sharded torch.save .bin with theirs (the head tied to
    the embeddings, as language models do), shards without an index, a diffusers-style folder,
    the same weights in one file, broken directories, and numpy's λmax of every matrix."""
    import shutil

    gen = torch.Generator().manual_seed(99)
    names = ["embed.weight", "layers.0.attn.q_proj.weight", "layers.0.mlp.up_proj.weight",
             "layers.0.norm.weight", "layers.1.attn.q_proj.weight", "layers.1.mlp.up_proj.weight"]
    shapes = [(100, 32), (32, 32), (64, 32), (32,), (32, 32), (64, 32)]
    state = {n: gaussian(shape, gen).to(torch.float32) for n, shape in zip(names, shapes)}
    lam = {n: float(squared_singular_values(t.double().numpy()[None]).max()) for n, t in state.items() if t.dim() == 2}
    (out / "hf_lambda_max.json").write_text(json.dumps(lam))
    save_file(state, str(out / "hf_single.safetensors"))

    def fresh(name):
        d = out / name
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"model_type": "tiny", "hidden_size": 32}))
        return d

    # Shards hold the tensors in an order other than the index's (the state dict's).
    shard_of = {n: (1 if i % 2 else 2) for i, n in enumerate(names)}
    d = fresh("hf_safetensors_sharded")
    for k in (1, 2):
        save_file({n: state[n] for n in reversed(names) if shard_of[n] == k}, str(d / f"model-0000{k}-of-00002.safetensors"))
    index = {"metadata": {"total_size": 0}, "weight_map": {n: f"model-0000{shard_of[n]}-of-00002.safetensors" for n in names}}
    (d / "model.safetensors.index.json").write_text(json.dumps(index))

    d = fresh("hf_bin_sharded")
    tied = dict(state)
    tied["lm_head.weight"] = tied["embed.weight"]
    for k in (1, 2):
        part = {n: tied[n] for n in names if shard_of[n] == k}
        if k == 2:
            part["lm_head.weight"] = part["embed.weight"]
        torch.save(part, str(d / f"pytorch_model-0000{k}-of-00002.bin"))
    bin_map = {n: f"pytorch_model-0000{shard_of[n]}-of-00002.bin" for n in names}
    bin_map["lm_head.weight"] = "pytorch_model-00002-of-00002.bin"
    (d / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": bin_map}))

    d = fresh("hf_unindexed")
    for k in (1, 2):
        save_file({n: state[n] for n in names if shard_of[n] == k}, str(d / f"model-0000{k}-of-00002.safetensors"))

    d = out / "hf_diffusers"
    shutil.rmtree(d, ignore_errors=True)
    (d / "unet").mkdir(parents=True)
    (d / "text_encoder").mkdir()
    (d / "model_index.json").write_text(json.dumps({"_class_name": "TinyPipeline"}))
    save_file({n: state[n] for n in names[:3]}, str(d / "unet" / "diffusion_pytorch_model.safetensors"))
    save_file({n: state[n] for n in names[3:]}, str(d / "text_encoder" / "model.safetensors"))

    d = fresh("hf_missing_shard")
    shutil.copy(out / "hf_safetensors_sharded" / "model.safetensors.index.json", d)
    shutil.copy(out / "hf_safetensors_sharded" / "model-00001-of-00002.safetensors", d)
    d = fresh("hf_index_lies")
    for f in (out / "hf_safetensors_sharded").iterdir():
        shutil.copy(f, d)
    lying = dict(index["weight_map"])
    lying["ghost.weight"] = "model-00001-of-00002.safetensors"
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": lying}))
    d = fresh("hf_truncated_shard")
    for f in (out / "hf_safetensors_sharded").iterdir():
        shutil.copy(f, d)
    shard = d / "model-00002-of-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[:-100])
    d = fresh("hf_escaping_index")
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "../hf_single.safetensors"}}))


class Hostile:
    """Unpickling this would run a shell command: a reader must refuse it, never run it."""

    def __reduce__(self):
        import os
        return (os.system, ("touch hostile-pickle-was-executed",))


class TupleOutput(nn.Module):
    """Returns (logits, hidden): the Jacobian needs --output-index."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(6, 12)
        self.head = nn.Linear(12, 5)

    def forward(self, x):
        h = torch.tanh(self.hidden(x))
        return self.head(h), h


class BatchDependent(nn.Module):
    """Centres each batch by its own mean: a sample's output depends on its batch."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 5)

    def forward(self, x):
        return self.lin(x - x.mean(0, keepdim=True))


class ArgMax(nn.Module):
    """An output that is not differentiable in the input."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 5)

    def forward(self, x):
        return self.lin(x).argmax(1, keepdim=True).double()


def jacobian_fixtures(out):
    """Small float64 models, input batches in every format, and torch.func's Jacobians of them."""
    from torch.func import jacrev, vmap
    torch.manual_seed(11)
    mlp = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 5)).double().eval()
    cnn = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(75, 4)).double().eval()
    batches = {"mlp": torch.randn(4, 6, dtype=torch.float64), "cnn": torch.randn(3, 2, 5, 5, dtype=torch.float64)}
    singular_values = {}
    for name, model in (("mlp", mlp), ("cnn", cnn)):
        torch.jit.script(model).save(str(out / f"jac_{name}.pt"))
        x = batches[name]
        torch.save(x, str(out / f"jac_{name}_input.pt"))
        np.save(out / f"jac_{name}_input.npy", x.numpy())
        save_file({"x": x, "labels": torch.arange(x.shape[0])}, str(out / f"jac_{name}_input.safetensors"))
        jac = vmap(jacrev(lambda v: model(v.unsqueeze(0)).squeeze(0)))(x).reshape(x.shape[0], -1, x[0].numel())
        np.save(out / f"jac_{name}_jacrev.npy", jac.detach().numpy())
        singular_values[name] = [np.linalg.svd(j, compute_uv=False).tolist() for j in jac.detach().numpy()]
        j = jac.detach().numpy()
        mean_gram = np.einsum("boi,boj->ij", j, j) / j.shape[0]
        singular_values[f"{name}_mean_gram"] = np.linalg.eigvalsh(mean_gram)[::-1].tolist()
    mlp32 = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 5)).eval()
    torch.jit.script(mlp32).save(str(out / "jac_mlp_float32.pt"))
    np.save(out / "jac_mlp_fortran.npy", np.asfortranarray(batches["mlp"].numpy()))
    torch.jit.script(TupleOutput().double().eval()).save(str(out / "jac_tuple.pt"))
    torch.jit.script(BatchDependent().double().eval()).save(str(out / "jac_batch_dependent.pt"))
    torch.jit.script(ArgMax().double().eval()).save(str(out / "jac_argmax.pt"))
    torch.save(torch.ones(2, 6, dtype=torch.int64), str(out / "jac_int_input.pt"))
    torch.save(torch.randn(4, 7, dtype=torch.float64), str(out / "jac_wrong_input.pt"))
    (out / "jac_singular_values.json").write_text(json.dumps(singular_values))


def hessian_fixtures(out):
    """A float64 classifier with a batch, class labels and regression targets, and its exact
    loss Hessians from torch.autograd.functional.hessian: every eigenvalue, the top eigenvector
    (parameters flattened in order) and the trace, for
    cross-entropy and mean squared error over all parameters, and for the block of the last
    layer (parameters named `2.…`)."""
    from torch.autograd.functional import hessian
    from torch.func import functional_call
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double().eval()
    x = torch.randn(40, 5, dtype=torch.float64)
    labels = torch.randint(0, 3, (40,))
    targets = torch.randn(40, 3, dtype=torch.float64)
    torch.jit.script(model).save(str(out / "hess_mlp.pt"))
    np.save(out / "hess_x.npy", x.numpy())
    np.save(out / "hess_labels.npy", labels.numpy())
    np.save(out / "hess_targets.npy", targets.numpy())
    names = [name for name, _ in model.named_parameters()]
    reference = {}
    for loss_name, loss, y in (("cross-entropy", nn.functional.cross_entropy, labels),
                               ("mse", nn.functional.mse_loss, targets)):
        for block, chosen in (("all", names), ("last", [n for n in names if n.startswith("2.")])):
            fixed = {n: p.detach() for n, p in model.named_parameters() if n not in chosen}
            shapes = [dict(model.named_parameters())[n].shape for n in chosen]
            flat = torch.cat([dict(model.named_parameters())[n].detach().reshape(-1) for n in chosen])

            def objective(theta):
                params, offset = dict(fixed), 0
                for n, shape in zip(chosen, shapes):
                    size = int(np.prod(shape))
                    params[n] = theta[offset:offset + size].reshape(shape)
                    offset += size
                return loss(functional_call(model, params, (x,)), y)

            h = hessian(objective, flat).numpy()
            values, vectors = np.linalg.eigh(h)
            reference[f"{loss_name}/{block}"] = {
                "eigenvalues": values.tolist(),
                "top_vector": vectors[:, -1].tolist(),
                "trace": float(np.trace(h)),
                "loss": float(objective(flat)),
            }
    (out / "hess_reference.json").write_text(json.dumps(reference))


def checkpoint_fixtures(out):
    """torch.save files (zip and legacy) with safetensors twins holding the same tensors, listed
    as [checkpoint, twin] pairs in checkpoint_pairs.json."""
    torch.manual_seed(5)
    modules = {
        "mlp": MLP(),
        "cnn": nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 16, 3)),
        "lstm": nn.LSTM(12, 20, num_layers=2),
        "transformer": nn.TransformerEncoderLayer(32, 4, dim_feedforward=64),
    }
    pairs = []
    for name, module in modules.items():
        for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
            state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in module.state_dict().items()}
            dtype_name = str(dtype).replace("torch.", "")
            pairs += save_pair(out, f"ckpt_{name}_{dtype_name}", state)
    base = torch.randn(6, 8, dtype=torch.float64)
    views = {"base": base, "rows": base[1:4], "strided": base[1:, ::3], "transposed": base.t(), "scalar_view": base[2, 5]}
    pairs += save_pair(out, "ckpt_views", views)
    mlp = MLP()
    opt = torch.optim.SGD(mlp.parameters(), lr=0.1, momentum=0.9)
    mlp(torch.randn(2, 40)).sum().backward()
    opt.step()
    nested = {"epoch": 7, "model_state_dict": mlp.state_dict(), "optimizer_state_dict": opt.state_dict(), "loss": 0.25}
    torch.save(nested, str(out / "ckpt_nested.pt"))
    save_file({k: v.contiguous() for k, v in mlp.state_dict().items()}, str(out / "ckpt_nested.safetensors"))
    pairs.append(["ckpt_nested.pt", "ckpt_nested.safetensors"])
    # As Python 2-era torch wrote it: every str a SHORT_BINSTRING/BINSTRING, not BINUNICODE.
    buffer = io.BytesIO()
    torch.save(mlp.state_dict(), buffer, _use_new_zipfile_serialization=False)
    (out / "ckpt_py2_legacy.pt").write_bytes(as_python2_pickles(buffer.getvalue(), 5))
    py2 = torch.load(str(out / "ckpt_py2_legacy.pt"), weights_only=False)
    assert all(torch.equal(py2[k], v) for k, v in mlp.state_dict().items())
    pairs.append(["ckpt_py2_legacy.pt", "ckpt_nested.safetensors"])
    batch = torch.randn(4, 3, 5, 5)
    torch.save(batch, str(out / "ckpt_tensor.pt"))
    save_file({"tensor": batch}, str(out / "ckpt_tensor.safetensors"))
    pairs.append(["ckpt_tensor.pt", "ckpt_tensor.safetensors"])
    (out / "checkpoint_pairs.json").write_text(json.dumps(pairs))

    torch.save(mlp, str(out / "ckpt_whole_module.pt"))
    torch.save({"weights": Hostile()}, str(out / "ckpt_hostile_nested.pt"))
    torch.save(Hostile(), str(out / "ckpt_hostile.pt"))
    data = (out / "ckpt_mlp_float32_zip.pt").read_bytes()
    (out / "ckpt_truncated.pt").write_bytes(data[: len(data) // 2])
    legacy = (out / "ckpt_mlp_float32_legacy.pt").read_bytes()
    (out / "ckpt_truncated_legacy.pt").write_bytes(legacy[: len(legacy) - 100])
    # A zip whose data.pkl is garbage after its first bytes.
    import zipfile
    with zipfile.ZipFile(out / "ckpt_mlp_float32_zip.pt") as src, zipfile.ZipFile(out / "ckpt_bad_pickle.pt", "w") as dst:
        for item in src.infolist():
            payload = src.read(item.filename)
            if item.filename.endswith("data.pkl"):
                payload = payload[:40] + bytes(range(256)) * 2
            dst.writestr(item, payload)


def save_pair(out, stem, state):
    """The state dict as zip and legacy torch.save files, and its safetensors twin."""
    zip_name, legacy_name, twin = f"{stem}_zip.pt", f"{stem}_legacy.pt", f"{stem}.safetensors"
    torch.save(state, str(out / zip_name))
    torch.save(state, str(out / legacy_name), _use_new_zipfile_serialization=False)
    save_file({k: v.contiguous().clone() for k, v in state.items()}, str(out / twin))
    return [[zip_name, twin], [legacy_name, twin]]


if __name__ == "__main__":
    main()
