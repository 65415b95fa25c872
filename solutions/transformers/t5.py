# %% [markdown]
# # 4.4 T5 — exercise
#
# Raffel et al. (2019) cast every task, translation, classification, summarisation, as
# *text to text*: an encoder–decoder Transformer reads a string and writes a string. Two of its
# design choices are the subject of this exercise.
#
# **Relative position biases.** T5 adds no position vectors to its inputs. Instead, every
# attention layer adds a learned scalar $b_h(\delta)$ to the score of query $i$ and key $j$,
# one per head $h$, that depends only on the offset $\delta = j - i$ (key position minus query
# position): $s_{hij} = q_i \cdot k_j + b_h\big(\operatorname{bucket}(j - i)\big)$. Offsets are
# grouped into a few *buckets*: each small offset gets its own bucket, larger ones share
# logarithmically wider buckets, and every offset beyond `max_distance` falls into the last
# bucket. An encoder (bidirectional) gives half the buckets to keys on the left
# ($\delta \le 0$) and half to keys on the right ($\delta > 0$); a causal decoder only ever
# looks left and uses all buckets for $\delta \le 0$.
#
# **Span corruption.** T5 pre-trains on unlabelled text by deleting random *spans* of tokens.
# Each span is replaced in the input by one *sentinel* token, a different one per span, and the
# target lists each sentinel followed by the tokens it hid (the paper's example, in the layout of
# T5's code, which always ends with a hidden span):
#
# ```
# original:  Thank you for inviting me to your party last week
# inputs:    Thank you <X> me to your party <Y>
# targets:   <X> for inviting <Y> last week
# ```
#
# You will write the bucket function, a module that turns it into a (1, heads, Lq, Lk) bias,
# and span corruption with the random draws fixed below.

# %%
import math

import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `relative_position_bucket`
#
# Map each relative position $\delta$ = key position − query position to a bucket id, exactly
# as T5 (and `transformers`' T5 implementation) does:
#
# 1. If `bidirectional`: halve the buckets, `num_buckets //= 2`; the offset's half is
#    `bucket = num_buckets if δ > 0 else 0` (keys to the right get the upper half, δ = 0 and
#    keys to the left the lower half), and `n = |δ|`.
#    Otherwise (causal): `bucket = 0` and `n = max(−δ, 0)` (every key to the right, δ > 0,
#    shares bucket 0 with δ = 0: a causal mask hides those keys anyway).
# 2. With `max_exact = num_buckets // 2` (of the possibly halved `num_buckets`): a small
#    offset, `n < max_exact`, gets its own bucket, `bucket + n`. A larger one gets
#
#    $$\text{bucket} + \min\!\Big(\text{max\_exact} + \Big\lfloor
#      \frac{\log(n / \text{max\_exact})}{\log(\text{max\_distance} / \text{max\_exact})}
#      \,(\text{num\_buckets} - \text{max\_exact}) \Big\rfloor,\;
#      \text{num\_buckets} - 1\Big),$$
#
#    logarithmically wider buckets up to `max_distance`, and the last bucket of the half for
#    every offset beyond it (the cap).

