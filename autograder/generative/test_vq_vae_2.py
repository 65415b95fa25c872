"""Hidden checks for unit 5.6 `vq-vae-2` (Razavi, van den Oord & Vinyals, 2019).

Every check calls ``ema_update`` on seeded states and batches and compares the three returned
tensors with the master (values, shapes and dtypes, float32 and float64); on a mismatch the
output is looked up in the mistake bank below. The probe also fails any call that changes one
of the tensors it was given (the update must return new tensors).

The states are realistic: soft counts N_k ≥ 0 and soft sums m_k ≈ N_k·e_k + noise, so that the
old codebook m_k/N_k lies near the data. The cases:

- generic updates, every code chosen at least once: (K, D, N) = (5, 3, 40), (8, 2, 64),
  (3, 7, 11), (6, 1, 25); γ in {0.9, 0.99, 0.8}, ε in {0.5, 1e-5, 0.1}. The first case of each
  check uses a large ε (0.5) and γ ∉ {0, 0.5}, where every banked mistake differs from the
  master and from every other mistake;
- unused codes: a code never chosen before (N_k = 0, m_k = 0) and never in this batch, and the
  last codes unused in this batch (their statistics must just decay, and ``bincount`` needs
  ``minlength=K``);
- K = 1; N = 1; every vector to one code;
- γ = 0.3 and γ = 0 (the codebook becomes the smoothed batch means).

The master was compared, in ``tests/test_oracle_vq_vae_2.py``, with an explicit per-code Python
loop over the formula, a hand-computed tiny example, and the fixed point of repeated updates
(the cluster means).
"""

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "vq-vae-2"

FORBIDDEN = [
    Forbid(calls=("torch.lerp", "torch.Tensor.lerp", "torch.Tensor.lerp_"), aten=("lerp",),
           within=("ema_update",)),
]

