# %% [markdown]
# # 4.3 RoBERTa — exercise
#
# Liu et al. (2019) keep BERT's architecture and its masked-language-model objective and change
# only *how the data is fed to it*. Two of their changes are this exercise:
#
# - **FULL-SENTENCES packing.** BERT's inputs were pairs of segments for its next-sentence task.
#   RoBERTa drops that task and fills every input with *whole* sentences taken one after the
#   other from the corpus, up to the length limit: a sentence is never cut in the middle, and
#   when a document ends the input simply goes on with the next document, after one separator
#   token that marks the boundary.
# - **Dynamic masking.** BERT chose the masked positions once, while preparing the data, so the
#   model saw every sequence with the same holes in every epoch (the authors of BERT used ten
#   copies of the data with ten different masks). RoBERTa draws a fresh mask every time a
#   sequence is fed to the model.
#
# You will write the packer and the dynamic masker. The masker calls BERT's `mask_tokens`
# (unit 4.2), which is given to you, fully written, below.
#
# Nothing in `torch` does either job for you; `transformers`' `DataCollatorForLanguageModeling`
# (which masks afresh on every call) is not allowed in this exercise.

# %%
import torch

# %% [markdown]
# ## Task 1 — `pack_sentences`
#
# Walk through the sentences in order, document after document, and pack them greedily:
#
# 1. A sentence longer than `max_len` is first cut into consecutive **pieces** of `max_len`
#    ids (the last piece holds the rest). Every other sentence is a single piece. These are the
#    only cuts: a sentence that fits in `max_len` is never split.
# 2. A piece joins the **current** sequence if the result holds at most `max_len` ids;
#    otherwise the current sequence is finished and a new one starts with the piece.
# 3. The first piece of a new document that joins a sequence still holding the end of an
#    earlier document is preceded by **one** `sep_id`, and that separator counts toward
#    `max_len`. When the separator and the piece do not both fit, the sequence is finished and
#    the piece opens the next one *without* a separator: a document boundary that falls between
#    two sequences needs no mark. So no sequence begins or ends with `sep_id`, and two
#    separators never touch. A document without sentences adds nothing, not even a separator.
# 4. After the last sentence the current sequence is finished too (no sequence is empty).
#
# For example, with `max_len = 5` and `sep_id = 0`, the documents
# `[[[1, 2], [3]], [[4, 5, 6]], [], [[7], [8, 9, 10, 11, 12, 13], [14]]]` give
# `[[1, 2, 3], [4, 5, 6, 0, 7], [8, 9, 10, 11, 12], [13, 14]]`: `[4, 5, 6]` does not fit after
# `[1, 2, 3]` with its separator, `[7]` does fit after `[4, 5, 6]` with one, the empty document
# adds nothing, and the sentence of six ids is cut into `[8, 9, 10, 11, 12]` and `[13]`, which
# the next sentence then joins.

# %%
def pack_sentences(docs: list[list[list[int]]], max_len: int, sep_id: int) -> list[list[int]]:
    """RoBERTa's FULL-SENTENCES inputs: whole sentences packed greedily across documents.

    Args:
        docs: a list of documents; a document is a list of sentences (possibly none); a
            sentence is a non-empty list of token ids (Python ints). ``docs`` is never modified
            (the checks compare it after the call): build new lists, do not extend the
            caller's sentences.
        max_len: the largest number of ids in one sequence, an int >= 1.
        sep_id: the separator id put between two documents inside one sequence.

    Returns:
        A new list of sequences, each a non-empty list of Python ints of length <= max_len,
        built by the greedy rule above: pieces (whole sentences, or ``max_len``-long cuts of a
        sentence longer than ``max_len``, the last cut holding the rest) are appended in order
        while they fit; the first piece of a document that joins a sequence holding an earlier
        document's end is preceded by one ``sep_id`` (counted in ``max_len``); when the
        separator and the piece do not both fit, the piece starts the next sequence without a
        separator. Documents without sentences are skipped. ``[]`` when there are no sentences
        at all.

    This reads the paper's "an extra separator token between documents" as a mark inside a
    sequence. (fairseq, the paper's code, gets its separator from the empty line between
    two documents of the raw text, a one-token line packed like any sentence, so there a
    separator may also open or close a sequence; not here.)
    """
    # BEGIN SOLUTION
    sequences: list[list[int]] = []
    current: list[int] = []
    for doc in docs:
        new_doc = True  # the next piece is the first one of this document
        for sentence in doc:
            for start in range(0, len(sentence), max_len):  # one piece unless it is too long
                piece = [int(i) for i in sentence[start:start + max_len]]
                glue = [sep_id] if new_doc and current else []  # mark the document boundary
                if len(current) + len(glue) + len(piece) <= max_len:
                    current = current + glue + piece
                else:  # does not fit: finish this sequence, the piece opens the next one
                    sequences.append(current)
                    current = piece
                new_doc = False
    if current:
        sequences.append(current)
    return sequences
    # END SOLUTION


