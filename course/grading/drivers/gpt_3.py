"""Drivers for unit 4.6 `gpt-3`: routines that call the learner's code more than once.

- :func:`sample_many` calls ``sample_next`` several times with one generator, so that the
  grader sees whether each call draws exactly what the docstring says (and a greedy call
  nothing at all).
- :func:`fill_cache` appends chunks to one learner ``KVCache`` and reports what each append
  returned and ``len(cache)`` along the way.
- :func:`decode` runs a stack of the learner's ``CausalSelfAttention`` layers (with copied
  weights, residual connections between them) once over a whole sequence and once piece by
  piece through one cache per layer: the grader's own :class:`GraderCache` (so a mistake in
  the learner's ``KVCache`` costs only its own checks) or the learner's ``KVCache``.

They run where learner code runs and return plain tensors, never verdicts.
"""

from __future__ import annotations

import torch
from torch import nn

from course.grading.probes import ProbeError, lookup


class GraderCache:
    """A correct KV cache with the exercise's interface: ``len(cache)`` and
    ``append(k, v) -> (k_all, v_all)``, time along dim 2."""

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.k is None else int(self.k.shape[2])

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if k.dim() != 4 or v.dim() != 4:
            raise ProbeError(f"cache.append(k, v) expects k and v of shape (B, h, T, d_head); "
                             f"got {tuple(k.shape)} and {tuple(v.shape)}")
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        return self.k, self.v


def _tokens(value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ProbeError(f"sample_next should return a LongTensor (B,), got "
                         f"{type(value).__name__}")
    return value


def sample_many(ns: dict, logits: list, settings: list, generator: torch.Generator) -> list:
    """``[sample_next(logits[i], generator=generator, **settings[i]) for i ...]``, in order,
    with the one generator."""
    sample = lookup(ns, "sample_next")
    return [_tokens(sample(x, generator=generator, **kw)) for x, kw in zip(logits, settings)]


def fill_cache(ns: dict, ks: list, vs: list) -> dict:
    """Append ``(ks[i], vs[i])`` to one fresh ``KVCache``, in order.

    Returns ``{"lengths": int64 (n + 1,)`` (``len(cache)`` before the first append and after
    each), ``"returned"``: the (k_all, v_all) of every append, ``"k"``, ``"v"``: the cache's
    attributes at the end``}``.
    """
    cache = lookup(ns, "KVCache")()
    lengths = [len(cache)]
    returned = []
    for k, v in zip(ks, vs):
        out = cache.append(k, v)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ProbeError("KVCache.append(k, v) should return the pair (k_all, v_all)")
        returned.append(out)
        lengths.append(len(cache))
    device = ks[0].device if ks else None  # grader-made, on the inputs' device like the rest
    return {"lengths": torch.tensor(lengths, dtype=torch.int64, device=device),
            "returned": returned,
            "k": getattr(cache, "k", None), "v": getattr(cache, "v", None)}


def _layers(ns: dict, states: list, d_model: int, n_head: int, like: torch.Tensor) -> list:
    made = []
    for state in states:
        layer = lookup(ns, "CausalSelfAttention")(d_model, n_head)
        if not isinstance(layer, nn.Module):
            raise ProbeError("CausalSelfAttention(d_model, n_head) should build a torch.nn.Module")
        layer = layer.to(dtype=like.dtype, device=like.device)
        try:
            layer.load_state_dict({k: v.to(like.device) for k, v in state.items()})
        except RuntimeError as exc:
            raise ProbeError(f"could not load the grader's weights into CausalSelfAttention: "
                             f"{exc}") from None
        made.append(layer)
    return made


def _stack(layers: list, x: torch.Tensor, caches: list | None) -> torch.Tensor:
    """h = x, then h = h + layer(h) for each layer (one cache per layer when given)."""
    h = x
    for i, layer in enumerate(layers):
        y = layer(h) if caches is None else layer(h, caches[i])
        if not isinstance(y, torch.Tensor) or y.shape != h.shape:
            shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ProbeError(f"CausalSelfAttention.forward should return a tensor of the input's "
                             f"shape {tuple(h.shape)}, got {shape}")
        h = h + y
    return h


def decode(ns: dict, states: list, x: torch.Tensor, chunks: list, n_head: int,
           learner_cache: bool = False) -> dict:
    """A residual stack of ``CausalSelfAttention`` layers (``states[i]`` copied into layer i)
    on ``x`` (B, T, d_model): once over the whole sequence (no cache), and once in pieces of
    the sizes ``chunks`` (summing to T) through one fresh cache per layer.

    Returns ``{"full": (B, T, d), "incremental": (B, T, d)}`` (the pieces' outputs
    concatenated), and with ``learner_cache`` also ``"lengths"``: int64 (pieces, layers), the
    ``len`` of every layer's cache after each piece.
    """
    if sum(chunks) != x.shape[1]:
        raise ValueError("the chunks must cover the sequence")  # pragma: no cover - grader bug
    layers = _layers(ns, states, x.shape[2], n_head, x)
    full = _stack(layers, x, None)
    make = lookup(ns, "KVCache") if learner_cache else GraderCache
    caches = [make() for _ in layers]
    pieces, lengths, start = [], [], 0
    for size in chunks:
        pieces.append(_stack(layers, x[:, start:start + size], caches))
        lengths.append([len(c) for c in caches])
        start += size
    out = {"full": full, "incremental": torch.cat(pieces, dim=1)}
    if learner_cache:
        out["lengths"] = torch.tensor(lengths, dtype=torch.int64, device=x.device)
    return out