MISTAKES = [
    Mistake(
        "no-laplace-smoothing",
        "Your codebook matches m_k / N_k, the moving averages without Laplace smoothing. "
        "Smooth the counts first: Ñ_k = (N_k + ε) / (n + K·ε) · n with n = Σ_j N_j, then "
        "e_k = m_k / Ñ_k; without it a code whose N_k is near 0 divides by (almost) zero.",
        {"smoothed = (new_size + eps) / (n + K * eps) * n": "smoothed = new_size"},
    ),
    Mistake(
        "decay-on-new-statistics",
        "Your update matches (1 − γ)·old + γ·new: the decay is applied to the new batch "
        "statistics. γ weighs the OLD ones: N_k ← γ·N_k + (1 − γ)·c_k and "
        "m_k ← γ·m_k + (1 − γ)·Σ z_i, so that with γ = 0.99 one batch moves the code by 1 %.",
        {"decay * cluster_size + (1 - decay) * counts":
         "(1 - decay) * cluster_size + decay * counts",
         "decay * embed_sum + (1 - decay) * sums": "(1 - decay) * embed_sum + decay * sums"},
    ),
    Mistake(
        "codebook-from-counts",
        "Your codebook matches m_k / c_k, the moving sum divided by this batch's counts. "
        "Divide the moving sum by the moving count, smoothed: e_k = m_k / Ñ_k with "
        "Ñ_k = (N_k + ε) / (n + K·ε) · n.",
        {"new_codebook = new_sum / smoothed[:, None]": "new_codebook = new_sum / counts[:, None]"},
    ),
    Mistake(
        "codebook-batch-means",
        "Your codebook matches the plain means of this batch's vectors per code (a k-means "
        "step): the moving averages are computed but not used. The code is e_k = m_k / Ñ_k, "
        "from the updated moving sum m_k and the smoothed moving count Ñ_k.",
        {"new_codebook = new_sum / smoothed[:, None]": "new_codebook = sums / counts[:, None]"},
    ),
    Mistake(
        "stale-embed-sum",
        "Your codebook matches the OLD sums m_k divided by the smoothed new counts. Update "
        "m_k first (m_k ← γ·m_k + (1 − γ)·Σ z_i) and divide the updated sum.",
        {"new_codebook = new_sum / smoothed[:, None]":
         "new_codebook = embed_sum / smoothed[:, None]"},
    ),
    Mistake(
        "total-before-update",
        "Your codebook matches smoothing with n = Σ_j N_j taken from the counts BEFORE this "
        "update. Take n over the updated counts: Ñ_k = (N_k + ε) / (n + K·ε) · n, so that the "
        "smoothed counts add up to the new total.",
        {"n = new_size.sum()": "n = cluster_size.sum()"},
    ),
    Mistake(
        "laplace-without-K",
        "Your codebook matches the denominator n + ε. Laplace smoothing adds ε to each of the "
        "K counts, so the denominator is n + K·ε: Ñ_k = (N_k + ε) / (n + K·ε) · n.",
        {"(n + K * eps)": "(n + eps)"},
    ),
    Mistake(
        "laplace-not-rescaled",
        "Your codebook matches m_k divided by (N_k + ε) / (n + K·ε), a probability: the "
        "smoothed count must be rescaled by n = Σ_j N_j, Ñ_k = (N_k + ε) / (n + K·ε) · n, "
        "otherwise every code is n times too large.",
        {"/ (n + K * eps) * n": "/ (n + K * eps)"},
    ),
    Mistake(
        "eps-added-outside",
        "Your codebook matches m_k / (N_k + ε): ε is added to each count but the counts are "
        "not renormalised. Laplace smoothing is Ñ_k = (N_k + ε) / (n + K·ε) · n with "
        "n = Σ_j N_j.",
        {"smoothed = (new_size + eps) / (n + K * eps) * n": "smoothed = new_size + eps"},
    ),
    Mistake(
        "embed-sum-not-decayed",
        "Your embed_sum matches m_k + (1 − γ)·Σ z_i: the old sum is not decayed, so it grows "
        "without bound while N_k does not. Decay both statistics: m_k ← γ·m_k + (1 − γ)·Σ z_i.",
        {"decay * embed_sum + (1 - decay) * sums": "embed_sum + (1 - decay) * sums"},
    ),
    Mistake(
        "state-modified-in-place",
        "Your update changed the cluster_size tensor it was given (an in-place mul_/add_). "
        "Return new tensors and leave the inputs as they were: e.g. "
        "new_size = decay * cluster_size + (1 - decay) * counts.",
        {"new_size = decay * cluster_size + (1 - decay) * counts":
         "new_size = cluster_size.mul_(decay).add_((1 - decay) * counts)"},
    ),
]


def _state(grader, K: int, D: int, dtype, never_used=(), scale=3.0, counts=(0.5, 5.5)):
    """A realistic state: codes e_k, soft counts N_k in ``counts``, sums m_k ≈ N_k·e_k.

    Codes in ``never_used`` have N_k = 0 and m_k = 0 (never chosen since initialisation)."""
    codebook = grader.randn(K, D, scale=scale)
    size = counts[0] + (counts[1] - counts[0]) * grader.rand(K)
    total = size[:, None] * codebook + 0.3 * grader.randn(K, D)
    for k in never_used:
        size[k] = 0.0
        total[k] = 0.0
        codebook[k] = 0.0
    return codebook.to(dtype), size.to(dtype), total.to(dtype)


def _batch(grader, K: int, D: int, N: int, dtype, codebook, avoid=()):
    """N vectors near the codes, every code except those in ``avoid`` chosen at least once
    when N allows; returns (z, indices)."""
    allowed = [k for k in range(K) if k not in avoid]
    head = torch.tensor(allowed[:N], dtype=torch.long)
    tail = torch.tensor(allowed)[grader.randint(0, len(allowed), (N - len(head),))]
    indices = torch.cat([head, tail])[torch.randperm(N, generator=grader.generator)]
    z = codebook.double()[indices] + grader.randn(N, D)
    return z.to(dtype), indices


