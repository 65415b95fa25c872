"""Sample-quality measures for the generative-model lectures (Part 05).

A generator is judged by numbers, never by eye: each lecture compares its samples and a trivial
baseline (a gaussian fit, or the untrained model) with held-out data, using one of these.

- ``energy_distance(a, b)``: the squared energy distance between two point clouds (zero in the
  limit exactly when the distributions are equal), estimated with all pairs.
- ``gaussian_mmd(a, b, bandwidth)``: the squared maximum mean discrepancy under a gaussian kernel.
- ``nearest_distance(a, b)``: the mean distance from each point of ``a`` to its nearest neighbour
  in ``b`` (fidelity: small when every sample lies near some data).
- ``modes_covered(samples, centres, radius, min_fraction)``: how many modes of a mixture
  receive at least ``min_fraction`` of the samples within ``radius`` of their centre.
- ``gaussian_fit(x, n, generator)``: ``n`` draws from the gaussian with ``x``'s mean and
  covariance, the baseline every generator must beat.

All take (N, D) floating tensors (images flattened by the caller) and return Python numbers.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _points(x: Tensor, name: str) -> Tensor:
    if x.dim() != 2:
        raise ValueError(f"{name} must be (N, D) points, got shape {tuple(x.shape)}")
    return x.detach().double()


def energy_distance(a: Tensor, b: Tensor) -> float:
    """Squared energy distance 2·E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖ (Székely & Rizzo).

    a (N, D), b (M, D). All pairs, self-pairs included (a V-statistic), so two samples of one
    distribution score slightly above zero: compare against that floor (fresh data).
    """
    a, b = _points(a, "a"), _points(b, "b")
    return float(2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean()
                 - torch.cdist(b, b).mean())


def gaussian_mmd(a: Tensor, b: Tensor, bandwidth: float = 1.0) -> float:
    """Squared MMD with the kernel exp(−‖x − y‖² / (2·bandwidth²)), all pairs (a V-statistic)."""
    a, b = _points(a, "a"), _points(b, "b")

    def k(u: Tensor, v: Tensor) -> Tensor:
        return torch.exp(-torch.cdist(u, v).square() / (2 * bandwidth ** 2)).mean()

    return float(k(a, a) + k(b, b) - 2 * k(a, b))


def nearest_distance(a: Tensor, b: Tensor) -> float:
    """Mean over the points of a (N, D) of the distance to the nearest point of b (M, D)."""
    a, b = _points(a, "a"), _points(b, "b")
    return float(torch.cdist(a, b).min(dim=1).values.mean())


def modes_covered(samples: Tensor, centres: Tensor, radius: float,
                  min_fraction: float = 0.01) -> int:
    """Number of centres (K, D) that have at least ``min_fraction`` of the samples (N, D) within
    ``radius`` of them (a sample counts for its nearest centre only)."""
    x, c = _points(samples, "samples"), _points(centres, "centres")
    d = torch.cdist(x, c)
    nearest = d.min(dim=1)
    hit = nearest.values <= radius
    counts = torch.bincount(nearest.indices[hit], minlength=c.shape[0])
    return int((counts >= min_fraction * x.shape[0]).sum())


def gaussian_fit(x: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """n draws (n, D), in x's dtype, from the gaussian with the mean and covariance of x (N, D)."""
    p = _points(x, "x")
    mean = p.mean(dim=0)
    cov = torch.cov(p.T).reshape(p.shape[1], p.shape[1])
    cov = cov + 1e-9 * torch.eye(p.shape[1], dtype=p.dtype)
    chol = torch.linalg.cholesky(cov)
    z = torch.randn(n, p.shape[1], generator=generator, dtype=p.dtype)
    return (mean + z @ chol.T).to(x.dtype)
