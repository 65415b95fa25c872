# %% [markdown]
# # 3.9 Sparsely-gated mixture of experts — exercise
#
# Shazeer et al. (2017) grow a layer's parameter count without growing its compute: the layer
# holds $E$ expert networks $E_1, \dots, E_E$, and a trainable gate sends each input $x$ (a row
# vector of size $d$) to only $k \ll E$ of them. With gate matrices $W_g, W_{noise}$ of shape
# $(d, E)$, a standard normal draw $\varepsilon \in \mathbb{R}^E$ per input and
# $\operatorname{Softplus}(z) = \log(1 + e^z)$:
#
# $$\begin{aligned}
# H(x)_i &= (x W_g)_i + \varepsilon_i \cdot \operatorname{Softplus}\big((x W_{noise})_i\big), \\
# G(x) &= \operatorname{Softmax}\big(\operatorname{KeepTopK}(H(x), k)\big), \qquad
# \operatorname{KeepTopK}(v, k)_i = \begin{cases} v_i & \text{if } v_i \text{ is among the top } k
# \text{ of } v \\ -\infty & \text{otherwise,} \end{cases} \\
# y &= \sum_{i=1}^{E} G(x)_i \, E_i(x) \quad \text{(only the } k \text{ experts with } G(x)_i > 0
# \text{ are run).}
# \end{aligned}$$
#
# Left alone, the gate learns to favour the few experts that happen to be good early, which
# makes them better still. Two auxiliary losses fight this: over a batch $X$, the *importance*
# of expert $i$ is $\sum_{x \in X} G(x)_i$, its smooth *load* is the expected number of inputs
# it receives, and each loss is a weight times the squared coefficient of variation
# $\mathrm{CV}^2 = \mathrm{Var} / \mathrm{Mean}^2$ of that vector over the experts.
#
# Conventions for every task: a batch of inputs is a 2-D tensor `x` of shape $(B, d)$, the gate
# matrices `w_gate` and `w_noise` are $(d, E)$, and the noise is a $(B, E)$ tensor. Every
# function accepts float32 and float64 on any device and returns tensors of `x`'s (or `v`'s,
# `gates`') dtype and device. Gradients must flow (no `.detach()`, `.item()`, numpy or
# in-place writes into tensors that autograd needs).

# %%
import math

import torch
import torch.nn.functional as F
from torch import nn

# %% [markdown]
# ## Task 1 — `noisy_top_k_gating`
#
# Compute the gate values $G(x)$ for a batch. The clean logits are $x W_g$. When `noise` is
# given (a $(B, E)$ tensor of standard normal draws, one row per input), add it scaled by the
# learned noise level: $H = x W_g + \text{noise} \odot \operatorname{Softplus}(x W_{noise})$;
# when `noise` is None, $H = x W_g$ (and `w_noise` is not used). In each row keep the $k$
# largest entries of $H$, take the softmax over those $k$ values only, and set every other
# entry to exactly $0$, so each row has $k$ positive gates that sum to one.
#
# **Ties.** When several entries of a row are equal, the lower expert index counts as larger:
# the kept set is the first $k$ of the row ordered by value, descending, with equal values in
# index order. `torch.topk` does not promise which of tied values it returns;
# `torch.sort(h, dim=1, descending=True, stable=True)` does (a stable sort keeps equal values in
# their original order).

