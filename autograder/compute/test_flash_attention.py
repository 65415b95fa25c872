"""Hidden checks for unit 6.2 `flash-attention` (Dao et al., 2022).

Every check compares the learner's ``flash_attention`` with the master on seeded gaussian
inputs and, on a mismatch, looks the output up in the mistake bank below.

- Exactness, non-causal and causal: shapes (1, 5, 4), (2, 3, 37, 8), (70, 16) (two
  dimensions, blocks 64 × 64 on L = 70), (3, 50, 6), (2, 29, 5), (1, 23, 3), block sizes that
  do not divide L and differ between queries and keys ((2, 3), (24, 16), (8, 12), (10, 7)),
  each case in one dtype, float32 and float64 alternating.
- Rectangular: Lq ≠ Lk both ways (20 queries on 45 keys and 45 on 20), d ≠ dv, causal and
  not; causal is top-left aligned (query i sees keys j ≤ i, as ``is_causal`` of
  ``F.scaled_dot_product_attention``).
- Large logits: q and k scaled so that the scores have standard deviation about 100
  (float32) and 900 (float64), beyond exp's overflow; the output must be finite and correct.
- Edges: batch 1, L = 1, blocks of 1, blocks larger than L, Lk = 1.
- Gradients w.r.t. q, k and v (through the learner's own operations), causal and not.
- Memory: :func:`course.grading.drivers.flash_attention.allocations` records every tensor
  newly allocated during the call (views excluded) and the check fails if the largest holds
  more than ``2·N·max(B_q·B_k, max(Lq, Lk)·max(d, dv))`` elements (N the product of the
  leading dimensions). The factor 2 leaves room for padding L up to a multiple of the block
  (the cases have L ≥ the blocks) and for a tile kept in two forms; the reference's largest
  tensor is the output (N·Lq·dv). On the check's inputs the full score matrix exceeds the
  bound 4 to 12.5 times, a full boolean causal mask 4 times, and a (B_q, Lk) strip of
  scores 2 and 2.5 times in two of the three cases. The output is compared with the
  reference too.

No randomness is involved, so no statistical check is needed. The master was compared, in
``tests/test_oracle_flash_attention.py``, with ``F.scaled_dot_product_attention`` and with a
naive float64 softmax attention, and the recorder was shown there to catch an L×L allocation.
"""

import torch

from course.grading.dsl import ATTENTION_ATEN, ATTENTION_CALLS, Call, Forbid, Mistake, check
from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import dtype_word as _dt

UNIT = "flash-attention"

FORBIDDEN = [Forbid(calls=ATTENTION_CALLS, aten=ATTENTION_ATEN)]

_NAIVE = (
    "    s = (q @ k.transpose(-2, -1)) * scale\n"
    "    if causal:\n"
    "        above = torch.ones(Lq, Lk, dtype=torch.bool, device=q.device).triu(1)\n"
    "        s = s.masked_fill(above, -math.inf)\n"
    "    return torch.softmax(s, dim=-1) @ v\n"
)

