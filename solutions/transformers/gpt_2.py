# %% [markdown]
# # 4.5 GPT-2 — exercise
#
# Radford et al. (2019) train one Transformer *decoder* to predict the next token of web text,
# $p(x) = \prod_t p(x_t \mid x_{<t})$, and nothing else. Three details of that model are this
# exercise.
#
# - **The pre-LN block.** GPT-2 moves layer normalisation to the *input* of each sub-layer and
#   keeps the residual stream itself un-normalised:
#   $$h \leftarrow h + \operatorname{Attn}(\operatorname{LN}_1(h)), \qquad
#     h \leftarrow h + \operatorname{MLP}(\operatorname{LN}_2(h)),$$
#   with a causal multi-head self-attention and an MLP of inner width $4d$ with the tanh
#   approximation of GELU, $\operatorname{GELU}(u) \approx \tfrac12 u\,\big(1 + \tanh(
#   \sqrt{2/\pi}\,(u + 0.044715\,u^3))\big)$. After the last block comes one more layer norm,
#   $\operatorname{LN}_f$.
# - **Tied embeddings.** The logits are $\operatorname{LN}_f(h)\,W_e^\top$ with $W_e$ the very
#   matrix that embeds the tokens: one parameter, used twice. Learned position embeddings
#   $W_p$ are added to the token embeddings at the input.
# - **Byte-level BPE.** Text is turned into ids by byte-pair encoding on UTF-8 *bytes*: start
#   from the 256 byte values, and repeatedly replace the most frequent adjacent pair by a new
#   id. Every string can be encoded (there is no unknown token), and decoding the bytes gives
#   the string back.
#
# The names of the modules are GPT-2's own (`ln_1`, `attn.c_attn`, `mlp.c_fc`, `wte`, `wpe`,
# `h`, `ln_f`), so a state dict of the released model maps onto yours (GPT-2's `Conv1D`
# stores its weights transposed relative to `nn.Linear`).
#
# Not allowed anywhere in this exercise: `torch.nn.functional.scaled_dot_product_attention`,
# `torch.nn.MultiheadAttention`, `torch.nn.functional.multi_head_attention_forward` and the
# `torch.nn.Transformer*` classes. `nn.Linear`, `nn.LayerNorm`, `nn.Embedding` and
# `torch.nn.functional.gelu(..., approximate="tanh")` are fine.

# %%
import math

import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `Block`
#
# Write the causal self-attention, the MLP and the pre-LN block that holds them.
#
# *Attention.* One `c_attn = nn.Linear(d, 3d)` produces queries, keys and values side by side:
# columns $[0, d)$ of its output are the queries, $[d, 2d)$ the keys, $[2d, 3d)$ the values.
# Split each into `n_head` heads of width $d_h = d / n_{\text{head}}$ (view as
# $(B, L, n_{\text{head}}, d_h)$, then transpose to $(B, n_{\text{head}}, L, d_h)$), take
# $\operatorname{softmax}(QK^\top/\sqrt{d_h})$ over the keys with the future blocked (query $i$
# sees keys $j \le i$: set the other scores to $-\infty$ before the softmax), average the
# values, put the heads back side by side and apply `c_proj = nn.Linear(d, d)`.
#
# *MLP.* `c_fc = nn.Linear(d, 4d)`, the tanh-GELU above, `c_proj = nn.Linear(4d, d)`.
#
# *Block.* `x = x + attn(ln_1(x))`, then `x = x + mlp(ln_2(x))`.