# %%
def noisy_top_k_gating(
    x: torch.Tensor,
    w_gate: torch.Tensor,
    w_noise: torch.Tensor | None,
    k: int,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Noisy top-k gating of Shazeer et al. (2017), eqs. (3)-(5).

    Args:
        x: (B, d) inputs, float32 or float64.
        w_gate: (d, E) gate weights W_g, same dtype and device as x.
        w_noise: (d, E) noise weights W_noise; only used when ``noise`` is given (may be None
            otherwise).
        k: number of experts kept per row, 1 <= k <= E.
        noise: None, or a (B, E) tensor of standard normal draws (the epsilon of eq. (4)).

    Returns:
        gates (B, E) in x's dtype and device: in each row the softmax of the k largest entries
        of H = x @ w_gate + noise * softplus(x @ w_noise) (H = x @ w_gate without noise),
        placed at their expert positions, and exactly 0 elsewhere. Ties in H: the lower index
        is kept first. The gates are differentiable w.r.t. x, w_gate and w_noise through the
        kept logits (nothing detached).
    """
    # BEGIN SOLUTION
    clean = x @ w_gate  # (B, E)
    if noise is not None:
        h = clean + noise * F.softplus(x @ w_noise)  # eq. (4)
    else:
        h = clean
    top_values, top_indices = h.sort(dim=1, descending=True, stable=True)
    top_values, top_indices = top_values[:, :k], top_indices[:, :k]  # KeepTopK, eq. (5)
    kept = torch.softmax(top_values, dim=1)  # softmax over the k kept logits, eq. (3)
    return torch.zeros_like(h).scatter(1, top_indices, kept)
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `cv_squared`
#
# The squared coefficient of variation of a 1-D vector $v$ of $n$ values:
#
# $$\mathrm{CV}^2(v) = \frac{\mathrm{Var}(v)}{\mathrm{Mean}(v)^2 + 10^{-10}}, \qquad
# \mathrm{Var}(v) = \frac{1}{n - 1} \sum_{j} \big(v_j - \mathrm{Mean}(v)\big)^2 ,$$
#
# with the **unbiased** variance (divide by $n - 1$, `torch.var`'s default). A vector of a
# single element has no spread: return $0$. The $10^{-10}$ keeps an all-zero vector at $0$
# instead of NaN. The result must be differentiable w.r.t. $v$ (it is a loss).

# %%
def cv_squared(v: torch.Tensor) -> torch.Tensor:
    """Squared coefficient of variation var(v) / (mean(v)^2 + 1e-10).

    Args:
        v: 1-D tensor of n >= 1 values, float32 or float64.

    Returns:
        A 0-dim tensor in v's dtype and device: the unbiased variance of v (divided by n - 1)
        over (mean(v)^2 + 1e-10); exactly 0 when n == 1. Differentiable w.r.t. v.
    """
    # BEGIN SOLUTION
    if v.numel() == 1:
        return torch.zeros((), dtype=v.dtype, device=v.device)
    return v.var() / (v.mean() ** 2 + 1e-10)
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `importance_loss`
#
# The importance of expert $i$ over a batch is the sum of its gate values,
# $\mathrm{Importance}_i = \sum_{b} G(x_b)_i$ (a vector of size $E$), and the importance loss
# of eq. (6) is
#
# $$L_{importance} = w_{importance} \cdot \mathrm{CV}^2(\mathrm{Importance}) .$$
#
# You may call your `cv_squared`.

# %%
def importance_loss(gates: torch.Tensor, weight: float) -> torch.Tensor:
    """Importance loss, eq. (6) of Shazeer et al. (2017).

    Args:
        gates: (B, E) gate values (rows of G(x)), float32 or float64.
        weight: the scalar w_importance (a Python float).

    Returns:
        A 0-dim tensor in gates' dtype and device: weight * cv_squared(gates.sum(0)), with the
        sum over the batch dimension. Differentiable w.r.t. gates.
    """
    # BEGIN SOLUTION
    importance = gates.sum(0)  # (E,)
    return weight * cv_squared(importance)
    # END SOLUTION


# %% [markdown]
# ## Task 4 — `smooth_load`
#
# Importance rewards equal *gate mass*, but an expert can get a large gate on a few inputs and
# nothing on the rest. What the hardware cares about is the *number of inputs* each expert
# receives, a count, and a count has no useful gradient. The paper's Appendix A smooths it: for
# each input $x$ and expert $i$, hold every noise value of that row fixed except $\varepsilon_i$
# and ask how likely expert $i$ is to be among the top $k$ when $\varepsilon_i$ is drawn
# afresh. Expert $i$ is kept when $H(x)_i$ beats the $k$-th largest of the *other* entries,
#
# $$\mathrm{kth\_excluding}(H(x), k, i) = \begin{cases}
# \text{the } (k{+}1)\text{-th largest entry of } H(x) & \text{if } i \text{ is among the top } k
# \text{ of } H(x), \\ \text{the } k\text{-th largest entry of } H(x) & \text{otherwise,}
# \end{cases}$$
#
# and since $H(x)_i = (x W_g)_i + \varepsilon_i \operatorname{Softplus}((x W_{noise})_i)$ with
# $\varepsilon_i \sim \mathcal{N}(0, 1)$,
#
# $$P(x, i) = \Phi\!\left(\frac{(x W_g)_i - \mathrm{kth\_excluding}(H(x), k, i)}
# {\operatorname{Softplus}((x W_{noise})_i)}\right), \qquad
# \mathrm{Load}_i = \sum_{x \in X} P(x, i),$$
#
# with $\Phi$ the standard normal CDF, $\Phi(z) = \tfrac12\big(1 + \operatorname{erf}(z /
# \sqrt 2)\big)$. "Among the top $k$" uses the same rule as Task 1 (ties: lower index first).
# When $k = E$ every expert is always kept: $P(x, i) = 1$ and $\mathrm{Load}_i = B$.
#
# The point of this estimator is that it is **differentiable** w.r.t. `x`, `w_gate` and
# `w_noise` (through $(x W_g)_i$, through the threshold taken from $H$, and through the
# softplus), so the load can be balanced by gradient descent. Do not detach anything.

# %%
def smooth_load(
    x: torch.Tensor,
    w_gate: torch.Tensor,
    w_noise: torch.Tensor,
    noise: torch.Tensor,
    k: int,
) -> torch.Tensor:
    """Smooth load estimator of Shazeer et al. (2017), Appendix A, eqs. (8)-(10).

    Args:
        x: (B, d) inputs, float32 or float64.
        w_gate: (d, E) gate weights W_g.
        w_noise: (d, E) noise weights W_noise.
        noise: (B, E) standard normal draws, the same epsilon that made the gates:
            H = x @ w_gate + noise * softplus(x @ w_noise).
        k: number of experts kept per row, 1 <= k <= E.

    Returns:
        load (E,) in x's dtype and device: load_i = sum over the batch of
        Phi(((x @ w_gate)_i - kth_excluding(H, k, i)) / softplus(x @ w_noise)_i), where
        kth_excluding is the (k+1)-th largest entry of the row of H if i is among its top k
        (ties: lower index first, as in noisy_top_k_gating), else the k-th largest; Phi is the
        standard normal CDF. For k == E every entry is B. Differentiable w.r.t. x, w_gate and
        w_noise (the threshold taken from H included).
    """
    # BEGIN SOLUTION
    clean = x @ w_gate  # (B, E)
    noise_std = F.softplus(x @ w_noise)  # (B, E)
    h = clean + noise * noise_std
    batch, num_experts = h.shape
    if k == num_experts:  # every expert is always kept
        return torch.full((num_experts,), float(batch), dtype=x.dtype, device=x.device)
    sorted_h, order = h.sort(dim=1, descending=True, stable=True)
    kth = sorted_h[:, k - 1 : k]  # k-th largest of each row, (B, 1)
    kth_next = sorted_h[:, k : k + 1]  # (k+1)-th largest, (B, 1)
    in_top_k = torch.zeros_like(h, dtype=torch.bool).scatter(1, order[:, :k], True)
    threshold = torch.where(in_top_k, kth_next, kth)  # kth_excluding(H, k, i), eq. (9)
    z = (clean - threshold) / noise_std
    prob = 0.5 * (1 + torch.erf(z / math.sqrt(2)))  # P(x, i), eq. (9)
    return prob.sum(0)  # Load(X), eq. (8)
    # END SOLUTION


# %% [markdown]
# ## Task 5 — `MoE`
#
# Put the pieces together in a layer. `MoE(input_dim, output_dim, num_experts, hidden_dim,
# k=2, noisy=True, loss_coef=1e-2)` has exactly these parameters, so that a state dict copies
# across:
#
# - `w_gate` and `w_noise`: `nn.Parameter`s of shape `(input_dim, num_experts)`, both
#   **initialised to zero** (the paper's Appendix A: all experts start equally likely). Both
#   exist even when `noisy=False` (`w_noise` is then unused).
# - `experts`: an `nn.ModuleList` of `num_experts` experts, each
#   `nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim,
#   output_dim))` with PyTorch's default initialisation (state-dict keys `experts.0.0.weight`,
#   `experts.0.0.bias`, `experts.0.2.weight`, `experts.0.2.bias`, ...).
#
# `forward(x)` for `x` of shape $(B, d)$ returns `(y, aux_loss)`:
#
# 1. **Noise.** Only when `noisy=True` *and* the module is in training mode, draw
#    `noise = torch.randn(B, num_experts, dtype=x.dtype, device=x.device)` from the global
#    generator: exactly one such draw per forward call and no other random draw. In eval mode,
#    or with `noisy=False`, use no noise (`noise=None`): the layer is then deterministic.
# 2. **Gates** `gates = noisy_top_k_gating(x, w_gate, w_noise, k, noise)` (your Task 1).
# 3. **Dispatch and combine.** Token $b$ is *routed* to expert $e$ when `gates[b, e] > 0`. Call
#    each expert as a module, `experts[e](rows)`, on the rows of `x` routed to it and on no
#    others (an expert with no routed token need not be called); the total number of rows an
#    expert receives in one forward must equal the number of tokens routed to it. Then
#    $y_b = \sum_e \text{gates}[b, e] \cdot \text{expert}_e(x_b)$ over the experts token $b$ is
#    routed to: $y$ is $(B, \text{output\_dim})$, in x's dtype. (`Tensor.index_add` puts rows
#    back in place without in-place writes that break autograd.)
# 4. **Auxiliary loss.** `importance = gates.sum(0)`. The load is `smooth_load(x, w_gate,
#    w_noise, noise, k)` when noise was drawn, else the hard count of routed tokens,
#    `(gates > 0).sum(0)` converted to x's dtype. Then
#    `aux_loss = importance_loss(gates, loss_coef) + loss_coef * cv_squared(load)`, a 0-dim
#    tensor in x's dtype (the paper's $L_{importance} + L_{load}$ with
#    $w_{importance} = w_{load} =$ `loss_coef`).
#
# Both outputs must be differentiable w.r.t. `x` and every parameter that they depend on.

# %%
class MoE(nn.Module):
    """Sparsely-gated mixture-of-experts layer with noisy top-k gating.

    Args:
        input_dim: size d of each input row.
        output_dim: size of each output row.
        num_experts: number E of experts.
        hidden_dim: hidden size of every expert MLP.
        k: experts per token, 1 <= k <= E.
        noisy: if True, add gating noise in training mode (never in eval mode).
        loss_coef: w_importance = w_load of the auxiliary loss.

    Parameters: ``w_gate`` and ``w_noise`` (input_dim, E), initialised to zeros; ``experts``,
    an ``nn.ModuleList`` of E ``nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU(),
    nn.Linear(hidden_dim, output_dim))``. No buffers.

    ``forward(x)``: x is (B, input_dim). In training mode with noisy=True, draws exactly
    ``torch.randn(B, E, dtype=x.dtype, device=x.device)`` from the global generator (one draw
    per call); otherwise no noise. Returns ``(y, aux_loss)``: y (B, output_dim) is the
    gate-weighted sum of the outputs of the experts each token is routed to (gates > 0), each
    expert called as ``experts[e](rows)`` on its routed rows only; aux_loss (0-dim) is
    ``importance_loss(gates, loss_coef) + loss_coef * cv_squared(load)`` with load the smooth
    load when noise was drawn, else the count of routed tokens per expert in x's dtype.
    Both are differentiable w.r.t. x and every parameter (the checks back-propagate through y
    and aux_loss together).
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        num_experts: int,
        hidden_dim: int,
        k: int = 2,
        noisy: bool = True,
        loss_coef: float = 1e-2,
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION
        if not 1 <= k <= num_experts:
            raise ValueError(f"k must lie in 1..{num_experts}, got {k}")
        self.output_dim = output_dim
        self.num_experts = num_experts
        self.k = k
        self.noisy = noisy
        self.loss_coef = loss_coef
        self.w_gate = nn.Parameter(torch.zeros(input_dim, num_experts))
        self.w_noise = nn.Parameter(torch.zeros(input_dim, num_experts))
        experts = []
        for _ in range(num_experts):
            first = nn.Linear(input_dim, hidden_dim)
            experts.append(nn.Sequential(first, nn.ReLU(), nn.Linear(hidden_dim, output_dim)))
        self.experts = nn.ModuleList(experts)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # BEGIN SOLUTION
        noise = None
        if self.noisy and self.training:
            noise = torch.randn(x.shape[0], self.num_experts, dtype=x.dtype, device=x.device)
        gates = noisy_top_k_gating(x, self.w_gate, self.w_noise, self.k, noise)
        y = x.new_zeros(x.shape[0], self.output_dim)
        for e, expert in enumerate(self.experts):
            rows = torch.nonzero(gates[:, e] > 0).squeeze(1)  # tokens routed to expert e
            if rows.numel() == 0:
                continue
            out = expert(x[rows])
            y = y.index_add(0, rows, gates[rows, e : e + 1] * out)
        if noise is not None:
            load = smooth_load(x, self.w_gate, self.w_noise, noise, self.k)
        else:
            load = (gates > 0).sum(0).to(x.dtype)
        aux_loss = importance_loss(gates, self.loss_coef) + self.loss_coef * cv_squared(load)
        return y, aux_loss
        # END SOLUTION
