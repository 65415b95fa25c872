# %% [markdown]
# # 5.13 SDXL micro-conditioning — exercise
#
# Podell et al. (2023) train SDXL on images of every size, cropped at random, and tell the
# network what was done to each image. Every training image carries six integers: its size
# before any resizing $(h_\text{orig}, w_\text{orig})$, where the random crop started
# $(c_\text{top}, c_\text{left})$, and the size asked for $(h_\text{tgt}, w_\text{tgt})$. Each
# integer $s$ is turned into a vector with the same sinusoidal embedding that encodes the
# diffusion step, the six vectors are concatenated, and the result is added to the time
# embedding of the U-Net. At sampling time the user picks the six numbers: $c = (0, 0)$ asks for
# an uncropped, centred object.
#
# The sinusoidal embedding of a number $s$ in $d$ dimensions, with $h = \lfloor d/2 \rfloor$
# frequencies and a longest period $P$ (`max_period`, 10000 by default):
#
# $$\omega_k = \exp\!\Big(-\ln P \cdot \frac{k}{h}\Big),\quad k = 0, \dots, h - 1, \qquad
#   e(s) = \big[\cos(s\,\omega_0), \dots, \cos(s\,\omega_{h-1}),\
#               \sin(s\,\omega_0), \dots, \sin(s\,\omega_{h-1})\big],$$
#
# cosines first (the layout of SDXL's code, `flip_sin_to_cos=True` in diffusers), and one zero
# appended at the end when $d$ is odd. Note the denominator $h$, not $h - 1$ (diffusers'
# `downscale_freq_shift=0`), so the slowest frequency is $P^{-(h-1)/h}$, just above $1/P$.

# %%
import math

import torch

# %% [markdown]
# ## Task 1 — `timestep_embedding`
#
# Embed a batch of numbers (diffusion steps, or the sizes and crop offsets of Task 2) with the
# formula above. The numbers may be integers (a LongTensor) or real (a float tensor, fractional
# values allowed). Compute in floating point: in `t`'s own dtype when `t` is floating (float32 or
# float64), in float32 when `t` holds integers. Build the frequencies in that dtype too.

# %%
def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000) -> torch.Tensor:
    """Sinusoidal embedding e(t) of a batch of numbers, cosines first.

    Args:
        t: (B,) tensor of numbers to embed: integer (e.g. LongTensor of diffusion steps or
            pixel counts) or floating (float32 / float64; fractional values are embedded as
            they are, never rounded).
        dim: embedding width d ≥ 1 (a Python int); h = d // 2 frequencies.
        max_period: P, the longest period (default 10000), a Python number.

    Returns:
        (B, dim) tensor on t's device. Column k < h holds cos(t·ω_k), column h + k holds
        sin(t·ω_k), with ω_k = exp(−ln(P)·k/h) for k = 0, …, h − 1; when dim is odd the last
        column (index 2h = dim − 1) is zero. dtype: t's dtype when t is floating, float32
        when t is an integer tensor; the frequencies are computed in that dtype.
        Differentiable w.r.t. a floating t (the checks back-propagate through it).

    dim = 1 gives a single zero column.

    Forbidden: the complex-exponential shortcut (``torch.polar``, ``torch.view_as_real``):
    write the cosines and sines with ``torch.cos`` and ``torch.sin``.
    """
    # BEGIN SOLUTION
    dtype = t.dtype if t.is_floating_point() else torch.float32
    half = dim // 2
    k = torch.arange(half, dtype=dtype, device=t.device)
    freqs = torch.exp(-math.log(max_period) * k / half)  # ω_k
    args = t.to(dtype)[:, None] * freqs[None, :]  # (B, h)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2 == 1:
        pad = emb.new_zeros(emb.shape[0], 1)  # the extra column (the only one when dim = 1)
        emb = torch.cat([emb, pad], dim=1)
    return emb
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `micro_conditioning`
#
# SDXL's size and crop conditioning: the six numbers of each image,
# $(h_\text{orig}, w_\text{orig}, c_\text{top}, c_\text{left}, h_\text{tgt}, w_\text{tgt})$,
# each embedded with `timestep_embedding` in `dim` dimensions (default `max_period`), and the
# six embeddings concatenated **in that order**, each one a contiguous block of `dim` columns:
#
# $$\text{cond} = \big[e(h_\text{orig}),\ e(w_\text{orig}),\ e(c_\text{top}),\
#   e(c_\text{left}),\ e(h_\text{tgt}),\ e(w_\text{tgt})\big] \in \mathbb R^{6d}.$$
#
# Sizes and offsets are given as (height, width) and (top, left) pairs: column 0 is the
# vertical one.

# %%
def micro_conditioning(
    original_size: torch.Tensor,
    crop_top_left: torch.Tensor,
    target_size: torch.Tensor,
    dim: int,
) -> torch.Tensor:
    """SDXL's micro-conditioning vector: six sinusoidal embeddings, concatenated.

    Args:
        original_size: (B, 2) tensor of (height, width) of each image before resizing.
        crop_top_left: (B, 2) tensor of (top, left), the crop's offset in pixels.
        target_size: (B, 2) tensor of (height, width) asked for.
            The three share one dtype: integer (LongTensor) or floating (float32 / float64).
        dim: width of each of the six embeddings (≥ 1, odd allowed).

    Returns:
        (B, 6·dim) tensor: columns [j·dim, (j + 1)·dim) hold timestep_embedding(v_j, dim)
        for v = (h_orig, w_orig, top, left, h_tgt, w_tgt), j = 0, …, 5. dtype and device as
        timestep_embedding gives them (the inputs' dtype when floating, float32 for integers).
        Differentiable w.r.t. floating inputs.
    """
    # BEGIN SOLUTION
    ids = torch.cat([original_size, crop_top_left, target_size], dim=1)  # (B, 6)
    embs = [timestep_embedding(ids[:, j], dim) for j in range(6)]
    return torch.cat(embs, dim=1)
    # END SOLUTION
