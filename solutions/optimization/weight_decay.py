# %% [markdown]
# # 2.1 Weight decay — exercise
#
# Krogh & Hertz (1991) add to the training error $E_0(w)$ a penalty on the size of the weights,
#
# $$E(w) = E_0(w) + \frac{\lambda}{2}\sum_i w_i^2 ,$$
#
# so that gradient descent with learning rate $\eta$ becomes
# $w \leftarrow w - \eta\,(\nabla E_0(w) + \lambda w)$: besides following the gradient, every
# step shrinks ("decays") each weight by the factor $1 - \eta\lambda$. Weights that the data
# do not need decay towards zero, and the network fits less of the noise.
#
# There are three ways to write it. Add the penalty to the loss and let autograd produce
# $\lambda w$; add $\lambda w$ to the gradient inside the optimizer step ("coupled" L2, what
# `torch.optim.SGD(weight_decay=λ)` does); or shrink the weights directly next to the gradient
# step ("decoupled" decay, $w \leftarrow w - \eta\lambda w - \eta g$, Loshchilov & Hutter's
# form). For plain SGD the three give the same update; for adaptive optimizers such as Adam
# they do not. You will write all three.

# %%
import torch

# %% [markdown]
# ## Task 1 — `l2_penalty`
#
# Return $\frac{\lambda}{2}\sum_{p}\lVert p\rVert^2$ over every tensor $p$ in `params`, where
# $\lVert p\rVert^2$ is the sum of the squares of *all* its entries, as a 0-dim tensor that
# stays connected to the parameters (so that `(loss + l2_penalty(...)).backward()` adds
# $\lambda p$ to each `p.grad`).

# %%
def l2_penalty(params, weight_decay: float) -> torch.Tensor:
    """The L2 penalty λ/2 · Σ_p ‖p‖² of a collection of tensors.

    Args:
        params: an iterable of at least one tensor (e.g. ``model.parameters()``), all of the
            same floating dtype (float32 or float64) and on the same device; any shapes,
            0-dim included.
        weight_decay: the coefficient λ ≥ 0, a Python float.

    Returns:
        A 0-dim tensor in the params' dtype and on their device, differentiable w.r.t. every
        tensor in ``params`` (its gradient w.r.t. p is λ·p). Do not turn it into a Python
        number.
    """
    # BEGIN SOLUTION
    squared_norm = sum((p**2).sum() for p in params)
    return 0.5 * weight_decay * squared_norm
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `sgd_step_` (coupled L2, as `torch.optim.SGD`)
#
# One step of plain SGD (no momentum) with the weight decay folded into the gradient, exactly
# what `torch.optim.SGD(params, lr=lr, weight_decay=weight_decay).step()` does. For every
# tensor $p$ that has a gradient $\nabla p$ (`p.grad`):
#
# $$g = \nabla p + \lambda\, p, \qquad p \leftarrow p - \eta\, g .$$
#
# Update each tensor **in place** (the caller's tensors must change), skip tensors whose
# `p.grad` is `None` (they are frozen or unused, and are not decayed either), and leave
# `p.grad` itself unchanged. The trailing underscore follows PyTorch's naming of in-place
# operations.

# %%
@torch.no_grad()
def sgd_step_(params, lr: float, weight_decay: float = 0.0) -> None:
    """SGD with coupled L2 weight decay, in place, as ``torch.optim.SGD(...).step()``.

    Args:
        params: a list of leaf tensors (float32 or float64, any device), each with its
            gradient in ``.grad`` or ``.grad is None``.
        lr: the learning rate η > 0.
        weight_decay: the coefficient λ ≥ 0 added as λ·p to each gradient.

    Updates every tensor with a gradient in place: p ← p − η (∇p + λ p). Tensors whose
    ``.grad`` is None are left untouched; ``.grad`` is never modified. Returns None.

    Forbidden: ``torch.optim.SGD`` (and its ``step``) and the functional
    ``torch.optim._functional.sgd``.
    """
    # BEGIN SOLUTION
    for p in params:
        if p.grad is None:
            continue
        g = p.grad + weight_decay * p
        p.sub_(lr * g)
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `decoupled_decay_step_`
#
# The same step written as a separate shrink of the weights next to the gradient step, both
# computed from the weights *before* the step:
#
# $$w \leftarrow w - \eta\lambda\, w - \eta\, \nabla w .$$
#
# Again in place, and skipping tensors without a gradient. (For SGD this equals Task 2; with
# Adam the decoupled form is AdamW, and the two differ.)

# %%
@torch.no_grad()
def decoupled_decay_step_(params, lr: float, weight_decay: float) -> None:
    """One gradient step with decoupled weight decay, in place.

    Args:
        params: a list of leaf tensors (float32 or float64, any device), each with its
            gradient in ``.grad`` or ``.grad is None``.
        lr: the learning rate η > 0.
        weight_decay: the decay rate λ ≥ 0; each step removes η·λ·w from w.

    Updates every tensor with a gradient in place: w ← w − η λ w − η ∇w, both terms from the
    weights before the step. Tensors whose ``.grad`` is None are left untouched. Returns None.

    Forbidden: ``torch.optim.SGD`` (and its ``step``) and the functional
    ``torch.optim._functional.sgd``.
    """
    # BEGIN SOLUTION
    for w in params:
        if w.grad is None:
            continue
        w.sub_(lr * weight_decay * w + lr * w.grad)
    # END SOLUTION
