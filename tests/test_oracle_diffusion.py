"""Unit 5.7 `diffusion`: the master against independent implementations.

- ``normal_kl``: equals ``torch.distributions.kl_divergence`` of two ``Normal``s built from
  the means and the standard deviations exp(½·logvar), elementwise, in float32 and float64,
  with broadcasting; it is ≥ 0, 0 between equal gaussians, and not symmetric.
- ``q_posterior``: equals gaussian conditioning on the joint law of (x_{t−1}, x_t) given x0,
  written from the forward chain alone, in Python floats: x_{t−1} | x0 has mean
  sqrt(ᾱ_{t−1})·x0 and variance 1 − ᾱ_{t−1}; x_t = sqrt(α_t)·x_{t−1} + sqrt(β_t)·ε, so
  Cov(x_{t−1}, x_t) = sqrt(α_t)·(1 − ᾱ_{t−1}) and Var(x_t) = α_t·(1 − ᾱ_{t−1}) + β_t; then
  E[x_{t−1} | x_t] = m₁ + C/V₂·(x_t − m₂) and Var = V₁ − C²/V₂. The products ᾱ are built by
  a Python loop over the steps (not ``cumprod``), and t = 0 uses no previous step at all.
  Checked on a noisy short schedule and on the paper's linear one, with t from 0 to T − 1.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("diffusion")).namespace
q_posterior, normal_kl = NS["q_posterior"], NS["normal_kl"]


@pytest.mark.parametrize(("shapes", "dtype"), [
    (((7,),) * 4, torch.float64),
    (((4, 3),) * 4, torch.float32),
    (((5, 3), (5, 1), (1, 3), ()), torch.float64),
])
def test_normal_kl_is_torch_distributions_kl(shapes, dtype):
    g = torch.Generator().manual_seed(len(shapes[0]))
    m1, lv1, m2, lv2 = (s * torch.randn(shape, generator=g, dtype=torch.float64)
                        for shape, s in zip(shapes, (2.0, 1.5, 2.0, 1.5)))
    m1, lv1, m2, lv2 = (v.to(dtype) for v in (m1, lv1, m2, lv2))
    ours = normal_kl(m1, lv1, m2, lv2)
    theirs = kl_divergence(Normal(m1, torch.exp(0.5 * lv1)), Normal(m2, torch.exp(0.5 * lv2)))
    assert ours.dtype == dtype and ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs)
    assert bool((ours >= -1e-6).all())
    backwards = normal_kl(m2, lv2, m1, lv1)
    assert not torch.allclose(ours, backwards.expand_as(ours))  # KL is not symmetric
    torch.testing.assert_close(normal_kl(m1, lv1, m1, lv1), torch.zeros_like(lv1 + m1))


def _conditioned(x0: float, xt: float, t: int, betas: list[float]) -> tuple[float, float]:
    """E and Var of x_{t−1} given (x0, x_t), from the joint gaussian of the forward chain."""
    abar_prev = 1.0
    for s in range(t):  # ᾱ_{t−1}: the product over the steps before t (empty at t = 0)
        abar_prev *= 1.0 - betas[s]
    alpha = 1.0 - betas[t]
    m1, v1 = math.sqrt(abar_prev) * x0, 1.0 - abar_prev
    m2 = math.sqrt(alpha) * m1
    cov = math.sqrt(alpha) * v1
    v2 = alpha * v1 + betas[t]
    return m1 + cov / v2 * (xt - m2), v1 - cov * cov / v2


@pytest.mark.parametrize("schedule", ["noisy", "paper"])
def test_q_posterior_is_gaussian_conditioning(schedule):
    g = torch.Generator().manual_seed(7)
    if schedule == "paper":
        betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
        t = torch.tensor([0, 1, 2, 3, 50, 500, 998, 999])
    else:
        betas = (0.02 + 0.33 * torch.rand(12, generator=g, dtype=torch.float64)).sort().values
        t = torch.arange(12)
    b = len(t)
    x0 = 1.5 * torch.randn(b, 3, generator=g, dtype=torch.float64) + 0.5
    xt = torch.randn(b, 3, generator=g, dtype=torch.float64)
    mean, var = q_posterior(x0, xt, t, betas)
    assert mean.shape == var.shape == (b, 3)
    bl = betas.tolist()
    want_m = torch.tensor([[_conditioned(float(x0[i, j]), float(xt[i, j]), int(t[i]), bl)[0]
                            for j in range(3)] for i in range(b)], dtype=torch.float64)
    want_v = torch.tensor([[_conditioned(0.0, 0.0, int(t[i]), bl)[1]] * 3 for i in range(b)],
                          dtype=torch.float64)
    torch.testing.assert_close(mean, want_m, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(var, want_v, rtol=1e-9, atol=1e-12)
    assert float(var[t == 0].abs().max()) == 0.0  # ᾱ_{−1} = 1: a point mass at x0
    torch.testing.assert_close(mean[t == 0], x0[t == 0])


def test_q_posterior_keeps_float32_data_in_float32():
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(4, 2, generator=g)
    xt = torch.randn(4, 2, generator=g)
    t = torch.tensor([0, 1, 400, 999])
    mean, var = q_posterior(x0, xt, t, betas)
    assert mean.dtype == var.dtype == torch.float32
    m64, v64 = q_posterior(x0.double(), xt.double(), t, betas)
    torch.testing.assert_close(mean, m64.float())
    torch.testing.assert_close(var, v64.float())
