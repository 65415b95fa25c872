"""Unit 6.2 `flash-attention`: the master against independent implementations.

- The output equals ``torch.nn.functional.scaled_dot_product_attention`` (``is_causal`` for
  the causal case, top-left aligned), and a naive float64 attention written one query row at
  a time (``exp(s − max s)/Σ``, the causal row cut at key i), for float32 and float64, leading
  dimensions, block sizes that do not divide L, Lq ≠ Lk both ways and d ≠ dv; with large
  scores (std ≈ 900, where exp overflows) against the float64 row-by-row oracle.
- Gradients w.r.t. q, k and v equal those of ``scaled_dot_product_attention``.
- The allocation recorder of the grader's driver catches an L×L allocation: a naive
  attention's largest new tensor is the N×L×L score matrix (and a full boolean causal mask is
  seen too), views are not counted, and the master stays under the check's bound.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course import catalogue
from course.grading.checks import reference
from course.grading.drivers.flash_attention import AllocationRecorder, allocations

NS = reference(catalogue.find("flash-attention")).namespace
flash_attention = NS["flash_attention"]


def _rowwise(q, k, v, causal):
    """Naive float64 attention, one query row at a time."""
    q, k, v = q.double(), k.double(), v.double()
    d, Lq, Lk = q.shape[-1], q.shape[-2], k.shape[-2]
    rows = []
    for i in range(Lq):
        stop = min(i + 1, Lk) if causal else Lk
        s = (k[..., :stop, :] * q[..., i : i + 1, :]).sum(-1) / math.sqrt(d)  # (…, stop)
        w = torch.exp(s - s.max(dim=-1, keepdim=True).values)
        w = w / w.sum(dim=-1, keepdim=True)
        rows.append((w[..., :, None] * v[..., :stop, :]).sum(-2))
    return torch.stack(rows, dim=-2)


def _inputs(lead, Lq, Lk, d, dv, dtype, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    q, k = (scale * torch.randn(*lead, L, d, generator=g, dtype=torch.float64)
            for L in (Lq, Lk))
    v = torch.randn(*lead, Lk, dv, generator=g, dtype=torch.float64)
    return q.to(dtype), k.to(dtype), v.to(dtype)


CASES = [((2, 3), 37, 37, 8, 8, 8, 16), ((1,), 20, 45, 8, 5, 8, 16), ((2,), 45, 20, 6, 6, 16, 8),
         ((), 70, 70, 16, 4, 64, 64), ((3,), 5, 5, 4, 4, 64, 2)]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("lead", "Lq", "Lk", "d", "dv", "bq", "bk"), CASES)
def test_equals_sdpa_and_rowwise(lead, Lq, Lk, d, dv, bq, bk, dtype, causal):
    q, k, v = _inputs(lead, Lq, Lk, d, dv, dtype, seed=Lq + 7 * Lk)
    ours = flash_attention(q, k, v, block_q=bq, block_k=bk, causal=causal)
    assert ours.dtype == dtype and ours.shape == (*lead, Lq, dv)
    tol = {torch.float32: 2e-5, torch.float64: 1e-12}[dtype]
    sdpa = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.testing.assert_close(ours, sdpa, rtol=tol, atol=tol)
    torch.testing.assert_close(ours.double(), _rowwise(q, k, v, causal), rtol=tol, atol=tol)


@pytest.mark.parametrize("causal", [False, True])
def test_large_scores_against_rowwise(causal):
    q, k, v = _inputs((2,), 40, 33, 8, 4, torch.float64, seed=3, scale=30.0)
    ours = flash_attention(q, k, v, block_q=16, block_k=8, causal=causal)
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, _rowwise(q, k, v, causal), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
def test_gradients_equal_sdpa(causal):
    q, k, v = (t.requires_grad_() for t in _inputs((2,), 19, 23, 6, 4, torch.float64, seed=5))
    cot = torch.randn(2, 19, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = torch.autograd.grad((flash_attention(q, k, v, 8, 5, causal) * cot).sum(), (q, k, v))
    want = torch.autograd.grad(
        (F.scaled_dot_product_attention(q, k, v, is_causal=causal) * cot).sum(), (q, k, v))
    for a, b in zip(ours, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def _naive(q, k, v, block_q=64, block_k=64, causal=False):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        mask = torch.ones(s.shape[-2:], dtype=torch.bool).tril()
        s = s.masked_fill(~mask, -math.inf)
    return torch.softmax(s, dim=-1) @ v


def test_recorder_catches_the_full_matrix_and_passes_the_master():
    q, k, v = _inputs((2,), 256, 256, 8, 8, torch.float32, seed=0)
    bound = 2 * 2 * max(64 * 64, 256 * 8)
    naive = allocations({"flash_attention": _naive}, q, k, v, 64, 64, False)
    assert naive["largest new tensor (elements)"] == 2 * 256 * 256 > bound
    assert naive["largest new tensor shape"] == [2, 256, 256]
    ours = allocations(NS, q, k, v, 64, 64, True)
    assert ours["largest new tensor (elements)"] <= bound
    torch.testing.assert_close(ours["output"], F.scaled_dot_product_attention(
        q, k, v, is_causal=True), rtol=2e-5, atol=2e-5)
    # a boolean L×L mask alone is seen, on its own, as a new tensor of L·L elements
    q1, k1, v1 = q[0], k[0], v[0]
    masked = allocations({"flash_attention": _naive}, q1, k1, v1, 64, 64, True)
    assert masked["largest new tensor (elements)"] == 256 * 256


def test_recorder_skips_views_and_counts_factories():
    x = torch.randn(64, 64)
    with AllocationRecorder() as rec:
        x.t()
        x[:8]
        x.view(-1)
        x.add_(1.0)
    assert rec.largest == 0
    with AllocationRecorder() as rec:
        torch.zeros(30, 40)
        x[:2] + 1
    assert rec.largest == 30 * 40 and rec.count == 2
