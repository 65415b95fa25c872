# %% [markdown]
# # 5.11 Latent diffusion — exercise
#
# Rombach et al. (2021) run a diffusion model not on pixels but in the small latent space of a
# pretrained autoencoder, and steer it with a condition (a class, a caption, a layout). Two
# pieces make the conditioning work, and you write both:
#
# 1. **Cross-attention.** The denoiser's feature map, read as a sequence of $N$ vectors
#    $x_i$, attends to a sequence of $M$ condition vectors $c_j$ (the tokens of a caption,
#    encoded): queries come from the image, keys and values from the condition,
#
#    $$Q = x W_Q^\top, \quad K = c\, W_K^\top, \quad V = c\, W_V^\top, \qquad
#      \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\Big(\frac{Q K^\top}{\sqrt{d}}\Big) V,$$
#
#    with $h$ heads of width $d$ (`dim_head`), followed by an output projection. Without a
#    condition it is ordinary self-attention ($c = x$).
# 2. **Classifier-free guidance.** Train one network both with and without the condition (drop
#    it at random during training, replacing it by a learned or fixed *null* condition); at
#    sampling time extrapolate from the unconditional prediction towards the conditional one,
#
#    $$\tilde\varepsilon = \varepsilon_\varnothing + s\,(\varepsilon_c - \varepsilon_\varnothing).$$
#
# Not allowed: `torch.nn.functional.scaled_dot_product_attention` and `torch.nn.MultiheadAttention`
# (they would do Task 1 for you). Write the attention with matrix products and a softmax.

# %%
import math

import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `CrossAttention`
#
# The layer of LDM's U-Net (and of Stable Diffusion's, and of `diffusers`' `Attention`): with
# inner = heads·dim_head,
#
# - `to_q = nn.Linear(query_dim, inner, bias=False)` maps each of the $N$ image tokens to a
#   query, `to_k` and `to_v = nn.Linear(context_dim, inner, bias=False)` map each of the $M$
#   context tokens to a key and a value (no biases: this is the papers' and the libraries'
#   choice);
# - split the last axis into `heads` heads of width `dim_head`: view (B, N, inner) as
#   (B, N, heads, dim_head), then **transpose** to (B, heads, N, dim_head), so that head `j`
#   holds features `j·dim_head … (j+1)·dim_head − 1` of every token;
# - per head, weights = softmax over the $M$ keys of $Q K^\top / \sqrt{d}$, with $d$ =
#   `dim_head` (the width of one head, not of all heads together), and output weights @ V;
# - merge the heads back (transpose, then reshape to (B, N, inner)) and project with
#   `to_out = nn.Linear(inner, query_dim)` (with a bias).
#
# `context=None` means self-attention: the keys and values come from `x` itself (then
# `context_dim` must be `query_dim`, its default).

# %%
class CrossAttention(nn.Module):
    """Multi-head cross-attention: the tokens of ``x`` attend to the tokens of ``context``.

    ``CrossAttention(query_dim, context_dim=None, heads=8, dim_head=64)``, with
    inner = heads·dim_head and ``context_dim`` defaulting to ``query_dim``. Submodules
    (the checks copy a state dict into them, so names and shapes are fixed):

    - ``to_q``: ``nn.Linear(query_dim, inner, bias=False)``, weight (inner, query_dim);
    - ``to_k``: ``nn.Linear(context_dim, inner, bias=False)``, weight (inner, context_dim);
    - ``to_v``: ``nn.Linear(context_dim, inner, bias=False)``, weight (inner, context_dim);
    - ``to_out``: ``nn.Linear(inner, query_dim)``, weight (query_dim, inner) and bias
      (query_dim,);

    so the state dict holds exactly ``to_q.weight``, ``to_k.weight``, ``to_v.weight``,
    ``to_out.weight`` and ``to_out.bias``, float32 when freshly built. (LDM and ``diffusers``
    wrap the output projection as ``to_out[0]`` with a dropout after it; here it is the
    ``nn.Linear`` itself.)

    ``forward(x, context=None)``:
        x: (B, N, query_dim), float32 or float64, on the module's device and in its dtype.
        context: (B, M, context_dim), same dtype and device, M may differ from N; None for
            self-attention (keys and values from ``x``, which needs context_dim == query_dim).
        Returns (B, N, query_dim) in x's dtype and on its device:
        ``to_out(merge_heads(softmax(q kᵀ / sqrt(dim_head), over the M keys) v))`` with
        q, k, v = to_q(x), to_k(context), to_v(context) each split into ``heads`` heads of
        width ``dim_head`` (view (B, L, inner) as (B, L, heads, dim_head), then transpose to
        (B, heads, L, dim_head); merge back the same way). The scale is sqrt(dim_head), the
        width of one head. Differentiable w.r.t. x, context and every parameter (the checks
        back-propagate through it); no input is changed in place. No mask, no dropout.

    Forbidden: ``torch.nn.functional.scaled_dot_product_attention``,
    ``torch.nn.MultiheadAttention`` (and ``multi_head_attention_forward``).
    """

    def __init__(self, query_dim, context_dim=None, heads=8, dim_head=64) -> None:
        super().__init__()
        # BEGIN SOLUTION
        inner = heads * dim_head
        context_dim = query_dim if context_dim is None else context_dim
        self.heads, self.dim_head = heads, dim_head
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Linear(inner, query_dim)
        # END SOLUTION

    def forward(self, x, context=None):
        # BEGIN SOLUTION
        context = x if context is None else context
        h, d = self.heads, self.dim_head

        def split(t):  # (B, L, h·d) -> (B, h, L, d)
            B, L, _ = t.shape
            return t.view(B, L, h, d).transpose(1, 2)

        q = split(self.to_q(x))  # queries from the image tokens
        k = split(self.to_k(context))  # keys and values from the condition's tokens
        v = split(self.to_v(context))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (B, h, N, M)
        weights = torch.softmax(scores, dim=-1)  # over the M keys
        out = weights @ v  # (B, h, N, d)
        B, _, N, _ = out.shape
        return self.to_out(out.transpose(1, 2).reshape(B, N, h * d))
        # END SOLUTION


