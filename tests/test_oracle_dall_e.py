"""Unit 5.15 `dall-e`: the master against independent implementations.

- ``gumbel_softmax``: equals ``torch.nn.functional.gumbel_softmax`` when that function is given
  the very same noise (its internal draw, ``torch.empty_like(...).exponential_()`` turned into
  Gumbel noise by ``-log``, is patched to return the noise's ``exp(-g)``), soft and hard, values
  and gradients w.r.t. the logits; at K = 2 it is the closed form σ((ℓ₀ + g₀ − ℓ₁ − g₁)/τ).
- ``sample_gumbel``: its empirical CDF matches the Gumbel CDF exp(−exp(−g)) (Kolmogorov–Smirnov
  distance), its mean is Euler's γ, and argmax(ℓ + g) samples softmax(ℓ) (the Gumbel-max
  trick, against ``torch.distributions.Categorical`` probabilities).
- ``text_image_mask``: equals a mask built by explicit Python loops over the four blocks
  (text→text causal, text→image never, image→text always, image→image causal).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("dall-e")).namespace
gumbel_softmax = NS["gumbel_softmax"]
sample_gumbel = NS["sample_gumbel"]
text_image_mask = NS["text_image_mask"]


def _torch_gumbel_softmax(logits, tau, g, hard, monkeypatch):
    """F.gumbel_softmax with its exponential draw replaced so that its noise equals g.

    PyTorch draws E ~ Exp(1) with ``torch.empty_like(logits).exponential_()`` and uses
    g = −log E; returning E = exp(−g) makes its noise exactly ours."""
    real_empty_like = torch.empty_like

    def fake_empty_like(t, *a, **k):
        out = real_empty_like(t, *a, **k)
        if out.shape == g.shape:
            return _NoiseHolder(torch.exp(-g).to(out.dtype))
        return out

    class _NoiseHolder:
        def __init__(self, e):
            self.e = e

        def exponential_(self, *a, **k):
            return self.e

    monkeypatch.setattr(torch, "empty_like", fake_empty_like)
    try:
        return F.gumbel_softmax(logits, tau=tau, hard=hard, dim=-1)
    finally:
        monkeypatch.setattr(torch, "empty_like", real_empty_like)


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize(("shape", "tau", "dtype"), [((4, 7), 0.5, torch.float64),
                                                     ((1, 3), 2.0, torch.float32),
                                                     ((2, 3, 5), 0.1, torch.float64)])
def test_gumbel_softmax_matches_torch(shape, tau, dtype, hard, monkeypatch):
    gen = torch.Generator().manual_seed(sum(shape))
    logits = (2 * torch.randn(shape, generator=gen, dtype=torch.float64)).to(dtype)
    g = sample_gumbel(shape, generator=gen).to(dtype)
    ours_in = logits.clone().requires_grad_()
    theirs_in = logits.clone().requires_grad_()
    ours = gumbel_softmax(ours_in, tau, g, hard=hard)
    theirs = _torch_gumbel_softmax(theirs_in, tau, g, hard, monkeypatch)
    assert ours.dtype == dtype and ours.shape == logits.shape
    torch.testing.assert_close(ours, theirs)
    w = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
    (ours * w).sum().backward()
    (theirs * w).sum().backward()
    torch.testing.assert_close(ours_in.grad, theirs_in.grad)


def test_gumbel_softmax_two_categories_is_a_sigmoid():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(50, 2, generator=gen, dtype=torch.float64)
    g = sample_gumbel((50, 2), generator=gen).double()
    for tau in (0.2, 1.0, 3.0):
        y = gumbel_softmax(logits, tau, g)
        gap = (logits[:, 0] + g[:, 0] - logits[:, 1] - g[:, 1]) / tau
        torch.testing.assert_close(y[:, 0], torch.sigmoid(gap))
        hard = gumbel_softmax(logits, tau, g, hard=True)
        torch.testing.assert_close(hard[:, 0], (gap > 0).double())


def test_sample_gumbel_distribution():
    gen = torch.Generator().manual_seed(0)
    n = 100_000
    x = sample_gumbel((n,), generator=gen).double()
    assert x.dtype == torch.float64 and torch.isfinite(x).all()
    xs = x.sort().values
    cdf = torch.exp(-torch.exp(-xs))
    ks = float(torch.maximum((torch.arange(1, n + 1) / n - cdf).abs(),
                             (torch.arange(n) / n - cdf).abs()).max())
    assert ks < 1.63 / math.sqrt(n)  # Kolmogorov–Smirnov at the 1 % level
    assert abs(float(x.mean()) - 0.5772156649) < 5 * math.pi / math.sqrt(6 * n)
    logits = torch.tensor([0.5, -1.0, 2.0, 0.0])
    g = sample_gumbel((n, 4), generator=gen)
    freq = torch.bincount((logits + g).argmax(-1), minlength=4).double() / n
    p = Categorical(logits=logits.double()).probs
    assert ((freq - p).abs() <= 5 * (p * (1 - p) / n).sqrt()).all()


def test_sample_gumbel_uses_the_generator():
    a = sample_gumbel((3, 4), generator=torch.Generator().manual_seed(7))
    b = sample_gumbel((3, 4), generator=torch.Generator().manual_seed(7))
    u = torch.rand((3, 4), generator=torch.Generator().manual_seed(7))
    assert a.dtype == torch.float32
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, -torch.log(-torch.log(u + 1e-20) + 1e-20))


def _loop_mask(text_len, image_len):
    L = text_len + image_len
    mask = [[False] * L for _ in range(L)]
    for i in range(L):
        for j in range(L):
            query_text, key_text = i < text_len, j < text_len
            if query_text and key_text:
                mask[i][j] = j <= i
            elif query_text:
                mask[i][j] = False  # the caption never sees the image
            elif key_text:
                mask[i][j] = True  # every image token sees the whole caption
            else:
                mask[i][j] = (j - text_len) <= (i - text_len)
    return torch.tensor(mask, dtype=torch.bool).reshape(L, L)


@pytest.mark.parametrize(("text_len", "image_len"), [(3, 4), (0, 5), (6, 0), (1, 1), (8, 16)])
def test_text_image_mask_matches_loops(text_len, image_len):
    got = text_image_mask(text_len, image_len)
    assert got.dtype == torch.bool and got.shape == (text_len + image_len,) * 2
    assert torch.equal(got, _loop_mask(text_len, image_len))
