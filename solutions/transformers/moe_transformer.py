# %% [markdown]
# # 4.13 Mixture-of-experts transformers — exercise
#
# A mixture-of-experts (MoE) transformer replaces the feed-forward sublayer of a block by $E$
# feed-forward *experts* and a *router* that sends every token to one of them (Fedus, Zoph &
# Shazeer, 2021, the Switch Transformer; Shen et al., 2023, instruction-tune such models). The
# parameters grow $E$-fold, the compute per token does not. Unit 3.9 built Shazeer's noisy
# top-$k$ gate; here we build the Switch layer as the large MoE transformers run it: top-1
# routing, a fixed **capacity** per expert with **token dropping**, and the Switch
# **load-balancing loss**.
#
# For $N$ tokens with router logits $h \in \mathbb{R}^{N \times E}$ (one row per token,
# $h = x W_r$ for token representations $x$):
#
# $$p_n = \operatorname{softmax}(h_n), \qquad e_n = \arg\max_i p_{n,i}, \qquad
#   g_n = p_{n, e_n}.$$
#
# Every expert has room for $C = \lceil c \cdot N / E \rceil$ tokens ($c$ the **capacity
# factor**; $N / E$ is the load of a perfectly balanced router). Tokens are admitted in
# position order $n = 0, 1, \dots$: token $n$ is **kept** when fewer than $C$ earlier tokens
# chose the same expert, and **dropped** otherwise. The layer's output for token $n$ is
#
# $$y_n = \begin{cases} g_n \cdot \mathrm{FFN}_{e_n}(x_n) & \text{kept} \\
#   0 & \text{dropped,} \end{cases}$$
#
# so that in a block, $x_n + y_n$, a dropped token passes through on the residual unchanged.
# The auxiliary loss (eqs. 4-6 of Fedus et al.) with $f_i$ the fraction of tokens whose choice
# $e_n$ is $i$ and $P_i$ the mean router probability of expert $i$:
#
# $$\mathcal{L}_{aux} = E \cdot \sum_{i=1}^{E} f_i \, P_i, \qquad
#   f_i = \frac1N \sum_n [e_n = i], \qquad P_i = \frac1N \sum_n p_{n,i}.$$
#
# It is $1$ when the routing is uniform and grows up to $E$ as it collapses onto one expert.
# $f$ is a count and has no gradient; the gradient reaches the router through $P$.
#
# Conventions: float32 and float64 inputs on any device; results in the input's dtype and on
# its device; no in-place writes into inputs; no `.detach()`, `.item()` or numpy on the way of
# anything that must stay differentiable. There is no MoE layer in PyTorch to call; do not use
# one from another library (`transformers`' Switch router and loss functions) either.

# %%
import math

import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `switch_route`
#
# Given the router logits $h$ $(N, E)$ and the capacity factor $c$, return for every token its
# expert $e_n$, its gate and whether it is kept.
#
# - $e_n = \arg\max_i h_{n,i}$ (the same as the argmax of $p_n$); **ties go to the lower expert
#   index** (`torch.argmax` returns the first maximal index).
# - The gate is the softmax probability $p_{n, e_n}$ for a kept token and exactly $0$ for a
#   dropped one; it must be differentiable w.r.t. the logits.
# - $C$ = `math.ceil(capacity_factor * N / E)`, computed in Python floats in this order, with
#   $N$ the number of rows of the logits (the number of **tokens**). A token is kept when its
#   1-based rank among the tokens that chose the same expert, counted in row order, is at most
#   $C$. With $C \ge N$ nothing is dropped.

