"""Drivers for unit 2.2 `relu`: use the learner's ``ReLU`` class directly, and chain ``relu``
inside a small two-layer computation (a gradcheck-like test of the backward pass in context).
"""

from __future__ import annotations

import torch

from course.grading.probes import lookup


def apply(ns: dict, x: torch.Tensor) -> torch.Tensor:
    """``ReLU.apply(x)`` with the implementation's own autograd Function."""
    return lookup(ns, "ReLU").apply(x)


def two_layer(ns: dict, x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """``relu(relu(x @ w1) @ w2)``: two rectifier layers, so gradients cross both masks."""
    relu = lookup(ns, "relu")
    return relu(relu(x @ w1) @ w2)
