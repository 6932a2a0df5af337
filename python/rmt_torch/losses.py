"""Losses for :func:`rmt_torch.hessian`'s ``loss_fn(model, batch) -> scalar`` (the convention of
hessian-eigenthings): each is the mean over the batch, as PyTorch's ``reduction="mean"``.

``cross_entropy`` and ``mse`` take ``(inputs, targets)`` batches and are what ``loss=`` names;
``causal_lm`` is a Hugging Face causal language model's next-token loss.
"""
from collections.abc import Mapping

import torch
from torch.nn import functional

#: The label PyTorch's losses (and Hugging Face's) ignore.
IGNORE_INDEX = -100


def cross_entropy(model, batch):
    """``F.cross_entropy(model(inputs), targets)`` for a batch ``(inputs, targets)`` of class
    indices: the CLI's ``--loss cross-entropy``."""
    inputs, targets = batch
    return functional.cross_entropy(model(inputs), targets)


def mse(model, batch):
    """``F.mse_loss(model(inputs), targets)`` (the mean over every output element), targets
    reshaped to the output's shape: the CLI's ``--loss mse``."""
    inputs, targets = batch
    output = model(inputs)
    return functional.mse_loss(output, targets.reshape(output.shape).to(output.dtype))


def causal_lm(model, batch):
    """The next-token cross-entropy of a Hugging Face causal LM, equal to the model's own
    ``labels=`` loss: token t predicts token t + 1, padding (``attention_mask == 0``) and
    labels of -100 ignored, the mean over the predicted tokens.

    ``batch`` is a tensor of ``input_ids`` or a mapping with ``input_ids`` and optionally
    ``attention_mask`` and ``labels`` (the labels default to the inputs, padding ignored).
    Logits in half precision are upcast to float32 as ``transformers`` does.

    >>> rmt_torch.hessian(model, data=loader, loss_fn=rmt_torch.losses.causal_lm)  # doctest: +SKIP
    """
    if isinstance(batch, torch.Tensor):
        input_ids, attention_mask, labels = batch, None, None
    elif isinstance(batch, Mapping):
        input_ids, attention_mask, labels = batch["input_ids"], batch.get("attention_mask"), batch.get("labels")
    else:
        raise TypeError(f"causal_lm takes a tensor of input_ids or a mapping with input_ids, got {type(batch).__name__}")
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    if labels is None:
        labels = input_ids if attention_mask is None else input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)
    predicted = logits[:, :-1].reshape(-1, logits.shape[-1])
    following = labels[:, 1:].reshape(-1).to(logits.device)
    return functional.cross_entropy(predicted, following, ignore_index=IGNORE_INDEX)