def _case(K, D, N, dtype, decay, eps, extra=""):
    return f"ema_update(K={K}, D={D}, N={N}, {_dt(dtype)}, decay={decay}, eps={eps}){extra}"


def _compare(grader, K, D, N, dtype, decay, eps, never_used=(), avoid=(), extra="",
             indices=None):
    codebook, size, total = _state(grader, K, D, dtype, never_used)
    z, idx = _batch(grader, K, D, N, dtype, codebook, avoid=tuple(avoid) + tuple(never_used))
    if indices is not None:
        idx = indices
    grader.compare(Call("ema_update", (codebook, size, total, z, idx),
                        {"decay": decay, "eps": eps}),
                   case=_case(K, D, N, dtype, decay, eps, extra))


@check(points=3, public=True, task="ema_update")
def test_update(grader):
    """ema_update: new counts, sums and smoothed codebook, every code chosen in the batch"""
    for dtype in DTYPES:
        for K, D, N, decay, eps in [(5, 3, 40, 0.9, 0.5), (8, 2, 64, 0.99, 1e-5),
                                    (3, 7, 11, 0.8, 0.1), (6, 1, 25, 0.99, 0.5)]:
            _compare(grader, K, D, N, dtype, decay, eps)


@check(points=1, public=True, task="ema_update")
def test_defaults(grader):
    """ema_update with its default decay = 0.99 and eps = 1e-5"""
    for dtype in DTYPES:
        # small counts (as early in training), so that the default ε is visible in float64
        K, D, N = 3, 4, 5
        codebook, size, total = _state(grader, K, D, dtype, counts=(0.05, 0.3))
        z, idx = _batch(grader, K, D, N, dtype, codebook)
        grader.compare(Call("ema_update", (codebook, size, total, z, idx)),
                       case=f"ema_update(K={K}, D={D}, N={N}, {_dt(dtype)}) with the "
                            "defaults, N_k in [0.05, 0.3)")


@check(points=2, task="ema_update")
def test_unused_codes(grader):
    """ema_update: codes not chosen in the batch decay; a code never chosen at all stays finite"""
    for dtype in DTYPES:
        # the last two codes are not chosen in this batch (their old statistics decay)
        _compare(grader, 6, 3, 20, dtype, 0.9, 0.5, avoid=(4, 5),
                 extra=", codes 4 and 5 not in the batch")
        # code 2 was never chosen (N_2 = 0, m_2 = 0) and is not chosen now
        _compare(grader, 5, 2, 16, dtype, 0.95, 0.5, never_used=(2,),
                 extra=", code 2 never chosen (N_2 = 0)")
        # a never-chosen last code: bincount needs minlength=K
        _compare(grader, 4, 3, 9, dtype, 0.99, 1e-5, never_used=(3,),
                 extra=", last code never chosen (N_3 = 0)")


@check(points=2, task="ema_update")
def test_edges(grader):
    """ema_update with one code (K = 1), one vector (N = 1), and every vector to one code"""
    for dtype in DTYPES:
        _compare(grader, 4, 3, 12, dtype, 0.9, 0.5, indices=torch.full((12,), 2),
                 extra=", every vector to code 2")
        _compare(grader, 1, 3, 7, dtype, 0.9, 0.5, extra=", K = 1")
        _compare(grader, 5, 2, 1, dtype, 0.9, 0.5, extra=", N = 1")
        _compare(grader, 1, 1, 1, dtype, 0.99, 1e-5, extra=", K = N = D = 1")


@check(points=1, task="ema_update")
def test_decay_values(grader):
    """ema_update with decay = 0.3 and decay = 0 (the codebook becomes smoothed batch means)"""
    for dtype in DTYPES:
        _compare(grader, 5, 3, 30, dtype, 0.3, 0.5)
        _compare(grader, 5, 3, 30, dtype, 0.0, 0.5)
        _compare(grader, 6, 2, 20, dtype, 0.0, 1e-5, avoid=(0,), extra=", code 0 not in the batch")
