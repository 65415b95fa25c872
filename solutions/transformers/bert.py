# %% [markdown]
# # 4.2 BERT — exercise
#
# Devlin, Chang, Lee & Toutanova (2018) pre-train a Transformer *encoder* on unlabelled text
# with a cloze task, the **masked language model** (MLM): hide some tokens of a sentence and
# predict them from both sides at once. A left-to-right language model sees only the past; a
# bidirectional encoder trained to predict every token would see the token itself, so BERT
# predicts only a random subset. For a sequence of token ids $x_1, \dots, x_L$:
#
# 1. **select** each ordinary (non-special) position independently with probability $p$
#    ($p = 0.15$ in the paper); call the selected set $M$;
# 2. **corrupt** the input at each selected position: with probability 0.8 put the `[MASK]`
#    token there, with probability 0.1 a random token of the vocabulary, and with probability
#    0.1 leave the token unchanged (the 80/10/10 rule: the model cannot tell which tokens are
#    left alone, so it must keep a good representation of every token, and `[MASK]`, which never
#    occurs at fine-tuning time, is not the only signal);
# 3. train with the cross-entropy at the selected positions only,
#    $\mathcal{L}_{\text{MLM}} = -\frac{1}{|M|} \sum_{i \in M} \log p_\theta(x_i \mid
#    \tilde x)$, where $\tilde x$ is the corrupted sequence.
#
# The encoder reads the sum of three learned embeddings per position, the token's, the
# position's (learned, not sinusoidal) and the *segment*'s (sentence A or B of a pair), followed
# by a layer normalisation: $e_i = \operatorname{LayerNorm}(E^{\text{tok}}_{x_i} +
# E^{\text{pos}}_i + E^{\text{seg}}_{s_i})$.
#
# You will write the masking (with the exact random draws fixed below, so that your masks can
# be compared with the reference's bit for bit) and the embedding layer. The lecture then
# pre-trains a tiny encoder on a synthetic language and fine-tunes it with few labels.

# %%
import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `mask_tokens`
#
# Make the MLM training pair from a batch of token ids. The random draws are fixed so that a
# correct implementation reproduces the reference exactly: draw **these four tensors, in this
# order**, each of the shape of `ids`, on the CPU, from `generator`:
#
# ```python
# sel = torch.rand(ids.shape, generator=generator) < p      # selected ...
# rep = torch.rand(ids.shape, generator=generator) < 0.8    # ... -> [MASK]
# rnd = torch.rand(ids.shape, generator=generator) < 0.5    # ... else -> random token
# random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
# ```
#
# A position is selected when `sel` is True **and** it is not special. A selected position
# gets `mask_id` where `rep` is True, `random_ids` where `rep` is False and `rnd` is True, and
# keeps its token otherwise (so of the selected: 80 % `[MASK]`, 10 % random, 10 % unchanged).
# Unselected positions keep their token. `labels` holds the original token at the selected
# positions and `-100` (the `ignore_index` of `torch.nn.functional.cross_entropy`) everywhere
# else. Return new tensors: `ids` itself must not change.