# %%
def relative_position_bucket(
    relative_position: torch.Tensor,
    bidirectional: bool = True,
    num_buckets: int = 32,
    max_distance: int = 128,
) -> torch.Tensor:
    """T5's bucket of each relative position (key position − query position).

    Args:
        relative_position: integer tensor of any shape (int64 in the checks), on any device:
            δ = key position − query position, positive for keys to the right of the query.
        bidirectional: True for an encoder (half of the buckets for δ > 0, half for δ ≤ 0);
            False for a causal decoder (all buckets for δ ≤ 0; every δ > 0 in bucket 0).
        num_buckets: total number of buckets (even or odd; halved with ``//`` when
            bidirectional).
        max_distance: offsets with |δ| ≥ max_distance all share the last bucket of their half.

    Returns:
        A ``torch.long`` (int64) tensor of the shape and on the device of
        ``relative_position``, with values in ``[0, num_buckets)``.

    The logarithmic part is computed as ``transformers`` does: ``torch.log(n.float() /
    max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)``, turned into
    an integer with ``.to(torch.long)`` (it is ≥ 0 there, so that is the floor), then capped at
    ``num_buckets - 1``. (Where ``n < max_exact`` the logarithm is not used; it may be −inf
    there, which is harmless if you pick with ``torch.where``.) The checks use settings for
    which float32 and float64 arithmetic give the same buckets, so either precision passes.

    Forbidden: ``torch.bucketize`` and ``torch.searchsorted`` (compute the bucket from its
    formula rather than searching a table of precomputed boundaries), and ``transformers``'
    ``T5Attention._relative_position_bucket`` (which cannot even be imported while your code
    is graded).
    """
    # BEGIN SOLUTION
    bucket = torch.zeros_like(relative_position, dtype=torch.long)
    if bidirectional:
        num_buckets = num_buckets // 2  # one half for each side
        bucket = bucket + (relative_position > 0).long() * num_buckets  # keys to the right
        n = relative_position.abs()
    else:
        n = (-relative_position).clamp(min=0)  # only keys to the left (or δ = 0) count
    n = n.long()
    max_exact = num_buckets // 2  # offsets below it get a bucket each
    is_small = n < max_exact
    log_ratio = torch.log(n.float() / max_exact) / math.log(max_distance / max_exact)
    large = max_exact + (log_ratio * (num_buckets - max_exact)).to(torch.long)
    large = large.clamp(max=num_buckets - 1)  # every offset beyond max_distance: last bucket
    return bucket + torch.where(is_small, n, large)
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `T5RelativeBias`
#
# The module holds one learned scalar per bucket and head, `embedding = nn.Embedding(
# num_buckets, num_heads)`. For a query length $L_q$ and a key length $L_k$ it builds the
# relative positions $\delta_{ij} = j - i$ (key position $j$ minus query position $i$, both
# counted from 0), buckets them with your `relative_position_bucket`, looks every bucket up in
# `embedding` and returns the bias with the heads first, shape $(1, h, L_q, L_k)$, ready to be
# added to attention scores of shape $(B, h, L_q, L_k)$.

