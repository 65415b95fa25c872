# %% [markdown]
# # 3.8 Additive attention — exercise
#
# Bahdanau, Cho & Bengio (2014) let the decoder of an encoder-decoder look back at *every*
# encoder state instead of one fixed summary vector. The encoder turns the source into
# annotations $h_1, \dots, h_S$; before emitting target token $t$, the decoder scores each
# annotation against its previous state $s_{t-1}$ with a one-hidden-layer network, turns the
# scores into weights with a softmax over the source positions, and reads the weighted average
# of the annotations, the context $c_t$:
#
# $$\begin{aligned}
# e_{t,j} &= v^\top \tanh\!\big(W_{dec}\, s_{t-1} + b_{dec} + W_{enc}\, h_j\big), \\
# \alpha_{t,j} &= \frac{\exp e_{t,j}}{\sum_{k=1}^{S} \exp e_{t,k}}, \qquad
# c_t = \sum_{j=1}^{S} \alpha_{t,j}\, h_j .
# \end{aligned}$$
#
# You will write this attention as a module, then a decoder that uses it at every step.

# %%
import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `AdditiveAttention`
#
# The module holds three linear maps, with exactly these names (the checks copy weights in
# through a state dict):
#
# - `W_enc = nn.Linear(enc_dim, attn_dim, bias=False)` applied to every annotation $h_j$;
# - `W_dec = nn.Linear(dec_dim, attn_dim)` (with bias $b_{dec}$) applied to the decoder state;
# - `v = nn.Linear(attn_dim, 1, bias=False)` that turns each $\tanh(\cdot)$ vector into a score.
#
# `forward(dec_state, enc_outputs, src_mask=None)` takes the decoder state $s$ of shape
# $(B, \text{dec\_dim})$ and the annotations of shape $(B, S, \text{enc\_dim})$, batch first.
# The scores $e_j$ are normalised by a softmax **over the source positions** (one distribution
# per batch row). `src_mask`, when given, is a boolean $(B, S)$ tensor, True at real tokens and
# False at padding; set the scores of padded positions to $-\infty$ **before** the softmax, so
# that their weights are exactly 0 and the remaining weights still sum to 1. The context is the
# weighted sum of the annotations (computed from the weights, not the raw scores).

