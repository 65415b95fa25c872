"""Unit 5.4 `vae`: the master against independent implementations.

- ``gaussian_kl`` equals ``torch.distributions.kl_divergence(Normal(mu, exp(½·logvar)),
  Normal(0, 1))`` summed over every non-batch dimension, for (B, L), (B, C, L) and (B,)
  latents, in float64 and float32, and is 0 at the prior; its gradients agree too.
- ``reparameterize`` equals ``Normal(mu, exp(½·logvar)).rsample()`` driven by the same noise
  (the library's sample is loc + scale·ε), and many draws have the mean mu and the variance
  exp(logvar) within 5 standard errors.
- ``negative_elbo`` equals minus the batch mean of [``Bernoulli(logits=x_logits).log_prob(x)``
  summed over pixels − KL] (the KL from ``torch.distributions``), on binary and grey images
  (for grey ones with support validation off),
  and stays finite and equal to it for logits of ±60; and equals ``nn.BCEWithLogitsLoss
  (reduction="sum") / B`` plus the mean KL.
- ``VAE`` equals a VAE written as explicit matrix products from the same weights (tanh
  hidden layers, z = mu + exp(½·logvar)·ε), outputs and gradients, and its state dict has
  the documented keys and shapes.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Normal, kl_divergence

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("vae")).namespace
reparameterize, gaussian_kl = NS["reparameterize"], NS["gaussian_kl"]
negative_elbo, VAE = NS["negative_elbo"], NS["VAE"]

LATENT_SHAPES = [(4, 2), (1, 1), (7, 5), (3, 2, 4), (6,)]


def _library_kl(mu, logvar):
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return kl_divergence(q, p).reshape(mu.shape[0], -1).sum(dim=1)


@pytest.mark.parametrize("shape", LATENT_SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kl_equals_torch_distributions(shape, dtype):
    g = torch.Generator().manual_seed(len(shape) * 10 + shape[0])
    mu = (1.3 * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)
    logvar = (1.5 * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)
    got = gaussian_kl(mu, logvar)
    assert got.shape == (shape[0],) and got.dtype == dtype
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got, _library_kl(mu, logvar), rtol=tol, atol=tol)


def test_kl_gradients_equal_torch_distributions():
    g = torch.Generator().manual_seed(3)
    mu = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    cot = torch.randn(5, generator=g, dtype=torch.float64)
    ours = torch.autograd.grad((gaussian_kl(mu, logvar) * cot).sum(), (mu, logvar))
    theirs = torch.autograd.grad((_library_kl(mu, logvar) * cot).sum(), (mu, logvar))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = torch.zeros(3, 4, dtype=torch.float64)
    assert torch.equal(gaussian_kl(zeros, zeros), torch.zeros(3, dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(100, 2, generator=g, dtype=torch.float64)
    logvar = torch.randn(100, 2, generator=g, dtype=torch.float64)
    assert bool((gaussian_kl(mu, logvar) > 0).all())


@pytest.mark.parametrize("shape", LATENT_SHAPES)
def test_reparameterize_equals_rsample(shape):
    g = torch.Generator().manual_seed(shape[0])
    mu = torch.randn(shape, generator=g, dtype=torch.float64)
    logvar = 1.5 * torch.randn(shape, generator=g, dtype=torch.float64)
    torch.manual_seed(11)
    want = Normal(mu, torch.exp(0.5 * logvar)).rsample()
    torch.manual_seed(11)
    eps = torch.randn(shape, dtype=torch.float64)  # what rsample draws, in the same order
    torch.testing.assert_close(reparameterize(mu, logvar, eps), want, rtol=1e-12, atol=1e-12)


def test_reparameterized_draws_have_the_right_moments():
    mu = torch.tensor([[-1.0, 0.5, 2.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -2.0, 1.5]], dtype=torch.float64)
    n = 200_000
    eps = torch.randn(n, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    z = reparameterize(mu.expand(n, 3), logvar.expand(n, 3), eps)
    var = logvar.exp()[0]
    assert bool(((z.mean(0) - mu[0]).abs() <= 5 * (var / n).sqrt()).all())
    assert bool(((z.var(0) - var).abs() <= 5 * var * (2 / (n - 1)) ** 0.5).all())


def _library_negative_elbo(x, x_logits, mu, logvar):
    # grey images are outside a Bernoulli's support: its log_prob, x·log p + (1 − x)·log(1 − p),
    # is still the cross-entropy, so support validation is switched off
    log_lik = Bernoulli(logits=x_logits, validate_args=False).log_prob(x)
    log_lik = log_lik.reshape(x.shape[0], -1).sum(dim=1)
    return -(log_lik - _library_kl(mu, logvar)).mean()


@pytest.mark.parametrize(("xshape", "zshape", "binary"), [
    ((4, 6), (4, 2), True), ((1, 1), (1, 1), True), ((5, 64), (5, 2), False),
    ((3, 1, 3, 3), (3, 4), True), ((2, 10), (2, 3, 2), False),
])
def test_negative_elbo_equals_bernoulli_likelihood(xshape, zshape, binary):
    g = torch.Generator().manual_seed(sum(xshape))
    u = torch.rand(xshape, generator=g, dtype=torch.float64)
    x = (u > 0.5).double() if binary else u
    logits = 2 * torch.randn(xshape, generator=g, dtype=torch.float64)
    mu = torch.randn(zshape, generator=g, dtype=torch.float64)
    logvar = torch.randn(zshape, generator=g, dtype=torch.float64)
    got = negative_elbo(x, logits, mu, logvar)
    assert got.dim() == 0
    torch.testing.assert_close(got, _library_negative_elbo(x, logits, mu, logvar),
                               rtol=1e-12, atol=1e-12)
    bce = nn.BCEWithLogitsLoss(reduction="sum")(logits, x) / xshape[0]
    torch.testing.assert_close(got, bce + _library_kl(mu, logvar).mean(), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_negative_elbo_is_stable_for_large_logits(dtype):
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0]], dtype=dtype)
    logits = torch.tensor([[-60.0, 60.0, 60.0, -60.0]], dtype=dtype)
    mu = torch.zeros(1, 2, dtype=dtype)
    got = negative_elbo(x, logits, mu, torch.zeros_like(mu))
    assert torch.isfinite(got)
    torch.testing.assert_close(got, torch.tensor(120.0, dtype=dtype), rtol=1e-6, atol=1e-6)
    want = _library_negative_elbo(x.double(), logits.double(), mu.double(), mu.double())
    torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=1e-6)


def _explicit_vae(state, x, eps):
    h = torch.tanh(x @ state["encoder.0.weight"].T + state["encoder.0.bias"])
    mu = h @ state["fc_mu.weight"].T + state["fc_mu.bias"]
    logvar = h @ state["fc_logvar.weight"].T + state["fc_logvar.bias"]
    z = mu + torch.exp(0.5 * logvar) * eps
    hd = torch.tanh(z @ state["decoder.0.weight"].T + state["decoder.0.bias"])
    return hd @ state["decoder.2.weight"].T + state["decoder.2.bias"], mu, logvar


@pytest.mark.parametrize(("dims", "batch"), [((8, 6, 2), 4), ((5, 3, 1), 1), ((64, 16, 2), 3)])
def test_vae_equals_explicit_matrix_products(dims, batch):
    torch.manual_seed(sum(dims))
    model = VAE(*dims).double()
    keys = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    d, h, latent = dims
    assert keys == {
        "encoder.0.weight": (h, d), "encoder.0.bias": (h,),
        "fc_mu.weight": (latent, h), "fc_mu.bias": (latent,),
        "fc_logvar.weight": (latent, h), "fc_logvar.bias": (latent,),
        "decoder.0.weight": (h, latent), "decoder.0.bias": (h,),
        "decoder.2.weight": (d, h), "decoder.2.bias": (d,),
    }
    x = torch.rand(batch, d, dtype=torch.float64, requires_grad=True)
    eps = torch.randn(batch, latent, dtype=torch.float64)
    got = model(x, eps)
    state = dict(model.named_parameters())
    want = _explicit_vae(state, x, eps)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # gradients of the loss through both, w.r.t. the input and every parameter
    params = [x, *state.values()]
    ours = torch.autograd.grad(negative_elbo(x.detach(), *got), params)
    theirs = torch.autograd.grad(_library_negative_elbo(x.detach(), *want), params)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
