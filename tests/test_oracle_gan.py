"""Unit 5.1 `gan`: the master against independent implementations.

- ``discriminator_loss`` equals ``torch.nn.BCEWithLogitsLoss`` of the real logits with
  targets 1 plus that of the fake logits with targets 0 (each batch its own mean), for
  batches of equal and of different sizes, float32 and float64, and so do its gradients.
- ``generator_loss`` (non-saturating, the default) equals ``BCEWithLogitsLoss`` of the fake
  logits with targets 1; the saturating branch equals ``mean(log(1 − sigmoid(ℓ)))`` computed
  naively in float64 on logits where that is finite (|ℓ| ≤ 30), gradients included.
- On confident logits (±50 to ±10^4) both losses stay finite, equal BCEWithLogitsLoss, and
  have the closed-form limits: softplus(ℓ) ≈ max(ℓ, 0), so the saturating loss of fakes the
  discriminator rejects (ℓ ≪ 0) is ≈ 0 with a gradient ≈ 0, and the non-saturating one ≈ −ℓ
  with gradient −1/B.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("gan")).namespace
discriminator_loss, generator_loss = NS["discriminator_loss"], NS["generator_loss"]
BCE = nn.BCEWithLogitsLoss()


def _draw(n, seed, dtype, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, generator=g, dtype=torch.float64)).to(dtype)


@pytest.mark.parametrize(("nr", "nf", "dtype"), [(1, 1, torch.float32), (5, 9, torch.float64),
                                                 (64, 64, torch.float32), (13, 2, torch.float64)])
def test_discriminator_loss_is_bce_with_logits(nr, nf, dtype):
    real = _draw(nr, nr, dtype).requires_grad_()
    fake = _draw(nf, 100 + nf, dtype).requires_grad_()
    ours = discriminator_loss(real, fake)
    oracle = BCE(real, torch.ones(nr, dtype=dtype)) + BCE(fake, torch.zeros(nf, dtype=dtype))
    assert ours.shape == () and ours.dtype == dtype
    torch.testing.assert_close(ours, oracle)
    g_ours = torch.autograd.grad(ours, (real, fake))
    g_oracle = torch.autograd.grad(oracle, (real, fake))
    for a, b in zip(g_ours, g_oracle):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("n", "dtype"), [(1, torch.float32), (7, torch.float64),
                                          (32, torch.float32)])
def test_generator_loss_non_saturating_is_bce_with_target_one(n, dtype):
    fake = _draw(n, n, dtype).requires_grad_()
    ours = generator_loss(fake)
    oracle = BCE(fake, torch.ones(n, dtype=dtype))
    assert ours.shape == () and ours.dtype == dtype
    torch.testing.assert_close(ours, oracle)
    torch.testing.assert_close(generator_loss(fake, saturating=False), oracle)
    torch.testing.assert_close(torch.autograd.grad(ours, fake)[0],
                               torch.autograd.grad(oracle, fake)[0])


@pytest.mark.parametrize(("n", "dtype"), [(1, torch.float32), (9, torch.float64),
                                          (40, torch.float32)])
def test_generator_loss_saturating_is_log_one_minus_d(n, dtype):
    fake = _draw(n, 7 * n, dtype, scale=10.0).clamp(-30, 30).requires_grad_()
    ours = generator_loss(fake, saturating=True)
    x = fake.detach().double().requires_grad_()
    naive = torch.log(1 - torch.sigmoid(x)).mean()  # finite in float64 for |l| <= 30
    assert ours.shape == () and ours.dtype == dtype
    torch.testing.assert_close(ours.double(), naive, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.autograd.grad(ours, fake)[0].double(),
                               torch.autograd.grad(naive, x)[0], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_confident_logits_stay_finite_and_have_the_limits(dtype):
    big = torch.tensor([50.0, 300.0, 1e4], dtype=dtype)
    n = len(big)
    # a discriminator that confidently rejects the fakes: fake logits -50 .. -1e4
    fake = (-big).requires_grad_()
    sat = generator_loss(fake, saturating=True)
    (g_sat,) = torch.autograd.grad(sat, fake)
    ns = generator_loss(fake)
    (g_ns,) = torch.autograd.grad(ns, fake)
    assert torch.isfinite(sat) and torch.isfinite(ns)
    assert abs(sat.item()) < 1e-20 and g_sat.abs().max().item() < 1e-20  # saturated
    torch.testing.assert_close(ns, big.mean())
    torch.testing.assert_close(g_ns, torch.full_like(big, -1.0 / n))
    # the naive forms break exactly here, which is why the checks probe these logits
    assert torch.isinf(torch.log(1 - torch.sigmoid(big))).all()
    real = big.clone().requires_grad_()
    d = discriminator_loss(real, fake)
    torch.testing.assert_close(d, BCE(real, torch.ones_like(big))
                               + BCE(fake, torch.zeros_like(big)))
    torch.testing.assert_close(discriminator_loss(-big, big), 2 * big.mean())  # all wrong
    grads = torch.autograd.grad(d, (real, fake))
    assert all(torch.isfinite(gr).all() for gr in grads)
