"""Drivers for unit 1.1 `backprop`: run an implementation's ``momentum_step`` (and
``forward_backward``) through several steps, as a training loop does.

- :func:`momentum_trajectory`: from zero velocity, apply ``momentum_step`` to a fixed sequence
  of gradient dicts chosen by the grader; return every iterate of the parameters and of the
  velocity. This tests the update rule alone, whatever the learner's gradients are.
- :func:`train`: the grader-owned training loop. Full-batch gradient descent with momentum on
  fixed data, gradients from the implementation's ``forward_backward``, updates from its
  ``momentum_step``; returns the loss before every step (and after the last) and the final
  parameters and velocity.

Both work in the dtype and on the device of the tensors they are given, and copy what the
implementation returns (``detach().clone()``), so later in-place changes cannot alter the record.
"""

from __future__ import annotations

import torch

from course.grading.probes import ProbeError, lookup

KEYS = ("W1", "b1", "W2", "b2")


def _snapshot(value, what: str) -> dict[str, torch.Tensor]:
    """A copy of a name -> tensor dict returned by the implementation."""
    if not isinstance(value, dict):
        raise ProbeError(f"{what} should be a dict of tensors, got {type(value).__name__}")
    copy = {}
    for name, tensor in value.items():
        if not isinstance(tensor, torch.Tensor):
            raise ProbeError(f"{what}[{name!r}] should be a tensor, got {type(tensor).__name__}")
        copy[name] = tensor.detach().clone().as_subclass(torch.Tensor)  # never a subclass
    return copy


def _step(fn, params, grads, velocity, lr, momentum):
    result = fn(params, grads, velocity, lr, momentum)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ProbeError("momentum_step should return a tuple (new_params, new_velocity)")
    return (_snapshot(result[0], "momentum_step(...)[0] (new params)"),
            _snapshot(result[1], "momentum_step(...)[1] (new velocity)"))


def momentum_trajectory(
    ns: dict,
    params: dict[str, torch.Tensor],
    grad_seq: list[dict[str, torch.Tensor]],
    lr: float,
    momentum: float,
) -> dict:
    """``len(grad_seq)`` calls of ``momentum_step`` from zero velocity, feeding each call the
    dicts the previous one returned. Returns ``{"params": {name: (T + 1, *shape)},
    "velocity": {name: (T, *shape)}}`` (row 0 of params is the start)."""
    step = lookup(ns, "momentum_step")
    params = {k: v.clone() for k, v in params.items()}
    velocity = {k: torch.zeros_like(v) for k, v in params.items()}
    seen_params = {k: [v.clone()] for k, v in params.items()}
    seen_velocity: dict[str, list[torch.Tensor]] = {k: [] for k in params}
    for grads in grad_seq:
        params, velocity = _step(step, params, {k: g.clone() for k, g in grads.items()},
                                 velocity, lr, momentum)
        for name in seen_params:
            if name not in params or name not in velocity:
                raise ProbeError(f"momentum_step dropped the key {name!r}")
            seen_params[name].append(params[name])
            seen_velocity[name].append(velocity[name])
    return {
        "params": {k: torch.stack(v) for k, v in seen_params.items()},
        "velocity": {k: torch.stack(v) for k, v in seen_velocity.items()},
    }


def _loss(value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.dim() != 0:
        raise ProbeError("forward_backward should return the loss as a 0-dim tensor first")
    return value.detach().clone().as_subclass(torch.Tensor)


def train(
    ns: dict,
    params: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    lr: float,
    momentum: float,
    steps: int,
) -> dict:
    """``steps`` full-batch updates: ``loss, grads = forward_backward(params, x, y)`` then
    ``params, velocity = momentum_step(params, grads, velocity, lr, momentum)``, from zero
    velocity. Returns ``{"losses": (steps + 1,), "params": {...}, "velocity": {...}}``: the
    loss before each step and after the last one, and the final dicts."""
    forward_backward = lookup(ns, "forward_backward")
    step = lookup(ns, "momentum_step")
    params = {k: v.clone() for k, v in params.items()}
    velocity = {k: torch.zeros_like(v) for k, v in params.items()}
    losses = []
    for _ in range(steps):
        result = forward_backward(params, x, y)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise ProbeError("forward_backward should return a tuple (loss, grads)")
        losses.append(_loss(result[0]))
        grads = _snapshot(result[1], "forward_backward(...)[1] (grads)")
        params, velocity = _step(step, params, grads, velocity, lr, momentum)
    result = forward_backward(params, x, y)
    losses.append(_loss(result[0]))
    return {"losses": torch.stack(losses), "params": params, "velocity": velocity}
