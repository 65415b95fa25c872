# %% [markdown]
# # 2.5 Batch normalization — exercise
#
# Ioffe & Szegedy (2015) standardise every channel of a layer's input with the mean and
# variance of the current mini-batch, then let the network rescale it with a learned gain
# $\gamma$ and shift $\beta$. For a channel $c$ whose $m$ values in the batch are
# $x_1, \dots, x_m$ (for images, every sample *and every pixel position* counts, so
# $m = N \cdot H \cdot W$):
#
# $$\mu_c = \frac{1}{m}\sum_i x_i, \qquad \sigma_c^2 = \frac{1}{m}\sum_i (x_i - \mu_c)^2,
#   \qquad y_i = \gamma_c \frac{x_i - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}} + \beta_c .$$
#
# At test time the batch statistics are replaced by running averages collected during training,
# so that a prediction no longer depends on the other samples of the batch. You will write the
# forward pass in both modes (with the running-average bookkeeping) and the training-mode
# backward pass by hand.

# %%
import torch

# %% [markdown]
# ## Task 1 — `batch_norm`
#
# Channels are on axis 1; the statistics run over every other axis. In **training** mode,
# normalise with the batch mean and the *biased* batch variance (divide by $m$), and update the
# running statistics **in place** with PyTorch's momentum convention,
#
# $$\text{running} \leftarrow (1 - \text{momentum})\cdot\text{running}
#   + \text{momentum}\cdot\text{batch statistic},$$
#
# where the batch statistic for the running variance is the *unbiased* variance
# $\frac{m}{m-1}\sigma_c^2$. In **eval** mode, normalise with the running statistics and leave
# them untouched. $\epsilon$ goes inside the square root; `weight` ($\gamma$) and `bias`
# ($\beta$) are applied when they are not None.

# %%
def batch_norm(
    x: torch.Tensor,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Batch normalization of (N, C) or (N, C, H, W) inputs over every axis but axis 1.

    Args:
        x: (N, C) or (N, C, H, W) input, float32 or float64, on any device.
        running_mean: (C,) running mean, same dtype and device as ``x``. Updated in place
            when ``training`` is True; used for normalising when it is False.
        running_var: (C,) running variance, likewise. Its update uses the unbiased batch
            variance (divide by m − 1, m = number of values per channel).
        weight: (C,) gain γ, or None for no gain.
        bias: (C,) shift β, or None for no shift.
        training: True: normalise with the batch statistics (biased variance, divide by m)
            and update the running statistics; False: normalise with the running statistics.
        momentum: running ← (1 − momentum)·running + momentum·batch statistic.
        eps: added to the variance inside the square root.

    Returns:
        A tensor of the shape, dtype and device of ``x``, differentiable w.r.t. x, weight and
        bias (the checks back-propagate through it with autograd). The running statistics are
        changed in place (training mode only); nothing new is assigned to the names.

    Forbidden: ``F.batch_norm``, ``torch.batch_norm``, ``torch.native_batch_norm``,
    ``nn.BatchNorm1d/2d/3d``.
    """
    # BEGIN SOLUTION
    channels = x.shape[1]
    # One column per channel, one row per (sample, pixel) position: (m, C)
    values = x.movedim(1, -1).reshape(-1, channels)
    if training:
        mean = values.mean(dim=0)
        var = values.var(dim=0, unbiased=False)
        m = values.shape[0]
        with torch.no_grad():  # bookkeeping, not part of the computation graph
            running_mean.mul_(1 - momentum).add_(momentum * mean)
            running_var.mul_(1 - momentum).add_(momentum * var * m / (m - 1))
    else:
        mean, var = running_mean, running_var
    shape = (1, channels) + (1,) * (x.dim() - 2)  # broadcast a (C,) vector over x
    x_hat = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)
    y = x_hat
    if weight is not None:
        y = y * weight.view(shape)
    if bias is not None:
        y = y + bias.view(shape)
    return y
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `batch_norm_backward`
#
# Given $g = \partial L / \partial y$ of a **training-mode** forward pass, derive the gradients
# by hand. Every $x_i$ of a channel moves that channel's $\mu_c$ and $\sigma_c^2$, so with
# $\hat x = (x - \mu_c)/s$, $s = \sqrt{\sigma_c^2 + \epsilon}$ and $\hat g = g\,\gamma_c$:
#
# $$\frac{\partial L}{\partial x} = \frac{1}{s}\Big(\hat g - \operatorname{mean}(\hat g)
#   - \hat x \operatorname{mean}(\hat g\, \hat x)\Big), \qquad
#   \frac{\partial L}{\partial \gamma_c} = \sum g\, \hat x, \qquad
#   \frac{\partial L}{\partial \beta_c} = \sum g,$$
#
# where each mean and sum runs over the $m$ values of channel $c$ (batch and, for images,
# height and width). The running statistics play no part in the gradients.

# %%
def batch_norm_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor | None,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of a training-mode batch_norm(x, ..., weight, bias, True, eps=eps), by hand.

    Args:
        grad_out: gradient of the loss w.r.t. the output, the shape of ``x``.
        x: (N, C) or (N, C, H, W), the forward input, float32 or float64; the results have
            its dtype and device.
        weight: (C,) gain used in the forward pass, or None.
        eps: as in the forward pass.

    Returns:
        ``(dx, dweight, dbias)``: dx has the shape of ``x``; dweight and dbias have shape (C,),
        summed over the batch and spatial axes. When ``weight`` is None the forward pass had
        no affine parameters to learn, and dweight and dbias are both None.

    Forbidden: autograd (``Tensor.backward``, ``torch.autograd.grad``,
    ``torch.autograd.backward``) and the library batch norms.
    """
    # BEGIN SOLUTION
    dims = [0, *range(2, x.dim())]  # every axis but the channel axis
    shape = [1, -1] + [1] * (x.dim() - 2)
    centred = x - x.mean(dim=dims, keepdim=True)
    inv_std = 1.0 / torch.sqrt((centred * centred).mean(dim=dims, keepdim=True) + eps)
    x_hat = centred * inv_std
    g = grad_out * weight.view(shape) if weight is not None else grad_out
    dx = inv_std * (
        g - g.mean(dim=dims, keepdim=True) - x_hat * (g * x_hat).mean(dim=dims, keepdim=True)
    )
    if weight is None:
        return dx, None, None
    dweight = (grad_out * x_hat).sum(dim=dims)
    dbias = grad_out.sum(dim=dims)
    return dx, dweight, dbias
    # END SOLUTION
