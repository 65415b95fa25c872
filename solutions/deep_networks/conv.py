# %% [markdown]
# # 1.2 Convolution — exercise
#
# LeCun et al. (1989) read handwritten zip-code digits with a network whose hidden units look
# at small neighbourhoods of the image (locality) and share their weights across positions
# (weight sharing): every unit of a *feature map* applies the same small kernel to a different
# patch. That operation is a 2-D convolution, and you will write it here from elementary
# tensor operations. (Lecture: `lectures/01-deep-neural-networks/02-conv.md`.)
#
# Deep-learning libraries call it a convolution, but it computes a **cross-correlation**: the
# kernel is not flipped. For an input $x$ of shape $(N, C_\text{in}, H, W)$, a weight $w$ of
# shape $(C_\text{out}, C_\text{in}, k_H, k_W)$, a bias $b$, stride $s$ and zero padding $p$,
# write $\tilde x$ for $x$ with $p$ rows of zeros added above and below and $p$ columns of zeros
# left and right. Then
#
# $$y_{n,o,i,j} = b_o + \sum_{c=1}^{C_\text{in}} \sum_{u=0}^{k_H-1} \sum_{v=0}^{k_W-1}
#   w_{o,c,u,v}\; \tilde x_{n,\,c,\,s i + u,\,s j + v},$$
#
# for every output position $(i, j)$ at which the kernel fits inside $\tilde x$.

# %%
import torch
import torch.nn.functional as F

# %% [markdown]
# ## Task 1 — `conv_output_size`
#
# Along one axis, the padded input has $H + 2p$ positions. The kernel's first tap may sit on
# positions $0, s, 2s, \dots$ as long as the whole kernel still fits, that is, as long as the
# position is at most $H + 2p - k$. Count those positions. (The result is rounded down: a last
# partial step that would leave the kernel hanging over the edge is not taken.)

# %%
def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Number of output positions of a convolution along one axis.

    Args:
        size: input length H along the axis (≥ 1).
        kernel: kernel length k along the axis (≥ 1, with k ≤ size + 2·padding).
        stride: step s between consecutive kernel positions (≥ 1).
        padding: zeros p added at *each* end of the axis (≥ 0).

    Returns:
        The output length as a Python ``int``, the same as ``torch.nn.functional.conv2d``
        produces along that axis.
    """
    # BEGIN SOLUTION
    return (size + 2 * padding - kernel) // stride + 1
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `conv2d`
#
# Implement the equation above for a batch of images. Two ways work well:
#
# - loop over the $k_H \times k_W$ kernel offsets $(u, v)$: for each offset, take the strided
#   slice of the padded input that this tap sees at every output position, multiply it by that
#   tap's $(C_\text{out}, C_\text{in})$ weights and sum over the input channels;
# - or cut all patches at once with `Tensor.unfold` and contract them with the weight
#   (`torch.einsum` or a matrix product).
#
# Autograd must flow through your operations to `x`, `weight` and `bias` (no `.detach()`,
# `.data` or NumPy). Zero padding may use `F.pad` or a tensor of zeros.

# %%
def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> torch.Tensor:
    """2-D cross-correlation of a batch of images, as ``torch.nn.functional.conv2d``.

    Args:
        x: (N, C_in, H, W) input, float32 or float64, on any device.
        weight: (C_out, C_in, kH, kW) kernels: ``weight[o, c]`` is the kernel that input
            channel c contributes to output channel o. Not flipped (cross-correlation).
        bias: optional (C_out,) tensor, one value added to every position of output channel o.
        stride: step between kernel positions, an int used for both axes. (The reference
            also accepts a pair (sH, sW); the checks pass ints only, so pairs are optional.)
        padding: zeros added on every side, an int: p rows above *and* below, p columns
            left *and* right. (A pair (pH, pW) is optional, as for ``stride``.)

    Returns:
        (N, C_out, H_out, W_out) tensor with the dtype and device of ``x``, where
        ``H_out = conv_output_size(H, kH, stride, padding)`` and likewise for W_out.
        Differentiable w.r.t. x, weight and bias: the checks back-propagate through your
        operations (no ``.detach()``, ``.data``, ``torch.no_grad()`` or numpy on the way).

    Forbidden: ``F.conv2d``, ``torch.conv2d``, ``nn.Conv2d`` and the other library
    convolutions (``torch.convolution``, ``F.conv1d``, ``F.conv_transpose2d``, ...),
    ``F.unfold`` / ``nn.Unfold`` and ``F.fold`` / ``nn.Fold``. Allowed: ``Tensor.unfold``,
    ``as_strided``, ``torch.einsum``, ``F.pad``, slicing, and Python loops over the kernel
    offsets.
    """
    # BEGIN SOLUTION
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    kh, kw = weight.shape[-2:]
    # x̃: ph zero rows above and below, pw zero columns left and right
    padded = F.pad(x, (pw, pw, ph, ph))
    h_pad, w_pad = padded.shape[-2:]
    # y[n, o, i, j] = b[o] + Σ_c Σ_u Σ_v w[o, c, u, v] · x̃[n, c, s·i + u, s·j + v]
    out = 0
    for u in range(kh):
        for v in range(kw):
            # x̃[n, c, s·i + u, s·j + v] for every output position (i, j): a strided slice
            # that starts at offset (u, v) and stops where the kernel would leave x̃
            window = padded[:, :, u : h_pad - kh + u + 1 : sh, v : w_pad - kw + v + 1 : sw]
            tap = weight[:, :, u, v]  # (C_out, C_in): the same weights at every position
            products = tap[None, :, :, None, None] * window[:, None]  # (N, C_out, C_in, H', W')
            out = out + products.sum(dim=2)  # sum over the input channels c
    if bias is not None:
        out = out + bias[None, :, None, None]  # one bias per output channel
    return out
    # END SOLUTION
