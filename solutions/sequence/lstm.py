# %% [markdown]
# # 3.2 Long short-term memory — exercise
#
# Hochreiter & Schmidhuber (1997) protect a *cell state* $c_t$ from the vanishing gradient by
# changing it only additively, through multiplicative gates that learn when to write into the
# cell and when to read it out. Gers, Schmidhuber & Cummins (2000) added a forget gate, which
# every modern cell keeps. With $\sigma$ the logistic sigmoid and $\odot$ the elementwise
# product, one step from $(h_{t-1}, c_{t-1})$ on input $x_t$ is
#
# $$\begin{aligned}
# i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}), &
# f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}), \\
# g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}), &
# o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}), \\
# c_t &= f_t \odot c_{t-1} + i_t \odot g_t, &
# h_t &= o_t \odot \tanh(c_t).
# \end{aligned}$$
#
# You will write the cell with exactly the parameter layout of `torch.nn.LSTMCell` (so weights
# copy across in both directions) and then run it over a sequence.

# %%
import math

import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `LSTMCell`
#
# Store the four input-to-hidden matrices stacked in one parameter `weight_ih` of shape
# $(4H, I)$ and the four hidden-to-hidden matrices in `weight_hh` of shape $(4H, H)$, in the
# gate order **input, forget, cell (candidate), output**: rows $0{:}H$ belong to $i$, rows
# $H{:}2H$ to $f$, rows $2H{:}3H$ to $g$ and rows $3H{:}4H$ to $o$. The biases `bias_ih` and
# `bias_hh` (both $(4H,)$) follow the same order; both are added. With `bias=False` the cell has
# no bias parameters at all. Initialise every parameter uniformly in
# $[-1/\sqrt{H}, 1/\sqrt{H}]$, as PyTorch does.
#
# `forward(x, state)` computes one step of the equations above; when `state` is None, start
# from $h_0 = c_0 = 0$ (of `x`'s dtype and device).

# %%
class LSTMCell(nn.Module):
    """One LSTM step with the parameter layout of ``torch.nn.LSTMCell``.

    Args:
        input_size: size I of each input vector.
        hidden_size: size H of the hidden and cell states.
        bias: if False, the cell has no ``bias_ih`` / ``bias_hh`` parameters.

    Parameters (gate order input, forget, cell, output along the first dimension):
        ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), ``bias_ih`` (4H,), ``bias_hh`` (4H,),
        all initialised uniformly in [-1/sqrt(H), 1/sqrt(H)].

    ``forward(x, state=None)``: x is (B, I); state is a pair ``(h, c)`` of (B, H) tensors, or
    None for zeros. Returns the new pair ``(h, c)``, each (B, H), in x's dtype and device,
    differentiable w.r.t. x, the state and every parameter (the checks back-propagate through
    both h and c).

    Forbidden: ``torch.nn.LSTMCell``, ``torch.nn.LSTM``, ``torch.lstm_cell``, ``torch.lstm``
    and anything in ``torch._VF``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        bound = 1.0 / math.sqrt(hidden_size)
        for param in self.parameters():
            nn.init.uniform_(param, -bound, bound)
        # END SOLUTION

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # BEGIN SOLUTION
        if state is None:
            zeros = torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
            state = (zeros, zeros)
        h_prev, c_prev = state
        gates = x @ self.weight_ih.T + h_prev @ self.weight_hh.T
        if self.bias_ih is not None:
            gates = gates + self.bias_ih + self.bias_hh
        i, f, g, o = gates.chunk(4, dim=1)
        i = torch.sigmoid(i)
        f = torch.sigmoid(f)
        g = torch.tanh(g)
        o = torch.sigmoid(o)
        c = f * c_prev + i * g
        h = o * torch.tanh(c)
        return h, c
        # END SOLUTION


# %% [markdown]
# ## Task 2 — `lstm_forward`
#
# Run a cell over a sequence `xs` of shape $(T, B, I)$, time first, carrying the state
# $(h_t, c_t)$ from each step to the next and starting from `state` (zeros when None). Return
# the stacked hidden states $h_1, \dots, h_T$ as a $(T, B, H)$ tensor together with the final
# pair $(h_T, c_T)$. Gradients must flow through every step (no detaching).

# %%
def lstm_forward(
    cell: nn.Module,
    xs: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Unroll ``cell`` over a sequence.

    Args:
        cell: an LSTM cell, called as ``cell(x_t, state) -> (h, c)``: your ``LSTMCell``, or
            any module called the same way (most checks of this task pass a correct stand-in
            cell, so that a mistake in Task 1 does not cost points here).
        xs: (T, B, I) inputs, T >= 1, time first.
        state: optional initial pair ``(h_0, c_0)`` of (B, H) tensors; zeros when None.

    Returns:
        ``(outputs, (h_T, c_T))``: outputs (T, B, H) holds the hidden state after every step;
        ``(h_T, c_T)`` is the final state. Same dtype and device as ``xs``, differentiable
        w.r.t. xs, the initial state and the cell's parameters through every step.

    Forbidden: ``torch.nn.LSTM``, ``torch.lstm`` and the other library LSTMs.
    """
    # BEGIN SOLUTION
    outputs = []
    for x_t in xs:
        h_t, c_t = cell(x_t, state)
        state = (h_t, c_t)
        outputs.append(h_t)
    return torch.stack(outputs), (h_t, c_t)
    # END SOLUTION