MISTAKES = [
    Mistake(
        "accumulator-not-rescaled",
        "Your output matches adding each tile's P·V to the accumulator without first "
        "multiplying the accumulator by e^(m − m'). Whenever a tile raises the running "
        "maximum, everything accumulated so far was measured against the old maximum: "
        "a' = e^(m − m')·a + P·V, with the same factor as the running sum.",
        {"acc = alpha[..., None] * acc + p @ v[..., j0:j1, :]":
         "acc = acc + p @ v[..., j0:j1, :]"},
    ),
    Mistake(
        "sum-not-rescaled",
        "Your output matches adding each tile's row sums of P to the running sum ℓ without "
        "first multiplying ℓ by e^(m − m'). When the maximum changes, the old terms "
        "e^(s − m) must become e^(s − m'): ℓ' = e^(m − m')·ℓ + Σ_j P_j.",
        {"ell = alpha * ell + p.sum(dim=-1)": "ell = ell + p.sum(dim=-1)"},
    ),
    Mistake(
        "causal-mask-per-tile",
        "Your causal output matches comparing key and query indices *inside each tile* "
        "(both counted from 0 in the tile) instead of their positions in the whole sequence. "
        "Key j0 + c of the tile starting at j0 may be seen by query i0 + r only when "
        "j0 + c ≤ i0 + r: offset both index ranges by the tile's start.",
        {"cols = torch.arange(j0, j1, device=q.device)":
         "cols = torch.arange(0, j1 - j0, device=q.device) + (i0 - i0)"},
    ),
    Mistake(
        "causal-bottom-right",
        "Your causal output matches bottom-right alignment (query i sees keys "
        "j ≤ i + Lk − Lq, as some attention libraries do). Here, as in "
        "F.scaled_dot_product_attention(is_causal=True), the mask is top-left aligned: query "
        "i sees keys j ≤ i, both counted from 0, whatever Lq and Lk.",
        {"rows = torch.arange(i0, i1, device=q.device)":
         "rows = torch.arange(i0, i1, device=q.device) + (Lk - Lq)",
         "if causal and j0 > i1 - 1:": "if causal and j0 > i1 - 1 + (Lk - Lq):"},
    ),
    Mistake(
        "causal-strict",
        "Your causal output matches masking the diagonal too (keys j < i only): the first "
        "query then sees nothing and its row is 0/0. A query attends to itself: keep the "
        "keys j ≤ i and mask only j > i.",
        {"cols[None, :] > rows[:, None]": "cols[None, :] >= rows[:, None]"},
    ),
    Mistake(
        "masked-with-zero",
        "Your causal output matches setting the masked scores to 0 instead of −∞: a score "
        "of 0 still has weight e^(0 − m) > 0, so the query still looks at future keys. Fill "
        "them with -inf (e^(−∞ − m) = 0).",
        {"s = s.masked_fill(cols[None, :] > rows[:, None], -math.inf)":
         "s = s.masked_fill(cols[None, :] > rows[:, None], 0.0)"},
    ),
    Mistake(
        "scale-by-d",
        "Your output matches scaling the scores by 1/d. Attention divides by the square root "
        "of the key dimension: s = q·k/√d, d = q.shape[-1].",
        {"scale = 1.0 / math.sqrt(d)": "scale = 1.0 / d"},
    ),
    Mistake(
        "scale-by-dv",
        "Your output matches scaling the scores by 1/√dv, with dv the values' dimension. The "
        "scale belongs to the dot products q·k: use d, the last dimension of q (the key "
        "dimension).",
        {"d = q.shape[-1]": "d = v.shape[-1]"},
    ),
    Mistake(
        "no-max-subtraction",
        "Your output is right for moderate scores but overflows (inf/inf = nan) for large "
        "ones: it matches exponentiating the raw scores. Keep the running maximum m and use "
        "exp(S − m'), rescaling what came before by exp(m − m'): every exponent is then ≤ 0.",
        {"m_new = torch.maximum(m, s.amax(dim=-1))": "m_new = torch.zeros_like(m)"},
    ),
    Mistake(
        "last-key-tile-dropped",
        "Your output matches skipping the last, partial tile of keys when block_k does not "
        "divide Lk (e.g. range(0, Lk - block_k + 1, block_k)). Every key counts: the last "
        "tile holds the Lk mod block_k remaining keys.",
        {"for j0 in range(0, Lk, block_k):":
         "for j0 in range(0, Lk - block_k + 1, block_k):"},
    ),
    Mistake(
        "full-matrix",
        "Your output is right, but your code allocates the whole Lq×Lk score matrix (or "
        "something as large): the point of the exercise is never to hold more than a "
        "(block_q, block_k) tile of scores. Loop over tiles of keys inside tiles of "
        "queries and keep only the running max, sum and accumulator between tiles.",
        {"    outs = []\n": _NAIVE + "    outs = []\n"},
    ),
    Mistake(
        "full-causal-mask",
        "Your output is right, but your code allocates a full Lq×Lk causal mask (a boolean "
        "or 0/1 matrix sliced per tile): as large as the score matrix the exercise avoids. "
        "Build each tile's mask from the tile's own index ranges: key positions "
        "j0…j1−1 against query positions i0…i1−1.",
        {"    outs = []\n": "    if causal:\n        visible = torch.ones(Lq, Lk, "
         "dtype=torch.bool, device=q.device).tril()\n    outs = []\n",
         "s = s.masked_fill(cols[None, :] > rows[:, None], -math.inf)":
         "s = s.masked_fill(~visible[i0:i1, j0:j1], -math.inf)"},
    ),
]


