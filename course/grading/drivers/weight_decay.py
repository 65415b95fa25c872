"""Drivers for unit 2.1 `weight-decay`: call the learner's in-place step functions on leaf
tensors whose ``.grad`` the grader sets, and report what the tensors hold afterwards.

- :func:`one_step`: set ``p.grad`` on copies of the given tensors (None leaves a tensor
  without a gradient), call ``ns[step](params, lr, **kwargs)`` once, return the tensors and
  their ``.grad`` afterwards.
- :func:`trajectory`: run ``steps`` steps on a fixed small regression problem
  (``mean((tanh(x Wᵀ) + b − y)²)``; any parameter after ``W`` and ``b`` is not used by the loss
  and so keeps ``.grad = None``), clearing the gradients to None before each backward pass as
  ``zero_grad()`` does, and return every iterate of every parameter.

Both work in any floating dtype and on any device (the tensors they get are already there).

The unit forbids torch's SGD (its class, step and functional form); the engine's watch
catches them however they are reached.
"""

from __future__ import annotations

import torch


def _leaves(params) -> list[torch.Tensor]:
    return [p.detach().clone().requires_grad_(True) for p in params]


def one_step(ns: dict, step: str, params, grads, lr: float, **kwargs):
    """One call of ``ns[step]`` on copies of ``params`` with ``.grad`` set to ``grads``.

    Returns ``(params_after, grads_after)``, two tuples (an entry of grads_after is None
    where the tensor has no gradient).
    """
    leaves = _leaves(params)
    for leaf, grad in zip(leaves, grads):
        leaf.grad = None if grad is None else grad.detach().clone()
    with torch.enable_grad():  # grad mode on, as in a training loop
        ns[step](list(leaves), lr, **kwargs)
    return (
        tuple(leaf.detach().clone() for leaf in leaves),
        tuple(None if leaf.grad is None else leaf.grad.detach().clone() for leaf in leaves),
    )


def problem_loss(params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The fixed problem: mean squared error of ``tanh(x Wᵀ) + b`` against ``y``."""
    weight, bias = params[0], params[1]
    return ((torch.tanh(x @ weight.T) + bias - y) ** 2).mean()


def run_trajectory(step_fn, params, x, y, lr: float, steps: int = 20, **kwargs):
    """The trajectory of ``step_fn`` (any callable ``step_fn(params, lr, **kwargs)``); the
    grader also runs it with ``torch.optim.SGD`` in its own process as a second reference."""
    leaves = _leaves(params)
    history = [[leaf.detach().clone()] for leaf in leaves]
    for _ in range(steps):
        for leaf in leaves:
            leaf.grad = None
        with torch.enable_grad():  # grad mode on, as in a training loop
            problem_loss(leaves, x, y).backward()
            step_fn(list(leaves), lr, **kwargs)
        for past, leaf in zip(history, leaves):
            past.append(leaf.detach().clone())
    return tuple(torch.stack(past) for past in history)


def trajectory(ns: dict, step: str, params, x, y, lr: float, steps: int = 20, **kwargs):
    """``steps`` steps of ``ns[step]`` on the fixed problem: a tuple with, per parameter, its
    iterates stacked as (steps + 1, *shape) (row 0 is the starting point)."""
    return run_trajectory(ns[step], params, x, y, lr, steps, **kwargs)
