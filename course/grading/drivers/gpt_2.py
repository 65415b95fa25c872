"""Drivers for unit 4.5 `gpt-2`.

- :func:`state`: the state dict of a freshly built ``Block``, or of a ``GPT`` with stand-in
  blocks (the grader compares names, shapes and dtypes only);
- :func:`tied`: whether a built ``GPT``'s ``lm_head.weight`` is its ``wte.weight``;
- :func:`gpt_logits`: the learner's ``GPT`` with grader-owned stand-in blocks
  (:class:`StandInBlock`) in ``h``, so that ``GPT``'s own wiring (embeddings, positions, block
  order, ``ln_f``, tied head) is graded apart from the learner's ``Block``; returns the logits
  and, given a cotangent, the gradients of ⟨logits, cotangent⟩ w.r.t. ``wte.weight``,
  ``wpe.weight``, ``ln_f.weight`` and ``ln_f.bias``, read from those parameters' ``.grad``
  (so they do not depend on the order the learner registered tied parameters in);
- :func:`merges`, :func:`encode`, :func:`round_trip`: the BPE functions, their results
  checked for type and turned into LongTensors (or a string) for exact comparison.

Drivers run where learner code runs and return plain data, never verdicts.
"""

from __future__ import annotations

import operator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from course.grading.probes import ProbeError, lookup


