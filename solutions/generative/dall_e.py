# %% [markdown]
# # 5.15 DALL·E — exercise
#
# Ramesh et al. (2021) generate an image from a caption with one decoder-only transformer. The
# image is first compressed by a **discrete VAE** (dVAE) into a grid of tokens, each one of
# $K$ codebook entries; the caption's tokens and the image's tokens are then concatenated into
# one sequence and modelled autoregressively, left to right, like text.
#
# Two pieces make that possible, and you write both.
#
# 1. The dVAE's encoder outputs, for every grid cell, logits $\ell \in \mathbb R^K$ of a
#    categorical distribution over the codebook. Sampling a category is not differentiable, so
#    DALL·E trains the dVAE with the **Gumbel-softmax** relaxation: with Gumbel noise
#    $g_k = -\log(-\log U_k)$, $U_k \sim \mathcal U(0, 1)$,
#
#    $$\arg\max_k (\ell_k + g_k) \sim \mathrm{Categorical}(\mathrm{softmax}(\ell))
#      \quad\text{(the Gumbel-max trick)},$$
#
#    and the argmax is replaced by a softmax at temperature $\tau > 0$,
#
#    $$y = \mathrm{softmax}\big((\ell + g)/\tau\big),$$
#
#    a point of the simplex that tends to the one-hot sample as $\tau \to 0$ and is
#    differentiable in $\ell$. The paper anneals $\tau$ from 1 to 1/16.
# 2. The transformer sees the sequence $[t_1, \dots, t_{T}, i_1, \dots, i_{I}]$ (caption, then
#    image) and predicts every token from the ones before it, so its attention mask is causal
#    over the **whole concatenation**: each text token attends to the text before it, each image
#    token to the whole caption and to the image tokens before it.
#
# Not allowed: `torch.nn.functional.gumbel_softmax` (it is task 1 itself).

# %%
import torch

# %% [markdown]
# ## Task 1 — `gumbel_softmax`
#
# Given logits $\ell$ of shape $(\dots, K)$, noise $g$ of the same shape and a temperature
# $\tau$, return the relaxed sample $y = \mathrm{softmax}((\ell + g)/\tau)$ over the **last**
# dimension: the noise is added to the logits *before* dividing by $\tau$.
#
# With `hard=True`, return the **straight-through** version: the forward value is the one-hot
# vector of $\arg\max_k y_k$ (the exact Gumbel-max sample), the gradient is that of the soft $y$:
#
# $$y_{\text{hard}} = \mathrm{one\_hot}(\arg\max y) - \mathrm{sg}(y) + y,$$
#
# where $\mathrm{sg}$ (stop-gradient) is `.detach()`.
#
# **Numerical stability.** At small $\tau$ the scores $(\ell + g)/\tau$ reach the thousands,
# where `torch.exp` overflows to inf (even in float64) and a hand-written
# `exp(s) / exp(s).sum()` gives NaN. Subtract the maximum first, or use `torch.softmax`.