# %%
class T5RelativeBias(nn.Module):
    """Learned relative position bias of T5 (one table shared by all layers of a stack).

    Args:
        num_heads: number of attention heads h.
        num_buckets: number of buckets (rows of the table).
        max_distance: passed on to :func:`relative_position_bucket`.
        bidirectional: True for an encoder, False for a causal decoder; passed on to
            :func:`relative_position_bucket`.

    Submodule (its name is part of the contract; the checks copy weights into it):
    ``embedding = nn.Embedding(num_buckets, num_heads)``, and no other parameters or buffers
    (compute the buckets in ``forward``; do not register them).

    ``forward(Lq, Lk)``: two ints ≥ 1. Returns the bias ``out`` of shape (1, h, Lq, Lk) with
    ``out[0, head, i, j] = embedding.weight[relative_position_bucket(j - i, bidirectional,
    num_buckets, max_distance), head]``, in the dtype of the module's parameters (the checks
    build it in float32 and in float64) and on their device, differentiable w.r.t.
    ``embedding.weight`` (autograd must reach it: no ``.data``, no ``torch.no_grad()``).

    Compute the buckets by calling the function ``relative_position_bucket`` by that name,
    with this module's ``bidirectional``, ``num_buckets`` and ``max_distance``: the checks of
    this task swap in a grader-owned, correct bucket function under that name, so that a
    mistake in Task 1 costs Task 1's points only.
    """

    def __init__(
        self,
        num_heads: int,
        num_buckets: int = 32,
        max_distance: int = 128,
        bidirectional: bool = True,
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.num_heads = num_heads
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bidirectional = bidirectional
        self.embedding = nn.Embedding(num_buckets, num_heads)
        # END SOLUTION

    def forward(self, Lq: int, Lk: int) -> torch.Tensor:
        # BEGIN SOLUTION
        device = self.embedding.weight.device
        query_position = torch.arange(Lq, device=device)[:, None]  # (Lq, 1)
        key_position = torch.arange(Lk, device=device)[None, :]  # (1, Lk)
        relative_position = key_position - query_position  # (Lq, Lk): j - i
        buckets = relative_position_bucket(
            relative_position,
            bidirectional=self.bidirectional,
            num_buckets=self.num_buckets,
            max_distance=self.max_distance,
        )
        values = self.embedding(buckets)  # (Lq, Lk, h)
        return values.permute(2, 0, 1).unsqueeze(0)  # (1, h, Lq, Lk)
        # END SOLUTION


# %% [markdown]
# ## Task 3 — `span_corrupt`
#
# Corrupt one sequence of $L$ tokens the way T5 does. First the sizes:
#
# - `num_noise = round(L * noise_density)`, with Python's `round` (halves go to the even
#   neighbour: `round(2.5) == 2`), then kept in `[1, L - 1]` (at least one noise token and at
#   least one kept token, as in T5's code);
# - `num_spans = max(1, round(num_noise / mean_span_length))`, again Python's `round`;
# - `num_keep = L - num_noise`.
#
# Then the layout. The noise tokens are cut into `num_spans` non-empty spans, and the kept
# tokens into as many non-empty runs, at random; the sequence is **keep run 1, noise span 1,
# keep run 2, noise span 2, …, keep run k, noise span k** (it always starts with kept tokens
# and ends with noise, as in T5). To cut `total` items into `parts` non-empty pieces, draw a
# permutation of the `total - 1` gaps between neighbours and cut at the first `parts - 1`
# of them:
#
# ```python
# cuts = torch.randperm(total - 1, generator=generator)[: parts - 1].sort().values + 1
# lengths = diff of [0, *cuts, total]          # parts lengths, each ≥ 1, summing to total
# ```
#
# Draw the noise span lengths first (`total = num_noise`), then the keep run lengths
# (`total = num_keep`): two `randperm` calls on the same generator, in that order, always
# (also when `parts` is 1). Finally replace noise span $i$ (counted from 0) by the sentinel
# `sentinel_ids[i]` in the inputs, and make the targets `sentinel_ids[0]`, span 0,
# `sentinel_ids[1]`, span 1, …

# %%
def span_corrupt(
    tokens: torch.Tensor,
    noise_density: float,
    mean_span_length: float,
    sentinel_ids: list[int],
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """T5's span corruption of one sequence.

    Args:
        tokens: 1-D LongTensor (L,) of token ids, L ≥ 2, on any device. Not modified.
        noise_density: fraction of the tokens to hide (0.15 in T5).
        mean_span_length: the average length of a hidden span (3 in T5).
        sentinel_ids: list of ints, the sentinel ids in the order they are used (T5 counts
            down from the end of the vocabulary); at least ``num_spans`` of them.
        generator: CPU ``torch.Generator`` for the two draws (``torch.randperm(num_noise - 1,
            generator=generator)`` for the noise spans, then ``torch.randperm(num_keep - 1,
            generator=generator)`` for the kept runs; see the task). With ``None`` the same
            two draws come from torch's global generator.

    Sizes: ``num_noise = min(max(round(L * noise_density), 1), L - 1)``, ``num_spans =
    max(1, round(num_noise / mean_span_length))``, ``num_keep = L - num_noise``, with
    Python's ``round`` on Python floats (float64; halves to even). Raises ``ValueError`` when
    L < 2, when ``num_spans > num_keep`` or when there are fewer than ``num_spans`` sentinels.

    Returns:
        ``(inputs, targets)``, 1-D tensors of the dtype (int64) and on the device of
        ``tokens``: ``inputs`` is keep run 0, ``sentinel_ids[0]``, keep run 1,
        ``sentinel_ids[1]``, …, keep run k−1, ``sentinel_ids[k−1]`` (length ``num_keep +
        num_spans``); ``targets`` is ``sentinel_ids[0]``, noise span 0, ``sentinel_ids[1]``,
        noise span 1, … (length ``num_noise + num_spans``). Nothing else is added (no
        end-of-sequence token).
    """
    # BEGIN SOLUTION
    length = tokens.shape[0]
    if length < 2:
        raise ValueError("span_corrupt needs at least two tokens")
    num_noise = min(max(round(length * noise_density), 1), length - 1)
    num_spans = max(1, round(num_noise / mean_span_length))  # at least one span
    num_keep = length - num_noise
    if num_spans > num_keep:
        raise ValueError(f"{num_spans} spans need at least as many kept tokens, not {num_keep}")
    if len(sentinel_ids) < num_spans:
        raise ValueError(f"{num_spans} spans need {num_spans} sentinels")

    def segment(total: int, parts: int) -> list[int]:
        """Random lengths of `parts` non-empty pieces that sum to `total`."""
        order = torch.randperm(total - 1, generator=generator)  # the gaps, shuffled
        cuts = order[: parts - 1].sort().values + 1  # cut after these positions
        bounds = [0, *cuts.tolist(), total]
        return [b - a for a, b in zip(bounds, bounds[1:])]

    noise_lengths = segment(num_noise, num_spans)  # first draw: the noise spans
    keep_lengths = segment(num_keep, num_spans)  # second draw: the kept runs
    inputs, targets, start = [], [], 0
    for i, (keep, noise) in enumerate(zip(keep_lengths, noise_lengths)):
        sentinel = tokens.new_tensor([sentinel_ids[i]])
        inputs += [tokens[start:start + keep], sentinel]  # keep run i, then its sentinel
        start += keep
        targets += [sentinel, tokens[start:start + noise]]  # the sentinel, then its span
        start += noise
    return torch.cat(inputs), torch.cat(targets)
    # END SOLUTION
