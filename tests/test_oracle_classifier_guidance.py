"""Unit 5.10 `classifier-guidance`: the master against independent derivations.

- ``classifier_grad`` of a linear classifier equals the closed form
  Wᵀ(onehot(y) − softmax(Wx + b)), row by row, written with ``torch.nn.functional.one_hot``
  and no autograd; with y repeated, batch 1, and image-shaped inputs.
- ``classifier_grad`` of the exercise's noise-aware MLP equals the per-sample Jacobian of the
  log-probabilities from ``torch.func.jacrev`` under ``torch.func.vmap`` (each sample alone,
  so a batch mean or a class picked across samples would show), and central finite
  differences of ``torch.distributions.Categorical(logits=...).log_prob(y)``, in float64.
- It runs under ``torch.no_grad()``, leaves the caller's x_t (values, ``requires_grad``,
  ``.grad``) and the classifier's parameter ``.grad`` as they were, returns a detached
  tensor, and keeps float32 inputs in float32.
- ``guided_mean`` is the mean of the gaussian N(μ, Σ) tilted by exp(s·gᵀx): the log-density
  of N(μ + sΣg, Σ) (``torch.distributions.Normal``) differs from log N(x; μ, Σ) + s·gᵀx by a
  constant in x, for per-coordinate variances; and a float64 variance keeps float32 data in
  float32.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical, Normal

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("classifier-guidance")).namespace
classifier_grad, guided_mean = NS["classifier_grad"], NS["guided_mean"]
LinearClassifier, NoiseAwareClassifier = NS["LinearClassifier"], NS["NoiseAwareClassifier"]


def _seeded(module: torch.nn.Module, seed: int, dtype=torch.float64) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return module.to(dtype)


@pytest.mark.parametrize(("shape", "classes", "y"), [
    ((5, 3), 4, [2, 2, 0, 3, 2]),
    ((1, 4), 3, [1]),
    ((3, 2, 2, 2), 5, [4, 0, 4]),
])
def test_linear_classifier_gradient_is_closed_form(shape, classes, y):
    d = 1
    for s in shape[1:]:
        d *= s
    clf = _seeded(LinearClassifier(d, classes), seed=d + classes)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    y = torch.tensor(y)
    t = torch.zeros(shape[0], dtype=torch.long)
    W, b = clf.linear.weight.detach(), clf.linear.bias.detach()
    p = torch.softmax(x.flatten(1) @ W.T + b, dim=1)
    want = ((F.one_hot(y, classes).double() - p) @ W).reshape(shape)
    ours = classifier_grad(clf, x, t, y)
    assert ours.shape == x.shape and ours.dtype == torch.float64
    torch.testing.assert_close(ours, want, rtol=1e-12, atol=1e-12)


def _mlp(seed: int = 3) -> torch.nn.Module:
    return _seeded(NoiseAwareClassifier(3, 4, hidden=9, period=4.0), seed)


def test_noise_aware_gradient_is_per_sample_jacobian():
    clf = _mlp()
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, 3, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 4, 9, 9, 17, 30])
    y = torch.tensor([1, 1, 3, 0, 2, 1])

    def log_probs(xi, ti):  # one sample: (3,) -> (4,) log-probabilities
        return torch.log_softmax(clf(xi[None], ti[None]), dim=-1)[0]

    jac = torch.func.vmap(torch.func.jacrev(log_probs))(x, t)  # (6, 4, 3)
    want = jac[torch.arange(6), y]
    torch.testing.assert_close(classifier_grad(clf, x, t, y), want, rtol=1e-10, atol=1e-12)


def test_noise_aware_gradient_is_finite_differences():
    clf = _mlp(seed=11)
    g = torch.Generator().manual_seed(6)
    x = torch.randn(4, 3, generator=g, dtype=torch.float64)
    t = torch.tensor([2, 2, 13, 40])
    y = torch.tensor([0, 3, 3, 1])
    h = 1e-6

    def logp(z):
        with torch.no_grad():
            return Categorical(logits=clf(z, t)).log_prob(y)  # (B,), each sample's own

    want = torch.zeros_like(x)
    for j in range(x.shape[1]):
        e = torch.zeros_like(x)
        e[:, j] = h
        want[:, j] = (logp(x + e) - logp(x - e)) / (2 * h)
    torch.testing.assert_close(classifier_grad(clf, x, t, y), want, rtol=1e-6, atol=1e-7)


def test_gradient_depends_on_the_step():
    clf = _mlp()
    x = torch.ones(2, 3, dtype=torch.float64)
    y = torch.tensor([2, 2])
    out = classifier_grad(clf, x, torch.tensor([0, 25]), y)
    assert not torch.allclose(out[0], out[1])


def test_caller_state_is_left_alone_and_result_detached():
    clf = _mlp()
    g = torch.Generator().manual_seed(8)
    for requires in (False, True):
        x = torch.randn(5, 3, generator=g, dtype=torch.float64).requires_grad_(requires)
        before = x.detach().clone()
        t = torch.arange(5)
        y = torch.tensor([0, 1, 2, 3, 0])
        with torch.no_grad():
            out = classifier_grad(clf, x, t, y)
        assert x.requires_grad == requires and x.grad is None
        assert torch.equal(x.detach(), before)
        assert not out.requires_grad and out.grad_fn is None
        assert all(p.grad is None for p in clf.parameters())
        outside = classifier_grad(clf, x, t, y)  # with autograd on, too
        assert not outside.requires_grad
        torch.testing.assert_close(out, outside)


def test_float32_stays_float32():
    clf64 = _mlp()
    clf32 = _mlp().float()
    g = torch.Generator().manual_seed(9)
    x = torch.randn(7, 3, generator=g)
    t = torch.arange(7)
    y = torch.tensor([3, 3, 1, 0, 2, 2, 1])
    out32 = classifier_grad(clf32, x, t, y)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32, classifier_grad(clf64, x.double(), t, y).float(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale", [0.0, 1.0, 4.0])
def test_guided_mean_is_the_tilted_gaussian(scale):
    g = torch.Generator().manual_seed(int(scale * 10) + 1)
    mu = torch.randn(3, 4, generator=g, dtype=torch.float64)
    var = 0.05 + torch.rand(3, 4, generator=g, dtype=torch.float64)
    grad = torch.randn(3, 4, generator=g, dtype=torch.float64)
    shifted = guided_mean(mu, var, grad, scale)
    std = var.sqrt()
    xs = [torch.randn(3, 4, generator=g, dtype=torch.float64) * 2 for _ in range(5)]
    # log N(x; mu + s var g, var) - [log N(x; mu, var) + s g x]: the same for every x
    gaps = [Normal(shifted, std).log_prob(x) - (Normal(mu, std).log_prob(x) + scale * grad * x)
            for x in xs]
    for gap in gaps[1:]:
        torch.testing.assert_close(gap, gaps[0], rtol=1e-9, atol=1e-9)
    if scale == 0.0:
        torch.testing.assert_close(shifted, mu)


def test_guided_mean_keeps_the_data_dtype():
    g = torch.Generator().manual_seed(2)
    mu = torch.randn(4, 2, generator=g)
    grad = torch.randn(4, 2, generator=g)
    var = torch.linspace(0.01, 0.3, 4, dtype=torch.float64)[:, None]
    out = guided_mean(mu, var, grad, 2.0)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, (mu.double() + 2.0 * var * grad.double()).float())
    before = mu.clone()
    guided_mean(mu, 0.2, grad, 3.0)
    assert torch.equal(mu, before)
