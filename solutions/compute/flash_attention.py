# %% [markdown]
# # 6.2 FlashAttention — exercise
#
# Attention, $\mathrm{softmax}(QK^\top/\sqrt d)\,V$, is usually computed by building the whole
# $L_q \times L_k$ matrix of scores, normalising each row, and multiplying by $V$. For long
# sequences that matrix is the largest thing in memory, and reading and writing it is what
# makes attention slow on a GPU. Dao et al. (2022) compute **exactly the same output** without
# ever holding it: they walk over tiles of $B_q$ queries by $B_k$ keys and keep, for each query
# row, three running quantities from which the softmax-weighted sum can be finished at the end.
# You write that loop in PyTorch: the arithmetic of the paper's Algorithm 1, not its CUDA
# kernel.
#
# Not allowed: `torch.nn.functional.scaled_dot_product_attention` (and the fused kernels behind
# it), which would do the task for you. `torch.softmax` is not forbidden, but it is of no use
# here: it normalises over the whole row it is given, and the rows of a tile are not whole
# rows. A full row of scores is exactly what the memory check rejects.

# %%
import math

import torch

# %% [markdown]
# ## Task 1 — `flash_attention`
#
# For one query row with scores $s_j = q\cdot k_j/\sqrt d$ the output is
# $o = \sum_j e^{s_j} v_j / \sum_j e^{s_j}$. Visit the keys one tile at a time and keep
#
# - the running maximum $m$ of the scores seen so far (start at $-\infty$),
# - the running sum $\ell = \sum_j e^{s_j - m}$ (start at 0),
# - the running accumulator $a = \sum_j e^{s_j - m} v_j$ (start at 0).
#
# When a tile $S$ (its scores for this row) arrives, the new maximum is
# $m' = \max(m, \max_j S_j)$, and everything summed so far was measured against the old one, so
# it is **rescaled** by $e^{m - m'}$ before the tile's own terms are added:
#
# $$m' = \max\big(m, \max_j S_j\big),\qquad P_j = e^{S_j - m'},\qquad
#   \ell' = e^{m - m'}\,\ell + \textstyle\sum_j P_j,\qquad
#   a' = e^{m - m'}\,a + \textstyle\sum_j P_j\, v_j .$$
#
# After the last tile, $o = a/\ell$. Subtracting the maximum keeps every exponent $\le 0$ (no
# overflow for large scores), and $e^{-\infty} = 0$ makes the very first update and masked
# scores work without special cases. Do this for a whole block of $B_q$ query rows at once:
# the tile of scores is a $(B_q, B_k)$ matrix, $m$ and $\ell$ are vectors of length $B_q$, $a$
# is $(B_q, d_v)$.
#
# **Causal attention** lets query $i$ see only keys $j \le i$, with $i$ and $j$ the positions
# in the whole sequence (not inside the tile), counted from 0 in both $Q$ and $K$ (top-left
# alignment, as `is_causal=True` in `torch.nn.functional.scaled_dot_product_attention`). Set the
# masked scores to $-\infty$. Tiles that lie wholly to the right of the diagonal contribute
# nothing and may be skipped.

