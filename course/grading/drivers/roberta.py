"""Drivers for unit 4.3 `roberta`.

:func:`epochs` builds the learner's ``DynamicMasker`` once and calls its ``epoch()`` several
times in a row, which a single probe cannot do, and returns every epoch's ``(inputs, labels)``
stacked, with the ``ids`` tensor as it is after the last epoch (the masker must never modify
it). Runs where learner code runs and returns plain tensors, never verdicts.
"""

from __future__ import annotations

import torch

from course.grading.probes import ProbeError, lookup


def _pair(value: object, n: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(value, tuple) and len(value) == 2
            and all(isinstance(t, torch.Tensor) for t in value)):
        raise ProbeError(f"DynamicMasker.epoch() call {n} should return a pair of tensors "
                         "(inputs, labels)")
    inputs, labels = value
    for name, t in (("inputs", inputs), ("labels", labels)):
        if tuple(t.shape) != shape:
            raise ProbeError(f"DynamicMasker.epoch() call {n}: {name} has shape "
                             f"{tuple(t.shape)}, expected {shape} (the shape of ids)")
    return inputs, labels


def epochs(
    ns: dict,
    ids: torch.Tensor,
    vocab_size: int,
    mask_id: int,
    special_mask: torch.Tensor,
    num_epochs: int,
    **kwargs,
) -> dict:
    """``{"inputs": (E, N, L), "labels": (E, N, L), "ids": (N, L)}`` after ``num_epochs``
    calls of ``DynamicMasker(ids, vocab_size, mask_id, special_mask, **kwargs).epoch()``
    (``kwargs``: ``p`` and ``generator``, passed by keyword when the check gives them).
    Every epoch's tensors are copied at once, so that a masker that later changes a returned
    tensor in place cannot change an earlier epoch."""
    masker = lookup(ns, "DynamicMasker")(ids, vocab_size, mask_id, special_mask, **kwargs)
    inputs, labels = [], []
    for n in range(1, num_epochs + 1):
        x, y = _pair(masker.epoch(), n, tuple(ids.shape))
        inputs.append(x.detach().clone())
        labels.append(y.detach().clone())
    try:
        stacked = {"inputs": torch.stack(inputs), "labels": torch.stack(labels)}
    except RuntimeError as exc:  # mixed dtypes or devices across epochs
        raise ProbeError(f"DynamicMasker.epoch() returned tensors that cannot be stacked "
                         f"across epochs: {exc}") from None
    return {**stacked, "ids": ids}
