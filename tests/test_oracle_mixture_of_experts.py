"""Unit 3.9 `mixture-of-experts`: the master against independent computations, in float64.

PyTorch has no mixture-of-experts layer, so each piece is compared with a computation that
shares no code with the master:

- ``noisy_top_k_gating`` with a dense formula: numpy's stable argsort picks the kept set (ties
  to the lower index), a softmax over a -inf mask gives the gates;
- ``cv_squared`` with Python's ``statistics.variance`` (unbiased) and ``statistics.mean``;
- ``smooth_load`` with a Monte Carlo estimate of P(x, i): redraw expert i's noise alone many
  times and count how often i makes the top k (the definition in Appendix A of the paper),
  and with ``torch.autograd.gradcheck`` (it is differentiable, which is its point);
- ``MoE`` with the dense sum of gate-weighted expert outputs, and its dispatch with the
  experts' own forward hooks.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("mixture-of-experts")).namespace
gating, cv_squared, smooth_load, MoE = (
    NS["noisy_top_k_gating"], NS["cv_squared"], NS["smooth_load"], NS["MoE"]
)


def _keep_mask(h: torch.Tensor, k: int) -> torch.Tensor:
    order = np.argsort(-h.detach().numpy(), axis=1, kind="stable")[:, :k]
    mask = np.zeros(tuple(h.shape), dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return torch.from_numpy(mask)


def _inputs(b, d, e, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, d, generator=g, dtype=torch.float64),
            torch.randn(d, e, generator=g, dtype=torch.float64),
            0.5 * torch.randn(d, e, generator=g, dtype=torch.float64),
            torch.randn(b, e, generator=g, dtype=torch.float64))


@pytest.mark.parametrize(("b", "d", "e", "k"), [(5, 3, 6, 2), (1, 2, 3, 1), (4, 4, 5, 5)])
@pytest.mark.parametrize("noisy", [False, True])
def test_gating_equals_dense_masked_softmax(b, d, e, k, noisy):
    x, wg, wn, noise = _inputs(b, d, e, seed=b * 100 + e)
    h = x @ wg + (noise * F.softplus(x @ wn) if noisy else 0)
    want = torch.softmax(h.masked_fill(~_keep_mask(h, k), -math.inf), dim=1)
    got = gating(x, wg, wn, k, noise if noisy else None)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    assert ((got > 0).sum(1) == k).all()


def test_gating_ties_keep_lower_index():
    x = torch.ones(2, 1, dtype=torch.float64)
    wg = torch.tensor([[1.0, 2.0, 2.0, 0.0, 2.0]], dtype=torch.float64)
    got = gating(x, wg, None, 2)
    assert (got[:, [1, 2]] == 0.5).all() and (got[:, [0, 3, 4]] == 0).all()


@pytest.mark.parametrize("n", [1, 2, 7])
def test_cv_squared_equals_statistics(n):
    v = torch.rand(n, dtype=torch.float64, generator=torch.Generator().manual_seed(n)) + 0.1
    values = v.tolist()
    want = 0.0 if n == 1 else statistics.variance(values) / (statistics.mean(values) ** 2 + 1e-10)
    assert cv_squared(v).item() == pytest.approx(want, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(("b", "d", "e", "k"), [(3, 3, 5, 2), (2, 2, 4, 1), (2, 4, 6, 4)])
def test_smooth_load_matches_monte_carlo(b, d, e, k):
    x, wg, wn, noise = _inputs(b, d, e, seed=7 * e + k)
    clean, std = x @ wg, F.softplus(x @ wn)
    draws = 20_000
    g = torch.Generator().manual_seed(e)
    estimate = torch.zeros(e, dtype=torch.float64)
    for i in range(e):
        for row in range(b):
            eps = noise[row].repeat(draws, 1)
            eps[:, i] = torch.randn(draws, generator=g, dtype=torch.float64)
            h = clean[row] + eps * std[row]
            estimate[i] += _keep_mask(h, k)[:, i].double().mean()
    # each P(x, i) has Monte Carlo sd at most 0.5 / sqrt(draws); allow 5 sd per row summed
    bound = 5 * b * 0.5 / math.sqrt(draws)
    got = smooth_load(x, wg, wn, noise, k)
    assert (got - estimate).abs().max().item() <= bound, (got, estimate)


def test_smooth_load_with_all_experts_is_batch_size():
    x, wg, wn, noise = _inputs(4, 3, 5, seed=1)
    assert torch.equal(smooth_load(x, wg, wn, noise, 5), torch.full((5,), 4.0, dtype=x.dtype))


def test_smooth_load_is_differentiable():
    x, wg, wn, noise = _inputs(4, 3, 6, seed=3)
    for t in (x, wg, wn):
        t.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b, c: smooth_load(a, b, c, noise, 2), (x, wg, wn))


@pytest.mark.parametrize(("k", "noisy"), [(1, True), (2, True), (3, False)])
def test_moe_equals_dense_mixture_and_dispatches_sparsely(k, noisy):
    torch.manual_seed(k)
    moe = MoE(4, 3, 5, 6, k=k, noisy=noisy, loss_coef=0.1).double().eval()
    with torch.no_grad():
        moe.w_gate.normal_()
        moe.w_noise.normal_()
    x = torch.randn(9, 4, dtype=torch.float64)
    rows = [0] * 5
    for e, expert in enumerate(moe.experts):
        expert.register_forward_pre_hook(lambda m, a, e=e: rows.__setitem__(e, rows[e] + len(a[0])))
    y, aux = moe(x)
    seen = list(rows)
    h = x @ moe.w_gate
    gates = torch.softmax(h.masked_fill(~_keep_mask(h, k), -math.inf), dim=1)
    dense = sum(gates[:, e : e + 1] * expert(x) for e, expert in enumerate(moe.experts))
    torch.testing.assert_close(y, dense, rtol=1e-12, atol=1e-13)
    routed = (gates > 0).sum(0)
    assert seen == [int(r) for r in routed]
    importance, load = gates.sum(0), routed.double()
    want = 0.1 * (importance.var() / importance.mean() ** 2 + load.var() / load.mean() ** 2)
    assert aux.item() == pytest.approx(want.item(), rel=1e-9)