# %%
class AdditiveAttention(nn.Module):
    """Additive ("Bahdanau", "concat") attention.

    Args:
        enc_dim: size of each encoder output (annotation) h_j.
        dec_dim: size of the decoder state s.
        attn_dim: size of the hidden layer of the scoring network.

    Submodules (names and shapes are checked; weights are copied in by state dict):
        ``W_enc`` = nn.Linear(enc_dim, attn_dim, bias=False),
        ``W_dec`` = nn.Linear(dec_dim, attn_dim) (with bias),
        ``v`` = nn.Linear(attn_dim, 1, bias=False). PyTorch's default init is fine.

    ``forward(dec_state, enc_outputs, src_mask=None) -> (context, weights)``:
        dec_state (B, dec_dim), enc_outputs (B, S, enc_dim), S >= 1; src_mask None or a bool
        (B, S) tensor, True for real tokens, False for padding, with at least one True per row.
        Scores e_j = v·tanh(W_dec s + b_dec + W_enc h_j), shape (B, S); masked scores are set to
        -inf before a softmax over S (dim 1). Returns context (B, enc_dim) = Σ_j weights_j · h_j
        and weights (B, S), each row summing to 1 and exactly 0 at padded positions. Float32 and
        float64 on any device: outputs have the inputs' dtype and device. Must be differentiable
        (the checks compare gradients w.r.t. dec_state, enc_outputs and every parameter).
        Outputs and gradients are compared with a float64 reference to a relative tolerance of
        1e-4 in float32 and 1e-7 in float64.

    Forbidden: ``torch.nn.MultiheadAttention``, ``torch.nn.functional.scaled_dot_product_attention``
    and ``torch.nn.functional.multi_head_attention_forward``.
    """

    def __init__(self, enc_dim: int, dec_dim: int, attn_dim: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.W_enc = nn.Linear(enc_dim, attn_dim, bias=False)
        self.W_dec = nn.Linear(dec_dim, attn_dim)
        self.v = nn.Linear(attn_dim, 1, bias=False)
        # END SOLUTION

    def forward(
        self,
        dec_state: torch.Tensor,
        enc_outputs: torch.Tensor,
        src_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # BEGIN SOLUTION
        keys = self.W_enc(enc_outputs)                       # (B, S, A): W_enc h_j
        query = self.W_dec(dec_state).unsqueeze(1)           # (B, 1, A): W_dec s + b_dec
        scores = self.v(torch.tanh(query + keys)).squeeze(-1)  # (B, S): e_j
        if src_mask is not None:
            scores = scores.masked_fill(~src_mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)               # alpha_j, over the S positions
        context = (weights.unsqueeze(-1) * enc_outputs).sum(dim=1)  # c = Σ_j alpha_j h_j
        return context, weights
        # END SOLUTION


# %% [markdown]
# ## Task 2 — `AttentionDecoder`
#
# The decoder is a GRU that, at every step, first attends with its previous state and then
# updates its state from the previous target token and the context. Its submodules, with
# exactly these names (the checks copy weights in by state dict), are
#
# - `embedding = nn.Embedding(vocab_size, emb_dim)`: the embedding $E y$ of a target token;
# - `attention = AdditiveAttention(enc_dim, hidden_size, attn_dim)` (your Task 1 module);
# - `cell = nn.GRUCell(emb_dim + enc_dim, hidden_size)` (allowed here; your 3.6 `GRUCell`
#   with the same parameter names and equations works too);
# - `out = nn.Linear(hidden_size + enc_dim + emb_dim, vocab_size)`: the output layer.
#
# `forward(tgt_in, enc_outputs, init_state, src_mask=None)` is teacher-forced: `tgt_in`
# $(T, B)$ holds the decoder's *input* tokens $y_0, \dots, y_{T-1}$ (a start symbol followed
# by the target shifted right; time first). Starting from $s_0 = $ `init_state`, for
# $t = 1, \dots, T$:
#
# $$\begin{aligned}
# x_t &= \text{embedding}(y_{t-1}) && (B, \text{emb\_dim})\\
# c_t,\ \alpha_t &= \text{attention}(s_{t-1},\ \text{enc\_outputs},\ \text{src\_mask})
#   && \text{attend with the previous state}\\
# s_t &= \text{cell}\big([x_t;\ c_t],\ s_{t-1}\big) && \text{embedding, then context}\\
# \text{logits}_t &= \text{out}\big([s_t;\ c_t;\ x_t]\big) && \text{new state, context, embedding}
# \end{aligned}$$
#
# where $[a; b]$ is the concatenation along the last dimension, in the order written.
# Return the logits stacked over time, $(T, B, V)$, and the attention weights
# $\alpha_1, \dots, \alpha_T$ stacked over time, $(T, B, S)$.

# %%
class AttentionDecoder(nn.Module):
    """A GRU decoder that attends over the encoder outputs at every step (teacher forcing).

    Args:
        vocab_size: V, the number of target tokens.
        emb_dim: E, the size of a target-token embedding.
        enc_dim: size of each encoder output h_j.
        hidden_size: H, the size of the decoder state s.
        attn_dim: size of the attention's hidden layer.

    Submodules (names and shapes are checked; weights are copied in by state dict):
        ``embedding`` = nn.Embedding(vocab_size, emb_dim);
        ``attention`` = AdditiveAttention(enc_dim, hidden_size, attn_dim);
        ``cell`` = nn.GRUCell(emb_dim + enc_dim, hidden_size) (weight_ih, weight_hh, bias_ih,
        bias_hh with torch.nn.GRUCell's layout and equations);
        ``out`` = nn.Linear(hidden_size + enc_dim + emb_dim, vocab_size).

    ``forward(tgt_in, enc_outputs, init_state, src_mask=None) -> (logits, weights)``:
        tgt_in (T, B) int64 input tokens y_0 … y_{T-1}, T >= 1; enc_outputs (B, S, enc_dim);
        init_state s_0 (B, H); src_mask None or bool (B, S), True for real tokens, passed on
        to the attention at every step. For t = 1 … T:
            x_t = embedding(y_{t-1});
            c_t, alpha_t = attention(s_{t-1}, enc_outputs, src_mask)   (the previous state);
            s_t = cell(cat([x_t, c_t], dim=-1), s_{t-1});
            logits_t = out(cat([s_t, c_t, x_t], dim=-1)).
        Returns logits (T, B, V) and weights (T, B, S), both stacked along a new first (time)
        dimension, in enc_outputs' dtype and device. Differentiable through every step
        (no detaching): the checks compare gradients w.r.t. enc_outputs, init_state and every
        parameter. The decoder checks run your decoder with its ``attention`` submodule's
        forward replaced by a correct additive attention with the same weights, so call the
        attention through ``self.attention(...)`` with the arguments above; a mistake in
        Task 1 then does not cost points here.

    Forbidden: ``torch.nn.MultiheadAttention``, ``torch.nn.functional.scaled_dot_product_attention``
    and ``torch.nn.functional.multi_head_attention_forward``.
    """

    def __init__(
        self, vocab_size: int, emb_dim: int, enc_dim: int, hidden_size: int, attn_dim: int
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.attention = AdditiveAttention(enc_dim, hidden_size, attn_dim)
        self.cell = nn.GRUCell(emb_dim + enc_dim, hidden_size)
        self.out = nn.Linear(hidden_size + enc_dim + emb_dim, vocab_size)
        # END SOLUTION

    def forward(
        self,
        tgt_in: torch.Tensor,
        enc_outputs: torch.Tensor,
        init_state: torch.Tensor,
        src_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # BEGIN SOLUTION
        state = init_state                                   # s_0
        logits, weights = [], []
        for y_prev in tgt_in:                                # y_{t-1}, (B,)
            x = self.embedding(y_prev)                       # x_t
            context, alpha = self.attention(state, enc_outputs, src_mask)  # from s_{t-1}
            state = self.cell(torch.cat([x, context], dim=-1), state)      # s_t
            logits.append(self.out(torch.cat([state, context, x], dim=-1)))
            weights.append(alpha)
        return torch.stack(logits), torch.stack(weights)
        # END SOLUTION
