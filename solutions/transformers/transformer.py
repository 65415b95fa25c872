# %% [markdown]
# # 4.1 The Transformer — exercise
#
# Vaswani et al. (2017) drop recurrence altogether: every position of a sequence looks at every
# other position in one step, through *attention*. Queries $Q$ are matched against keys $K$ by
# dot products, the scores are scaled by $1/\sqrt{d_k}$ (so that their spread does not grow
# with the width and push the softmax into saturation), turned into weights by a softmax over
# the keys, and used to average the values $V$:
#
# $$\operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\Big(\frac{Q K^\top}{\sqrt{d_k}}
#   \Big) V .$$
#
# Multi-head attention runs $h$ such attentions side by side on learned projections of width
# $d_k = d_{\text{model}}/h$, concatenates the heads and projects back:
# $\operatorname{MultiHead}(Q,K,V) = \operatorname{Concat}(\text{head}_1,\dots,\text{head}_h)W^O$
# with $\text{head}_j = \operatorname{Attention}(Q W_j^Q, K W_j^K, V W_j^V)$. Because attention
# itself ignores order, positions are added to the inputs as fixed sinusoids of geometrically
# spaced wavelengths. You will write the attention, the causal mask, the multi-head module and
# the positional encodings.

# %%
import math

import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `scaled_dot_product_attention`
#
# Compute the scores $QK^\top/\sqrt{d}$ with $d$ the last dimension of `q`, set the scores that
# `mask` forbids to $-\infty$ **before** the softmax (so that the remaining weights of each row
# still sum to one), take the softmax over the keys (the last axis), and average the values.
# Every leading dimension is a batch dimension. Return the output and the weights.

# %%
def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention, softmax(q kᵀ / √d) v.

    Args:
        q: (..., Lq, d) queries, float32 or float64, on any device.
        k: (..., Lk, d) keys.
        v: (..., Lk, dv) values.
        mask: optional boolean tensor broadcastable to (..., Lq, Lk); **True means the query
            may attend to that key**, False means the pair is blocked. Blocked scores are set
            to −inf before the softmax. A row whose keys are all blocked has no finite score
            and its weights (hence its output) come out as NaN: avoid such rows.

    Returns:
        ``(out, weights)``: out (..., Lq, dv) and the attention weights (..., Lq, Lk), each
        row non-negative and summing to one; same dtype and device as ``q``. Both are
        differentiable w.r.t. q, k and v (the gradient checks back-propagate through both:
        do not detach the weights).

    Forbidden: ``torch.nn.functional.scaled_dot_product_attention`` (and the ATen kernels
    behind it), ``torch.nn.MultiheadAttention``.
    """
    # BEGIN SOLUTION
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    out = weights @ v
    return out, weights
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `causal_mask`
#
# A decoder must not look at the future: query $i$ may attend to keys $j \le i$ only. Return the
# boolean $(L, L)$ mask that is True on and below the diagonal, on `device`.

# %%
def causal_mask(L: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Causal (look-ahead) mask for a sequence of length L.

    Args:
        L: sequence length (L ≥ 1).
        device: where to create the mask (CPU when None).

    Returns:
        (L, L) ``torch.bool`` tensor, ``mask[i, j] = (j <= i)``: True where query i may
        attend to key j (lower triangle, diagonal included).
    """
    # BEGIN SOLUTION
    return torch.ones(L, L, dtype=torch.bool, device=device).tril()
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `MultiHeadAttention`
#
# Project queries, keys and values with `q_proj`, `k_proj`, `v_proj` (each
# `nn.Linear(d_model, d_model)`), split the last dimension into `num_heads` heads of width
# $d_k = d_{\text{model}}/h$ so that the heads become a batch dimension, shape
# $(B, h, L, d_k)$, run your `scaled_dot_product_attention` on all heads at once, put the heads
# back side by side, $(B, L_q, d_{\text{model}})$, and apply `out_proj`. Splitting needs a
# transpose: a plain reshape of $(B, L, d_{\text{model}})$ to $(B, h, L, d_k)$ mixes positions
# and features. Return the output and the attention weights of every head.

