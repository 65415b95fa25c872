# %% [markdown]
# # 4.6 GPT-3 — exercise
#
# Brown et al. (2020) trained the GPT-2 recipe (a pre-LN causal decoder predicting the next
# token) at 175 billion parameters and found that a large enough language model can do a new
# task from a few examples written into its prompt, with no gradient step. Three pieces of
# machinery sit around such a model, and you will write them.
#
# - **Sampling.** The model gives logits $z \in \mathbb{R}^V$ for the next token. A
#   *temperature* $\tau$ sharpens or flattens the distribution, $p = \operatorname{softmax}(z /
#   \tau)$ ($\tau \to 0$ is greedy decoding); *top-k* keeps only the $k$ most probable tokens;
#   *top-p* (nucleus) sampling keeps the smallest set of most probable tokens whose total
#   probability reaches $p$. Then one token is drawn from what is left.
# - **The KV cache.** Generating $n$ tokens with a causal model by re-running it on the whole
#   prefix costs $O(n^2)$ token passes. But in a causal model the keys and values of the
#   positions already seen never change: keep them, and each new token needs one pass of its
#   own, its query attending to the cached keys. Done right this is not an approximation: the
#   outputs equal full recomputation at every position.
# - **Scaling laws.** Kaplan et al. (2020), the study GPT-3 builds on, found the test loss
#   of language models to fall as a power law of the parameter count,
#   $L(N) = a N^{-\alpha}$, a straight line on log-log axes. You fit it by least squares on
#   the logs.

# %%
import math

import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `sample_next`
#
# The order is fixed: divide the logits by the temperature; top-k on the tempered logits
# (keep every token whose logit is at least the $k$-th largest of its row, so ties with the
# $k$-th are kept); softmax over the tokens left; top-p on those probabilities: sort each
# row in descending order and keep a token when the probability of the tokens sorted *before*
# it is still below $p$, so the token that makes the total reach $p$ is kept, and so is the
# most probable token, always. Filtered tokens get probability 0, and one token per row is
# drawn with `torch.multinomial`. Temperature 0 means greedy: the argmax, and no draw at all.

