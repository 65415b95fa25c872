# %% [markdown]
# # 3.1 Recurrent networks and real-time recurrent learning — exercise
#
# A fully recurrent network of $H$ tanh units reads an input $x_t \in \mathbb{R}^I$ at every
# step and updates its state
#
# $$a_t = W h_{t-1} + U x_t + b, \qquad h_t = \tanh(a_t), \qquad t = 1, \dots, T,$$
#
# from a given $h_0$, with $W \in \mathbb{R}^{H \times H}$, $U \in \mathbb{R}^{H \times I}$
# and $b \in \mathbb{R}^H$. Every unit has a target at every step; the loss of a batch of $B$
# sequences is
#
# $$L = \frac{1}{B} \sum_{t=1}^{T} \sum_{\text{batch}} \tfrac12 \lVert h_t - y_t \rVert^2 .$$
#
# You will run the network, then compute $\partial L / \partial W$, $\partial L / \partial U$
# and $\partial L / \partial b$ **twice, by hand**: backwards through the stored states (BPTT)
# and forwards in time with the sensitivities of Williams & Zipser (1989) (RTRL). Both must
# equal what autograd would give.
#
# Shapes follow PyTorch's time-first convention: a batch is a row index, so in code the step
# reads `a = h_prev @ W.T + x_t @ U.T + b` for `h_prev` of shape $(B, H)$ and `x_t` of shape
# $(B, I)$.

# %%
import torch

# %% [markdown]
# ## Task 1 — `rnn_forward`
#
# Run the recurrence from $h_0$ over the whole sequence and return the $T$ new states
# $h_1, \dots, h_T$ stacked (not $h_0$). Use differentiable tensor operations only: the checks
# also back-propagate through your function with autograd, w.r.t. every argument.

# %%
def rnn_forward(
    W: torch.Tensor, U: torch.Tensor, b: torch.Tensor, xs: torch.Tensor, h0: torch.Tensor
) -> torch.Tensor:
    """Run a fully recurrent tanh network: h_t = tanh(h_{t-1} Wᵀ + x_t Uᵀ + b).

    Args:
        W: (H, H) recurrent weights; ``W[k, m]`` connects unit m at t−1 to unit k at t.
        U: (H, I) input weights.
        b: (H,) bias.
        xs: (T, B, I) inputs, time first, T >= 1.
        h0: (B, H) initial state.

    Returns:
        hs: (T, B, H) with ``hs[t - 1]`` = h_t for t = 1 … T (h_0 is not included), in the
        inputs' dtype (float32 or float64) and on their device. Gradients must flow from
        ``hs`` back to W, U, b, xs and h0 through autograd (no detaching, no in-place writes
        into a preallocated tensor that would break the graph, no ``.item()`` or numpy).

    Forbidden: ``torch.nn.RNN``, ``torch.nn.RNNCell``, ``torch.rnn_tanh``,
    ``torch.rnn_tanh_cell`` (the library RNNs).
    """
    # BEGIN SOLUTION
    T = xs.shape[0]
    drive = xs @ U.T + b  # U x_t + b for every step at once, (T, B, H)
    outputs = []
    h_prev = h0
    for t in range(T):
        a = h_prev @ W.T + drive[t]
        h = torch.tanh(a)
        outputs.append(h)
        h_prev = h
    return torch.stack(outputs)
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `bptt_gradients`: back-propagation through time
#
# Run the forward pass and **store** every state. With $e_t = (h_t - y_t)/B$ the error of the
# loss at step $t$, walk backwards from $t = T$ to $1$ carrying $\bar h_t = \partial L /
# \partial h_t$, which collects the error at step $t$ and what flows back from step $t + 1$:
#
# $$\bar h_T = e_T, \qquad \delta_t = \bar h_t \odot (1 - h_t^2), \qquad
#   \bar h_{t-1} = e_{t-1} + W^\top \delta_t ,$$
#
# where $\delta_t = \partial L / \partial a_t$ and $1 - h_t^2 = \tanh'(a_t)$. The gradients
# sum over time (and over the batch):
#
# $$\frac{\partial L}{\partial W} = \sum_t \delta_t h_{t-1}^\top, \qquad
#   \frac{\partial L}{\partial U} = \sum_t \delta_t x_t^\top, \qquad
#   \frac{\partial L}{\partial b} = \sum_t \delta_t .$$
#
# Note the $t = 1$ term of $\partial L / \partial W$: it uses the given $h_0$.