# %%
def switch_route(router_logits: torch.Tensor, capacity_factor: float):
    """Switch (top-1) routing with a capacity per expert (Fedus et al., 2021, Section 2.2).

    Args:
        router_logits: (N, E) router logits h, one row per token in position order, float32
            or float64, N >= 1 tokens, E >= 1 experts.
        capacity_factor: c > 0, a Python float (or int).

    Returns:
        ``(expert, gate, kept)``:

        - ``expert`` (N,) int64: e_n = argmax_i h[n, i]; ties go to the lowest index.
        - ``gate`` (N,) in the logits' dtype: softmax(h[n])[e_n] if token n is kept, exactly 0
          if it is dropped. Differentiable w.r.t. ``router_logits`` (through the softmax; a
          dropped token's gate has zero gradient).
        - ``kept`` (N,) bool: token n is kept iff at most C - 1 tokens m < n have
          e_m == e_n, with C = ``math.ceil(capacity_factor * N / E)`` (Python floats, in that
          order), i.e. each expert takes its first C tokens in row order and drops the rest.

        All three on the logits' device. The logits are not modified.
    """
    # BEGIN SOLUTION
    num_tokens, num_experts = router_logits.shape
    capacity = math.ceil(capacity_factor * num_tokens / num_experts)  # C = ceil(c N / E)
    probs = torch.softmax(router_logits, dim=-1)  # p_n
    expert = torch.argmax(router_logits, dim=-1)  # e_n, first index on ties
    gate = probs.gather(1, expert[:, None]).squeeze(1)  # g_n = p_{n, e_n}
    chosen = nn.functional.one_hot(expert, num_experts)  # (N, E), 1 at e_n
    rank = (chosen.cumsum(0) * chosen).sum(1)  # 1-based place of token n in its expert's queue
    kept = rank <= capacity
    gate = torch.where(kept, gate, torch.zeros_like(gate))  # dropped tokens: gate 0
    return expert, gate, kept
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `load_balancing_loss`
#
# $\mathcal{L}_{aux} = E \sum_i f_i P_i$ with $f_i$ the fraction of the $N$ tokens whose
# `expert` is $i$ (every token counts, dropped or not: $f$ measures where the router *sends*
# tokens) and $P_i$ the mean over tokens of `router_probs[:, i]`. The `expert` tensor is given:
# do not recompute it from the probabilities. $f$ is piecewise constant, so it carries no
# gradient; the loss is differentiable w.r.t. `router_probs` through $P$.

# %%
def load_balancing_loss(router_probs: torch.Tensor, expert: torch.Tensor) -> torch.Tensor:
    """Switch Transformer auxiliary load-balancing loss, eqs. (4)-(6) of Fedus et al. (2021).

    Args:
        router_probs: (N, E) router probabilities p (rows of a softmax), float32 or float64.
        expert: (N,) int64 expert index of every token, values in 0..E-1 (not necessarily
            the argmax of ``router_probs``; some experts may get no token).

    Returns:
        0-dim tensor in ``router_probs``' dtype and on its device:
        ``E * sum_i f_i * P_i`` with ``f_i = (number of n with expert[n] == i) / N`` and
        ``P_i = mean_n router_probs[n, i]``. Differentiable w.r.t. ``router_probs`` (its
        gradient is E * f_i / N in column i); ``expert`` carries no gradient.
    """
    # BEGIN SOLUTION
    num_tokens, num_experts = router_probs.shape
    counts = nn.functional.one_hot(expert, num_experts).sum(0)  # tokens routed to each expert
    f = counts.to(router_probs.dtype) / num_tokens  # f_i, eq. (5)
    P = router_probs.mean(0)  # P_i, eq. (6)
    return num_experts * (f * P).sum()  # eq. (4), without the coefficient alpha
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `MoEFeedForward`
#
# The Switch feed-forward sublayer. `MoEFeedForward(dim, hidden, num_experts,
# capacity_factor=1.25)` holds exactly these parameters, so that a state dict copies across:
#
# - `router`: `nn.Linear(dim, num_experts, bias=False)` (weight $(E, \text{dim})$);
# - `experts`: an `nn.ModuleList` of `num_experts` experts, each
#   `nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))` (keys
#   `experts.0.0.weight`, `experts.0.0.bias`, `experts.0.2.weight`, `experts.0.2.bias`, ...),
#
# with PyTorch's default initialisation, and stores `capacity_factor` as an attribute.
#
# `forward(x)` takes `x` of shape $(\dots, \text{dim})$: every leading position is a token,
# $N$ = their number, in row-major order (`x.reshape(-1, dim)`), all routed together as one
# group. It returns `(y, aux_loss)`:
#
# 1. logits $h$ = `router(tokens)` $(N, E)$; `switch_route(h, self.capacity_factor)`.
# 2. Each expert is called as a module, `experts[i](rows)`, once, on the rows of the **kept**
#    tokens routed to it (so it never sees more than $C$ rows; an expert with no kept token
#    need not be called). $y_n = g_n \cdot \mathrm{FFN}_{e_n}(x_n)$ for a kept token and
#    $y_n = 0$ for a dropped one: the caller adds $y$ to the residual stream, $x + y$, so a
#    dropped token passes through the block unchanged. $y$ has the shape of `x`.
# 3. `aux_loss = load_balancing_loss(softmax(h), expert)`, the 0-dim loss without any
#    coefficient (the training loop multiplies it by its $\alpha$).
#
# Both outputs are in x's dtype and differentiable w.r.t. `x` and every parameter they depend
# on (the router gets gradients through the gates and through $P$).

