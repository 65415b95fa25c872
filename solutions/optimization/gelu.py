# %% [markdown]
# # 2.7 Gaussian error linear units — exercise
#
# ReLU multiplies its input by a hard 0/1 gate, $\mathbb{1}[x>0]$. Hendrycks & Gimpel (2016)
# multiply it by a soft one instead: the probability $\Phi(x)$ that a standard normal variable
# falls below $x$. That is the expected value of multiplying $x$ by a random
# Bernoulli($\Phi(x)$) mask. With the error function,
#
# $$\operatorname{GELU}(x) = x\,\Phi(x)
#   = \tfrac12\,x\Big(1 + \operatorname{erf}\big(x/\sqrt2\big)\Big),
#   \qquad \Phi'(x) = \varphi(x) = \frac{1}{\sqrt{2\pi}}\,e^{-x^2/2}.$$
#
# The paper also gives two cheaper approximations of $\Phi(x)$, one with $\tanh$ and one with the
# logistic sigmoid. You will write the exact GELU, both approximations and the analytic
# derivative, using only elementary tensor operations (`torch.erf`, `torch.tanh`,
# `torch.sigmoid`, `torch.exp` are fine).

# %%
import math

import torch

# %% [markdown]
# ## Task 1 — `gelu`
#
# The exact GELU, $\tfrac12\,x\,(1 + \operatorname{erf}(x/\sqrt2))$, elementwise. It must stay
# finite and correct for large inputs: $\operatorname{GELU}(10^4) = 10^4$ and
# $\operatorname{GELU}(-10^4) = 0$.

# %%
def gelu(x: torch.Tensor) -> torch.Tensor:
    """Exact Gaussian error linear unit, x · Φ(x), elementwise.

    Args:
        x: tensor of any shape, float32 or float64, on any device.

    Returns:
        Tensor of the same shape, dtype and device as ``x``. Gradients must flow through it
        by autograd.

    Forbidden: ``torch.nn.functional.gelu`` and ``torch.nn.GELU``.
    """
    # BEGIN SOLUTION
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `gelu_tanh`
#
# The tanh approximation, used by the original BERT and GPT-2 code:
#
# $$\operatorname{GELU}(x) \approx \tfrac12\,x\left(1 + \tanh\!\Big(\sqrt{2/\pi}\,
#   \big(x + 0.044715\,x^3\big)\Big)\right).$$

# %%
def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU with the tanh approximation of Φ, elementwise (torch's approximate='tanh').

    Args:
        x: tensor of any shape, float32 or float64, on any device.

    Returns:
        Tensor of the same shape, dtype and device as ``x``; finite for |x| up to 1e4, and
        differentiable w.r.t. ``x`` with an autograd gradient that is finite there too.

    Forbidden: ``torch.nn.functional.gelu`` and ``torch.nn.GELU``.
    """
    # BEGIN SOLUTION
    inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
    return 0.5 * x * (1.0 + torch.tanh(inner))
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `gelu_sigmoid`
#
# The sigmoid approximation $\Phi(x) \approx \sigma(1.702\,x)$, so
# $\operatorname{GELU}(x) \approx x\,\sigma(1.702\,x)$. Use `torch.sigmoid`, which does not
# overflow for large $|x|$.

# %%
def gelu_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """GELU with the logistic approximation Φ(x) ≈ σ(1.702 x), elementwise.

    Args:
        x: tensor of any shape, float32 or float64, on any device.

    Returns:
        Tensor of the same shape, dtype and device as ``x``; finite for |x| up to 1e4, and
        differentiable w.r.t. ``x`` with an autograd gradient that is finite there too.
    """
    # BEGIN SOLUTION
    return x * torch.sigmoid(1.702 * x)
    # END SOLUTION


# %% [markdown]
# ## Task 4 — `gelu_grad`
#
# The derivative of the exact GELU by the product rule,
#
# $$\frac{d}{dx}\,x\,\Phi(x) = \Phi(x) + x\,\varphi(x),$$
#
# written out with `torch.erf` and `torch.exp`, not with autograd.

# %%
def gelu_grad(x: torch.Tensor) -> torch.Tensor:
    """Derivative of the exact GELU, Φ(x) + x·φ(x), elementwise, computed analytically.

    Args:
        x: tensor of any shape, float32 or float64, on any device.

    Returns:
        Tensor of the same shape, dtype and device as ``x``: 1 for large positive x, 0 for
        large negative x, 1/2 at 0.

    Forbidden: autograd (``torch.autograd.grad``, ``Tensor.backward``) and the library GELU
    with its backward.
    """
    # BEGIN SOLUTION
    cdf = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
    pdf = torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return cdf + x * pdf
    # END SOLUTION
