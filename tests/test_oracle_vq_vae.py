"""Unit 5.5 `vq-vae`: the master against independent implementations.

- ``quantize``: a brute-force Python loop over the vectors, each compared with every code by
  ``torch.linalg.vector_norm`` and a strict ``<`` (so the first minimum wins); exact ties on
  dyadic inputs; leading dims and mixed dtypes; the straight-through gradient by autograd
  (d Σ w·z_q / dz = w, no gradient to the codebook).
- ``vq_losses``: ``F.mse_loss`` on explicitly detached tensors, and autograd of each loss
  separately: the codebook loss reaches only the codebook, the commitment loss only z, with
  the closed-form values 2(e − z)/n and 2β(z − e)/n.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("vq-vae")).namespace
quantize, vq_losses = NS["quantize"], NS["vq_losses"]


def _loop_quantize(z: torch.Tensor, codebook: torch.Tensor):
    flat = z.detach().double().reshape(-1, z.shape[-1])
    book = codebook.detach().double()
    found = []
    for vector in flat:
        best, best_k = float("inf"), -1
        for k in range(book.shape[0]):
            dist = float(torch.linalg.vector_norm(vector - book[k]))
            if dist < best:  # strict: the first of equal distances is kept
                best, best_k = dist, k
        found.append(best_k)
    idx = torch.tensor(found, dtype=torch.long).reshape(z.shape[:-1])
    return codebook[idx].to(z.dtype), idx


@pytest.mark.parametrize(("lead", "k", "d", "z_dtype", "c_dtype"), [
    ((7,), 5, 3, torch.float64, torch.float64),
    ((2, 3, 4), 9, 2, torch.float32, torch.float32),
    ((), 4, 6, torch.float32, torch.float64),
    ((3, 5), 1, 4, torch.float64, torch.float32),
    ((1,), 16, 1, torch.float32, torch.float32),
])
def test_quantize_matches_a_loop(lead, k, d, z_dtype, c_dtype):
    g = torch.Generator().manual_seed(k * 100 + d)
    z = torch.randn(*lead, d, generator=g, dtype=torch.float64).to(z_dtype)
    codebook = torch.randn(k, d, generator=g, dtype=torch.float64).to(c_dtype)
    z_q, idx = quantize(z, codebook)
    want_q, want_idx = _loop_quantize(z, codebook)
    assert idx.dtype == torch.long and idx.shape == z.shape[:-1]
    assert torch.equal(idx, want_idx)
    assert z_q.dtype == z_dtype and z_q.shape == z.shape
    torch.testing.assert_close(z_q, want_q)


def test_quantize_ties_go_to_the_lowest_index():
    codebook = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    z = torch.tensor([[0.5, 0.0], [1.0, 0.5], [0.0, 0.0], [-0.5, 0.0], [0.0, 3.0]])
    _, idx = quantize(z, codebook)
    assert idx.tolist() == [0, 1, 0, 0, 0]
    assert torch.equal(idx, _loop_quantize(z, codebook)[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_straight_through_gradient(dtype):
    g = torch.Generator().manual_seed(3)
    z = torch.randn(4, 3, 2, generator=g, dtype=dtype).requires_grad_()
    codebook = torch.randn(5, 2, generator=g, dtype=dtype).requires_grad_()
    w = torch.randn(4, 3, 2, generator=g, dtype=dtype)
    z_q, _ = quantize(z, codebook)
    (w * z_q).sum().backward()
    assert torch.equal(z.grad, w)
    assert codebook.grad is None or not codebook.grad.any()


@pytest.mark.parametrize(("lead", "k", "beta"), [((6,), 4, 0.25), ((2, 3), 3, 0.7), ((), 2, 2.0)])
def test_vq_losses_match_mse_loss_with_detaches(lead, k, beta):
    g = torch.Generator().manual_seed(k)
    d = 3
    z = torch.randn(*lead, d, generator=g, dtype=torch.float64)
    codebook = torch.randn(k, d, generator=g, dtype=torch.float64)
    idx = torch.randint(0, k, lead, generator=g)
    n = z.numel()

    def leaves():
        return z.clone().requires_grad_(), codebook.clone().requires_grad_()

    zl, cl = leaves()
    cb_loss, commit = vq_losses(zl, cl, idx, beta)
    torch.testing.assert_close(cb_loss, F.mse_loss(cl[idx], zl.detach()))
    torch.testing.assert_close(commit, beta * F.mse_loss(zl, cl[idx].detach()))

    # each loss on its own: which leaves it reaches, and with which gradient
    zl, cl = leaves()
    cb_loss, _ = vq_losses(zl, cl, idx, beta)
    g_z, g_c = torch.autograd.grad(cb_loss, [zl, cl], allow_unused=True)
    assert g_z is None or not g_z.any()
    want = torch.zeros_like(codebook).index_add_(0, idx.reshape(-1),
                                                 (2 * (codebook[idx] - z) / n).reshape(-1, d))
    torch.testing.assert_close(g_c, want)

    zl, cl = leaves()
    _, commit = vq_losses(zl, cl, idx, beta)
    g_z, g_c = torch.autograd.grad(commit, [zl, cl], allow_unused=True)
    assert g_c is None or not g_c.any()
    torch.testing.assert_close(g_z, 2 * beta * (z - codebook[idx]) / n)


def test_oracle_can_fail():
    """The loop oracle sees a wrong quantizer: the farthest code instead of the nearest."""
    g = torch.Generator().manual_seed(0)
    z, codebook = torch.randn(10, 2, generator=g), torch.randn(6, 2, generator=g)
    dist = ((z[:, None] - codebook[None]) ** 2).sum(-1)
    assert not torch.equal(dist.argmax(1), _loop_quantize(z, codebook)[1])