# %%
class MoEFeedForward(nn.Module):
    """Switch feed-forward layer: a router, top-1 routing with capacity, E expert MLPs.

    Args:
        dim: model width (size of each token's vector).
        hidden: hidden width of every expert MLP.
        num_experts: number E of experts, >= 1.
        capacity_factor: c > 0; capacity per expert C = ceil(c * N / E) for N tokens.

    Parameters (the checks copy a state dict into them): ``router``, an
    ``nn.Linear(dim, num_experts, bias=False)``; ``experts``, an ``nn.ModuleList`` of E
    ``nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))``. No other
    parameters or buffers. Attribute ``capacity_factor``.

    ``forward(x)``: x (..., dim), any number of leading dimensions (none included), float32 or
    float64. The N = x.numel() // dim tokens, in ``x.reshape(-1, dim)`` order, are routed
    together by ``switch_route(router(tokens), capacity_factor)``. Returns ``(y, aux_loss)``:

    - ``y``, the shape and dtype of x: row n is gate_n * experts[e_n](x_n) for a kept token
      and 0 for a dropped one (the block's residual x + y then carries a dropped token
      unchanged). Each expert is called as ``experts[i](rows)`` at most once per forward, on
      exactly the kept tokens routed to it, as a (rows, dim) tensor in token (row) order.

    - ``aux_loss``, 0-dim: ``load_balancing_loss(softmax(router(tokens), -1), expert)``, with
      no coefficient.

    Both are differentiable w.r.t. x and every parameter they depend on (the checks
    back-propagate through y and aux_loss together). No random draws.
    """

    def __init__(self, dim: int, hidden: int, num_experts: int,
                 capacity_factor: float = 1.25) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.dim = dim
        self.num_experts = num_experts
        self.capacity_factor = capacity_factor
        self.router = nn.Linear(dim, num_experts, bias=False)  # W_r
        self.experts = nn.ModuleList(
            nn.Sequential(  # expert i
                nn.Linear(dim, hidden),  # FFN_i(x) = W_2 relu(W_1 x + b_1) + b_2
                nn.ReLU(),
                nn.Linear(hidden, dim),
            )
            for _ in range(num_experts)
        )
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # BEGIN SOLUTION
        tokens = x.reshape(-1, self.dim)  # (N, dim), position order
        logits = self.router(tokens)  # h = x W_r, (N, E)
        expert, gate, kept = switch_route(logits, self.capacity_factor)
        y = torch.zeros_like(tokens)  # dropped tokens: y_n = 0, the residual carries x_n
        for i, ffn in enumerate(self.experts):
            rows = torch.nonzero(kept & (expert == i)).squeeze(1)  # kept tokens of expert i
            if rows.numel() == 0:
                continue
            out = ffn(tokens[rows])
            y = y.index_add(0, rows, gate[rows, None] * out)  # y_n = g_n FFN_{e_n}(x_n)
        aux_loss = load_balancing_loss(torch.softmax(logits, dim=-1), expert)
        return y.reshape(x.shape), aux_loss
        # END SOLUTION
