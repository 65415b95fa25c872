"""Unit 5.6 `vq-vae-2`: the master's ``ema_update`` against independent computations.

- an explicit per-code Python loop over the formula (plain floats, one code at a time, no
  vectorised tensor op), on random states and batches of several shapes, float32 and float64,
  decays 0 / 0.3 / 0.9 / 0.99, large and small ε, K = 1, N = 1, every vector to one code, codes
  never chosen (N_k = 0) and codes unused in the batch;
- a tiny example computed by hand (K = 2, D = 1);
- the fixed point: the same batch fed many times makes N_k the counts, m_k the sums and the
  codebook the (smoothed) cluster means; with decay = 0 one update gets there;
- the contract: new tensors (the inputs unchanged and not aliased), the dtype kept, no autograd
  history even when z requires grad.
"""

from __future__ import annotations

import pytest
import torch

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("vq-vae-2")).namespace
ema_update = NS["ema_update"]


def loop_update(codebook, cluster_size, embed_sum, z, indices, decay, eps):
    """The formula, code by code, in Python floats."""
    K, D = codebook.shape
    zs = z.double().tolist()
    idx = indices.tolist()
    sizes, sums = [], []
    for k in range(K):
        mine = [zs[i] for i in range(len(idx)) if idx[i] == k]
        count = float(len(mine))
        sizes.append(decay * float(cluster_size[k]) + (1 - decay) * count)
        sums.append([decay * float(embed_sum[k, d]) + (1 - decay) * sum(v[d] for v in mine)
                     for d in range(D)])
    total = sum(sizes)
    book = []
    for k in range(K):
        smoothed = (sizes[k] + eps) / (total + K * eps) * total
        book.append([sums[k][d] / smoothed for d in range(D)])
    f64 = torch.float64
    return (torch.tensor(book, dtype=f64), torch.tensor(sizes, dtype=f64),
            torch.tensor(sums, dtype=f64))


def _inputs(seed, K, D, N, dtype, never=(), indices=None):
    g = torch.Generator().manual_seed(seed)
    codebook = 2 * torch.randn(K, D, generator=g, dtype=torch.float64)
    size = 0.2 + 4 * torch.rand(K, generator=g, dtype=torch.float64)
    total = size[:, None] * codebook + 0.2 * torch.randn(K, D, generator=g, dtype=torch.float64)
    allowed = torch.tensor([k for k in range(K) if k not in never])
    for k in never:
        size[k], total[k] = 0.0, 0.0
    if indices is None:
        indices = allowed[torch.randint(0, len(allowed), (N,), generator=g)]
    z = codebook[indices] + torch.randn(N, D, generator=g, dtype=torch.float64)
    return tuple(t.to(dtype) for t in (codebook, size, total, z)) + (indices,)


CASES = [
    # (K, D, N, decay, eps, never, indices)
    (5, 3, 40, 0.99, 1e-5, (), None),
    (5, 3, 40, 0.9, 0.5, (), None),
    (8, 2, 13, 0.3, 0.1, (), None),
    (7, 4, 20, 0.0, 0.5, (), None),
    (7, 4, 20, 0.0, 1e-5, (6,), None),
    (6, 3, 25, 0.9, 1e-5, (0, 5), None),
    (1, 3, 9, 0.9, 0.5, (), None),
    (4, 2, 1, 0.99, 1e-5, (), None),
    (4, 2, 10, 0.9, 0.5, (), torch.full((10,), 3)),
    (1, 1, 1, 0.5, 1e-5, (), None),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_matches_per_code_loop(case, dtype):
    K, D, N, decay, eps, never, indices = CASES[case]
    args = _inputs(case, K, D, N, dtype, never, indices)
    ours = ema_update(*args, decay=decay, eps=eps)
    want = loop_update(*(a.double() if a.is_floating_point() else a for a in args), decay, eps)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12,
                                                                        "atol": 1e-12}
    for got, exp in zip(ours, want):
        assert got.dtype == dtype and got.shape == exp.shape
        torch.testing.assert_close(got.double(), exp, **tol)
    for k in never:  # a never-chosen code: zero statistics, a zero (finite) vector
        assert float(ours[1][k]) == 0.0 and bool((ours[0][k] == 0).all())


def test_hand_computed_example():
    codebook = torch.zeros(2, 1, dtype=torch.float64)
    size = torch.tensor([1.0, 0.0], dtype=torch.float64)
    total = torch.tensor([[2.0], [0.0]], dtype=torch.float64)
    z = torch.tensor([[4.0], [6.0], [8.0]], dtype=torch.float64)
    # all three to code 0: N = [2, 0], m = [10, 0], n = 2, Ñ = [5/3, 1/3], e = [6, 0]
    book, n, m = ema_update(codebook, size, total, z, torch.tensor([0, 0, 0]), 0.5, 0.5)
    torch.testing.assert_close(n, torch.tensor([2.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(m, torch.tensor([[10.0], [0.0]], dtype=torch.float64))
    torch.testing.assert_close(book, torch.tensor([[6.0], [0.0]], dtype=torch.float64))
    # to codes 0, 1, 0: N = [1.5, 0.5], m = [7, 3], Ñ = [4/3, 2/3], e = [5.25, 4.5]
    book, n, m = ema_update(codebook, size, total, z, torch.tensor([0, 1, 0]), 0.5, 0.5)
    torch.testing.assert_close(n, torch.tensor([1.5, 0.5], dtype=torch.float64))
    torch.testing.assert_close(m, torch.tensor([[7.0], [3.0]], dtype=torch.float64))
    torch.testing.assert_close(book, torch.tensor([[5.25], [4.5]], dtype=torch.float64))


def test_fixed_point_is_the_cluster_means():
    codebook, size, total, z, idx = _inputs(3, 6, 2, 60, torch.float64)
    idx = torch.arange(60) % 6
    counts = torch.bincount(idx, minlength=6).double()
    means = torch.stack([z[idx == k].mean(0) for k in range(6)])
    state = (codebook, size, total)
    for _ in range(400):
        state = ema_update(*state, z, idx, decay=0.9, eps=1e-9)
    torch.testing.assert_close(state[1], counts)
    torch.testing.assert_close(state[0], means, rtol=1e-6, atol=1e-6)
    # decay = 0 gets there in one step (up to the smoothing)
    book, _, _ = ema_update(codebook, size, total, z, idx, decay=0.0, eps=1e-9)
    torch.testing.assert_close(book, means, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_new_tensors_and_no_graph(dtype):
    codebook, size, total, z, idx = _inputs(4, 5, 3, 17, dtype, never=(1,))
    before = [t.clone() for t in (codebook, size, total, z, idx)]
    z.requires_grad_(True)
    out = ema_update(codebook, size, total, z, idx)
    for t, b in zip((codebook, size, total, z, idx), before):
        assert torch.equal(t.detach(), b)
    for o in out:
        assert o.dtype == dtype and not o.requires_grad and o.grad_fn is None
        assert all(o.data_ptr() != t.data_ptr() for t in (codebook, size, total, z))