# %%
def flash_attention(q, k, v, block_q=64, block_k=64, causal=False):
    """Exact attention softmax(q kᵀ/√d) v computed tile by tile with an online softmax.

    Args:
        q: (…, Lq, d) queries, float32 or float64, on any device. Leading dimensions (batch,
            heads, …) are allowed, any number of them, including none: (Lq, d).
        k: (…, Lk, d) keys, same leading dimensions, dtype and device as q.
        v: (…, Lk, dv) values, same leading dimensions, dtype and device; dv may differ
            from d.
        block_q: int ≥ 1, the number of query rows per tile B_q. The last tile holds the
            Lq mod B_q remaining rows when B_q does not divide Lq (no row may be dropped), and a
            block larger than Lq is one tile of Lq rows.
        block_k: int ≥ 1, the number of keys per tile B_k, likewise for Lk (the last, partial
            tile of keys must be used too).
        causal: if True, query i attends only to keys j ≤ i, with i and j the positions in
            the whole sequences counted from 0 (top-left alignment, as ``is_causal=True`` in
            ``torch.nn.functional.scaled_dot_product_attention``; for Lq ≠ Lk this is *not*
            the bottom-right alignment of some libraries). Every query row sees key 0, so no
            row is empty.

    Returns:
        out: (…, Lq, dv), in q's dtype and on q's device, equal (to rounding) to
        softmax(q kᵀ / √d) v with d the last dimension of q (the key dimension, not dv,
        and its square root, not d itself), masked scores −∞ when causal.

    Requirements the checks enforce:

    - The result is exact attention for causal and non-causal, float32 and float64, block
      sizes that do not divide L, Lq ≠ Lk and d ≠ dv.
    - Large scores (|q·k|/√d in the hundreds, far beyond where exp overflows: about 88 in
      float32, 709 in float64) must give finite, correct outputs: subtract the running
      maximum before exponentiating.
    - Memory: the checks record every tensor allocated while your function runs (each new
      result of an operation; views such as slices, transposes and reshapes of existing
      tensors do not count) and fail if any one of them holds more than
      2·N·max(B_q·B_k, max(Lq, Lk)·max(d, dv)) elements, N being the product of the
      leading dimensions (1 for none). So a (B_q, B_k) tile of scores per leading index, or
      something the size of q, k, v or out, is fine; the full Lq×Lk score matrix, a full
      Lq×Lk causal mask, or a (B_q, Lk) strip of scores are not. (The checks use L ≥ the
      block sizes.)
    - Differentiable w.r.t. q, k and v: the checks back-propagate through your operations
      (autograd through the loop is fine; no custom backward is needed). No argument is
      changed in place.
    - Lq, Lk ≥ 1. Index or mask tensors you create (``torch.arange`` of positions) must be on
      q's device: the checks also run on CUDA.

    Forbidden: ``torch.nn.functional.scaled_dot_product_attention`` and the fused attention
    kernels behind it, ``torch.nn.MultiheadAttention``.
    """
    # BEGIN SOLUTION
    d = q.shape[-1]
    Lq, Lk = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(d)
    outs = []
    for i0 in range(0, Lq, block_q):  # one block of query rows at a time
        i1 = min(i0 + block_q, Lq)
        q_i = q[..., i0:i1, :] * scale
        m = q_i.new_full(q_i.shape[:-1], -math.inf)  # running max, (…, Bq)
        ell = q_i.new_zeros(q_i.shape[:-1])  # running sum of exp(s - m), (…, Bq)
        acc = q_i.new_zeros((*q_i.shape[:-1], v.shape[-1]))  # running Σ exp(s - m) v
        rows = torch.arange(i0, i1, device=q.device)  # the rows' positions in the sequence
        for j0 in range(0, Lk, block_k):
            if causal and j0 > i1 - 1:
                break  # this tile and all later ones lie right of the diagonal
            j1 = min(j0 + block_k, Lk)
            s = q_i @ k[..., j0:j1, :].transpose(-2, -1)  # the tile S_ij, (…, Bq, Bk)
            if causal:
                cols = torch.arange(j0, j1, device=q.device)
                s = s.masked_fill(cols[None, :] > rows[:, None], -math.inf)
            m_new = torch.maximum(m, s.amax(dim=-1))  # m' = max(m, max_j S_j)
            p = torch.exp(s - m_new[..., None])  # P = exp(S - m')
            alpha = torch.exp(m - m_new)  # the rescaling e^(m - m'), 0 on the first tile
            ell = alpha * ell + p.sum(dim=-1)
            acc = alpha[..., None] * acc + p @ v[..., j0:j1, :]
            m = m_new
        outs.append(acc / ell[..., None])  # o = a / ℓ
    return torch.cat(outs, dim=-2)
    # END SOLUTION
