"""Unit 5.16 `dall-e-2`: the master against independent implementations.

- ``slerp`` of two unit vectors equals a rotation in their plane: an orthonormal basis (u, v)
  from Gram–Schmidt, the angle from ``atan2`` (not ``arccos``), and the point
  ``cos(tθ)·u + sin(tθ)·v``, in float64; for inputs of equal norm r the path stays on the
  sphere of radius r, and its angle to a is tθ; slerp is homogeneous (slerp(ca, cb) =
  c·slerp(a, b)); parallel rows give the straight line.
- ``prior_loss`` equals ``F.mse_loss`` of the model's output on x_t built row by row in a
  Python loop with ``math.sqrt`` of each ᾱ, against the clean embedding; the model sees that
  x_t and the text embedding.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("dall-e-2")).namespace
slerp, prior_loss, TinyPrior = NS["slerp"], NS["prior_loss"], NS["TinyPrior"]


def _rotation(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """The point at fraction t of the way from â to b̂ along their great circle, per row."""
    u = a / a.norm(dim=-1, keepdim=True)
    w = b - (b * u).sum(-1, keepdim=True) * u  # b's part orthogonal to u
    v = w / w.norm(dim=-1, keepdim=True)
    theta = torch.atan2((b * v).sum(-1, keepdim=True), (b * u).sum(-1, keepdim=True))
    return torch.cos(t * theta) * u + torch.sin(t * theta) * v


@pytest.mark.parametrize(("d", "t"), [(2, 0.3), (5, 0.5), (16, 0.9), (64, 0.1)])
def test_slerp_is_a_rotation_in_the_plane(d, t):
    g = torch.Generator().manual_seed(d)
    a = torch.randn(7, d, generator=g, dtype=torch.float64)
    b = torch.randn(7, d, generator=g, dtype=torch.float64)
    a, b = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(slerp(a, b, t), _rotation(a, b, t), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_slerp_keeps_the_norm_and_the_angle(dtype):
    g = torch.Generator().manual_seed(3)
    r = 2.5
    a = torch.randn(10, 8, generator=g, dtype=torch.float64)
    b = torch.randn(10, 8, generator=g, dtype=torch.float64)
    a, b = r * a / a.norm(dim=-1, keepdim=True), r * b / b.norm(dim=-1, keepdim=True)
    theta = torch.arccos((a * b).sum(-1) / r**2)
    ts = torch.linspace(0, 1, 11, dtype=torch.float64)
    for t in ts.tolist():
        p = slerp(a.to(dtype), b.to(dtype), t).double()
        tol = 1e-5 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(p.norm(dim=-1), torch.full((10,), r, dtype=torch.float64),
                                   rtol=tol, atol=tol)
        angle = torch.arccos(((p * a).sum(-1) / (p.norm(dim=-1) * r)).clamp(-1, 1))
        torch.testing.assert_close(angle, t * theta, rtol=0, atol=1e-3 if tol > 1e-9 else 1e-6)


def test_slerp_is_homogeneous_and_linear_on_parallel_rows():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 6, generator=g, dtype=torch.float64)
    b = torch.randn(4, 6, generator=g, dtype=torch.float64)
    t = torch.rand(4, 1, generator=g, dtype=torch.float64)
    torch.testing.assert_close(slerp(3.0 * a, 3.0 * b, t), 3.0 * slerp(a, b, t))
    e = torch.zeros(2, 6, dtype=torch.float64)
    e[0, 2], e[1, 4] = 1.5, 0.7
    for other in (e, 2 * e, -e):
        out = slerp(e, other, 0.4)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, 0.6 * e + 0.4 * other)


@pytest.mark.parametrize(("b", "d", "dtype"), [(1, 3, torch.float32), (6, 4, torch.float64),
                                               (9, 1, torch.float32)])
def test_prior_loss_is_mse_on_hand_noised_embeddings(b, d, dtype):
    g = torch.Generator().manual_seed(b * 10 + d)
    torch.manual_seed(b)
    model = TinyPrior(d, hidden=12).to(dtype)
    T = 20
    abar = torch.cumprod(1 - torch.linspace(0.01, 0.3, T, dtype=torch.float64), 0)
    image = torch.randn(b, d, generator=g, dtype=torch.float64).to(dtype)
    text = torch.randn(b, d, generator=g, dtype=torch.float64).to(dtype)
    noise = torch.randn(b, d, generator=g, dtype=torch.float64).to(dtype)
    t = torch.randint(0, T, (b,), generator=g)
    rows = [math.sqrt(float(abar[t[i]])) * image[i].double()
            + math.sqrt(1 - float(abar[t[i]])) * noise[i].double() for i in range(b)]
    x_t = torch.stack(rows).to(dtype)
    want = F.mse_loss(model(x_t, t, text), image)
    got = prior_loss(model, image, text, t, noise, abar)
    assert got.shape == () and got.dtype == dtype
    torch.testing.assert_close(got, want, rtol=1e-5 if dtype == torch.float32 else 1e-10,
                               atol=1e-7)
    seen = []

    def spy(x, steps, cond):
        seen.append((x, steps, cond))
        return model(x, steps, cond)

    prior_loss(spy, image, text, t, noise, abar)
    (x_seen, t_seen, cond_seen), = seen
    torch.testing.assert_close(x_seen, x_t, rtol=1e-5, atol=1e-6)
    assert torch.equal(t_seen, t) and torch.equal(cond_seen, text)