def _qkv(grader, lead, Lq, Lk, d, dv, dtype, scale=1.0):
    q = grader.randn(*lead, Lq, d, dtype=dtype, scale=scale)
    k = grader.randn(*lead, Lk, d, dtype=dtype, scale=scale)
    v = grader.randn(*lead, Lk, dv, dtype=dtype)
    return q, k, v


def _case(q, k, v, block_q, block_k, causal, what=""):
    return (f"flash_attention(q {list(q.shape)}, k {list(k.shape)}, v {list(v.shape)} "
            f"{_dt(q.dtype)}, block_q={block_q}, block_k={block_k}, causal={causal}){what}")


def _compare(grader, q, k, v, block_q, block_k, causal, grad=(), what=""):
    return grader.compare(
        Call("flash_attention", (q, k, v),
             {"block_q": block_q, "block_k": block_k, "causal": causal}, grad=grad),
        case=_case(q, k, v, block_q, block_k, causal, what))


# (leading dims, Lq, Lk, d, dv, block_q, block_k); each case runs in one dtype, alternating, so
# that every check sees float32 and float64 (each learner call costs a round trip to the
# isolated process)
_SQUARE = [((1,), 5, 5, 4, 4, 2, 3), ((2, 3), 37, 37, 8, 8, 16, 16), ((), 70, 70, 16, 16, 64, 64),
           ((3,), 50, 50, 6, 6, 24, 16), ((2,), 29, 29, 5, 5, 8, 12), ((1,), 23, 23, 3, 3, 10, 7)]


def _dtype(i: int) -> torch.dtype:
    return DTYPES[i % len(DTYPES)]


@check(points=2, public=True, task="flash_attention")
def test_attention(grader):
    """flash_attention equals softmax(qkᵀ/√d)v, blocks that do not divide L, float32 and float64"""
    for i, (lead, Lq, Lk, d, dv, bq, bk) in enumerate(_SQUARE):
        q, k, v = _qkv(grader, lead, Lq, Lk, d, dv, _dtype(i))
        _compare(grader, q, k, v, bq, bk, False)


@check(points=2, public=True, task="flash_attention")
def test_causal(grader):
    """causal flash_attention: query i sees keys j ≤ i (positions in the whole sequence)"""
    for i, (lead, Lq, Lk, d, dv, bq, bk) in enumerate(_SQUARE):
        q, k, v = _qkv(grader, lead, Lq, Lk, d, dv, _dtype(i + 1))
        _compare(grader, q, k, v, bq, bk, True)


@check(points=2, task="flash_attention")
def test_rectangular(grader):
    """Lq ≠ Lk (causal top-left aligned, as is_causal in F.scaled_dot_product_attention), d ≠ dv"""
    cases = [((2,), 20, 45, 8, 5, 8, 16), ((2,), 45, 20, 6, 6, 16, 8),
             ((1, 2), 13, 31, 12, 3, 6, 9), ((3,), 33, 17, 4, 9, 12, 8)]
    for causal in (False, True):
        for i, (lead, Lq, Lk, d, dv, bq, bk) in enumerate(cases):
            q, k, v = _qkv(grader, lead, Lq, Lk, d, dv, _dtype(i + causal))
            _compare(grader, q, k, v, bq, bk, causal)


@check(points=1, task="flash_attention")
def test_large_logits(grader):
    """scores far beyond exp's overflow (std ≈ 100 in float32, 900 in float64) stay finite"""
    # float64 first: there the scores overflow exp in float64 as well, so a learner who does not
    # subtract the maximum is told so (in float32 at scale 10 only the float32 run overflows)
    for dtype, scale in ((torch.float64, 30.0), (torch.float32, 10.0)):
        for causal in (False, True):
            q, k, v = _qkv(grader, (2,), 40, 40, 8, 4, dtype, scale=scale)
            out = _compare(grader, q, k, v, 16, 12, causal,
                           what=f" with q, k of scale {scale:g}").out
            grader.require(bool(torch.isfinite(out).all()),
                           "flash_attention returned inf or nan for large scores")


