"""A seeded noisy linear "teacher": the regression task Krogh & Hertz (1991) analyse.

A teacher vector ``w_true`` with independent N(0, 1/dim) entries (so ``‖w_true‖² ≈ 1``) labels
inputs ``x ~ N(0, I_dim)`` as ``y = x · w_true + noise · ε`` with ``ε ~ N(0, 1)``. For such
inputs the expected squared error of a weight vector ``w`` on a fresh example is exactly
``noise² + ‖w − w_true‖²``, so a test error needs no test set.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class LinearTask(NamedTuple):
    x: torch.Tensor  # (n, dim) inputs
    y: torch.Tensor  # (n,) noisy targets
    w_true: torch.Tensor  # (dim,) the teacher's weights
    noise: float  # standard deviation of the target noise


def noisy_linear_regression(
    n: int, dim: int, noise: float, seed: int = 0, dtype: torch.dtype = torch.float64
) -> LinearTask:
    """``n`` examples of the noisy linear teacher in ``dim`` dimensions (float64 by default)."""
    g = torch.Generator().manual_seed(seed)
    w_true = torch.randn(dim, generator=g, dtype=torch.float64) / dim**0.5
    x = torch.randn(n, dim, generator=g, dtype=torch.float64)
    y = x @ w_true + noise * torch.randn(n, generator=g, dtype=torch.float64)
    return LinearTask(x.to(dtype), y.to(dtype), w_true.to(dtype), noise)


def expected_test_error(w: torch.Tensor, task: LinearTask) -> float:
    """E[(x · w − y)²] over a fresh example of ``task``: ``noise² + ‖w − w_true‖²``."""
    return task.noise**2 + float(((w - task.w_true) ** 2).sum())
