"""Unit 3.5 `negative-sampling`: the master against independent formulations.

- ``negative_sampling_loss`` equals the same objective written as binary classification with
  ``torch.nn.functional.binary_cross_entropy_with_logits`` (label 1 for the true context word,
  0 for each noise word, summed over the K + 1 terms of a pair and averaged over pairs), forward
  and gradients w.r.t. all three inputs, in float64, including scores of ±1000;
- the loss's gradient w.r.t. the centre vector equals the closed form
  −(1 − σ(u_o·v_c))·u_o + Σ_k σ(u_k·v_c)·u_k (divided by B), and the loss at zero vectors is
  (K + 1)·log 2;
- ``noise_distribution``, ``keep_probability`` and ``phrase_score`` equal NumPy evaluations.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("negative-sampling")).namespace
noise_distribution = NS["noise_distribution"]
negative_sampling_loss = NS["negative_sampling_loss"]
keep_probability = NS["keep_probability"]
phrase_score = NS["phrase_score"]


def _bce_loss(center, context, negatives):
    pos = (center * context).sum(-1)
    neg = torch.einsum("bkd,bd->bk", negatives, center)
    logits = torch.cat([pos[:, None], neg], dim=1)
    labels = torch.zeros_like(logits)
    labels[:, 0] = 1.0
    per_term = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    return per_term.sum(dim=1).mean()


@pytest.mark.parametrize(("b", "k", "d"), [(1, 1, 1), (4, 5, 3), (7, 20, 16), (2, 3, 50)])
@pytest.mark.parametrize("scale", [0.5, 3.0, 30.0])
def test_loss_matches_bce_with_logits(b, k, d, scale):
    g = torch.Generator().manual_seed(b * 1000 + k * 10 + d)
    inputs = [torch.randn(*shape, dtype=torch.float64, generator=g) * scale
              for shape in ((b, d), (b, d), (b, k, d))]
    ours_in = [x.clone().requires_grad_(True) for x in inputs]
    theirs_in = [x.clone().requires_grad_(True) for x in inputs]
    ours = negative_sampling_loss(*ours_in)
    theirs = _bce_loss(*theirs_in)
    assert ours.shape == () and ours.dtype == torch.float64
    assert torch.isfinite(ours)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    for a, t in zip(torch.autograd.grad(ours, ours_in), torch.autograd.grad(theirs, theirs_in)):
        torch.testing.assert_close(a, t, rtol=1e-12, atol=1e-12)


def test_closed_form_gradient_and_zero_vectors():
    g = torch.Generator().manual_seed(3)
    b, k, d = 5, 4, 6
    v = torch.randn(b, d, dtype=torch.float64, generator=g, requires_grad=True)
    u_o = torch.randn(b, d, dtype=torch.float64, generator=g)
    u_k = torch.randn(b, k, d, dtype=torch.float64, generator=g)
    (grad,) = torch.autograd.grad(negative_sampling_loss(v, u_o, u_k), v)
    s_o = (u_o * v).sum(-1, keepdim=True)
    s_k = torch.einsum("bkd,bd->bk", u_k, v)
    want = (-(1 - torch.sigmoid(s_o)) * u_o + (torch.sigmoid(s_k)[..., None] * u_k).sum(1)) / b
    torch.testing.assert_close(grad, want.detach(), rtol=1e-12, atol=1e-12)
    zero = negative_sampling_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 7, 3))
    assert math.isclose(float(zero), 8 * math.log(2), rel_tol=1e-6)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.float32, torch.float64])
@pytest.mark.parametrize("power", [0.75, 1.0, 0.5, 0.0])
def test_noise_distribution_matches_numpy(dtype, power):
    counts = np.array([5, 1, 0, 1_000_000, 37, 2, 2, 999], dtype=np.int64)
    if power == 0.0:
        counts = counts[counts > 0]
    ours = noise_distribution(torch.from_numpy(counts).to(dtype), power=power)
    want = counts.astype(np.float64) ** power
    want = want / want.sum()
    assert ours.dtype == torch.float64
    np.testing.assert_allclose(ours.numpy(), want, rtol=1e-14, atol=0)
    assert math.isclose(float(ours.sum()), 1.0, rel_tol=1e-12)


def test_keep_probability_and_phrase_score_match_numpy():
    freq = np.array([0.0, 1e-9, 1e-6, 1e-5, 3e-5, 1e-3, 0.05, 1.0])
    for t in (1e-5, 1e-3):
        ours = keep_probability(torch.from_numpy(freq), t=t).numpy()
        with np.errstate(divide="ignore"):
            want = np.minimum(1.0, np.sqrt(t / freq))
        np.testing.assert_allclose(ours, want, rtol=1e-15)
    n_ab, n_a, n_b = np.array([0.0, 3.0, 40.0]), np.array([2.0, 10.0, 50.0]), np.array([5.0, 3.0,
                                                                                          80.0])
    ours = phrase_score(*(torch.from_numpy(x) for x in (n_ab, n_a, n_b)), 5.0).numpy()
    np.testing.assert_allclose(ours, (n_ab - 5.0) / (n_a * n_b), rtol=1e-15)