# %%
class CausalSelfAttention(nn.Module):
    """GPT-2's masked multi-head self-attention: ``attn(x)`` with x (B, L, d) -> (B, L, d).

    Parameters: ``c_attn`` = ``nn.Linear(d_model, 3 * d_model)`` (queries, keys, values in
    that order along its output), ``c_proj`` = ``nn.Linear(d_model, d_model)``.
    """

    def __init__(self, d_model: int, n_head: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        if d_model % n_head != 0:
            raise ValueError(f"d_model={d_model} is not divisible by n_head={n_head}")
        self.n_head = n_head
        self.c_attn = nn.Linear(d_model, 3 * d_model)
        self.c_proj = nn.Linear(d_model, d_model)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        B, L, d = x.shape
        h = self.n_head

        def split(t):  # (B, L, d) -> (B, h, L, d_h)
            return t.view(B, L, h, d // h).transpose(1, 2)

        q, k, v = self.c_attn(x).split(d, dim=-1)
        q, k, v = split(q), split(k), split(v)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // h)  # (B, h, L, L)
        causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))  # query i sees keys j <= i
        weights = torch.softmax(scores, dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(B, L, d)  # heads side by side again
        return self.c_proj(out)
        # END SOLUTION


class MLP(nn.Module):
    """GPT-2's position-wise MLP: ``c_proj(gelu_tanh(c_fc(x)))``, x (B, L, d) -> (B, L, d).

    Parameters: ``c_fc`` = ``nn.Linear(d_model, 4 * d_model)``, ``c_proj`` =
    ``nn.Linear(4 * d_model, d_model)``.
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.c_fc = nn.Linear(d_model, 4 * d_model)
        self.c_proj = nn.Linear(4 * d_model, d_model)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        u = self.c_fc(x)
        gelu = 0.5 * u * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u**3)))
        return self.c_proj(gelu)
        # END SOLUTION


class Block(nn.Module):
    """One GPT-2 block (pre-LN): ``x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))``.

    Args:
        d_model: width d of the residual stream, divisible by ``n_head``.
        n_head: number of attention heads, each of width d_model // n_head.

    Submodules (their names are the contract: the checks copy a state dict into them):

    - ``ln_1``, ``ln_2``: ``nn.LayerNorm(d_model)`` (default eps 1e-5, with weight and bias);
    - ``attn``: causal self-attention with ``attn.c_attn`` = ``nn.Linear(d_model,
      3 * d_model)`` (output columns: queries, then keys, then values, each d_model wide; head
      j owns columns ``j·d_h … (j+1)·d_h − 1`` of each) and ``attn.c_proj`` =
      ``nn.Linear(d_model, d_model)``; ``attn(x)`` maps (B, L, d) to (B, L, d);
    - ``mlp``: ``mlp.c_fc`` = ``nn.Linear(d_model, 4 * d_model)``, the tanh approximation of
      GELU, ``mlp.c_proj`` = ``nn.Linear(4 * d_model, d_model)``; ``mlp(x)`` maps (B, L, d)
      to (B, L, d).

    No other parameters and no persistent buffers (build the causal mask inside ``forward``,
    or register it with ``persistent=False``), no dropout.

    ``forward(x)``: x (B, L, d_model), float32 or float64, on any device, 1 <= L. Returns
    (B, L, d_model) in x's dtype and on its device. Position i only sees positions j <= i.
    The checks call ``block(x)``, ``block.attn(x)`` and ``block.mlp(x)`` on modules built as
    ``Block(d_model, n_head)``, cast to float32 or float64 (the module's dtype is the input's
    dtype) with copied weights, and compare the outputs and their gradients w.r.t. x and every
    parameter: everything must stay differentiable (autograd, no ``.detach()``).

    Forbidden: ``torch.nn.functional.scaled_dot_product_attention``,
    ``torch.nn.MultiheadAttention``, ``torch.nn.functional.multi_head_attention_forward``, the
    ``torch.nn.Transformer*`` classes.
    """

    def __init__(self, d_model: int, n_head: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_head)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x
        # END SOLUTION


# %% [markdown]
# ## Task 2 — `GPT`
#
# The whole model: token embedding `wte` plus position embedding `wpe` of positions
# $0, \dots, L-1$, the blocks of `h` in order, the final `ln_f`, and the output layer
# `lm_head`, an `nn.Linear(d, V, bias=False)` whose weight **is** `wte.weight` (assign the
# parameter, so that both names point at one tensor and its gradient collects both uses).
# Most checks of this task build your `GPT` with grader-owned stand-in blocks: while your
# `__init__` runs, the name `Block` means the stand-in, and every entry of `h` is a stand-in
# afterwards. A slip in your `Block` then costs only `Block`'s checks (one hidden check, worth
# 1 point, runs the whole model with your own blocks). So build the blocks as
# `Block(d_model, n_head)`, keep them in `h`, and call each one as `block(x)`.

# %%
class GPT(nn.Module):
    """GPT-2: a stack of pre-LN decoder blocks with tied input and output embeddings.

    Args:
        vocab_size: V, number of token ids.
        block_size: the longest context, the number of learned positions.
        n_layer: number of blocks.
        n_head: heads per block.
        d_model: width d.

    Submodules (names are the contract): ``wte`` = ``nn.Embedding(vocab_size, d_model)``,
    ``wpe`` = ``nn.Embedding(block_size, d_model)``, ``h`` = ``nn.ModuleList`` of ``n_layer``
    blocks, each built as ``Block(d_model, n_head)``, ``ln_f`` = ``nn.LayerNorm(d_model)``,
    ``lm_head`` = ``nn.Linear(d_model, vocab_size, bias=False)`` whose weight is the same
    ``nn.Parameter`` object as ``wte.weight`` (tied: ``model.lm_head.weight is
    model.wte.weight``). Its state dict holds both names, ``wte.weight`` and
    ``lm_head.weight``. No dropout, no other parameters or persistent buffers. How the
    weights are initialised is not checked (GPT-2 draws them from N(0, 0.02²)).

    ``forward(idx)``: idx a LongTensor (B, L) of token ids, 1 <= L <= block_size, on the
    model's device. Returns the logits (B, L, V) in the model's dtype (float32, or float64 when
    the checks cast the model with ``.to(torch.float64)``): ``lm_head(ln_f(x))`` with
    ``x = wte(idx) + wpe(arange(L))`` passed through ``h[0], h[1], …`` in order, each called
    as ``block(x)``. The checks load a copied state dict and compare the logits and their
    gradients w.r.t. ``wte.weight``, ``wpe.weight`` and ``ln_f``'s parameters: keep it
    differentiable (autograd), and with tied weights the gradient of ``wte.weight`` is the sum
    of its two uses.

    Forbidden: as for :class:`Block`.
    """

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int,
                 d_model: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, d_model)
        self.wpe = nn.Embedding(block_size, d_model)
        self.h = nn.ModuleList([Block(d_model, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: one parameter, two uses
        # END SOLUTION

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        B, L = idx.shape
        if L > self.block_size:
            raise ValueError(f"sequence of length {L} > block_size {self.block_size}")
        pos = torch.arange(L, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)  # (B, L, d) + (L, d)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))
        # END SOLUTION


# %% [markdown]
# ## Task 3 — `bpe_train`
#
# Byte-level BPE, GPT-2's tokenizer without its pre-tokenisation rules. Start from the UTF-8
# bytes of the text, ids 0–255. Each round:
#
# 1. count every adjacent pair of the current sequence, overlapping occurrences included
#    (`aaa` holds the pair `(a, a)` twice);
# 2. take the most frequent pair; among equally frequent pairs, the one that occurs **first**
#    in the current sequence;
# 3. give it the next new id (256, 257, …) and replace its occurrences left to right, never
#    overlapping (`aaa` becomes `[new, a]`).
#
# Stop after `num_merges` rounds, or earlier when the sequence has fewer than two ids.

# %%
def bpe_train(text: str, num_merges: int) -> list[tuple[tuple[int, int], int]]:
    """Learn byte-level BPE merges from ``text``.

    Args:
        text: any string (non-ASCII letters become several bytes each). No pre-tokenisation:
            spaces and newlines are bytes like any other.
        num_merges: the number of rounds, an int >= 0.

    Returns:
        The merges in the order they were made, as a list of ``((a, b), new_id)`` with Python
        ints: the pair of ids (a, b) that was merged and the id it became, 256, 257, … in
        turn. Fewer than ``num_merges`` entries when the sequence shrank to fewer than two ids
        (``[]`` for a text of 0 or 1 bytes).

    Counting: every adjacent pair, overlapping occurrences counted (the pair (a, a) occurs
    twice in a, a, a). Ties: the pair whose first occurrence in the current sequence comes
    first. Merging: left to right, non-overlapping (a, a, a becomes new, a).
    """
    # BEGIN SOLUTION
    ids = list(text.encode("utf-8"))  # the bytes, ids 0-255
    merges = []
    for new_id in range(256, 256 + num_merges):
        if len(ids) < 2:
            break
        counts = {}
        for pair in zip(ids, ids[1:]):  # every adjacent pair, overlapping ones included
            counts[pair] = counts.get(pair, 0) + 1
        pair = max(counts, key=counts.get)  # most frequent; ties: first seen (dicts keep order)
        merged, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                merged.append(new_id)
                i += 2
            else:
                merged.append(ids[i])
                i += 1
        ids = merged
        merges.append((pair, new_id))
    return merges
    # END SOLUTION


# %% [markdown]
# ## Task 4 — `bpe_encode` and `bpe_decode`
#
# *Encode* a new text with learned merges: start from its UTF-8 bytes and repeatedly apply, of
# the adjacent pairs present, the one with the **lowest merge rank** (the earliest in
# `merges`), replacing its occurrences left to right as in training, until no adjacent pair is
# in `merges`. *Decode*: every id stands for a byte string (a byte for 0–255; for a merge
# `((a, b), new)`, the bytes of `a` followed by those of `b`); concatenate the bytes of all
# ids, then decode them as UTF-8 once, with `errors="replace"`.

# %%
def bpe_encode(text: str, merges: list[tuple[tuple[int, int], int]]) -> list[int]:
    """Encode ``text`` with BPE ``merges`` (as returned by :func:`bpe_train`).

    Args:
        text: any string.
        merges: list of ``((a, b), new_id)``; rank = position in the list.

    Returns:
        A list of Python ints: the UTF-8 bytes of ``text`` with merges applied, always the
        present pair of lowest rank first (all its occurrences, left to right,
        non-overlapping), until no adjacent pair is a merge. ``[]`` for the empty string.
        With the merges learned on a text, encoding that text gives the sequence training
        ended with.
    """
    # BEGIN SOLUTION
    ids = list(text.encode("utf-8"))
    rank = {pair: r for r, (pair, _) in enumerate(merges)}
    new_ids = dict(merges)  # pair -> the id it becomes
    while len(ids) >= 2:
        candidates = [p for p in zip(ids, ids[1:]) if p in rank]
        if not candidates:
            break
        pair = min(candidates, key=rank.get)  # the earliest merge first
        new_id = new_ids[pair]
        merged, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                merged.append(new_id)
                i += 2
            else:
                merged.append(ids[i])
                i += 1
        ids = merged
    return ids
    # END SOLUTION


def bpe_decode(ids: list[int], merges: list[tuple[tuple[int, int], int]]) -> str:
    """Decode token ids back to a string.

    Args:
        ids: a list of ints, each a byte 0–255 or a new id of ``merges``.
        merges: list of ``((a, b), new_id)``.

    Returns:
        The bytes of all ids concatenated, decoded as UTF-8 once with ``errors="replace"``
        (a byte sequence that is not valid UTF-8 becomes U+FFFD; a character whose bytes are
        spread over several ids still decodes to that character). ``bpe_decode(bpe_encode(s,
        merges), merges) == s`` for every string s.
    """
    # BEGIN SOLUTION
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), new_id in merges:
        vocab[new_id] = vocab[a] + vocab[b]
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
    # END SOLUTION
