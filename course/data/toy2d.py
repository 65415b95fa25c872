"""Seeded 2-D toy distributions, returned as float32 tensors of shape (n, 2)."""

from __future__ import annotations

import math

import torch


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def swiss_roll(n: int, noise: float = 0.25, seed: int = 0) -> torch.Tensor:
    """Points on a 2-D swiss-roll spiral, scaled to roughly unit variance per axis."""
    g = _gen(seed)
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g, dtype=torch.float64))
    xy = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1)
    xy = xy + noise * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return (xy / 7.0).float()


def moons(n: int, noise: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaving half circles; returns (points (n, 2), labels (n,) in {0, 1})."""
    g = _gen(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    angle = math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    upper = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    lower = torch.stack([1 - torch.cos(angle), 0.5 - torch.sin(angle)], dim=1)
    xy = torch.where(labels[:, None] == 0, upper, lower)
    xy = xy + noise * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return xy.float(), labels


def gaussian_mixture(
    n: int, modes: int = 8, radius: float = 2.0, std: float = 0.05, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Equal-weight gaussians on a circle; returns (points (n, 2), mode index (n,))."""
    g = _gen(seed)
    which = torch.randint(0, modes, (n,), generator=g)
    angle = 2 * math.pi * which.double() / modes
    centres = radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    xy = centres + std * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return xy.float(), which