# %%
def bptt_gradients(
    W: torch.Tensor,
    U: torch.Tensor,
    b: torch.Tensor,
    xs: torch.Tensor,
    h0: torch.Tensor,
    targets: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss and gradients of the RNN above by back-propagation through time, by hand.

    Args:
        W, U, b, xs, h0: as in :func:`rnn_forward` (W (H, H), U (H, I), b (H,), xs (T, B, I),
            h0 (B, H)); h0 is a fixed input, not a parameter.
        targets: (T, B, H), ``targets[t - 1]`` = y_t, the target of every unit at step t.

    Returns:
        ``(loss, grads)``: ``loss`` = ½·Σ_{t,b,j} (h_t − y_t)² / B, the squared error summed
        over time, batch and units and divided by the batch size B only, a 0-dim tensor;
        ``grads`` a dict with exactly the keys ``"W"``, ``"U"``, ``"b"``: ∂loss/∂W, ∂loss/∂U,
        ∂loss/∂b with the shapes of W, U, b. Everything in the inputs' dtype (float32 or
        float64) and on their device. Checked against the exact gradients with the default
        tolerances (float64: rtol 1e-7, atol 1e-9; float32: rtol 1e-4, atol 1e-5) for
        T = 1 … 30, and the float64 loss to 1e-12 relative (it is a plain sum; any order of
        summation passes). The returned tensors need not carry an autograd graph.

    Forbidden: autograd in any form (``Tensor.backward``, ``torch.autograd.*``,
    ``torch.func.*``, the autograd engine however reached) and the library RNNs.
    ``.detach()`` and ``torch.no_grad()`` are allowed: only computing gradients is forbidden.
    """
    # BEGIN SOLUTION
    T, B = xs.shape[0], xs.shape[1]
    # forward pass, storing h_t and tanh'(a_t) = 1 − h_t² for every step
    drive = xs @ U.T + b  # U x_t + b for every step at once, (T, B, H)
    states, slopes = [], []
    h_prev = h0
    for t in range(T):
        a = h_prev @ W.T + drive[t]
        h = torch.tanh(a)
        d = 1 - h * h
        states.append(h)
        slopes.append(d)
        h_prev = h
    prevs = [h0] + states[:-1]  # prevs[t] = h_{t-1}
    hs = torch.stack(states)
    diff = hs - targets
    loss = 0.5 * (diff * diff).sum() / B
    err = diff / B  # e_t = ∂L/∂h_t through the loss at step t alone
    # backward pass: carry ∂L/∂h_t from step t + 1 down to step t
    grad_W, grad_U, grad_b = torch.zeros_like(W), torch.zeros_like(U), torch.zeros_like(b)
    carry = torch.zeros_like(h0)
    for t in reversed(range(T)):
        delta = (err[t] + carry) * slopes[t]  # δ_t = ∂L/∂a_t
        grad_W += delta.T @ prevs[t]
        grad_U += delta.T @ xs[t]
        grad_b += delta.sum(dim=0)
        carry = delta @ W  # Wᵀ δ_t, row form
    return loss, {"W": grad_W, "U": grad_U, "b": grad_b}
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `rtrl_gradients`: real-time recurrent learning
#
# Williams & Zipser carry, **forwards** in time, the sensitivity of every state to every
# parameter, $P^\theta_t = \partial h_t / \partial \theta$. For the recurrent weights it is a
# tensor with entries $P^W_t[k, i, j] = \partial h_t[k] / \partial W_{ij}$ (one such tensor
# per sequence of the batch), starting from $P_0 = 0$ because $h_0$ does not depend on the
# parameters. Differentiating $h_t = \tanh(W h_{t-1} + U x_t + b)$:
#
# $$P^W_t[k, i, j] = (1 - h_t[k]^2)\Big(\sum_m W_{km} P^W_{t-1}[m, i, j]
#     + \delta_{ki}\, h_{t-1}[j]\Big),$$
#
# $$P^U_t[k, i, j] = (1 - h_t[k]^2)\Big(\sum_m W_{km} P^U_{t-1}[m, i, j]
#     + \delta_{ki}\, x_t[j]\Big), \qquad
#   P^b_t[k, i] = (1 - h_t[k]^2)\Big(\sum_m W_{km} P^b_{t-1}[m, i] + \delta_{ki}\Big),$$
#
# with $\delta_{ki}$ the Kronecker delta. The first term carries the old sensitivities through
# $W$, the second is the immediate effect of the parameter on $a_t$. At every step, as soon as
# $h_t$ is known, add that step's contribution to the gradient:
#
# $$\frac{\partial L}{\partial \theta} \mathrel{+}= \sum_{\text{batch}} \sum_k e_t[k]\,
#   P^\theta_t[k, \dots], \qquad e_t = (h_t - y_t)/B .$$
#
# Williams & Zipser write all of this at once: gather the weights into one matrix
# $\Theta = [W \,|\, U \,|\, b]$ of shape $(H, H + I + 1)$ acting on
# $z_t = [h_{t-1}; x_t; 1]$, so that $a_t = \Theta z_t$, and the three recurrences become one,
# with immediate term $\delta_{ki}\, z_t[j]$. Either form is fine.
#
# No state is stored and nothing runs backwards; the price is the size of $P^W$ ($H^3$
# numbers per sequence) and the work of the sum over $m$ ($H^4$ per step).

# %%
def rtrl_gradients(
    W: torch.Tensor,
    U: torch.Tensor,
    b: torch.Tensor,
    xs: torch.Tensor,
    h0: torch.Tensor,
    targets: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss and gradients of the RNN above by real-time recurrent learning, by hand.

    Same arguments and return value as :func:`bptt_gradients` (loss ½·Σ (h_t − y_t)² / B as
    a 0-dim tensor; grads ``{"W", "U", "b"}`` with the parameters' shapes; inputs' dtype and
    device; the same tolerances), computed forwards in time: carry the sensitivities
    ∂h_t/∂W (B, H, H, H), ∂h_t/∂U (B, H, H, I) and ∂h_t/∂b (B, H, H) from step to step and
    accumulate the gradient at every step. The result must equal BPTT's up to rounding
    (checked in float64 to 1e-9 relative, 1e-12 absolute).
    How you lay the sensitivities out in memory is up to you (three tensors as above, or
    one for Θ = [W | U | b] of shape (B, H, H, H + I + 1)); storing the states and running
    backwards is not RTRL.

    Forbidden: autograd in any form (``Tensor.backward``, ``torch.autograd.*``,
    ``torch.func.*``, the autograd engine however reached) and the library RNNs.
    ``.detach()`` and ``torch.no_grad()`` are allowed: only computing gradients is forbidden.
    """
    # BEGIN SOLUTION
    T, B = xs.shape[0], xs.shape[1]
    H, I = U.shape
    eye = torch.eye(H, dtype=W.dtype, device=W.device)
    ones = torch.ones(B, 1, dtype=W.dtype, device=W.device)
    # As in the paper, gather all weights into one matrix Θ = [W | U | b] of shape
    # (H, H + I + 1), acting on z_t = [h_{t-1}; x_t; 1]: a_t = Θ z_t. The sensitivity
    # P[n, k, i, j] = ∂h_t[n, k] / ∂Θ[i, j] (Williams & Zipser's p^k_ij, one per sequence n)
    # is zero at t = 0 because h0 does not depend on Θ.
    P = torch.zeros(B, H, H, H + I + 1, dtype=W.dtype, device=W.device)
    grad = torch.zeros(H, H + I + 1, dtype=W.dtype, device=W.device)
    loss = torch.zeros((), dtype=W.dtype, device=W.device)
    drive = xs @ U.T + b  # U x_t + b for every step at once, (T, B, H)
    h_prev = h0
    for t in range(T):
        a = h_prev @ W.T + drive[t]
        h = torch.tanh(a)
        d = 1 - h * h
        z = torch.cat([h_prev, xs[t], ones], dim=1)  # (B, H + I + 1)
        carried = (W @ P.reshape(B, H, -1)).reshape(P.shape)  # Σ_m W_km P_{t-1}[m, i, j]
        immediate = eye[None, :, :, None] * z[:, None, None, :]  # δ_ki z_t[j]
        P = d[:, :, None, None] * (carried + immediate)
        diff = h - targets[t]
        loss = loss + 0.5 * (diff * diff).sum() / B
        err = diff / B
        grad = grad + (err[:, :, None, None] * P).sum(dim=(0, 1))  # Σ_n Σ_k e_t[k] P[k, i, j]
        h_prev = h
    return loss, {"W": grad[:, :H], "U": grad[:, H:H + I], "b": grad[:, H + I]}
    # END SOLUTION