# %%
def gumbel_softmax(logits, tau, gumbel_noise, hard=False):
    """The Gumbel-softmax relaxed sample softmax((logits + g)/τ), optionally straight-through.

    Args:
        logits: (..., K) tensor of unnormalised log-probabilities ℓ, float32 or float64, on
            any device; any number of leading dimensions (none included), categories on the
            last dimension.
        tau: the temperature τ > 0, a Python float (values from 0.01 to 10 are checked).
        gumbel_noise: tensor g of the same shape, dtype and device as ``logits`` (e.g. from
            ``sample_gumbel``); the function draws no random numbers itself.
        hard: False for the soft sample; True for the straight-through one-hot sample.

    Returns:
        a tensor of the shape, dtype and device of ``logits``:
        soft: ``y = softmax((logits + gumbel_noise)/τ)`` over the last dim (rows sum to 1);
        hard: ``one_hot(argmax(y, -1), K) - y.detach() + y``, whose values are the one-hot
        vector (up to rounding) and whose gradient w.r.t. ``logits`` (and ``gumbel_noise``) is
        the gradient of the soft ``y``.

    Differentiable (autograd) w.r.t. ``logits`` and ``gumbel_noise``; stays finite for small
    τ (0.01 is checked, with scores (ℓ + g)/τ in the thousands). Inputs are not modified in
    place.

    Forbidden: ``torch.nn.functional.gumbel_softmax``.
    """
    # BEGIN SOLUTION
    y = torch.softmax((logits + gumbel_noise) / tau, dim=-1)  # softmax((l + g) / tau)
    if not hard:
        return y
    index = y.argmax(dim=-1, keepdim=True)
    y_hard = torch.zeros_like(y).scatter_(-1, index, 1.0)  # one_hot(argmax y)
    return y_hard - y.detach() + y  # value of y_hard, gradient of y
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `sample_gumbel`
#
# Draw standard Gumbel noise by inverting its CDF $F(g) = e^{-e^{-g}}$: with
# $U \sim \mathcal U[0, 1)$,
#
# $$g = -\log\big(-\log(U + 10^{-20}) + 10^{-20}\big).$$
#
# The two $10^{-20}$ keep both logarithms finite when $U = 0$ or $U$ rounds to 1. Draw $U$ with
# exactly one call `torch.rand(shape, generator=generator)` (default dtype, on the CPU, where a
# CPU generator lives), so that a seeded run can be reproduced, and only then move the result to
# `device`.

# %%
def sample_gumbel(shape, generator=None, device=None):
    """Standard Gumbel noise −log(−log(U + 1e-20) + 1e-20), U ~ Uniform[0, 1).

    Args:
        shape: the output shape, a tuple of ints (``()`` and sizes of 1 included).
        generator: a CPU ``torch.Generator`` for the draw, or None for the global generator.
        device: optional; where the result goes (CPU when None). The draw itself always
            happens on the CPU.

    Returns:
        a tensor of shape ``shape`` in the default dtype (float32), on ``device``:
        ``-log(-log(U + 1e-20) + 1e-20)`` with ``U = torch.rand(shape, generator=generator)``
        — one draw of ``shape`` numbers, nothing else drawn, the same values as the
        reference for the same seed. Its values have mean ≈ 0.5772 (Euler's γ) and variance
        π²/6 (checked statistically); the argmax of ``logits + g`` is then a sample from
        softmax(logits).
    """
    # BEGIN SOLUTION
    u = torch.rand(shape, generator=generator)  # U ~ Uniform[0, 1), on the CPU
    g = -torch.log(-torch.log(u + 1e-20) + 1e-20)  # the inverse of F(g) = exp(-exp(-g))
    return g.to(device) if device is not None else g
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `text_image_mask`
#
# The sequence is the caption's `text_len` tokens followed by the image's `image_len` tokens,
# $L$ = `text_len + image_len` positions in all. Return the $(L, L)$ boolean attention mask in
# which `mask[i, j]` is True when the query at position $i$ may attend to the key at position
# $j$ (the convention of the boolean `attn_mask` of `F.scaled_dot_product_attention`): causal
# over the concatenation, $j \le i$ (a token sees itself). Thus every image token sees the whole
# caption, and no text token sees any image token.
#
# DALL·E itself also restricts the image-to-image part to row, column and convolutional
# patterns in some layers; here the whole image block is plainly causal.

# %%
def text_image_mask(text_len, image_len, device=None):
    """The causal attention mask over the concatenation [text tokens, image tokens].

    Args:
        text_len: number of caption tokens T ≥ 0, a Python int.
        image_len: number of image tokens I ≥ 0, a Python int (T + I ≥ 1: a mask with no
            caption, T = 0, and one with no image, I = 0, are each checked).
        device: optional; where to create the mask (CPU when None).

    Returns:
        an (L, L) ``torch.bool`` tensor (not float, not an additive −inf mask), L = T + I, with
        ``mask[i, j] = (j <= i)``: True where query i may attend to key j. Text tokens are
        positions 0 … T − 1, image tokens T … L − 1. Rows are queries, columns keys.
    """
    # BEGIN SOLUTION
    L = text_len + image_len  # caption first, then the image
    pos = torch.arange(L, device=device)
    mask = pos[None, :] <= pos[:, None]  # key j <= query i
    return mask
    # END SOLUTION
