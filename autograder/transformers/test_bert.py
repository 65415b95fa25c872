"""Hidden checks for unit 4.2 `bert` (Devlin, Chang, Lee & Toutanova, 2018).

``mask_tokens``: the syllabus fixes the four random draws and their order, so under a supplied
generator the learner's ``(inputs, labels)`` are compared with the reference's exactly, over
several shapes (batch 1, length 1, odd lengths), special masks (``[CLS]``/``[SEP]``/padding
layouts and arbitrary ones), several p (0, 1 and values other than 0.15), small and large
vocabularies. Apart from the exact comparison, a statistical check judges the learner's output
on its own (it passes for any draw order): the selected fraction of non-special tokens and the
80/10/10 split among the selected lie within 5 binomial standard deviations of their
expectations, with a supplied generator and with ``generator=None``; and a check reads ``ids``
back after the call (it must be unchanged).

``BertEmbeddings``: the parameter layout (names, shapes, dtypes), then forward and gradients
with copied weights, float32 and float64, several (B, L) up to L = max_len, 1 to 3 segments.
Token ids in these checks include 0, so a table built with ``padding_idx=0`` shows in the
gradients.

``tests/test_oracle_bert.py`` compares the master with ``transformers``: ``mask_tokens`` equals
``DataCollatorForLanguageModeling.torch_mask_tokens`` draw for draw under the same generator,
and ``BertEmbeddings`` equals its ``BertEmbeddings`` with the weights copied.
"""

import math

import torch

from course.grading.cell_checks import require_layout
from course.grading.dsl import Call, Forbid, Gen, Inspect, Make, Mistake, check

UNIT = "bert"

# Nothing in torch itself masks tokens or builds BERT's input layer. Hugging Face's MLM collator
# draws exactly the syllabus's four tensors in the same order (tests/test_oracle_bert.py), so
# calling it would pass the exact checks without writing the masking: it is forbidden.
FORBIDDEN = [
    Forbid(
        calls=(
            "transformers.data.data_collator.DataCollatorForLanguageModeling",
            "transformers.data.data_collator.DataCollatorForLanguageModeling.torch_mask_tokens",
            "transformers.data.data_collator.DataCollatorForWholeWordMask",
        ),
        within=("mask_tokens",),
    ),
]

IN_PLACE = Mistake(
    "ids-modified-in-place",
    "Your mask_tokens changes the `ids` tensor it was given (the corruption was written into "
    "ids itself, e.g. inputs = ids without a copy). The caller still needs the original "
    "tokens: corrupt a copy, inputs = ids.clone().",
    {"inputs = ids.clone()  # ids itself stays untouched":
     "inputs = ids  # ids itself stays untouched"},
)

