"""Drivers for unit 4.13 `moe-transformer`.

- ``dispatch_counts`` counts the rows each expert of the learner's ``MoEFeedForward`` receives
  in one forward (forward pre-hooks on ``experts[i]``): by contract, exactly the kept tokens
  routed to it, never more than the capacity.
- ``balance`` trains only the router of the learner's ``MoEFeedForward`` (built by the grader
  from a state dict whose router sends almost every token to one expert) on the learner's own
  ``aux_loss`` with a grader-owned Adam loop, and reports the loss and the fraction of tokens
  the experts received (counted with the same hooks) before and after: the balancing loss
  must spread the tokens so that fewer are dropped.
"""

from __future__ import annotations

import torch
from torch import nn

from course.grading.probes import ProbeError


def _experts(moe: nn.Module) -> list[nn.Module]:
    experts = getattr(moe, "experts", None)
    if not isinstance(experts, nn.ModuleList):
        raise ProbeError("MoEFeedForward should hold its experts in an nn.ModuleList named "
                         "`experts`")
    return list(experts)


def _outputs(moe: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out = moe(x)
    if not (isinstance(out, tuple) and len(out) == 2
            and all(isinstance(t, torch.Tensor) for t in out)):
        raise ProbeError("MoEFeedForward.forward(x) should return a tuple (y, aux_loss) of "
                         "two tensors")
    return out


class _Counter:
    """Rows each expert receives while the context is open."""

    def __init__(self, moe: nn.Module) -> None:
        self.experts = _experts(moe)
        self.counts = [0] * len(self.experts)
        self.handles: list = []

    def __enter__(self) -> _Counter:
        for i, expert in enumerate(self.experts):
            def hook(module, args, i=i):
                if args and isinstance(args[0], torch.Tensor):
                    self.counts[i] += int(args[0].shape[0]) if args[0].dim() > 1 else 1
            self.handles.append(expert.register_forward_pre_hook(hook))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()


def dispatch_counts(ns: dict, moe: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Rows received by each expert during ``moe(x)`` (int64, one entry per expert)."""
    with _Counter(moe) as counter:
        _outputs(moe, x)
    return torch.tensor(counter.counts, dtype=torch.int64, device=x.device)


def balance(ns: dict, moe: nn.Module, x: torch.Tensor, steps: int, lr: float) -> dict:
    """Train ``moe.router`` alone on ``aux_loss`` (Adam, full batch, ``steps`` steps)."""
    router = getattr(moe, "router", None)
    if not isinstance(router, nn.Linear):
        raise ProbeError("MoEFeedForward should hold its router as an nn.Linear named `router`")
    num_tokens = x.numel() // x.shape[-1]
    params = [router.weight]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    losses, kept = [], []
    for step in range(steps + 1):
        with _Counter(moe) as counter, torch.enable_grad():  # as in a training script
            _, aux = _outputs(moe, x)
        losses.append(aux.detach().double().cpu())
        kept.append(sum(counter.counts) / num_tokens)
        if step == steps:
            break
        if aux.requires_grad:
            grads = torch.autograd.grad(aux, params, allow_unused=True)
        else:  # detached: no gradient, so the router does not move
            grads = (None,) * len(params)  # type: ignore[assignment]
        with torch.no_grad():
            for p, g, m_, v_ in zip(params, grads, m, v):
                g = torch.zeros_like(p) if g is None else g
                m_.mul_(0.9).add_(g, alpha=0.1)
                v_.mul_(0.999).addcmul_(g, g, value=0.001)
                m_hat, v_hat = m_ / (1 - 0.9 ** (step + 1)), v_ / (1 - 0.999 ** (step + 1))
                p.sub_(lr * m_hat / (v_hat.sqrt() + 1e-8))
    return {"aux_loss": torch.stack(losses), "fraction kept": torch.tensor(kept,
                                                                            dtype=torch.float64)}