@check(points=1, task="flash_attention")
def test_edges(grader):
    """batch 1, L = 1, blocks of 1, blocks larger than L, a single key"""
    cases = [((1,), 1, 1, 3, 2, 1, 1), ((1,), 4, 4, 4, 4, 1, 1), ((2,), 9, 9, 3, 3, 64, 64),
             ((1,), 7, 1, 5, 3, 4, 4), ((1,), 1, 8, 5, 3, 4, 3)]
    for causal in (False, True):
        for i, (lead, Lq, Lk, d, dv, bq, bk) in enumerate(cases):
            q, k, v = _qkv(grader, lead, Lq, Lk, d, dv, _dtype(i + causal))
            _compare(grader, q, k, v, bq, bk, causal)


@check(points=2, task="flash_attention")
def test_gradients(grader):
    """gradients of flash_attention w.r.t. q, k and v equal those of exact attention"""
    cases = [((2,), 19, 19, 6, 4, 8, 4), ((1, 2), 12, 21, 4, 4, 5, 8)]
    for causal in (False, True):
        for i, (lead, Lq, Lk, d, dv, bq, bk) in enumerate(cases):
            q, k, v = _qkv(grader, lead, Lq, Lk, d, dv, _dtype(i + causal))
            _compare(grader, q, k, v, bq, bk, causal, grad=(0, 1, 2))


def _bound(q, k, v, block_q, block_k) -> int:
    """2·N·max(B_q·B_k, max(Lq, Lk)·max(d, dv)) elements."""
    n = q[..., 0, 0].numel()
    Lq, Lk, d, dv = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    return 2 * n * max(block_q * block_k, max(Lq, Lk) * max(d, dv))


@check(points=3, task="flash_attention")
def test_memory(grader):
    """no tensor allocated in the call exceeds 2·N·max(B_q·B_k, max(Lq, Lk)·max(d, dv)) elements"""
    cases = [((2,), 256, 256, 8, 8, 64, 64), ((3, 2), 150, 130, 16, 4, 32, 32),
             ((), 320, 320, 8, 8, 64, 64)]
    for causal in (False, True):
        for lead, Lq, Lk, d, dv, bq, bk in cases[:3 - 2 * causal]:
            q, k, v = _qkv(grader, lead, Lq, Lk, d, dv, torch.float32)
            case = _case(q, k, v, bq, bk, causal)
            probe = Call("@flash_attention.allocations", (q, k, v, bq, bk, causal))
            got = grader.learner(probe, case=case).out
            want = grader.reference(probe).out["output"]  # float64 reference
            out = got["output"]
            grader.require(
                isinstance(out, torch.Tensor) and out.shape == want.shape
                and torch.allclose(out.double().cpu(), want, rtol=1e-4, atol=1e-5),
                f"in {case}: the output is not softmax(qkᵀ/√d)v (the other checks say more)")
            bound = _bound(q, k, v, bq, bk)
            largest = int(got["largest new tensor (elements)"])
            if largest > bound:
                kind = got["largest new tensor dtype"]  # scores (float) or a mask (bool)
                def same_excess(o, bound=bound, kind=kind):
                    return (int(o.out["largest new tensor (elements)"]) > bound
                            and o.out["largest new tensor dtype"] == kind)

                mistake = grader.banked_mistake(probe, same_excess)
                grader.fail(
                    f"your code allocated a tensor of shape {got['largest new tensor shape']} "
                    f"({largest} elements, {got['largest new tensor dtype']}, from "
                    f"{got['largest new tensor op']}); the bound is "
                    f"2·N·max(B_q·B_k, max(Lq, Lk)·max(d, dv)) = {bound} elements",
                    mistake=mistake, case=case)
            grader.cases.append(case + " allocations")