# %%
class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al., 2017), batch first.

    Args:
        d_model: model width, divisible by ``num_heads``.
        num_heads: number of heads h; each head has width d_model // h.
        bias: whether the four projections have biases.

    Submodules (names are part of the contract, state dicts are copied into them):
    ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``, each ``nn.Linear(d_model, d_model,
    bias=bias)``. With the heads in order, ``q_proj.weight`` rows ``j·d_k … (j+1)·d_k − 1``
    belong to head j.

    ``forward(query, key, value, mask=None)``: query (B, Lq, d_model), key and value
    (B, Lk, d_model); ``mask`` boolean, broadcastable to (B, h, Lq, Lk), True where attending
    is allowed (e.g. a causal (Lq, Lk) mask, or a padding mask of shape (B, 1, 1, Lk)).
    Returns ``(out, weights)``, like :func:`scaled_dot_product_attention`: out
    (B, Lq, d_model) and the attention weights of every head, (B, h, Lq, Lk), both in the
    input's dtype and on its device, and both differentiable w.r.t. the inputs and the
    parameters (the gradient checks back-propagate through both: do not detach the weights).

    Forbidden: ``torch.nn.MultiheadAttention``,
    ``torch.nn.functional.multi_head_attention_forward``,
    ``torch.nn.functional.scaled_dot_product_attention``, the ``torch.nn.Transformer*``
    classes.
    """

    def __init__(self, d_model: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        # BEGIN SOLUTION
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.d_model = d_model
        self.num_heads = num_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        # END SOLUTION

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # BEGIN SOLUTION
        B, Lq, _ = query.shape
        Lk = key.shape[1]
        h, d_head = self.num_heads, self.d_model // self.num_heads
        q = self.q_proj(query).view(B, Lq, h, d_head).transpose(1, 2)
        k = self.k_proj(key).view(B, Lk, h, d_head).transpose(1, 2)
        v = self.v_proj(value).view(B, Lk, h, d_head).transpose(1, 2)
        heads, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, h, Lq, d_head)
        concat = heads.transpose(1, 2).reshape(B, Lq, self.d_model)
        return self.out_proj(concat), weights
        # END SOLUTION


# %% [markdown]
# ## Task 4 — `sinusoidal_positions`
#
# For position $pos$ and $i = 0, \dots, d_{\text{model}}/2 - 1$:
#
# $$PE_{pos,\,2i} = \sin\!\big(pos / 10000^{2i/d_{\text{model}}}\big), \qquad
#   PE_{pos,\,2i+1} = \cos\!\big(pos / 10000^{2i/d_{\text{model}}}\big),$$
#
# sines in the even columns, cosines in the odd ones, both of a column pair sharing one
# frequency. Computing the angles in float64 (on the CPU) and casting at the end keeps float32
# results accurate.

# %%
def sinusoidal_positions(
    L: int,
    d_model: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The fixed sinusoidal position encodings of the Transformer.

    Args:
        L: number of positions (0, 1, …, L − 1).
        d_model: encoding width, even.
        dtype: floating dtype of the result (float32 by default). The values must be
            accurate to that dtype: with ``dtype=torch.float64`` they are checked to a relative
            1e-7, so compute the angles in float64 (values computed in float32 and then cast
            are off by up to about 5e-7 and fail); float32 results to a relative 1e-4.
        device: where to create the result (CPU when None).

    Returns:
        (L, d_model) tensor with ``PE[pos, 2i] = sin(pos / 10000^(2i/d_model))`` and
        ``PE[pos, 2i+1] = cos(pos / 10000^(2i/d_model))``.
    """
    # BEGIN SOLUTION
    position = torch.arange(L, dtype=torch.float64).unsqueeze(1)  # (L, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # the even numbers 2i
    angle = position / 10000.0 ** (two_i / d_model)  # (L, d_model / 2)
    pe = torch.empty(L, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.to(device=device, dtype=dtype)
    # END SOLUTION
