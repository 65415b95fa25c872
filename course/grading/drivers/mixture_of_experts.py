"""Drivers for unit 3.9 `mixture-of-experts`.

- ``dispatch_counts`` counts the rows each expert of the learner's ``MoE`` receives in one
  forward (forward pre-hooks on ``experts[e]``), so the grader can check that every expert runs
  on the tokens routed to it and on no others.
- ``gate_init`` reports the freshly built ``w_gate`` and ``w_noise`` (zeros by contract),
  without the randomly initialised experts.
- ``train_residual`` runs one training-mode forward with noise after seeding the global
  generator, draws the same noise again the way the docstring prescribes, and returns the
  learner's outputs minus what the paper's formulas give for that very noise with the learner's
  own weights. It works on every device and dtype because the noise never leaves the learner's
  side: the reference's residuals are zero.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from course.grading.probes import ProbeError, lookup


def _experts(moe: nn.Module) -> list[nn.Module]:
    experts = getattr(moe, "experts", None)
    if not isinstance(experts, nn.ModuleList):
        raise ProbeError("MoE should hold its experts in an nn.ModuleList named `experts`")
    return list(experts)


def _gate(moe: nn.Module, name: str) -> torch.Tensor:
    value = getattr(moe, name, None)
    if not isinstance(value, torch.Tensor):
        raise ProbeError(f"MoE should have a parameter `{name}` of shape (input_dim, E)")
    return value


def dispatch_counts(ns: dict, moe: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Rows received by each expert during ``moe(x)`` (int64, one entry per expert)."""
    experts = _experts(moe)
    counts = [0] * len(experts)
    handles = []
    for e, expert in enumerate(experts):
        def hook(module, args, e=e):
            if args and isinstance(args[0], torch.Tensor):
                counts[e] += int(args[0].shape[0]) if args[0].dim() > 0 else 1
        handles.append(expert.register_forward_pre_hook(hook))
    try:
        moe(x)
    finally:
        for handle in handles:
            handle.remove()
    return torch.tensor(counts, dtype=torch.int64, device=x.device)


def gate_init(ns: dict, args: tuple, kwargs: dict | None = None) -> dict:
    """``w_gate`` and ``w_noise`` of a freshly built ``MoE(*args, **kwargs)``."""
    moe = lookup(ns, "MoE")(*args, **(kwargs or {}))
    return {name: _gate(moe, name).detach().clone() for name in ("w_gate", "w_noise")}


def _expected(moe: nn.Module, x: torch.Tensor, noise: torch.Tensor, k: int, loss_coef: float):
    """y and aux_loss of the paper's layer for this noise (dense, grader-owned)."""
    w_gate, w_noise = _gate(moe, "w_gate"), _gate(moe, "w_noise")
    clean = x @ w_gate
    std = F.softplus(x @ w_noise)
    h = clean + noise * std
    values, order = h.sort(dim=1, descending=True, stable=True)
    keep = torch.zeros_like(h, dtype=torch.bool).scatter(1, order[:, :k], True)
    gates = torch.softmax(h.masked_fill(~keep, -math.inf), dim=1)
    y = sum(gates[:, e : e + 1] * expert(x) for e, expert in enumerate(_experts(moe)))
    num_experts = h.shape[1]
    if k == num_experts:
        load = torch.full((num_experts,), float(h.shape[0]), dtype=x.dtype, device=x.device)
    else:
        threshold = torch.where(keep, values[:, k : k + 1], values[:, k - 1 : k])
        z = (clean - threshold) / std
        load = (0.5 * torch.erfc(-z / math.sqrt(2))).sum(0)

    def cv2(v):
        return v.var() / (v.mean() ** 2 + 1e-10)

    return y, loss_coef * (cv2(gates.sum(0)) + cv2(load))


def train_residual(
    ns: dict, moe: nn.Module, x: torch.Tensor, seed: int, k: int, loss_coef: float
) -> dict:
    """``moe(x)`` in training mode after ``torch.manual_seed(seed)``, minus the expected
    ``(y, aux_loss)`` for the noise ``torch.randn(B, E, dtype=x.dtype, device=x.device)`` drawn
    after the same seed."""
    moe.train()
    torch.manual_seed(seed)
    out = moe(x)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ProbeError("MoE.forward should return a pair (y, aux_loss)")
    y, aux = out
    torch.manual_seed(seed)
    noise = torch.randn(x.shape[0], _gate(moe, "w_gate").shape[1], dtype=x.dtype,
                        device=x.device)
    with torch.no_grad():
        y_want, aux_want = _expected(moe, x, noise, k, loss_coef)
        if not isinstance(y, torch.Tensor) or y.shape != y_want.shape:
            raise ProbeError(f"MoE.forward returned y of shape {getattr(y, 'shape', None)}, "
                             f"expected {tuple(y_want.shape)}")
        if not isinstance(aux, torch.Tensor) or aux.shape != ():
            raise ProbeError("MoE.forward should return aux_loss as a 0-dim tensor")
        return {
            "y minus the expected output for the drawn noise": (y - y_want).detach(),
            "aux_loss minus the expected loss for the drawn noise": (aux - aux_want).detach(),
        }