class StandInBlock(nn.Module):
    """A grader-owned stand-in for a decoder block: ``x + tanh(x Wᵀ + b)``, position-wise,
    with parameters ``weight`` (d, d) and ``bias`` (d). It is not a GPT-2 block (no attention,
    no layer norm); it only has to be a smooth map (B, L, d) -> (B, L, d) that differs from
    layer to layer, so that the learner's ``GPT`` can be checked for what it does around its
    blocks."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(d_model, d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x: torch.Tensor, *rest, **kwargs) -> torch.Tensor:
        if rest or kwargs:
            raise ProbeError("GPT.forward should call each block as block(x), with no other "
                             "arguments")
        return x + torch.tanh(x @ self.weight.T + self.bias)


def _int(value, what: str) -> int:
    if isinstance(value, bool):
        raise ProbeError(f"{what} is a bool; expected an int")
    try:
        return operator.index(value)
    except TypeError:
        raise ProbeError(f"{what} is a {type(value).__name__}; expected an int") from None


def _ids(value, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ProbeError(f"{what} returned a {type(value).__name__}; return a list of ints")
    return torch.tensor([_int(v, f"item {i} of what {what} returned") for i, v in
                         enumerate(value)], dtype=torch.int64)


def _dtype(state: dict) -> torch.dtype:
    return next(v.dtype for v in state.values() if v.is_floating_point())


def _build(ns: dict, name: str, args: tuple) -> Any:
    model = lookup(ns, name)(*args)
    if not isinstance(model, nn.Module):
        raise ProbeError(f"{name}{args} should build a torch.nn.Module")
    return model


def state(ns: dict, name: str, args: tuple) -> dict:
    """``dict(name(*args).state_dict())``; a ``GPT`` is built with stand-in blocks."""
    model = _gpt(ns, args) if name == "GPT" else _build(ns, name, args)
    return dict(model.state_dict())


def tied(ns: dict, args: tuple) -> bool:
    """``GPT(*args).lm_head.weight is GPT(*args).wte.weight`` (built with stand-in blocks)."""
    model = _gpt(ns, args)
    for part in ("wte", "lm_head"):
        if not hasattr(model, part):
            raise ProbeError(f"GPT has no submodule `{part}`")
    return model.lm_head.weight is model.wte.weight


@contextmanager
def _stand_in_blocks(ns: dict, d_model: int):
    """``ns["Block"]`` replaced by a factory of stand-in blocks while the model is built (so an
    unfinished ``Block`` does not stop ``GPT`` from being graded); restored afterwards."""
    missing = object()
    saved = ns.get("Block", missing)
    ns["Block"] = lambda *args, **kwargs: StandInBlock(d_model)
    try:
        yield
    finally:
        if saved is missing:
            del ns["Block"]
        else:
            ns["Block"] = saved


def _gpt(ns: dict, args: tuple) -> Any:
    """``GPT(*args)`` built while ``Block`` names the stand-in, and with every entry of ``h``
    a stand-in block afterwards (whatever class the learner's ``__init__`` used)."""
    vocab_size, block_size, n_layer, n_head, d_model = args
    with _stand_in_blocks(ns, d_model):
        model = _build(ns, "GPT", args)
    blocks = getattr(model, "h", None)
    if not isinstance(blocks, nn.ModuleList) or len(blocks) != n_layer:
        raise ProbeError(f"GPT{args}.h should be an nn.ModuleList of n_layer = {n_layer} blocks")
    for i in range(n_layer):
        if not isinstance(blocks[i], StandInBlock):
            blocks[i] = StandInBlock(d_model)
    return model


def gpt_logits(ns: dict, args: tuple, state: dict, idx: torch.Tensor,
               cotangent: torch.Tensor | None = None) -> dict:
    """``{"logits": (B, L, V)}`` of ``GPT(*args)`` with stand-in blocks and ``state`` loaded,
    in eval mode; with ``cotangent`` (B, L, V) also ``"grads"``: the gradients of
    Σ logits·cotangent w.r.t. ``wte.weight``, ``wpe.weight``, ``ln_f.weight``, ``ln_f.bias``.
    ``state`` holds GPT's own parameters and ``h.<i>.weight``, ``h.<i>.bias`` of the
    stand-ins; its dtype is the model's."""
    model = _gpt(ns, args)
    model = model.to(device=idx.device, dtype=_dtype(state))
    try:
        model.load_state_dict({k: v.to(idx.device) for k, v in state.items()})
    except RuntimeError as exc:
        raise ProbeError(f"could not load the grader's weights into GPT{args} (its blocks "
                         f"replaced by stand-ins): {exc}") from None
    model.eval()
    if cotangent is None:
        with torch.no_grad():
            return {"logits": model(idx)}
    with torch.enable_grad():
        logits = model(idx)
        if not isinstance(logits, torch.Tensor) or logits.shape != cotangent.shape:
            raise ProbeError(f"GPT.forward should return logits of shape "
                             f"{tuple(cotangent.shape)}")
        if not logits.requires_grad:
            raise ProbeError("the logits are detached from the parameters (no autograd "
                             "history): keep GPT.forward differentiable")
        (logits * cotangent).sum().backward()
    grads = {}
    for name, param in (("wte.weight", model.wte.weight), ("wpe.weight", model.wpe.weight),
                        ("ln_f.weight", model.ln_f.weight), ("ln_f.bias", model.ln_f.bias)):
        if param.grad is None:
            raise ProbeError(f"the logits do not depend on {name} through autograd")
        grads[name] = param.grad
    return {"logits": logits.detach(), "grads": grads}


def merges(ns: dict, text: str, num_merges: int) -> torch.Tensor:
    """``bpe_train(text, num_merges)`` as a LongTensor (K, 3) of rows (a, b, new_id)."""
    result = lookup(ns, "bpe_train")(text, num_merges)
    if not isinstance(result, (list, tuple)):
        raise ProbeError(f"bpe_train returned a {type(result).__name__}; return a list of "
                         "((a, b), new_id)")
    rows = []
    for i, item in enumerate(result):
        try:
            (a, b), new = item
        except (TypeError, ValueError):
            raise ProbeError(f"merge {i} returned by bpe_train is {item!r}; each merge should "
                             "be ((a, b), new_id)") from None
        rows.append([_int(a, f"merge {i}'s a"), _int(b, f"merge {i}'s b"),
                     _int(new, f"merge {i}'s new_id")])
    return torch.tensor(rows, dtype=torch.int64).reshape(len(rows), 3)


def encode(ns: dict, text: str, merges: list) -> torch.Tensor:
    """``bpe_encode(text, merges)`` as a LongTensor (n,)."""
    return _ids(lookup(ns, "bpe_encode")(text, merges), "bpe_encode")


def round_trip(ns: dict, text: str, merges: list) -> str:
    """``bpe_decode(bpe_encode(text, merges), merges)``."""
    ids = lookup(ns, "bpe_encode")(text, merges)
    out = lookup(ns, "bpe_decode")(ids, merges)
    if not isinstance(out, str):
        raise ProbeError(f"bpe_decode returned a {type(out).__name__}; return a str")
    return out
