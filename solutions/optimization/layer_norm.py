# %% [markdown]
# # 2.6 Layer normalization — exercise
#
# Ba, Kiros & Hinton (2016) normalise each sample over its own features instead of over the
# batch. Its statistics never depend on the other samples in a batch, so it works with a batch
# of one, at test time exactly as at training time, and inside recurrent networks.
#
# For an input $x \in \mathbb{R}^D$ (the last dimension):
#
# $$\mu = \frac{1}{D}\sum_i x_i, \qquad \sigma^2 = \frac{1}{D}\sum_i (x_i - \mu)^2, \qquad
#   y_i = \gamma_i \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta_i .$$
#
# You will write the forward pass, its backward pass by hand, and a module.

# %%
import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `layer_norm`
#
# Normalise over the last dimension with the *biased* variance (divide by $D$) and $\epsilon$
# inside the square root, then scale by `weight` and shift by `bias` when they are given.

# %%
def layer_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Layer normalization over the last dimension.

    Args:
        x: (..., D) input, float32 or float64, on any device.
        weight: optional (D,) gain γ.
        bias: optional (D,) shift β.
        eps: added to the variance inside the square root.

    Returns:
        (..., D) tensor, same dtype and device as ``x``, differentiable w.r.t. x, weight and
        bias (the checks back-propagate through it with autograd).

    Forbidden: ``F.layer_norm``, ``torch.layer_norm``, ``nn.LayerNorm``,
    ``torch.native_layer_norm``.
    """
    # BEGIN SOLUTION
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=False)
    x_hat = (x - mean) / torch.sqrt(var + eps)
    y = x_hat
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `layer_norm_backward`
#
# Given $g = \partial L / \partial y$, derive the gradients by hand. With
# $\hat x = (x-\mu)/\sigma$, $\sigma = \sqrt{\sigma^2+\epsilon}$ and $\hat g = g\,\gamma$:
#
# $$\frac{\partial L}{\partial x} = \frac{1}{\sigma}\Big(\hat g - \operatorname{mean}(\hat g)
#   - \hat x \operatorname{mean}(\hat g\, \hat x)\Big), \qquad
#   \frac{\partial L}{\partial \gamma} = \sum_{\text{rows}} g\, \hat x, \qquad
#   \frac{\partial L}{\partial \beta} = \sum_{\text{rows}} g,$$
#
# where the means run over the last dimension and the sums over every leading dimension.

# %%
def layer_norm_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of layer_norm(x, weight, bias, eps) w.r.t. x, weight and bias, by hand.

    Args:
        grad_out: (..., D) gradient of the loss w.r.t. the output.
        x: (..., D) the forward input, float32 or float64; the results have its dtype and
            device.
        weight: optional (D,) gain used in the forward pass.
        eps: as in the forward pass.

    Returns:
        ``(dx, dweight, dbias)``: dx (..., D); dweight and dbias (D,), summed over all
        leading dimensions, or both None when ``weight`` is None.

    Forbidden: autograd (``Tensor.backward``, ``torch.autograd.grad``) and the library
    layer norms.
    """
    # BEGIN SOLUTION
    mean = x.mean(dim=-1, keepdim=True)
    centred = x - mean
    inv_std = 1.0 / torch.sqrt((centred * centred).mean(dim=-1, keepdim=True) + eps)
    x_hat = centred * inv_std
    g = grad_out * weight if weight is not None else grad_out
    dx = inv_std * (
        g - g.mean(dim=-1, keepdim=True) - x_hat * (g * x_hat).mean(dim=-1, keepdim=True)
    )
    if weight is None:
        return dx, None, None
    leading = tuple(range(x.dim() - 1))
    dweight = (grad_out * x_hat).sum(dim=leading)
    dbias = grad_out.sum(dim=leading)
    return dx, dweight, dbias
    # END SOLUTION


# %% [markdown]
# ## Task 3 — the `LayerNorm` module
#
# Parameters `weight` (ones) and `bias` (zeros), both of shape `(dim,)`, so that a state dict
# copies to and from `torch.nn.LayerNorm(dim)`.

# %%
class LayerNorm(nn.Module):
    """Layer normalization over the last dimension with a learned gain and shift.

    Args:
        dim: size D of the normalised (last) dimension.
        eps: added to the variance inside the square root.

    ``forward(x)`` maps (..., D) to (..., D) using :func:`layer_norm`, in x's dtype (the
    checks cast the module with ``.double()`` for float64), differentiable w.r.t. x and the
    parameters.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        return layer_norm(x, self.weight, self.bias, self.eps)
        # END SOLUTION
