"""Unit 4.10 `instructgpt`: the master against independent implementations.

- ``ranking_loss`` equals an explicit double loop over the pairs i < j of every row with
  ``F.logsigmoid`` on scalars (float64, B from 1 to 6, K from 2 to 9); for K = 2 it equals
  ``-F.logsigmoid(r0 - r1).mean()`` and ``nn.BCEWithLogitsLoss`` with targets 1; it is the
  mean negative log-likelihood of the implied comparisons under a Bradley–Terry model built
  from ``torch.distributions.Bernoulli(logits=r_i - r_j)``; its gradient equals the closed
  form ∂L/∂r_i = −Σ_{j>i} σ(r_j − r_i)/N + Σ_{j<i} σ(r_i − r_j)/N, N = B·C(K, 2); it is
  finite, and ≈ the mean hinge max(0, r_j − r_i), for gaps of 10^4.
- ``ppo_ptx_objective`` equals rl_objective + γ·(Σ logprobs)/numel written with a loop, for
  0-dim and (B,) rl objectives, and its gradients are 1 and γ/numel.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("instructgpt")).namespace
ranking_loss, ppo_ptx_objective = NS["ranking_loss"], NS["ppo_ptx_objective"]


def _loop_loss(rewards: torch.Tensor) -> torch.Tensor:
    b_rows, k = rewards.shape
    total, count = rewards.new_zeros(()), 0
    for b in range(b_rows):
        for i in range(k):
            for j in range(i + 1, k):
                total = total - F.logsigmoid(rewards[b, i] - rewards[b, j])
                count += 1
    assert count == b_rows * k * (k - 1) // 2
    return total / count


SHAPES = [(1, 2), (3, 2), (1, 9), (4, 3), (2, 5), (6, 4), (5, 9), (3, 7)]


@pytest.mark.parametrize(("b", "k"), SHAPES)
def test_ranking_loss_equals_a_double_loop(b, k):
    g = torch.Generator().manual_seed(100 * b + k)
    r = 2 * torch.randn(b, k, generator=g, dtype=torch.float64)
    torch.testing.assert_close(ranking_loss(r), _loop_loss(r), rtol=1e-12, atol=1e-12)
    r32 = r.float()
    out = ranking_loss(r32)
    assert out.dtype == torch.float32 and out.shape == ()
    torch.testing.assert_close(out, _loop_loss(r32), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("b", [1, 2, 7, 64])
def test_k2_is_the_pairwise_loss(b):
    g = torch.Generator().manual_seed(b)
    r = 3 * torch.randn(b, 2, generator=g, dtype=torch.float64)
    want = -F.logsigmoid(r[:, 0] - r[:, 1]).mean()
    torch.testing.assert_close(ranking_loss(r), want, rtol=1e-12, atol=1e-12)
    bce = nn.BCEWithLogitsLoss()(r[:, 0] - r[:, 1], torch.ones(b, dtype=torch.float64))
    torch.testing.assert_close(ranking_loss(r), bce, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("b", "k"), [(1, 3), (4, 4), (3, 8)])
def test_bradley_terry_likelihood_of_the_implied_pairs(b, k):
    g = torch.Generator().manual_seed(7 * k + b)
    r = torch.randn(b, k, generator=g, dtype=torch.float64)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    logits = torch.stack([r[:, i] - r[:, j] for i, j in pairs], dim=1)  # (b, C(k, 2))
    nll = -Bernoulli(logits=logits).log_prob(torch.ones_like(logits)).mean()
    torch.testing.assert_close(ranking_loss(r), nll, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("b", "k"), [(1, 2), (3, 5), (2, 9)])
def test_gradient_closed_form(b, k):
    g = torch.Generator().manual_seed(b + 13 * k)
    r = torch.randn(b, k, generator=g, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(ranking_loss(r), r)
    n = b * k * (k - 1) / 2
    want = torch.zeros(b, k, dtype=torch.float64)
    rd = r.detach()
    for i in range(k):
        for j in range(k):
            if j > i:  # i beats j: pushed up
                want[:, i] -= torch.sigmoid(rd[:, j] - rd[:, i]) / n
            elif j < i:  # j beats i: pushed down
                want[:, i] += torch.sigmoid(rd[:, i] - rd[:, j]) / n
    torch.testing.assert_close(grad, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad.sum(-1), torch.zeros(b, dtype=torch.float64),
                               rtol=0, atol=1e-12)  # only differences matter


def test_large_gaps_stay_finite():
    r = torch.tensor([[0.0, 1e4, 2e4], [5e3, 0.0, -5e3]], dtype=torch.float32,
                     requires_grad=True)
    loss = ranking_loss(r)
    rd = r.detach()
    hinge = sum(max(0.0, float(rd[b, j] - rd[b, i])) for b in range(2) for i in range(3)
                for j in range(i + 1, 3)) / 6
    value = float(loss.detach())
    assert math.isfinite(value) and value == pytest.approx(hinge, rel=1e-6)
    (grad,) = torch.autograd.grad(loss, r)
    assert bool(torch.isfinite(grad).all())


@pytest.mark.parametrize(("rl_shape", "lp_shape", "gamma"),
                         [((), (4, 8), 27.8), ((), (5,), 0.0), ((3,), (2, 6), 0.5),
                          ((1,), (1, 1), 2.0)])
def test_ppo_ptx_objective_formula(rl_shape, lp_shape, gamma):
    g = torch.Generator().manual_seed(len(rl_shape) + len(lp_shape))
    rl = torch.randn(rl_shape, generator=g, dtype=torch.float64, requires_grad=True)
    lp = (-5 * torch.rand(lp_shape, generator=g, dtype=torch.float64)).requires_grad_()
    out = ppo_ptx_objective(rl, lp, gamma)
    flat = lp.detach().flatten().tolist()
    want = rl.detach() + gamma * (sum(flat) / len(flat))
    assert out.shape == rl.shape and out.dtype == torch.float64
    torch.testing.assert_close(out.detach(), want, rtol=1e-12, atol=1e-12)
    g_rl, g_lp = torch.autograd.grad(out.sum(), (rl, lp))
    torch.testing.assert_close(g_rl, torch.ones_like(rl))
    torch.testing.assert_close(g_lp, torch.full_like(lp, gamma * rl.numel() / lp.numel()))
