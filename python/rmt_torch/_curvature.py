"""Loss Hessians of any PyTorch model, any loss and any data, split across processes or not:
the products H·v are PyTorch's own (``torch.autograd.grad(g, θ, grad_outputs=v)`` per
parameter tensor, the gradient's graph kept when the data is one batch), summed over the
batches and, with a process group, over the ranks by one ``all_reduce`` per product; Lanczos,
the trace and the density are the Rust library's, as for ``rmt-torch hessian``.
"""
import json
import math
import re
from collections.abc import Mapping

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from . import _rmt_torch, losses
from ._rmt_torch import OptionError

#: Names of a transformer's blocks in its parameters' names: ``model.layers.3.``,
#: ``transformer.h.3.``, ``encoder.layer.3.``, ``blocks.3.``.
TRANSFORMER_BLOCK = re.compile(r"^(.*?(?:^|\.)(?:layers|layer|h|blocks|block)\.\d+)\.")

_NAMED_LOSSES = {"cross-entropy": losses.cross_entropy, "mse": losses.mse}
# Options of hessian(module, inputs, targets) that a model in memory does not take.
_MODULE_ONLY = ("device", "float64", "batch_size")


def _to_device(batch, device):
    """The tensors of ``batch`` (nested tuples, lists and mappings) on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {key: _to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(value, device) for value in batch)
    return batch


def _samples(batch):
    """Samples in a batch: the length of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    values = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (tuple, list)) else ()
    for value in values:
        if isinstance(value, (torch.Tensor, Mapping, tuple, list)):
            return _samples(value)
    raise TypeError(f"a batch holds no tensor to count its samples: {type(batch).__name__}")


class _Products:
    """H·v of the mean loss over ``data`` (every rank's, with a process group) with respect to
    ``parameters``, each batch weighted by its share of the samples."""

    def __init__(self, model, parameters, data, loss_fn, process_group):
        self.model, self.parameters, self.loss_fn, self.group = model, parameters, loss_fn, process_group
        self.device = parameters[0].device
        self.sizes = [p.numel() for p in parameters]
        if iter(data) is data:
            raise TypeError("data must be iterable again for every product (a DataLoader, a list of "
                            "batches), not a one-shot iterator or generator")
        self.data = data
        batches = list(data) if isinstance(data, (list, tuple)) or _has_one_batch(data) else None
        # One batch: its gradient's graph serves every product. Several: rebuilt per product.
        self.kept = None
        local = sum(_samples(batch) for batch in (batches if batches is not None else data))
        total = self._reduce(torch.tensor([float(local)], dtype=torch.float64, device=self.device))
        self.samples = int(total.item())
        if self.samples == 0:
            raise _rmt_torch.InputError("the data holds no sample")
        # Samples per forward pass; 0 on a rank whose shard is empty.
        self.batch_size = _samples(batches[0]) if batches else 0
        value = torch.zeros(1, dtype=torch.float64, device=self.device)
        if batches is not None and len(batches) == 1:
            loss = self._weighted_loss(batches[0])
            self.kept = torch.autograd.grad(loss, parameters, create_graph=True, allow_unused=True)
            value += loss.detach().double()
        else:
            with torch.no_grad():
                for batch in data:
                    value += self._weighted_loss(batch).double()
                    self.batch_size = self.batch_size or _samples(batch)
        self.value = float(self._reduce(value).item())
        if not math.isfinite(self.value):
            raise _rmt_torch.InputError(f"the loss is {self.value} at the model's parameters: its Hessian is undefined")

    def _reduce(self, tensor):
        if self.group is not None:
            torch.distributed.all_reduce(tensor, group=self.group)
        return tensor

    def _weighted_loss(self, batch):
        # Fused attention kernels (flash, memory-efficient) have no second derivative: the math
        # one, the same function, has (transformers' models use scaled_dot_product_attention).
        with sdpa_kernel(SDPBackend.MATH):
            loss = self.loss_fn(self.model, _to_device(batch, self.device))
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError(f"loss_fn must return a scalar tensor, got {type(loss).__name__}")
        return loss.reshape(()) * (_samples(batch) / self.samples)

    def __call__(self, v):
        directions = [part.view_as(p).to(p.dtype) for part, p in zip(v.split(self.sizes), self.parameters)]
        out = torch.zeros_like(v)
        outputs = out.split(self.sizes)
        for gradients in self._gradients():
            # A gradient that is constant in θ (or absent) is a zero block of H.
            used = [(g, d) for g, d in zip(gradients, directions) if g is not None and g.requires_grad]
            if not used:
                continue
            products = torch.autograd.grad([g for g, _ in used], self.parameters,
                                           grad_outputs=[d for _, d in used],
                                           retain_graph=self.kept is not None, allow_unused=True)
            for target, product in zip(outputs, products):
                if product is not None:
                    target.add_(product.reshape(-1))
        return self._reduce(out)

    def _gradients(self):
        if self.kept is not None:
            yield self.kept
            return
        for batch in self.data:
            loss = self._weighted_loss(batch)
            yield torch.autograd.grad(loss, self.parameters, create_graph=True, allow_unused=True)