# %%
def mask_tokens(
    ids: torch.Tensor,
    vocab_size: int,
    mask_id: int,
    special_mask: torch.Tensor,
    p: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masked-language-model corruption (select p, then 80/10/10).

    Args:
        ids: LongTensor (int64) of shape (B, L), token ids in [0, vocab_size), on any device.
        vocab_size: V, the number of token ids; random replacements are drawn uniformly from
            all V ids (special ids and ``mask_id`` included, and the original token too, as in
            BERT's own code).
        mask_id: the id of the ``[MASK]`` token.
        special_mask: bool tensor (B, L) on the device of ``ids``, True at special positions
            (``[CLS]``, ``[SEP]``, padding, ...). A special position is never selected: it
            keeps its token and gets label -100.
        p: the selection probability (0 ≤ p ≤ 1); the checks also use p ≠ 0.15, p = 0 (nothing
            selected) and p = 1 (every non-special position selected).
        generator: a ``torch.Generator`` on the CPU. The function draws exactly four tensors
            from it, in this order, each of shape ``ids.shape`` and **on the CPU** (move them
            to the device of ``ids`` afterwards):
            ``torch.rand(ids.shape, generator=generator) < p`` (selection),
            ``torch.rand(ids.shape, generator=generator) < 0.8`` (mask),
            ``torch.rand(ids.shape, generator=generator) < 0.5`` (random, among the rest),
            ``torch.randint(vocab_size, ids.shape, generator=generator)`` (the random ids).
            Draw all four every time, with strict ``<``, whatever p and special_mask are: any
            other draw, order, shape or device changes every later mask. With
            ``generator=None`` the same four draws come from torch's global generator.

    Returns:
        ``(inputs, labels)``, two new LongTensors (int64, dtype and shape of ``ids``) on the
        device of ``ids``. Selected = first draw and not special. inputs = ``mask_id`` where
        selected and the second draw; ``random_ids`` where selected, not the second draw and
        the third; ``ids`` elsewhere. labels = ``ids`` where selected, -100 elsewhere. The
        tensor ``ids`` is never modified (the checks compare it after the call).

    Forbidden: Hugging Face ``transformers``' ``DataCollatorForLanguageModeling`` (and its
    ``torch_mask_tokens``) and ``DataCollatorForWholeWordMask``: write the masking yourself.
    """
    # BEGIN SOLUTION
    g = generator
    shape = ids.shape
    # the four draws, in this order, on the CPU
    sel = torch.rand(shape, generator=g) < p
    rep = torch.rand(shape, generator=g) < 0.8
    rnd = torch.rand(shape, generator=g) < 0.5
    random_ids = torch.randint(vocab_size, shape, generator=g)
    sel, rep, rnd, random_ids = (t.to(ids.device) for t in (sel, rep, rnd, random_ids))
    sel = sel & ~special_mask  # special tokens are never selected
    labels = torch.where(sel, ids, torch.full_like(ids, -100))  # predict the selected only
    inputs = ids.clone()  # ids itself stays untouched
    inputs[sel & rep] = mask_id  # 80 %: [MASK]
    random_pos = sel & ~rep & rnd
    inputs[random_pos] = random_ids[random_pos]  # 10 %: a random token
    return inputs, labels  # the other 10 % keep their token
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `BertEmbeddings`
#
# The input layer of BERT: three `nn.Embedding` tables, `token` (one row per token id),
# `position` (one row per position $0, \dots, \text{max\_len}-1$, learned) and `segment` (one
# row per segment id), and a `norm = nn.LayerNorm(dim)`. For ids and segment ids of shape
# $(B, L)$ the output at $(b, i)$ is
# $\operatorname{LayerNorm}(\text{token}[x_{b,i}] + \text{position}[i] +
# \text{segment}[s_{b,i}])$: the position of a token is its index $i$ in the sequence
# (`torch.arange(L)`), the same for every row of the batch. No scaling of the embeddings (the
# original Transformer's $\sqrt{d}$ factor is not used here) and no dropout.

# %%
class BertEmbeddings(nn.Module):
    """Token + learned position + segment embeddings, then LayerNorm (BERT's input layer).

    Args:
        vocab_size: number of token ids V.
        max_len: number of positions (the longest sequence the layer accepts).
        num_segments: number of segment ids (2 in BERT: sentence A and sentence B).
        dim: embedding width D.

    Submodules (names are part of the contract; the checks load a state dict into them):
    ``token = nn.Embedding(vocab_size, dim)``, ``position = nn.Embedding(max_len, dim)``,
    ``segment = nn.Embedding(num_segments, dim)``, ``norm = nn.LayerNorm(dim)`` (default
    eps 1e-5, with its weight and bias), and no other parameters or buffers. Use plain
    ``nn.Embedding`` tables (no ``padding_idx``: every row, row 0 included, gets a gradient).

    ``forward(ids, segment_ids)``: ids and segment_ids are LongTensors (B, L) with
    1 ≤ L ≤ max_len, on the module's device. Returns (B, L, D) in the dtype of the module's
    parameters (the checks build it in float32 and in float64), on the module's device:
    ``norm(token(ids) + position(arange(L)) + segment(segment_ids))``, positions counted
    from 0. The output is differentiable w.r.t. all the parameters (the checks compare the
    gradients of every table and of the norm's weight and bias).

    Nothing is forbidden here: ``nn.Embedding`` and ``nn.LayerNorm`` are what the layer is made
    of (a library ``BertEmbeddings`` has other submodule names and would not load the state
    dict).
    """

    def __init__(self, vocab_size: int, max_len: int, num_segments: int, dim: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.token = nn.Embedding(vocab_size, dim)
        self.position = nn.Embedding(max_len, dim)
        self.segment = nn.Embedding(num_segments, dim)
        self.norm = nn.LayerNorm(dim)
        # END SOLUTION

    def forward(self, ids: torch.Tensor, segment_ids: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        positions = torch.arange(ids.shape[1], device=ids.device)  # 0, 1, ..., L - 1
        e = self.token(ids) + self.position(positions) + self.segment(segment_ids)
        return self.norm(e)
        # END SOLUTION