MISTAKES = [
    # -- mask_tokens
    Mistake(
        "special-tokens-selected",
        "Your masks select special positions too ([CLS], [SEP], padding): special_mask was "
        "not applied. A position is selected only where the first draw is < p AND "
        "special_mask is False; special positions keep their token and get label -100.",
        {"    sel = sel & ~special_mask  # special tokens are never selected\n": ""},
    ),
    Mistake(
        "special-mask-inverted",
        "Your masks select only special positions: special_mask was used the wrong way round. "
        "special_mask is True at the positions that must NEVER be selected: sel & ~special_mask.",
        {"sel = sel & ~special_mask": "sel = sel & special_mask"},
    ),
    Mistake(
        "corrupt-all-tokens",
        "Your inputs apply the 80/10/10 rule to every position, not only to the selected ones: "
        "about 80 % of all tokens become [MASK]. First select with probability p; only the "
        "selected positions are then masked (80 %), randomised (10 %) or kept (10 %).",
        {"inputs[sel & rep] = mask_id": "inputs[rep] = mask_id",
         "random_pos = sel & ~rep & rnd": "random_pos = ~rep & rnd"},
    ),
    Mistake(
        "labels-everywhere",
        "Your labels keep the original token at every position. The loss is computed at the "
        "selected positions only: labels = ids where selected and -100 everywhere else.",
        {"labels = torch.where(sel, ids, torch.full_like(ids, -100))": "labels = ids.clone()"},
    ),
    Mistake(
        "labels-zero-not-ignored",
        "Your labels hold 0 at the unselected positions. 0 is a real token id, so the loss "
        "would train on them; use -100, cross_entropy's ignore_index.",
        {"torch.full_like(ids, -100)": "torch.full_like(ids, 0)"},
    ),
    Mistake(
        "labels-from-corrupted",
        "Your labels are taken from the corrupted inputs ([MASK] or the random token) instead "
        "of the original ids. The model must predict the token that was there: labels = ids "
        "at the selected positions.",
        {"    return inputs, labels  # the other 10 % keep their token":
         "    labels = torch.where(sel, inputs, torch.full_like(ids, -100))\n"
         "    return inputs, labels  # the other 10 % keep their token"},
    ),
    IN_PLACE,
    Mistake(
        "random-share-0.1",
        "Your masks give too few random tokens: the third draw was compared with 0.1. It "
        "decides among the 20 % of selected tokens that are not masked, half random and half "
        "unchanged, so the test is torch.rand(...) < 0.5 (10 % of the selected each).",
        {"rnd = torch.rand(shape, generator=g) < 0.5":
         "rnd = torch.rand(shape, generator=g) < 0.1"},
    ),
    Mistake(
        "random-where-rnd-false",
        "Your masks put the random token where the third draw is False and keep the token "
        "where it is True: the two 10 % halves are swapped. Replace with random_ids where the "
        "selected, unmasked position has rnd True (torch.rand(...) < 0.5).",
        {"random_pos = sel & ~rep & rnd": "random_pos = sel & ~rep & ~rnd"},
    ),
    Mistake(
        "draws-out-of-order",
        "Your masks match the mask draw (< 0.8) and the random draw (< 0.5) made in the other "
        "order. The order is fixed: selection (< p), then mask (< 0.8), then random (< 0.5), "
        "then the random ids.",
        {"    rep = torch.rand(shape, generator=g) < 0.8\n"
         "    rnd = torch.rand(shape, generator=g) < 0.5\n":
         "    rnd = torch.rand(shape, generator=g) < 0.5\n"
         "    rep = torch.rand(shape, generator=g) < 0.8\n"},
    ),
    Mistake(
        "p-ignored",
        "Your selection ignores the argument p (it matches a fixed 0.15). Select where "
        "torch.rand(ids.shape, generator=generator) < p.",
        {"sel = torch.rand(shape, generator=g) < p": "sel = torch.rand(shape, generator=g) < 0.15"},
    ),
    Mistake(
        "random-ids-without-generator",
        "Your random replacement tokens are not drawn from the supplied generator (they match "
        "torch's global generator). Pass generator= to torch.randint too: "
        "torch.randint(vocab_size, ids.shape, generator=generator).",
        {"torch.randint(vocab_size, shape, generator=g)": "torch.randint(vocab_size, shape)"},
    ),
    # -- BertEmbeddings
    Mistake(
        "no-layer-norm",
        "Your embeddings match the plain sum token + position + segment without the LayerNorm. "
        "BERT normalises the sum: return self.norm(sum).",
        {"return self.norm(e)": "return e"},
    ),
    Mistake(
        "segment-missing",
        "Your embeddings ignore segment_ids: the segment embedding is not added. The input is "
        "norm(token(ids) + position(arange(L)) + segment(segment_ids)).",
        {" + self.segment(segment_ids)": ""},
    ),
    Mistake(
        "positions-from-one",
        "Your positions are counted from 1. The first token of a sequence has position 0: "
        "position(torch.arange(L)), rows 0 … L − 1 of the table.",
        {"torch.arange(ids.shape[1], device=ids.device)":
         "torch.arange(1, ids.shape[1] + 1, device=ids.device)"},
    ),
    Mistake(
        "scaled-token-embedding",
        "Your embeddings match the token embedding multiplied by √dim (the original "
        "Transformer's scaling). BERT adds the three embeddings unscaled before the LayerNorm.",
        {"e = self.token(ids) + self.position": "e = self.token(ids) * self.token.embedding_dim "
         "** 0.5 + self.position"},
    ),
    Mistake(
        "norm-before-sum",
        "Your embeddings match the LayerNorm applied to the token embedding alone, with the "
        "position and segment embeddings added after it. Normalise the sum of all three.",
        {"e = self.token(ids) + self.position(positions) + self.segment(segment_ids)\n"
         "        return self.norm(e)":
         "e = self.norm(self.token(ids)) + self.position(positions) + self.segment(segment_ids)\n"
         "        return e"},
    ),
    Mistake(
        "token-padding-idx",
        "The gradient of token.weight is zero in row 0: the table was built with "
        "padding_idx=0. In this exercise every row is trained, so build a plain "
        "nn.Embedding(vocab_size, dim).",
        {"self.token = nn.Embedding(vocab_size, dim)":
         "self.token = nn.Embedding(vocab_size, dim, padding_idx=0)"},
    ),
]

