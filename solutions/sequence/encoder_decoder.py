# %% [markdown]
# # 3.6 The RNN encoder-decoder — exercise
#
# Cho et al. (2014) read a source sequence $x_1, \dots, x_S$ with one recurrent network, the
# **encoder**, and keep only its last hidden state $c = h_S$: a fixed-length summary of the whole
# sequence, the *context*. A second recurrent network, the **decoder**, then produces the target
# $y_1, \dots, y_T$ one token at a time, seeing $c$ at every step. Both use the paper's new gated
# unit, which PyTorch calls the GRU. With $\sigma$ the logistic sigmoid and $\odot$ the
# elementwise product, one GRU step from $h$ on input $x$ is, in PyTorch's form,
#
# $$\begin{aligned}
# r &= \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) && \text{(reset gate)} \\
# z &= \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) && \text{(update gate)} \\
# n &= \tanh\big(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})\big) && \text{(new state)} \\
# h' &= (1 - z) \odot n + z \odot h .
# \end{aligned}$$
#
# Note where the reset gate sits: PyTorch (and cuDNN) multiply $r$ with $W_{hn} h + b_{hn}$,
# *after* the matrix product. The 2014 paper writes $W_{hn}(r \odot h)$, *before* it; the two
# are different functions, and this exercise asks for PyTorch's.
#
# You will write the cell with exactly the parameter layout of `torch.nn.GRUCell`, then build
# the encoder-decoder from two such cells.

# %%
import math

import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `GRUCell`
#
# Store the three input-to-hidden matrices stacked in one parameter `weight_ih` of shape
# $(3H, I)$ and the three hidden-to-hidden matrices in `weight_hh` of shape $(3H, H)$, in the
# gate order **reset, update, new**: rows $0{:}H$ belong to $r$, rows $H{:}2H$ to $z$ and rows
# $2H{:}3H$ to $n$. The biases `bias_ih` $= [b_{ir}; b_{iz}; b_{in}]$ and `bias_hh`
# $= [b_{hr}; b_{hz}; b_{hn}]$ (both $(3H,)$) follow the same order. Both are used, and they
# are *not* interchangeable: $b_{hn}$ is inside the reset gate's product, $b_{in}$ outside it.
# With `bias=False` the cell has no bias parameters at all. Initialise every parameter
# uniformly in $[-1/\sqrt{H}, 1/\sqrt{H}]$, as PyTorch does.
#
# `forward(x, h)` computes one step of the equations above; when `h` is None, start from
# $h = 0$ (of `x`'s dtype and device).