# %%
def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw the next token of every row from the filtered softmax of ``logits``.

    Args:
        logits: (B, V) scores of the next token, float32 or float64, on any device. Not
            modified.
        temperature: τ ≥ 0. With τ = 0 return ``logits.argmax(dim=-1)`` (the first index
            among equal maxima) and make **no draw** (the generator is left untouched; the
            filters are irrelevant). Otherwise the logits are divided by τ first (before the
            softmax, never the probabilities after it).
        top_k: None (no filter), or an int k ≥ 1: keep the tokens whose tempered logit is
            ≥ the k-th largest of its row (tokens tied with the k-th are kept too, so more
            than k may remain); k ≥ V keeps every token.
        top_p: None (no filter), or a float in (0, 1): applied after top-k, to the softmax of
            the tokens top-k kept. Sort each row's probabilities in descending order and keep
            a token iff the total probability of the tokens sorted before it is < top_p: the
            smallest set of most probable tokens whose cumulative probability reaches top_p,
            the crossing token included; the most probable token is always kept.
        generator: a CPU ``torch.Generator`` for the draw, or None for torch's global one.

    The draw: exactly one ``torch.multinomial(probs, 1, generator=generator)`` over the whole
    batch (or the same draw row by row, in order), where ``probs`` is the (B, V) tensor of the
    kept tokens' probabilities **in vocabulary order** (filtered tokens 0; renormalising the
    kept ones or not makes no difference to the draw), in the dtype of ``logits``, on the CPU
    (``probs.cpu()``, since the generator lives there). No other random draw is made, so the
    same generator state always gives the same tokens, and the checks compare your tokens with
    ours exactly for a given generator seed. Drawing in sorted order and mapping back gives the
    right distribution but other tokens.

    Returns:
        LongTensor (B,) (int64) of token ids, on the device of ``logits``.
    """
    # BEGIN SOLUTION
    if temperature == 0:
        return logits.argmax(dim=-1)  # greedy: no draw
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # the k-th largest logit of each row
        logits = logits.masked_fill(logits < kth, float("-inf"))  # ties with the k-th stay
    probs = torch.softmax(logits, dim=-1)
    if top_p is not None:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of the more probable tokens
        drop_sorted = before >= top_p  # top_p was reached without this token
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # vocab order
        probs = probs.masked_fill(drop, 0.0)
    token = torch.multinomial(probs.cpu(), 1, generator=generator)  # (B, 1)
    return token.squeeze(1).to(logits.device)
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `KVCache`
#
# One cache per attention layer. It starts empty; each call of `append(k, v)` adds the keys
# and values of the new positions after the ones it holds (along the time axis) and hands back
# everything cached so far, which is what the new queries attend to. `len(cache)` is the number
# of positions cached, which is also the absolute position of the next token to come.

# %%
class KVCache:
    """The keys and values one attention layer has computed so far (for one batch).

    ``KVCache()`` is empty: ``len(cache) == 0`` and the attributes ``k`` and ``v`` are None.

    ``append(k, v) -> (k_all, v_all)``: ``k`` and ``v`` are the keys and values of T ≥ 1 new
    positions, each of shape (B, h, T, d_head) (batch, heads, time, head width), any floating
    dtype, any device. They are concatenated *after* the P cached positions along the time
    axis (dim 2); the cache keeps the results as ``self.k`` and ``self.v`` and returns them,
    each (B, h, P + T, d_head), in the dtype and on the device of the inputs. The first append
    just stores k and v.

    ``len(cache)``: P, the number of positions cached so far (0 when empty): the sum of the T of
    every append, not the number of calls. It is the absolute position of the next token.
    """

    def __init__(self) -> None:
        # BEGIN SOLUTION
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.length = 0
        # END SOLUTION

    def __len__(self) -> int:
        # BEGIN SOLUTION
        return self.length
        # END SOLUTION

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # BEGIN SOLUTION
        if self.k is None:
            self.k, self.v = k, v
        else:
            self.k = torch.cat([self.k, k], dim=2)  # (B, h, P + T, d_head)
            self.v = torch.cat([self.v, v], dim=2)
        self.length += k.shape[2]  # positions, not calls
        return self.k, self.v
        # END SOLUTION


# %% [markdown]
# ## Task 3 — `CausalSelfAttention`
#
# GPT's masked multi-head self-attention, with GPT-2's names: one `c_attn` produces queries,
# keys and values at once, `c_proj` mixes the heads. Split into heads as in 4.1, shape
# $(B, h, T, d_{\text{head}})$, and attend with $\operatorname{softmax}(QK^\top /
# \sqrt{d_{\text{head}}})V$ under a causal mask.
#
# With a `cache` holding $P$ positions, the $T$ rows of `x` are the positions
# $P, \dots, P + T - 1$ of the sequence. Their keys and values go into the cache, and the query
# of row $i$, at absolute position $P + i$, may attend to every key at position $j \le P + i$
# among the $P + T$ the cache returns: the causal mask is no longer square. Feeding a sequence
# in pieces through one cache must then give what one pass over the whole sequence gives, at
# every position.

# %%
class CausalSelfAttention(nn.Module):
    """Causal multi-head self-attention (GPT-2 / GPT-3), with an optional KV cache.

    Args:
        d_model: model width, divisible by ``n_head``.
        n_head: number of heads h; each has width d_head = d_model // h.

    Submodules (names are part of the contract; the checks copy state dicts into them):
    ``c_attn`` = ``nn.Linear(d_model, 3 * d_model)`` whose output features are the queries,
    the keys and the values in that order (``c_attn(x).split(d_model, dim=2)``), and
    ``c_proj`` = ``nn.Linear(d_model, d_model)``, both with biases; no other parameters. Within
    each of q, k, v, features ``j·d_head … (j+1)·d_head − 1`` belong to head j.

    ``forward(x, cache=None) -> y``: x (B, T, d_model), float32 or float64 (the module's
    parameters in the same dtype; the checks build it in both), on any device; y
    (B, T, d_model) in x's dtype and on its device.

    - ``cache=None``: ordinary causal attention over the T positions of x: query i attends to
      keys j ≤ i. Differentiable w.r.t. x and every parameter (the gradients are checked).
    - ``cache`` a :class:`KVCache`-like object holding P positions: x holds the positions
      P … P + T − 1. Read P = ``len(cache)`` *before* appending, call
      ``k_all, v_all = cache.append(k, v)`` exactly once with this call's keys and values,
      each (B, h, T, d_head), and attend with these: query i (absolute position P + i) to
      the keys at positions j ≤ P + i of the P + T returned. Use only ``len(cache)`` and
      ``cache.append`` (the checks also pass a cache of their own with just these two).

    Feeding x[:, :t1], x[:, t1:t2], … through one fresh cache gives, piece by piece, the rows
    of ``forward(x)`` (up to rounding): the checks compare both with ours at every position.
    Scores are scaled by 1/√d_head; masked scores are −inf before the softmax over the keys.

    Forbidden: ``torch.nn.functional.scaled_dot_product_attention``,
    ``torch.nn.MultiheadAttention``, ``torch.nn.functional.multi_head_attention_forward``.
    """

    def __init__(self, d_model: int, n_head: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        if d_model % n_head != 0:
            raise ValueError(f"d_model={d_model} is not divisible by n_head={n_head}")
        self.d_model, self.n_head = d_model, n_head
        self.c_attn = nn.Linear(d_model, 3 * d_model)
        self.c_proj = nn.Linear(d_model, d_model)
        # END SOLUTION

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        # BEGIN SOLUTION
        B, T, _ = x.shape
        h, d_head = self.n_head, self.d_model // self.n_head
        q, k, v = self.c_attn(x).split(self.d_model, dim=2)
        q, k, v = (t.view(B, T, h, d_head).transpose(1, 2) for t in (q, k, v))  # (B, h, T, dh)
        past = 0 if cache is None else len(cache)  # P: positions before x[:, 0]
        if cache is not None:
            k, v = cache.append(k, v)  # (B, h, P + T, d_head)
        # row i is position P + i: it may attend to the keys at positions j <= P + i
        mask = torch.ones(T, k.shape[2], dtype=torch.bool, device=x.device).tril(diagonal=past)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d_head)  # (B, h, T, P + T)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        y = (weights @ v).transpose(1, 2).reshape(B, T, self.d_model)  # heads side by side
        return self.c_proj(y)
        # END SOLUTION


# %% [markdown]
# ## Task 4 — `fit_power_law`
#
# Taking logs turns $L = a N^{-\alpha}$ into a straight line, $\log L = \log a - \alpha \log N$.
# Fit it by ordinary least squares with $x = \log N$, $y = \log L$ (natural logs): the slope is
# $-\alpha$, the intercept $\log a$. Return $a$ and $\alpha$ as plain Python floats.

# %%
def fit_power_law(n, losses) -> tuple[float, float]:
    """Least-squares fit of ``log L = log a − α log N``.

    Args:
        n: the model sizes N, a 1-D tensor (any floating or integer dtype) or a list of
            positive numbers, at least two distinct values.
        losses: the losses L, same length, positive.

    Returns:
        ``(a, alpha)`` as Python floats (``float(...)``, not tensors or NumPy numbers), from
        the ordinary least-squares line through the points (log N, log L), natural logs:
        alpha = −slope, a = exp(intercept). Compute in float64 (``torch.as_tensor(n,
        dtype=torch.float64)``) whatever the inputs' dtype: the checks pass float32 and
        float64 tensors and lists, and compare with a relative 1e-4.
    """
    # BEGIN SOLUTION
    x = torch.log(torch.as_tensor(n, dtype=torch.float64))
    y = torch.log(torch.as_tensor(losses, dtype=torch.float64))
    dx, dy = x - x.mean(), y - y.mean()
    slope = (dx * dy).sum() / (dx * dx).sum()  # ordinary least squares
    intercept = y.mean() - slope * x.mean()
    return float(torch.exp(intercept)), float(-slope)
    # END SOLUTION
