# %% [markdown]
# # 1.1 Back-propagation — exercise
#
# Rumelhart, Hinton & Williams (1986) showed how to train the *hidden* units of a layered
# network: run the network forward, measure the error at the output, and send that error back
# through the same connections to find how much each weight is to blame. You will write this
# by hand for a network with one hidden layer of logistic (sigmoid) units,
#
# $$h = \sigma(x W_1^\top + b_1), \qquad \hat y = \sigma(h W_2^\top + b_2), \qquad
#   \sigma(z) = \frac{1}{1 + e^{-z}},$$
#
# trained on the squared error averaged over a batch of $B$ patterns,
# $E = \frac{1}{B}\sum_{p}\tfrac12\lVert \hat y_p - y_p\rVert^2$. The *generalized delta rule*
# gives every unit a $\delta$ (the derivative of $E$ w.r.t. its net input):
#
# $$\delta^{\text{out}} = \frac{1}{B}(\hat y - y)\odot \hat y \odot (1 - \hat y), \qquad
#   \delta^{\text{hid}} = (\delta^{\text{out}} W_2) \odot h \odot (1 - h),$$
#
# and the gradient of a weight is the $\delta$ of the unit it feeds times the output of the unit
# it comes from: $\partial E/\partial W_2 = (\delta^{\text{out}})^\top h$,
# $\partial E/\partial W_1 = (\delta^{\text{hid}})^\top x$, and the bias gradients are the
# $\delta$s summed over the batch. Training then follows the rule with momentum,
# $\Delta w(t) = -\eta\, \partial E/\partial w + \alpha\, \Delta w(t-1)$.
#
# Autograd is forbidden in this exercise: the point is to do its job yourself.

# %%
import torch

# %% [markdown]
# ## Task 1 — `sigmoid`
#
# The logistic function $\sigma(z) = 1/(1 + e^{-z})$, elementwise. Its derivative is
# $\sigma'(z) = \sigma(z)(1 - \sigma(z))$, which is why the deltas above only need the unit's
# *output*. Make sure it returns 0 or 1 (never NaN) for very large negative or positive inputs
# (think about what `exp` does with ±1000). Use elementary operations: `torch.sigmoid` and its
# relatives are forbidden.

# %%
def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """The logistic function 1 / (1 + exp(-x)), elementwise.

    Args:
        x: tensor of any shape (0-dim included), float32 or float64, on any device.

    Returns:
        Tensor of the same shape, dtype and device, with values in [0, 1]; it saturates to
        exactly 0 or 1 (no NaN, no inf) for inputs of any magnitude.

    Forbidden: ``torch.sigmoid``, ``Tensor.sigmoid``, ``torch.special.expit``,
    ``torch.nn.functional.sigmoid``, ``torch.nn.Sigmoid`` (and the ``aten::sigmoid`` kernel
    however it is reached).
    """
    # BEGIN SOLUTION
    return 1.0 / (1.0 + torch.exp(-x))
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `forward_backward`
#
# One forward and one backward pass of the two-layer network. `params` holds
# `"W1"` (H, I), `"b1"` (H,), `"W2"` (O, H), `"b2"` (O,) (the layout of `nn.Linear`: one row
# per receiving unit). Return the loss, a 0-dim tensor, and the gradients of that loss w.r.t.
# every parameter, in a dict with the same keys and shapes as `params`. Use your `sigmoid`,
# and compute every gradient with the delta rule above, by hand.

# %%
def forward_backward(
    params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss and hand-computed gradients of a 2-layer sigmoid network on one batch.

    Args:
        params: ``{"W1": (H, I), "b1": (H,), "W2": (O, H), "b2": (O,)}``.
        x: (B, I) input patterns, one per row (B ≥ 1).
        y: (B, O) target outputs.
        All tensors share one floating dtype (float32 or float64) and one device.

    Returns:
        ``(loss, grads)``: ``loss`` is the 0-dim tensor
        ``(1/B) · Σ_p ½ · Σ_k (ŷ_pk − y_pk)²`` with ŷ = σ(σ(x W1ᵀ + b1) W2ᵀ + b2); ``grads``
        is a new dict with the keys of ``params`` holding ∂loss/∂W1 (H, I), ∂loss/∂b1 (H,),
        ∂loss/∂W2 (O, H), ∂loss/∂b2 (O,), in the input's dtype and device.

    Forbidden: autograd in any form (``Tensor.backward``, ``torch.autograd.grad``,
    ``torch.autograd.backward``, ``torch.func.grad`` / ``vjp`` / ``jacrev`` ...), and the
    library sigmoids listed under :func:`sigmoid`. The inputs are not modified.
    """
    # BEGIN SOLUTION
    w1, b1, w2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    batch = x.shape[0]
    # Forward pass: each unit's net input, then its output.
    net_hidden = x @ w1.T + b1  # (B, H)
    hidden = sigmoid(net_hidden)
    net_out = hidden @ w2.T + b2  # (B, O)
    out = sigmoid(net_out)
    error = out - y
    loss = 0.5 * (error * error).sum() / batch
    # Backward pass: delta = dE/d(net input), with sigmoid'(net) = out * (1 - out).
    delta_out = error * out * (1 - out) / batch  # (B, O)
    delta_hidden = (delta_out @ w2) * hidden * (1 - hidden)  # (B, H)
    grads = {
        "W1": delta_hidden.T @ x,
        "b1": delta_hidden.sum(dim=0),
        "W2": delta_out.T @ hidden,
        "b2": delta_out.sum(dim=0),
    }
    return loss, grads
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `momentum_step`
#
# The paper's generalized delta rule with momentum, for every parameter $w$:
#
# $$\Delta w(t) = -\eta\, g(t) + \alpha\, \Delta w(t-1), \qquad w(t) = w(t-1) + \Delta w(t),$$
#
# with $g(t)$ the gradient, $\eta$ = `lr` and $\alpha$ = `momentum`. `velocity` holds the
# previous changes $\Delta w(t-1)$ (zeros before the first step). Return **new** dicts: the
# updated parameters and the new velocity $\Delta w(t)$. Do not modify the tensors you are
# given (no in-place operations on them): the caller may still need the old values.

# %%
def momentum_step(
    params: dict[str, torch.Tensor],
    grads: dict[str, torch.Tensor],
    velocity: dict[str, torch.Tensor],
    lr: float,
    momentum: float,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """One step of gradient descent with momentum, as in the paper.

    Args:
        params: name -> tensor w(t−1), any shapes.
        grads: the same keys, ∂E/∂w at w(t−1), same shapes.
        velocity: the same keys, the previous weight changes Δw(t−1) (zeros at the start).
        lr: the learning rate η > 0.
        momentum: α in [0, 1).

    Returns:
        ``(new_params, new_velocity)``, two new dicts with the keys of ``params``:
        Δw(t) = −lr · grad + momentum · Δw(t−1) in ``new_velocity`` and w(t−1) + Δw(t) in
        ``new_params``, each in its parameter's dtype (float32 and float64 are checked). The
        input dicts and their tensors are left unchanged.
    """
    # BEGIN SOLUTION
    new_params, new_velocity = {}, {}
    for name, w in params.items():
        step = -lr * grads[name] + momentum * velocity[name]
        new_params[name] = w + step
        new_velocity[name] = step
    return new_params, new_velocity
    # END SOLUTION