def _has_one_batch(data):
    try:
        return len(data) == 1
    except TypeError:
        return False


def _selected(model, layers):
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad and p.is_floating_point()]
    if layers is not None:
        pattern = re.compile(layers)
        named = [(name, p) for name, p in named if pattern.search(name)]
        if not named:
            some = ", ".join(name for name, _ in list(model.named_parameters())[:8])
            raise OptionError(f"no parameter matches layers={layers!r} (the model's are {some}, …)")
    if not named:
        raise OptionError("the model has no floating-point parameter that requires grad")
    return named


def _blocks(named, blocks):
    if blocks != "transformer":
        raise OptionError(f'blocks must be "transformer" (one spectrum per transformer block), got {blocks!r}')
    grouped = {}
    for name, p in named:
        match = TRANSFORMER_BLOCK.match(name)
        if match:
            grouped.setdefault(match.group(1), []).append((name, p))
    if not grouped:
        raise OptionError("blocks=\"transformer\" found no block in the parameters' names "
                          "(expected …layers.N., …h.N., …layer.N. or …blocks.N.)")
    return grouped


def hessian(model, data, *, loss_fn=None, process_group=None, layers=None, blocks=None, **options):
    """See :func:`rmt_torch.hessian` (its ``data=`` / ``loss_fn=`` / ``process_group=`` form)."""
    for name in _MODULE_ONLY:
        if name in options:
            raise OptionError(f"{name} applies to hessian(module, inputs, targets); with data=, loss_fn=, "
                              f"process_group= or blocks= the model runs where and as it is (move it, or "
                              f".double() it, first) on the batches data holds")
    loss_name = options.pop("loss", "cross-entropy")
    if loss_fn is None:
        if loss_name not in _NAMED_LOSSES:
            raise OptionError(f"loss must be one of {', '.join(_NAMED_LOSSES)}, got {loss_name!r}")
        loss_fn = _NAMED_LOSSES[loss_name]
    else:
        loss_name = getattr(loss_fn, "__qualname__", type(loss_fn).__name__)
    named = _selected(model, layers)
    groups = {None: named} if blocks is None else _blocks(named, blocks)
    keywords = json.dumps(options)
    was_training = model.training
    model.eval()
    try:
        results = {}
        for block, members in groups.items():
            names, parameters = zip(*members)
            products = _Products(model, list(parameters), data, loss_fn, process_group)
            description = {"loss": loss_name, "samples": products.samples, "batch_size": products.batch_size,
                           "value": products.value, "parameters": [[n, p.numel()] for n, p in members]}
            text = _rmt_torch.hessian_products(products, parameters[0].detach(), sum(products.sizes),
                                               json.dumps(description), keywords)
            record = json.loads(text)
            record["model"] = type(model).__name__ if block is None else f"{type(model).__name__}:{block}"
            results[block] = record
    finally:
        model.train(was_training)
    return results[None] if blocks is None else results