# %% [markdown]
# ## Task 2 — `classifier_free_guidance`
#
# With one network $\varepsilon_\theta(z_t, t, c)$ that also predicts without the condition,
# $\varepsilon_\theta(z_t, t, \varnothing)$, guidance with scale $s$ is
#
# $$\tilde\varepsilon = \varepsilon_\varnothing + s\,(\varepsilon_c - \varepsilon_\varnothing)
#   = (1 - s)\,\varepsilon_\varnothing + s\,\varepsilon_c .$$
#
# $s = 1$ is the plain conditional model, $s = 0$ the unconditional one, $s > 1$ pushes past
# the conditional prediction, away from the unconditional one. (Ho & Salimans write the same
# thing with $w = s - 1$: $(1 + w)\,\varepsilon_c - w\,\varepsilon_\varnothing$; this exercise,
# like LDM's and `diffusers`' code, uses $s$.)

# %%
def classifier_free_guidance(eps_uncond, eps_cond, scale):
    """The guided noise prediction eps_uncond + scale·(eps_cond − eps_uncond).

    Args:
        eps_uncond: (B, ...) the model's prediction without the condition (null condition),
            float32 or float64, any device.
        eps_cond: (B, ...) the prediction with the condition; same shape, dtype and device.
        scale: the guidance scale s, a Python float (0 gives eps_uncond, 1 gives eps_cond,
            above 1 extrapolates), or a tensor in the predictions' dtype and device that
            broadcasts against them (e.g. (B, 1, ..., 1), one scale per sample).

    Returns:
        (B, ...) eps_uncond + scale·(eps_cond − eps_uncond), in the predictions' dtype and on
        their device; differentiable w.r.t. both predictions (the checks back-propagate
        through it). No argument is changed in place.
    """
    # BEGIN SOLUTION
    return eps_uncond + scale * (eps_cond - eps_uncond)
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `drop_condition`
#
# To train the unconditional model inside the conditional one, each training example loses
# its condition with probability $p$ (LDM-era models use $p$ = 0.1 to 0.2): it is replaced by
# the null condition $\varnothing$, e.g. the embedding of an empty caption, or a learned vector.
# The draw is fixed so that your code reproduces the reference exactly: **one** uniform number
# per sample, `u = torch.rand(B, generator=generator)` (float32, on the CPU, in batch order),
# and sample $i$ is dropped when $u_i < p$ (so $p = 0$ never drops, $p = 1$ always drops).

# %%
def drop_condition(cond, null_cond, p, generator=None):
    """Replace each sample's condition by the null condition with probability p.

    Args:
        cond: (B, ...) the batch of conditions, one per sample (e.g. (B, D) embeddings,
            (B, M, D) token embeddings, or (B,) class labels), any dtype, any device.
        null_cond: the null condition, in cond's dtype and on its device, shaped like one
            sample's condition (cond.shape[1:], e.g. (D,)) or broadcastable to cond (e.g.
            (1, D), or (B, D) to give each sample its own); it is broadcast to every dropped
            sample.
        p: the drop probability, a Python float in [0, 1].
        generator: a CPU ``torch.Generator`` for the draw; None uses torch's global one.

    The draw, exactly: ``u = torch.rand(B, generator=generator)`` with B the batch size: one
    float32 uniform number per sample, drawn on the CPU in batch order, and no other draw.
    Sample i is dropped when ``u[i] < p`` (strictly: a draw equal to p keeps its condition);
    the (B,) mask then moves to cond's device.

    Returns:
        (B, ...) tensor like cond (its shape, dtype and device): row i is null_cond where
        sample i was dropped, cond[i] otherwise. A new tensor: neither cond nor null_cond is
        changed in place. Differentiable w.r.t. cond and null_cond (a learned null embedding
        gets the gradient of every dropped row).
    """
    # BEGIN SOLUTION
    B = len(cond)
    u = torch.rand((B,), generator=generator)  # one float32 draw per sample, on the CPU
    drop = (u < p).to(cond.device)
    drop = drop.reshape((B,) + (1,) * (cond.dim() - 1))  # broadcast over each sample
    return torch.where(drop, null_cond, cond)
    # END SOLUTION