# %%
class GRUCell(nn.Module):
    """One GRU step with the parameter layout and equations of ``torch.nn.GRUCell``.

    Args:
        input_size: size I of each input vector.
        hidden_size: size H of the hidden state.
        bias: if False, the cell has no ``bias_ih`` / ``bias_hh`` parameters (they are None).

    Parameters (gate order reset, update, new along the first dimension):
        ``weight_ih`` (3H, I) = [W_ir; W_iz; W_in], ``weight_hh`` (3H, H) = [W_hr; W_hz; W_hn],
        ``bias_ih`` (3H,) = [b_ir; b_iz; b_in], ``bias_hh`` (3H,) = [b_hr; b_hz; b_hn], all
        initialised uniformly in [-1/sqrt(H), 1/sqrt(H)]. No buffers.

    ``forward(x, h=None)``: x is (B, I), h is (B, H) or None for zeros. Returns the new state
    h' (B, H) in x's dtype and on x's device:
        r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz),
        n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 − z) ⊙ n + z ⊙ h.
    The reset gate multiplies W_hn h + b_hn (PyTorch's form), not h before W_hn (the paper's).
    Differentiable with respect to x, h and every parameter (plain autograd; no detaching).
    The checks compare forward values and gradients with torch.nn.GRUCell's to float
    tolerances, in float32 and float64, batch 1 included.

    Forbidden: ``torch.nn.GRUCell``, ``torch.nn.GRU``, ``torch.gru_cell``, ``torch.gru`` and
    anything in ``torch._VF``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        bound = 1.0 / math.sqrt(hidden_size)
        for param in self.parameters():
            nn.init.uniform_(param, -bound, bound)
        # END SOLUTION

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        # BEGIN SOLUTION
        if h is None:
            h = torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
        gi = x @ self.weight_ih.T  # [W_ir x; W_iz x; W_in x]
        gh = h @ self.weight_hh.T  # [W_hr h; W_hz h; W_hn h]
        if self.bias_ih is not None:
            gi = gi + self.bias_ih
            gh = gh + self.bias_hh
        i_r, i_z, i_n = gi.chunk(3, dim=1)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
        r = torch.sigmoid(i_r + h_r)  # reset gate
        z = torch.sigmoid(i_z + h_z)  # update gate
        n = torch.tanh(i_n + r * h_n)  # candidate: r multiplies W_hn h + b_hn
        return (1 - z) * n + z * h
        # END SOLUTION


# %% [markdown]
# ## Task 2 — `EncoderDecoder`
#
# Build the model of the paper from two of **your** `GRUCell`s (the checks run your cell inside
# it, so get Task 1 right first; one check also runs your model with a grader-supplied correct
# cell in place of yours, which works when your model creates its cells by calling the name
# `GRUCell`). Source and target share one vocabulary of $V$ token ids; $E$ is the embedding
# size and $H$ the hidden size of both networks. With $e(\cdot)$ the source embedding and
# $e'(\cdot)$ the target embedding:
#
# $$\begin{aligned}
# h_0 &= 0, \quad h_t = \mathrm{GRU}_{\mathrm{enc}}\big(e(x_t), h_{t-1}\big) \;(t = 1..S),
# \quad c = h_S && \text{(the fixed context)} \\
# s_0 &= \tanh(W_{\mathrm{init}}\, c + b_{\mathrm{init}}) && \text{(decoder's first state)} \\
# s_t &= \mathrm{GRU}_{\mathrm{dec}}\big([\,e'(u_t);\, c\,],\; s_{t-1}\big) \;(t = 1..T)
# && \text{(c enters every step)} \\
# \ell_t &= W_{\mathrm{out}} [\,s_t;\, e'(u_t);\, c\,] + b_{\mathrm{out}}
# && \text{(logits over the } V \text{ tokens)}
# \end{aligned}$$
#
# where $u_1, \dots, u_T$ is `tgt_in`, the decoder's input (teacher forcing: a start token
# followed by the target shifted right by one). $[a; b]$ concatenates along the feature
# dimension, in that order.

# %%
class EncoderDecoder(nn.Module):
    """The RNN encoder-decoder of Cho et al. (2014) with a fixed-length context.

    ``EncoderDecoder(vocab_size, emb_dim, hidden_size)`` with V = vocab_size, E = emb_dim,
    H = hidden_size has exactly these submodules (names and shapes matter: the checks load a
    state dict into your model):

    - ``src_embed`` = ``nn.Embedding(V, E)``: source token embeddings e(.);
    - ``tgt_embed`` = ``nn.Embedding(V, E)``: target token embeddings e'(.);
    - ``encoder`` = ``GRUCell(E, H)`` (your Task 1 cell, with biases);
    - ``init`` = ``nn.Linear(H, H)``: the decoder's first state s_0 = tanh(init(c));
    - ``decoder`` = ``GRUCell(E + H, H)``: its input at step t is the concatenation
      [e'(u_t), c] (embedding first, then the context);
    - ``out`` = ``nn.Linear(2H + E, V)``: logits ℓ_t = out([s_t, e'(u_t), c]) (decoder state,
      then embedding, then context);

    and no other parameters or buffers. Initialisation is left to the submodules' defaults.

    ``forward(src, tgt_in) -> logits``: src (S, B) and tgt_in (T, B) are int64 token ids in
    [0, V), time first, S >= 1, T >= 1. The encoder starts from h_0 = 0 and reads x_1..x_S;
    its last state c = h_S (B, H) is the *only* thing the decoder learns about the source.
    The decoder starts from s_0 = tanh(init(c)), reads u_1..u_T (teacher forcing) and sees c at
    every step, as written above. Returns logits (T, B, V), row t scoring the token that
    follows u_1..u_t, in the dtype of the model's parameters and on src's device.
    Differentiable with respect to every parameter. The checks build your model, load the
    grader's state dict into it and compare logits and gradients with the reference.

    Forbidden: ``torch.nn.GRU``, ``torch.nn.GRUCell``, ``torch.gru``, ``torch.gru_cell`` and
    ``torch._VF``: use your ``GRUCell``.
    """

    def __init__(self, vocab_size: int, emb_dim: int, hidden_size: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.src_embed = nn.Embedding(vocab_size, emb_dim)
        self.tgt_embed = nn.Embedding(vocab_size, emb_dim)
        self.encoder = GRUCell(emb_dim, hidden_size)
        self.init = nn.Linear(hidden_size, hidden_size)
        self.decoder = GRUCell(emb_dim + hidden_size, hidden_size)
        self.out = nn.Linear(2 * hidden_size + emb_dim, vocab_size)
        # END SOLUTION

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        h = None  # h_0 = 0
        for x_t in self.src_embed(src):
            h = self.encoder(x_t, h)
        c = h  # the fixed-length context c = h_S
        s = torch.tanh(self.init(c))  # s_0
        logits = []
        for e_t in self.tgt_embed(tgt_in):
            s = self.decoder(torch.cat([e_t, c], dim=1), s)
            logits.append(self.out(torch.cat([s, e_t, c], dim=1)))
        return torch.stack(logits)
        # END SOLUTION