# %% [markdown]
# ## Given — `mask_tokens` (unit 4.2)
#
# BERT's masking, exactly as unit 4.2 specifies it, fully written: you do not change it, you
# call it. It draws **four tensors, in this order**, each of the shape of `ids`, on the CPU,
# from `generator`: the selection (`rand < p`, special positions never selected), the `[MASK]`
# choice (`rand < 0.8`), the random-token choice (`rand < 0.5`) and the random ids
# (`randint(vocab_size)`); of the selected positions about 80 % become `mask_id`, 10 % a random
# id and 10 % keep their token. `labels` is the original id at the selected positions and -100
# elsewhere. Every call draws a new mask; two calls on the same generator draw two different
# ones.

# %%
def mask_tokens(
    ids: torch.Tensor,
    vocab_size: int,
    mask_id: int,
    special_mask: torch.Tensor,
    p: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masked-language-model corruption (given, unit 4.2): select p, then 80/10/10.

    ids: LongTensor (B, L) on any device; special_mask: bool (B, L), True where a position
    may never be selected; generator: a CPU ``torch.Generator`` (None: torch's global one),
    from which exactly four tensors of shape ``ids.shape`` are drawn on the CPU, in this
    order: ``rand < p``, ``rand < 0.8``, ``rand < 0.5``, ``randint(vocab_size)``. Returns new
    LongTensors ``(inputs, labels)`` on the device of ``ids``; ``ids`` is not modified.
    """
    shape = ids.shape
    draw_sel = torch.rand(shape, generator=generator) < p
    draw_rep = torch.rand(shape, generator=generator) < 0.8
    draw_rnd = torch.rand(shape, generator=generator) < 0.5
    draw_ids = torch.randint(vocab_size, shape, generator=generator)
    device = ids.device
    selected = draw_sel.to(device) & ~special_mask.to(device)
    to_mask = selected & draw_rep.to(device)
    to_random = selected & ~draw_rep.to(device) & draw_rnd.to(device)
    corrupted = torch.where(to_mask, torch.full_like(ids, mask_id), ids)
    corrupted = torch.where(to_random, draw_ids.to(device), corrupted)
    targets = torch.where(selected, ids, torch.full_like(ids, -100))
    return corrupted, targets


# %% [markdown]
# ## Task 2 — `DynamicMasker`
#
# The masker holds a whole (small) training set of token ids and hands out one masked copy of
# it per epoch. **Static masking**, as in the original BERT, masks once and repeats that one
# mask; **dynamic masking** draws a new one every epoch. Write the dynamic one: every call of
# `epoch()` makes exactly one call of the given `mask_tokens` on all the stored ids, with the
# stored `vocab_size`, `mask_id`, `special_mask`, `p` and the masker's own `generator`, and
# returns what it returns. Keep the generator for the masker's whole life (do not re-seed it or
# make a new one): its $k$-th call of `epoch()` then returns exactly what the $k$-th of $k$
# consecutive calls of `mask_tokens(ids, vocab_size, mask_id, special_mask, p, generator)`
# returns on a generator with the same seed. Always mask the original ids (never the previous
# epoch's masked inputs), and do not modify them.

# %%
class DynamicMasker:
    """RoBERTa's dynamic masking: a fresh BERT mask of the same data every epoch.

    ``DynamicMasker(ids, vocab_size, mask_id, special_mask, p=0.15, generator=None)``

    Args:
        ids: LongTensor (int64) of shape (N, L) on any device, the whole training set (rows are
            sequences). Kept as given and never modified: the checks compare it after several
            epochs.
        vocab_size: V, passed on to ``mask_tokens`` (the random replacements are drawn from
            all V ids).
        mask_id: the id of the mask token, passed on to ``mask_tokens``.
        special_mask: bool tensor (N, L) on the device of ``ids``, True at positions that are
            never selected (separators, padding, ...), passed on to ``mask_tokens``.
        p: the selection probability, passed on to ``mask_tokens`` (the checks use p other
            than 0.15 too).
        generator: a ``torch.Generator`` on the CPU, kept for the masker's whole life and
            passed to every ``mask_tokens`` call; each epoch draws its four tensors of shape
            (N, L) from it, continuing where the previous epoch stopped (so the draws of epoch
            k are the k-th four draws of this generator). With ``generator=None``,
            ``mask_tokens`` draws from torch's global generator.

    ``epoch() -> (inputs, labels)``: one epoch's masked copy of the whole training set, two
    LongTensors (N, L), int64, on the device of ``ids``: exactly the result of one call
    ``mask_tokens(ids, vocab_size, mask_id, special_mask, p, generator)`` on the original
    ids, made afresh at every call of ``epoch()`` (a new mask every epoch, never a stored one).

    Forbidden: ``transformers.DataCollatorForLanguageModeling`` (and the whole-word variant).
    """

    def __init__(
        self,
        ids: torch.Tensor,
        vocab_size: int,
        mask_id: int,
        special_mask: torch.Tensor,
        p: float = 0.15,
        generator: torch.Generator | None = None,
    ) -> None:
        # BEGIN SOLUTION
        self.ids = ids
        self.vocab_size = vocab_size
        self.mask_id = mask_id
        self.special_mask = special_mask
        self.p = p
        self.generator = generator
        # END SOLUTION

    def epoch(self) -> tuple[torch.Tensor, torch.Tensor]:
        # BEGIN SOLUTION
        # a new draw from the same generator at every epoch: dynamic masking
        return mask_tokens(self.ids, self.vocab_size, self.mask_id, self.special_mask,
                           self.p, self.generator)
        # END SOLUTION