DTYPES = [torch.float32, torch.float64]
PAD, CLS, SEP, MASK = 0, 1, 2, 3
FIRST_WORD = 4


def _dt(dtype):
    return str(dtype).replace("torch.", "")


def _sentences(grader, B, L, vocab):
    """ids (B, L) laid out as [CLS] words [SEP] words [SEP] [PAD]…, and special_mask = the
    special positions; row lengths vary, row 0 has no padding."""
    ids = grader.randint(FIRST_WORD, vocab, (B, L))
    ids[:, 0] = CLS
    if L >= 2:
        lengths = grader.randint(max(2, L // 2), L + 1, (B,))
        lengths[0] = L
        for b in range(B):
            n = int(lengths[b])
            ids[b, n - 1] = SEP
            if n >= 6:
                ids[b, n // 2] = SEP
            ids[b, n:] = PAD
    return ids, ids < FIRST_WORD


def _mask_call(ids, vocab, special, seed, p=None, mask_id=MASK):
    kwargs = {"generator": Gen(seed)}
    if p is not None:
        kwargs["p"] = p
    return Call("mask_tokens", (ids, vocab, mask_id, special), kwargs)


def _mask_case(ids, vocab, p, what="special tokens"):
    B, L = ids.shape
    p_text = "" if p is None else f", p={p}"
    return f"mask_tokens(ids[{B}, {L}], vocab_size={vocab}{p_text}, {what}, Generator)"


# (B, L, vocab); the first, larger cases tell every banked mistake apart
MASK_SHAPES = [(8, 64, 50), (4, 16, 30), (1, 8, 12), (3, 33, 1000), (1, 1, 10), (16, 128, 100),
               (2, 2, 7)]


@check(points=3, public=True, task="mask_tokens")
def test_mask_exact(grader):
    """mask_tokens returns exactly the reference's (inputs, labels) for a given generator, p 0.15"""
    for B, L, vocab in MASK_SHAPES:
        ids, special = _sentences(grader, B, L, vocab)
        grader.compare(_mask_call(ids, vocab, special, grader.seed()), exact=True,
                       case=_mask_case(ids, vocab, None, "[CLS]/[SEP]/padding special"))


@check(points=2, task="mask_tokens")
def test_mask_options_and_edges(grader):
    """mask_tokens exactly as the reference for p ≠ 0.15, p = 0, p = 1, any special_mask, mask_id"""
    for B, L, vocab, p in [(6, 40, 60, 0.4), (5, 24, 20, 0.05), (2, 30, 9, 0.9)]:
        ids, special = _sentences(grader, B, L, vocab)
        grader.compare(_mask_call(ids, vocab, special, grader.seed(), p), exact=True,
                       case=_mask_case(ids, vocab, p))
    # an arbitrary special_mask, not tied to the ids; mask_id not 3
    ids = grader.randint(0, 40, (4, 20))
    special = grader.rand(4, 20) < 0.3
    grader.compare(_mask_call(ids, 40, special, grader.seed(), 0.5, mask_id=17), exact=True,
                   case=_mask_case(ids, 40, 0.5, "random special_mask, mask_id=17"))
    for p in (1.0, 0.0):
        ids, special = _sentences(grader, 4, 12, 25)
        grader.compare(_mask_call(ids, 25, special, grader.seed(), p), exact=True,
                       case=_mask_case(ids, 25, p))
    ids, _ = _sentences(grader, 3, 10, 25)
    everything = torch.ones(3, 10, dtype=torch.bool)
    grader.compare(_mask_call(ids, 25, everything, grader.seed(), 0.5), exact=True,
                   case=_mask_case(ids, 25, 0.5, "every position special"))
    nothing = torch.zeros(3, 10, dtype=torch.bool)
    grader.compare(_mask_call(ids, 25, nothing, grader.seed(), 0.5), exact=True,
                   case=_mask_case(ids, 25, 0.5, "no position special"))


@check(points=1, public=True, task="mask_tokens")
def test_mask_leaves_ids_unchanged(grader):
    """after mask_tokens returns, the ids tensor passed in still holds the original tokens"""
    for B, L, vocab, p in [(4, 32, 50, None), (1, 5, 10, 1.0)]:
        ids, special = _sentences(grader, B, L, vocab)
        probe = Call("mask_tokens", (ids, vocab, MASK, special),
                     {"generator": Gen(grader.seed()), **({} if p is None else {"p": p})},
                     after=(0,))
        case = f"ids[{B}, {L}] read back after {_mask_case(ids, vocab, p)}"
        got = grader.learner(probe, case)
        after = got.after["arg0"]
        if not (after.shape == ids.shape and torch.equal(after.to(ids.dtype), ids)):
            changed = int((after.reshape(-1) != ids.reshape(-1)).sum()) \
                if after.shape == ids.shape else ids.numel()
            grader.fail(f"{case}: ids changed at {changed} of {ids.numel()} positions",
                        mistake=IN_PLACE)
        grader.cases.append(case)


def _within(grader, case, name, count, n, prob):
    """``count`` successes of ``n`` within 5 binomial standard deviations of n · prob."""
    sd = math.sqrt(n * prob * (1 - prob))
    expected = n * prob
    grader.require(
        abs(count - expected) <= 5 * sd,
        f"{case}: {name} is {count} of {n} ({count / n:.4f}); expected {prob:.4f} "
        f"± {5 * sd / n:.4f} (5 standard deviations of a binomial count)",
    )


# fractions among the selected positions: [MASK] (the 80 %, plus the 1/V of random draws that
# hit mask_id), unchanged (10 %, plus the random draws that hit the original) and random
STAT_VOCAB = 1000


@check(points=2, public=True, task="mask_tokens")
def test_mask_statistics(grader):
    """selected ≈ p of the non-special tokens, split 80/10/10 among them (bounds of 5 sd)"""
    V = STAT_VOCAB
    for p, gen in [(0.15, True), (0.4, True), (0.15, False)]:
        ids, special = _sentences(grader, 64, 256, V)
        kwargs = {"p": p} if p != 0.15 else {}
        if gen:
            kwargs["generator"] = Gen(grader.seed())
        where = "Generator" if gen else "generator=None"
        case = f"mask_tokens(ids[64, 256], vocab_size={V}{'' if p == 0.15 else f', p={p}'}, " \
               f"{where}), statistics"
        got = grader.learner(Call("mask_tokens", (ids, V, MASK, special), kwargs), case)
        out = got.out
        grader.require(
            isinstance(out, (tuple, list)) and len(out) == 2
            and all(isinstance(t, torch.Tensor) for t in out),
            f"{case}: mask_tokens should return a pair of tensors (inputs, labels)",
        )
        inputs, labels = out

        grader.require(
            inputs.shape == ids.shape and labels.shape == ids.shape
            and inputs.dtype == torch.int64 and labels.dtype == torch.int64,
            f"{case}: inputs and labels should be int64 tensors of shape {tuple(ids.shape)}",
        )
        selected = labels != -100
        grader.require(
            not bool((selected & special).any()),
            f"{case}: {int((selected & special).sum())} special positions have a label; "
            "special positions are never selected (label -100)",
        )
        grader.require(
            torch.equal(labels[selected], ids[selected]),
            f"{case}: at the selected positions (label != -100) the label should be the "
            "original token",
        )
        grader.require(
            torch.equal(inputs[~selected], ids[~selected]),
            f"{case}: {int((inputs[~selected] != ids[~selected]).sum())} unselected positions "
            "(label -100) were changed; only selected positions are corrupted",
        )
        grader.require(
            bool(((inputs >= 0) & (inputs < V)).all()),
            f"{case}: inputs hold ids outside [0, vocab_size)",
        )
        n_ordinary, n_sel = int((~special).sum()), int(selected.sum())
        _within(grader, case, "the number of selected non-special positions", n_sel,
                n_ordinary, p)
        masked = int((inputs[selected] == MASK).sum())
        kept = int((inputs[selected] == ids[selected]).sum())
        _within(grader, case, "among the selected, the number of [MASK]", masked, n_sel,
                0.8 + 0.1 / V)
        _within(grader, case, "among the selected, the number left unchanged", kept, n_sel,
                0.1 + 0.1 / V)
        _within(grader, case, "among the selected, the number replaced by another token",
                n_sel - masked - kept, n_sel, 0.1 * (1 - 2 / V))
        grader.cases.append(f"{case}: {n_sel / n_ordinary:.3f} selected, "
                            f"{masked / n_sel:.3f}/{kept / n_sel:.3f}/"
                            f"{(n_sel - masked - kept) / n_sel:.3f} mask/kept/random")


# -- BertEmbeddings ---------------------------------------------------------------------------

def _emb_state(grader, vocab, max_len, segments, dim, dtype):
    return {
        "token.weight": grader.randn(vocab, dim, dtype=dtype),
        "position.weight": grader.randn(max_len, dim, dtype=dtype, scale=0.5),
        "segment.weight": grader.randn(segments, dim, dtype=dtype, scale=0.5),
        "norm.weight": 1 + grader.randn(dim, dtype=dtype, scale=0.2),
        "norm.bias": grader.randn(dim, dtype=dtype, scale=0.2),
    }


def _embeddings(grader, vocab, max_len, segments, dim, dtype):
    state = _emb_state(grader, vocab, max_len, segments, dim, dtype)
    return Make("BertEmbeddings", (vocab, max_len, segments, dim), state_dict=state, dtype=dtype)


def _emb_inputs(grader, B, L, vocab, segments):
    ids = grader.randint(0, vocab, (B, L))
    ids[0, 0] = 0  # token 0 occurs (a padding_idx=0 table would not train its row)
    segment_ids = grader.randint(0, segments, (B, L))
    if segments > 1 and L > 1:  # sentence A then sentence B, as in BERT's pairs
        cut = grader.randint(1, L, (B,))
        segment_ids = (torch.arange(L) >= cut[:, None]).long() * (segments - 1)
    return ids, segment_ids


@check(points=1, public=True, task="BertEmbeddings")
def test_embeddings_layout(grader):
    """BertEmbeddings holds token, position, segment (nn.Embedding) and norm (nn.LayerNorm) only"""
    for args in [(30, 16, 2, 8), (7, 5, 1, 4), (100, 64, 3, 12)]:
        require_layout(
            grader, Inspect(Make("BertEmbeddings", args)),
            case=f"BertEmbeddings{args}",
            advice="Make token = nn.Embedding(vocab_size, dim), position = nn.Embedding(max_len, "
                   "dim), segment = nn.Embedding(num_segments, dim), norm = nn.LayerNorm(dim), "
                   "and no other parameters or buffers.",
        )


# (B, L, vocab, max_len, segments, dim); L < max_len first, then L = max_len
EMB_SHAPES = [(3, 7, 20, 12, 2, 8), (1, 5, 11, 9, 2, 4), (4, 1, 13, 6, 1, 6),
              (2, 10, 30, 10, 3, 16), (1, 16, 50, 16, 2, 12)]


@check(points=2, public=True, task="BertEmbeddings")
def test_embeddings_forward(grader):
    """BertEmbeddings with copied weights: norm(token + position + segment), float32 and float64"""
    for B, L, vocab, max_len, segments, dim in EMB_SHAPES:
        for dtype in DTYPES:
            ids, seg = _emb_inputs(grader, B, L, vocab, segments)
            module = _embeddings(grader, vocab, max_len, segments, dim, dtype)
            grader.compare(
                Call(module, (ids, seg)),
                case=f"BertEmbeddings({vocab}, {max_len}, {segments}, {dim}) on ids[{B}, {L}], "
                     f"{_dt(dtype)}",
            )


@check(points=2, task="BertEmbeddings")
def test_embeddings_gradients(grader):
    """gradients of BertEmbeddings w.r.t. the three tables and the norm's weight and bias"""
    for B, L, vocab, max_len, segments, dim in [(3, 6, 9, 8, 2, 8), (1, 4, 5, 4, 2, 4),
                                                 (2, 9, 12, 12, 3, 6)]:
        for dtype in DTYPES:
            ids, seg = _emb_inputs(grader, B, L, vocab, segments)
            module = _embeddings(grader, vocab, max_len, segments, dim, dtype)
            grader.compare(
                Call(module, (ids, seg), grad=("params",)),
                case=f"d/dparams of BertEmbeddings({vocab}, {max_len}, {segments}, {dim}) on "
                     f"ids[{B}, {L}], {_dt(dtype)}",
            )
