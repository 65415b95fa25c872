"""Unit 5.14 `clip`: the master against independent implementations.

- ``clip_loss``: equals (1) a loss written as an explicit Python loop over the pairs, each
  row's and each column's log-softmax computed from ``torch.logsumexp`` of plain cosines
  (``torch.dot`` of vectors divided by their norms), and (2) ``F.cross_entropy`` on both
  directions of a matrix of ``F.cosine_similarity``, the form of the paper's pseudo-code;
  values and gradients (w.r.t. features and a tensor logit_scale), float32 and float64, a
  Python-float scale, B = 1 (loss 0); finite at large scale where the naive form is not.
- ``zero_shot_classify``: equals a per-image loop that picks the prompt of largest cosine
  with ``max`` over Python floats; unchanged when the images are rescaled, changed (on a
  planted example) when only the prompts' norms would favour another class.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("clip")).namespace
clip_loss, zero_shot_classify = NS["clip_loss"], NS["zero_shot_classify"]


def loop_loss(image, text, scale):
    """The symmetric loss, one pair at a time."""
    b = image.shape[0]
    cos = torch.stack([torch.stack([torch.dot(image[i], text[j])
                                    / (image[i].norm() * text[j].norm()) for j in range(b)])
                       for i in range(b)])
    logits = math.exp(scale) * cos if isinstance(scale, float) else scale.exp() * cos
    rows = [logits[i, i] - torch.logsumexp(logits[i, :], 0) for i in range(b)]
    cols = [logits[j, j] - torch.logsumexp(logits[:, j], 0) for j in range(b)]
    return -(sum(rows) / b + sum(cols) / b) / 2


def library_loss(image, text, scale):
    """F.cross_entropy on both directions of a cosine matrix, as in the paper's pseudo-code."""
    cos = F.cosine_similarity(image[:, None, :], text[None, :, :], dim=-1)
    logits = (math.exp(scale) if isinstance(scale, float) else scale.exp()) * cos
    labels = torch.arange(image.shape[0])
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def _features(g, b, d, dtype):
    x = torch.randn(b, d, generator=g, dtype=torch.float64)
    x = x * torch.exp(2 * torch.rand(b, 1, generator=g, dtype=torch.float64))
    return x.to(dtype)


@pytest.mark.parametrize(("b", "d", "dtype", "scale"),
                         [(1, 4, torch.float64, 2.66), (5, 3, torch.float32, 0.0),
                          (9, 16, torch.float64, math.log(100)), (4, 1, torch.float32, 1.3),
                          (12, 7, torch.float64, -0.5)])
def test_clip_loss_matches_loop_and_cross_entropy(b, d, dtype, scale):
    g = torch.Generator().manual_seed(b * 31 + d)
    image, text = _features(g, b, d, dtype), _features(g, b, d, dtype)
    ours = clip_loss(image, text, scale)
    assert ours.shape == () and ours.dtype == dtype
    torch.testing.assert_close(ours, loop_loss(image, text, scale))
    torch.testing.assert_close(ours, library_loss(image, text, scale))
    if b == 1:
        assert ours.item() == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_clip_loss_gradients_match_cross_entropy(dtype):
    g = torch.Generator().manual_seed(7)
    image, text = _features(g, 6, 5, dtype), _features(g, 6, 5, dtype)
    grads = []
    for fn in (clip_loss, library_loss, loop_loss):
        i, t = image.clone().requires_grad_(), text.clone().requires_grad_()
        s = torch.tensor(2.0, dtype=dtype, requires_grad=True)
        fn(i, t, s).backward()
        grads.append((i.grad, t.grad, s.grad))
    for other in grads[1:]:
        for mine, theirs in zip(grads[0], other):
            torch.testing.assert_close(mine, theirs)


def test_clip_loss_is_finite_at_large_scale():
    g = torch.Generator().manual_seed(3)
    image = torch.randn(8, 6, generator=g)
    text = image + 0.01 * torch.randn(8, 6, generator=g)
    loss = clip_loss(image, text, torch.tensor(8.0))
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, library_loss(image, text, torch.tensor(8.0)))
    naive = (math.exp(8.0) * F.normalize(image) @ F.normalize(text).T).exp()
    assert not torch.isfinite(naive).all()  # the case really overflows


def loop_classify(image, prompts):
    out = []
    for x in image:
        cos = [float(torch.dot(x, p) / (x.norm() * p.norm())) for p in prompts]
        out.append(max(range(len(cos)), key=cos.__getitem__))
    return torch.tensor(out, dtype=torch.int64)


@pytest.mark.parametrize(("b", "c", "d"), [(1, 10, 8), (15, 10, 6), (7, 3, 3), (4, 1, 5)])
def test_zero_shot_matches_loop(b, c, d):
    g = torch.Generator().manual_seed(b + 100 * c)
    image, prompts = _features(g, b, d, torch.float64), _features(g, c, d, torch.float64)
    ours = zero_shot_classify(image, prompts)
    assert ours.dtype == torch.int64 and ours.shape == (b,)
    assert torch.equal(ours, loop_classify(image, prompts))
    scaled = image * torch.linspace(0.01, 100, b, dtype=torch.float64)[:, None]
    assert torch.equal(zero_shot_classify(scaled, prompts), ours)


def test_zero_shot_ignores_prompt_norms():
    image = torch.tensor([[1.0, 0.1]])
    prompts = torch.tensor([[1.0, 0.0], [0.0, 50.0]])  # class 1 wins the dot product only
    assert (image @ prompts.T).argmax().item() == 1
    assert zero_shot_classify(image, prompts).tolist() == [0]
