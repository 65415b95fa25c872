"""course.metrics: each measure separates what it should and agrees with a direct computation."""

import math

import pytest
import torch

from course import metrics
from course.data import gaussian_mixture


def _g(seed):
    return torch.Generator().manual_seed(seed)


def test_energy_distance_matches_a_loop_and_separates_distributions():
    a = torch.randn(30, 2, generator=_g(0))
    b = torch.randn(20, 2, generator=_g(1)) + 0.5

    def mean_dist(u, v):
        return sum(float((x - y).norm()) for x in u for y in v) / (len(u) * len(v))

    by_loop = 2 * mean_dist(a, b) - mean_dist(a, a) - mean_dist(b, b)
    assert metrics.energy_distance(a, b) == pytest.approx(by_loop, rel=1e-6)
    same = metrics.energy_distance(torch.randn(500, 2, generator=_g(2)),
                                   torch.randn(500, 2, generator=_g(3)))
    shifted = metrics.energy_distance(torch.randn(500, 2, generator=_g(2)) + 1,
                                      torch.randn(500, 2, generator=_g(3)))
    assert 0 <= same < 0.02 < 0.3 < shifted


def test_gaussian_mmd_is_zero_on_itself_and_grows_with_a_shift():
    a = torch.randn(200, 3, generator=_g(0))
    assert metrics.gaussian_mmd(a, a) == pytest.approx(0.0, abs=1e-12)
    small = metrics.gaussian_mmd(a, a + 0.1)
    large = metrics.gaussian_mmd(a, a + 1.0)
    assert 0 < small < large
    x, y = a[:1], a[1:2]  # one point each: 2 − 2k(x, y)
    k = math.exp(-float((x.double() - y.double()).square().sum()) / 2)
    assert metrics.gaussian_mmd(x, y) == pytest.approx(2 - 2 * k, rel=1e-9)


def test_nearest_distance_is_zero_on_a_subset():
    b = torch.randn(50, 2, generator=_g(0))
    assert metrics.nearest_distance(b[:10], b) == 0.0
    assert metrics.nearest_distance(torch.tensor([[10.0, 0.0]]), torch.zeros(1, 2)) == 10.0


def test_modes_covered_counts_the_modes_that_receive_samples():
    x, which = gaussian_mixture(4000, modes=8, radius=2.0, std=0.05, seed=0)
    angle = 2 * math.pi * torch.arange(8).double() / 8
    centres = 2.0 * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    assert metrics.modes_covered(x, centres, radius=0.25) == 8
    assert metrics.modes_covered(x[which < 3], centres, radius=0.25) == 3
    collapsed = centres[5] + 0.01 * torch.randn(1000, 2, generator=_g(1), dtype=torch.float64)
    assert metrics.modes_covered(collapsed, centres, radius=0.25) == 1
    far = torch.full((100, 2), 50.0)
    assert metrics.modes_covered(far, centres, radius=0.25) == 0


def test_gaussian_fit_matches_the_first_two_moments():
    x = torch.randn(5000, 2, generator=_g(0)) @ torch.tensor([[2.0, 0.0], [1.0, 0.5]]) + 3
    fit = metrics.gaussian_fit(x, 20000, generator=_g(1))
    assert fit.dtype == x.dtype and fit.shape == (20000, 2)
    assert torch.allclose(fit.mean(0), x.mean(0), atol=0.05)
    assert torch.allclose(torch.cov(fit.T), torch.cov(x.T), atol=0.1)
    ring, _ = gaussian_mixture(2000, seed=0)
    assert metrics.energy_distance(metrics.gaussian_fit(ring, 2000, _g(2)), ring) > 0.05


def test_measures_refuse_images_unflattened():
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        metrics.energy_distance(torch.zeros(4, 1, 8, 8), torch.zeros(4, 64))
