# %% [markdown]
# # 5.3 StyleGAN2: weight modulation and demodulation — exercise
#
# StyleGAN (unit 5.2) controls each layer of its generator with AdaIN: normalise every
# feature map of every sample to zero mean and unit variance, then scale and shift it by the
# style. Karras et al. (2019) trace StyleGAN's "droplet" artifacts to that normalisation of
# the *actual* activations, and replace it with an operation on the *weights* of the
# convolution that follows. With a convolution weight $w_{o,i,k_h,k_w}$ ($o$ the output
# channel, $i$ the input channel) and a style vector $s_b$ of one scale per **input**
# channel for sample $b$:
#
# $$\text{modulation:}\qquad w'_{b,o,i,k_h,k_w} = s_{b,i}\; w_{o,i,k_h,k_w},$$
#
# $$\text{demodulation:}\qquad w''_{b,o,i,k_h,k_w} = \frac{w'_{b,o,i,k_h,k_w}}
#   {\sqrt{\sum_{i,k_h,k_w} \big(w'_{b,o,i,k_h,k_w}\big)^2 + \epsilon}} .$$
#
# If the input activations are i.i.d. with unit variance, output channel $o$ of the
# modulated convolution has standard deviation $\sqrt{\sum_{i,k_h,k_w} w'^2}$ (the sum runs
# over everything that feeds one output: input channels and kernel taps), so dividing by it
# brings every output channel back to unit variance: the job AdaIN did, now done on
# statistics the weights imply instead of on the activations themselves.
#
# Every sample of the batch now has **its own** weight $w''_b$. The paper's implementation
# (and yours) runs them all in **one grouped convolution**: fold the batch into the channel
# axis, giving an input of shape $(1, B \cdot C_\text{in}, H, W)$ and a weight of shape
# $(B \cdot C_\text{out}, C_\text{in}, k, k)$, and call `F.conv2d(..., groups=B)`, so that
# group $b$ sees only sample $b$'s channels and sample $b$'s weight.

# %%
import torch
import torch.nn.functional as F

# %% [markdown]
# ## Task 1 — `modulated_conv2d`
#
# Write the modulated (and, by default, demodulated) convolution above: a stride-1
# convolution with zero padding $k // 2$, so that an odd kernel keeps the spatial size.
# The convolution is a cross-correlation, as `F.conv2d` computes it (no kernel flip).
#
# - Modulate: scale the weight's **input-channel** axis (axis 1) by each sample's style,
#   giving a $(B, C_\text{out}, C_\text{in}, k, k)$ tensor of per-sample weights.
# - Demodulate (when `demodulate=True`): divide each $(b, o)$ filter by the root of its sum
#   of squares over $(i, k_h, k_w)$, with $\epsilon$ **inside** the root. When
#   `demodulate=False` the modulated weights $w'$ are used as they are.
# - Convolve every sample with its own weights in one grouped `F.conv2d` call, and unfold
#   the result back to $(B, C_\text{out}, H, W)$. Mind the reshape order: batch first, then
#   channels, for the input, the weight and the output alike.
#
# Not allowed: `torch.nn.functional.normalize` and the weight-norm helpers
# (`torch._weight_norm`, `torch.norm_except_dim`, `torch.nn.utils.weight_norm`,
# `torch.nn.utils.parametrizations.weight_norm`): write the sum of squares and the root.
# `F.conv2d` is allowed (and expected).

# %%
def modulated_conv2d(x, weight, styles, demodulate=True, eps=1e-8):
    """StyleGAN2's modulated convolution: per-sample weights s_{b,i}·w_{o,i}, optionally
    demodulated, applied to each sample of the batch in one grouped convolution.

    Args:
        x: (B, C_in, H, W) input feature maps, B ≥ 1 (B = 1 is checked).
        weight: (C_out, C_in, k, k) convolution weight shared by the batch, k odd
            (1, 3 and 5 are checked); C_out may differ from C_in.
        styles: (B, C_in) one scale per sample and INPUT channel (s_{b,i}); any real values,
            including zeros and negative values.
        demodulate: if True (the default), divide each per-sample filter (b, o) by
            sqrt(Σ_{i,kh,kw} w'² + eps); if False, use the modulated weights w' as they are
            (the styles still scale the input channels).
        eps: a small positive float added to the sum of squares INSIDE the square root
            (so that an all-zero filter gives 0, not NaN). Checks pass large values such as
            0.5 and 2 as well, where sqrt(Σ w'² + eps) and sqrt(Σ w'²) + eps differ.

    Returns:
        (B, C_out, H, W): out[b] = conv2d(x[b], w_b) with stride 1 and zero padding k // 2,
        where w_b is sample b's modulated (and demodulated) weight. No bias, no activation.
        x, weight and styles share one floating dtype (float32 or float64) and one device;
        the result has that dtype and device (float64 stays float64).

    Differentiable (autograd) w.r.t. x, weight and styles: the checks back-propagate
    through the output to all three. The inputs must not be modified in place (compute new
    tensors: w = weight * s, not weight.mul_(s)).

    The expected implementation is ONE grouped convolution over the batch
    (``F.conv2d(x.reshape(1, B * C_in, H, W), w.reshape(B * C_out, C_in, k, k),
    padding=k // 2, groups=B)``); the checks compare results only, so a per-sample loop
    also scores, but it is not what the paper (or this exercise) asks for.

    Forbidden: ``torch.nn.functional.normalize``, ``torch._weight_norm``,
    ``torch.norm_except_dim``, ``torch.nn.utils.weight_norm`` and
    ``torch.nn.utils.parametrizations.weight_norm``.
    """
    # BEGIN SOLUTION
    B, C_in, H, W = x.shape
    C_out, _, k, _ = weight.shape
    # modulation: w'_{b,o,i} = s_{b,i} * w_{o,i}, shape (B, C_out, C_in, k, k)
    w = weight[None] * styles[:, None, :, None, None]
    if demodulate:
        # demodulation: w'' = w' / sqrt(sum over (i, kh, kw) of w'^2 + eps)
        w = w * torch.rsqrt(w.square().sum(dim=(2, 3, 4), keepdim=True) + eps)
    # one grouped convolution: the batch folded into the channel axis, one group per sample
    x = x.reshape(1, B * C_in, H, W)
    w = w.reshape(B * C_out, C_in, k, k)
    out = F.conv2d(x, w, padding=k // 2, groups=B)
    return out.reshape(B, C_out, *out.shape[2:])
    # END SOLUTION
