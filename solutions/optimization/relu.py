# %% [markdown]
# # 2.2 Rectified linear units — exercise
#
# Glorot, Bordes & Bengio (2011) replaced the sigmoid and tanh units of deep networks by the
# rectifier $\operatorname{relu}(x) = \max(0, x)$. Its derivative is a mask, 1 where the unit
# is active and 0 where it is not:
#
# $$\operatorname{relu}(x) = \begin{cases} x & x > 0 \\ 0 & x \le 0 \end{cases}, \qquad
#   \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}\,\mathbb{1}[x > 0] .$$
#
# At $x = 0$ the function has a kink and no derivative; like PyTorch we use the value 0 there.
# Gradients pass unchanged through active units and stop at silent ones, so they do not shrink
# layer after layer as with a saturating sigmoid. The silent units make the hidden code
# *sparse*: for a batch of hidden vectors $h \in \mathbb{R}^{B \times U}$ we measure the
# fraction of entries that are exactly zero, and the fraction of units that are zero for every
# sample of the batch ("dead" units).
#
# You will write ReLU as a `torch.autograd.Function` with a hand-written backward pass, and the
# two statistics.

# %%
import torch

# %% [markdown]
# ## Task 1 — `ReLU` and `relu`
#
# Write the forward pass (save what the backward pass needs with `ctx.save_for_backward`) and
# the backward pass, which returns $\partial L/\partial x$ given
# `grad_output` $= \partial L/\partial y$. The gradient is 0 where $x \le 0$, including at
# exactly $x = 0$. Then `relu(x)` applies the function (`ReLU.apply`).

# %%
class ReLU(torch.autograd.Function):
    """The rectifier y = max(0, x), elementwise, with a hand-written backward pass.

    ``ReLU.apply(x)`` takes a float32 or float64 tensor of any shape on any device and returns
    a new tensor of the same shape, dtype and device (the input is not modified). It is a
    ``torch.autograd.Function``: autograd calls your ``backward``, and the checks compare the
    gradient it gives. The backward
    pass passes ``grad_output`` through where x > 0 and returns 0 where x <= 0 (the gradient
    at exactly zero is 0).

    Forbidden: ``torch.relu``, ``torch.nn.functional.relu``, ``torch.nn.ReLU`` and their
    in-place and method forms.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        ctx.save_for_backward(x)
        return torch.where(x > 0, x, torch.zeros_like(x))
        # END SOLUTION

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        (x,) = ctx.saved_tensors
        active = x > 0
        return grad_output * active.to(grad_output.dtype)
        # END SOLUTION


def relu(x: torch.Tensor) -> torch.Tensor:
    """max(0, x) elementwise through :class:`ReLU`, so that autograd uses your backward.

    Args:
        x: float tensor of any shape, float32 or float64, on any device.

    Returns:
        Tensor of the same shape, dtype and device.
    """
    # BEGIN SOLUTION
    return ReLU.apply(x)
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `sparsity`
#
# The fraction of entries of `h` that are exactly zero, over all its elements, as a Python
# `float`. Tiny values such as $10^{-30}$ are not zero, and neither are negative values.

# %%
def sparsity(h: torch.Tensor) -> float:
    """Fraction of the entries of ``h`` that are exactly 0.

    Args:
        h: a non-empty tensor of any shape (typically a (B, U) batch of ReLU outputs), any
            dtype (float32 and float64 are checked).

    Returns:
        A Python float in [0, 1]: (number of entries equal to 0) / (number of entries).
    """
    # BEGIN SOLUTION
    zeros = (h == 0).sum().item()
    return zeros / h.numel()
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `dead_units`
#
# A unit (a column of the $(B, U)$ batch `h`, i.e. an index of the last axis) is dead on this
# batch when it is exactly zero for **every** sample. Return the fraction of the $U$ units that
# are dead, as a Python `float`.

# %%
def dead_units(h: torch.Tensor) -> float:
    """Fraction of units (last axis) that are exactly 0 for every sample of the batch.

    Args:
        h: (B, U) batch of hidden activations, B >= 1 samples and U >= 1 units, any dtype
            (float32 and float64 are checked).

    Returns:
        A Python float in [0, 1]: (number of units u with h[:, u] == 0 for all samples) / U.
    """
    # BEGIN SOLUTION
    silent = (h == 0).all(dim=0)  # (U,): True where the unit never fired on this batch
    return silent.sum().item() / silent.numel()
    # END SOLUTION
