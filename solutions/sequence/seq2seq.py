# %% [markdown]
# # 3.7 Sequence to sequence — exercise
#
# Sutskever, Vinyals & Le (2014) translate with two LSTMs: an encoder reads the source
# $x_1, \dots, x_S$ into a fixed vector, and a decoder, started from that vector, models the
# target one token at a time,
#
# $$p(y_1, \dots, y_T \mid x) = \prod_{t=1}^{T} p(y_t \mid y_{<t}, x).$$
#
# Two details of the paper are the subject of this exercise. First, the encoder reads the
# source **reversed** ($x_S, \dots, x_1$), which places the first source words next to the
# first target words and made the network much easier to train. Second, a translation is
# **decoded by beam search**: keep the $B$ best partial translations $y_{1:t}$ by their score
#
# $$s(y_{1:t}) = \log p(y_{1:t} \mid x) = \sum_{i=1}^{t} \log p(y_i \mid y_{<i}, x),$$
#
# extend each by every token, keep the $B$ best again, and set aside every hypothesis that
# ends in the end-of-sentence token. With $B = 1$ this is greedy decoding.

# %%
import torch

# %% [markdown]
# ## Task 1 — `reverse_source`
#
# A batch of source sentences of different lengths is stored **time first**, as
# `nn.LSTM` reads it: `src[t, b]` is token $t$ of sentence $b$, and sentence $b$ occupies
# rows $0, \dots, L_b - 1$; the rows after it are padding. Reverse each sentence **within its
# own length**: row $t < L_b$ of the output holds row $L_b - 1 - t$ of the input, and the
# padding rows $t \ge L_b$ stay where they are, unchanged (whatever values they hold).

# %%
def reverse_source(src: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse every sequence of a padded, time-first batch within its own length.

    Args:
        src: (S, B) tensor of tokens, or (S, B, *F) of features (any dtype), time first:
            ``src[t, b]`` is step t of sequence b.
        lengths: integer tensor (B,) with 1 <= lengths[b] <= S: sequence b is
            ``src[:lengths[b], b]``; rows ``lengths[b]:`` of column b are padding.

    Returns:
        A new tensor ``out`` of src's shape, dtype and device with
        ``out[t, b] = src[lengths[b] - 1 - t, b]`` for t < lengths[b] and
        ``out[t, b] = src[t, b]`` for t >= lengths[b] (padding kept in place).
        ``src`` itself is left unchanged. For floating ``src`` the result is differentiable
        (gradients flow back to ``src``).
    """
    # BEGIN SOLUTION
    S, B = src.shape[0], src.shape[1]
    steps = torch.arange(S, device=src.device).unsqueeze(1)       # (S, 1)
    lengths = lengths.to(src.device).long().unsqueeze(0)         # (1, B)
    inside = steps < lengths                                     # (S, B): real tokens
    index = torch.where(inside, lengths - 1 - steps, steps)      # read row L-1-t, or stay
    index = index.reshape(S, B, *([1] * (src.dim() - 2))).expand_as(src)
    return src.gather(0, index)
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `beam_search`
#
# The model is hidden behind `step_fn`: given a batch of prefixes (each starting with the
# start token `bos`), it returns $\log p(\,\cdot \mid \text{prefix}, x)$ over the whole
# vocabulary, one row per prefix. Your search keeps a beam of live hypotheses, each a token
# list with its summed log-probability, and follows exactly the rules of the docstring, which
# are those of the paper: every step extends every live hypothesis by every token, keeps the
# `beam_size` best candidates, and moves those that end in `eos` out of the beam into the set
# of finished translations.
#
# A small example with `beam_size=2`: if the two best candidates of a step are `[bos, 4, eos]`
# and `[bos, 7, 2]`, the first is finished and the beam continues with the single hypothesis
# `[bos, 7, 2]`; at the next step its extensions again fill both slots.

# %%
def beam_search(step_fn, bos: int, eos: int, beam_size: int, max_len: int):
    """Beam search over a model's next-token log-probabilities (Sutskever et al., 2014).

    Args:
        step_fn: called as ``step_fn(prefixes)`` with ``prefixes`` a LongTensor (N, t), one
            row per live hypothesis, all of the same length t (on the CPU is fine); returns a
            floating tensor (N, V) of log-probabilities of the next token, one row per prefix
            (float32 or float64, possibly on a GPU). Call it once per step on all live
            hypotheses, or once per hypothesis: both are fine.
        bos: start token; every hypothesis starts as ``[bos]`` with score 0.
        eos: end token.
        beam_size: B >= 1, the number of candidates kept per step.
        max_len: the number of steps (tokens appended after bos) at most, >= 0.

    The search:

    1. The beam starts as the single live hypothesis ``[bos]`` with score 0.0 (live even
       when ``bos == eos``: only an appended eos finishes a hypothesis).
    2. Each step (at most ``max_len`` steps; stop early when the beam is empty) scores every
       one-token extension of every live hypothesis h by ``score(h) + log_probs[h, v]``
       (log-probabilities are **added**, never multiplied) for every token v of the
       vocabulary, eos included.
    3. The candidates are ranked by score, highest first; ties go to the lower token id,
       then to the earlier hypothesis in the beam. The first ``beam_size`` candidates are
       kept (all of them when there are fewer).
    4. A kept candidate whose new token is ``eos`` is **finished**: it is moved, in rank order,
       to the list of finished hypotheses and leaves the beam; it is never extended again.
       The other kept candidates, in rank order, form the new beam. So finished candidates
       do use up slots at the step where they are made (the new beam then holds fewer than
       ``beam_size`` hypotheses), but at the next step the extensions of the live ones again
       compete for all ``beam_size`` slots.
    5. After the last step, the finished hypotheses (in the order they were finished)
       followed by the live ones (in beam order) are sorted by score, highest first, with a
       **stable** sort (equal scores keep that order), and the first ``beam_size`` are
       returned (fewer when fewer exist, e.g. ``max_len=0`` returns ``[([bos], 0.0)]``).

    With ``beam_size=1`` this is greedy decoding: the best token at every step (the lowest
    id among equal ones), stopping at eos or after ``max_len`` steps.

    Returns:
        A list of ``(sequence, score)`` pairs, best first: ``sequence`` a list of Python ints
        starting with bos, ending with eos when finished (a live hypothesis after ``max_len``
        steps has ``max_len + 1`` tokens and no eos); ``score`` a Python float, the sum of the
        log-probabilities of the appended tokens (no length normalisation). The checks use
        tables of log-probabilities that are exact in float32, so sums are the same whether
        you add Python floats or tensors of either dtype.
    """
    # BEGIN SOLUTION
    beam = [([bos], 0.0)]
    finished = []
    for _ in range(max_len):
        if not beam:
            break
        prefixes = torch.tensor([seq for seq, _ in beam], dtype=torch.long)
        log_probs = step_fn(prefixes).tolist()  # (N, V): log p(v | prefix)
        candidates = []
        for i, (_, score) in enumerate(beam):
            for token, log_p in enumerate(log_probs[i]):
                # s(y_1..y_t, v) = s(y_1..y_t) + log p(v | y_1..y_t)
                candidates.append((score + log_p, token, i))
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        beam_next = []
        for score, token, i in candidates[:beam_size]:
            hypothesis = (beam[i][0] + [token], score)
            if token == eos:
                finished.append(hypothesis)
            else:
                beam_next.append(hypothesis)
        beam = beam_next
    results = finished + beam
    results.sort(key=lambda h: -h[1])  # stable: equal scores keep their order
    return results[:beam_size]
    # END SOLUTION
