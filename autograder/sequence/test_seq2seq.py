"""Hidden checks for unit 3.7 `seq2seq` (Sutskever, Vinyals & Le, 2014).

``reverse_source`` is compared with the master on seeded, padded, time-first batches (tokens
and float features, float32 and float64, batch 1, length 1 and full-length columns), values
and gradients, and the input is checked to be left unchanged.

``beam_search`` is called from the grader-owned driver ``course.grading.drivers.seq2seq``
with step functions built from tables of log-probabilities (a position-dependent first-order
model, ``table[t - 1, last token]``). Every table holds multiples of 1/256 of moderate size,
so every score is a sum that is exact in float32 and in float64: the reference in float64,
the reference in the table's dtype and a correct learner agree exactly, ties included. The
tables: random ones (several vocabularies, beam sizes above and below V), ones with eos made
likely early, ones where every hypothesis finishes before max_len, rows of exact ties, and
hand-built ones whose best sequence is known (greedy falls into a trap, beam search does not).
The driver returns sequences as LongTensors (compared exactly) and scores as float64 tensors.
"""

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "seq2seq"

# Nothing in torch itself does beam search or reverses padded sequences; these are the library
# decoders a learner might reach for instead of writing the search.
FORBIDDEN = [
    Forbid(
        calls=(
            "torchaudio.models.decoder.ctc_decoder",
            "torchaudio.models.decoder.cuda_ctc_decoder",
            "transformers.generation.BeamSearchScorer",
        ),
    ),
]

MISTAKES = [
    Mistake(
        "finished-expanded",
        "Your results match a search that keeps hypotheses ending in eos in the beam and "
        "extends them further. A candidate whose new token is eos is finished: move it out of "
        "the beam into the finished list and never extend it again.",
        {"            if token == eos:\n                finished.append(hypothesis)\n"
         "            else:\n                beam_next.append(hypothesis)\n":
         "            beam_next.append(hypothesis)\n"},
    ),
    Mistake(
        "scores-multiplied",
        "Your scores match log-probabilities multiplied along the hypothesis. The score of a "
        "sequence is log p(y_1..y_t) = Σ log p(y_i | y_<i): add each token's log-probability "
        "to the prefix's score.",
        {"score + log_p": "score * log_p"},
    ),
    Mistake(
        "eos-dropped",
        "Your results match a search that throws away hypotheses ending in eos. Finished "
        "hypotheses leave the beam but are kept, and compete with the live ones for the "
        "returned list.",
        {"finished.append(hypothesis)": "pass"},
    ),
    Mistake(
        "finished-take-slots",
        "Your results match a beam whose size shrinks by one for every finished hypothesis "
        "(only beam_size − len(finished) candidates kept). Finished hypotheses leave the beam: "
        "at every step keep the beam_size best extensions of the live hypotheses.",
        {"candidates[:beam_size]": "candidates[:beam_size - len(finished)]"},
    ),
    Mistake(
        "eos-takes-no-slot",
        "Your results match a search that always fills the beam with beam_size live "
        "hypotheses, setting eos candidates aside without counting them. Here the beam_size "
        "best candidates are kept, eos ones included; those ending in eos then leave the "
        "beam, which holds fewer hypotheses until the next step.",
        {"        for score, token, i in candidates[:beam_size]:\n":
         "        for score, token, i in candidates:\n"
         "            if len(beam_next) == beam_size:\n                break\n"},
    ),
    Mistake(
        "ties-hypothesis-first",
        "Your results match ties broken by the hypothesis first (the order of a flattened "
        "(N·V) top-k). Among equal scores prefer the lower token id, and only then the "
        "earlier hypothesis.",
        {"(-c[0], c[1], c[2])": "(-c[0], c[2], c[1])"},
    ),
    Mistake(
        "ties-reversed",
        "Your results match candidates sorted in descending order as (score, token, "
        "hypothesis) tuples, so ties go to the higher token id. Sort by score descending, "
        "then by token id ascending, then by hypothesis ascending.",
        {"candidates.sort(key=lambda c: (-c[0], c[1], c[2]))": "candidates.sort(reverse=True)"},
    ),
    Mistake(
        "max-len-short",
        "Your results match a search that stops one step early (max_len − 1 steps). "
        "max_len is the number of tokens appended after bos at most.",
        {"range(max_len)": "range(max_len - 1)"},
    ),
    Mistake(
        "max-len-long",
        "Your results match a search that runs one step too long (max_len + 1 steps). "
        "max_len is the number of tokens appended after bos at most: a live hypothesis ends "
        "with max_len + 1 tokens, bos included.",
        {"range(max_len)": "range(max_len + 1)"},
    ),
    Mistake(
        "live-dropped",
        "Your results match returning only the finished hypotheses whenever there are any. "
        "Return the beam_size best of the finished and the live hypotheses together.",
        {"results = finished + beam": "results = finished or beam"},
    ),
    Mistake(
        "live-before-finished",
        "Your results differ only in the order of equal scores: live hypotheses before the "
        "finished ones. Sort the finished hypotheses (in the order they finished) followed by "
        "the live ones with a stable sort, so that finished ones come first among equals.",
        {"results = finished + beam": "results = beam + finished"},
    ),
    Mistake(
        "results-unsorted",
        "Your results match the finished and live hypotheses returned without sorting them by "
        "score. Return them best first.",
        {"    results.sort(key=lambda h: -h[1])  # stable: equal scores keep their order\n": ""},
    ),
    Mistake(
        "length-normalised",
        "Your results match hypotheses ranked by score per token. Rank (and report) the "
        "unnormalised sum of log-probabilities, as the paper does.",
        {"results.sort(key=lambda h: -h[1])": "results.sort(key=lambda h: -h[1] / len(h[0]))"},
    ),
    Mistake(
        "bos-dropped",
        "Your sequences match the hypotheses without their leading bos. Return each sequence "
        "as searched: starting with bos (and ending with eos when finished).",
        {"return results[:beam_size]":
         "return [(seq[1:], score) for seq, score in results[:beam_size]]"},
    ),
    Mistake(
        "reverse-padding-too",
        "Your output matches the whole padded column reversed, padding included, so short "
        "sequences end up behind their padding. Reverse only the first lengths[b] rows of "
        "column b and leave the padding rows where they are.",
        {"    return src.gather(0, index)": "    return src.flip(0)"},
    ),
    Mistake(
        "reverse-off-by-one",
        "Your output matches row t reading row lengths[b] − t instead of lengths[b] − 1 − t. "
        "The last real token sits at row lengths[b] − 1.",
        {"lengths - 1 - steps": "lengths - steps"},
    ),
    Mistake(
        "reverse-in-place",
        "Your output is right, but src was changed by the call. Return a new tensor and "
        "leave src as it was.",
        {"    return src.gather(0, index)":
         "    src.copy_(src.gather(0, index))\n    return src"},
    ),
]

QUANTUM = 256.0  # table entries are multiples of 1/256: sums are exact in float32


def _quantize(table: torch.Tensor) -> torch.Tensor:
    return torch.round(table * QUANTUM) / QUANTUM


def _random_table(grader, max_len, vocab, scale=2.0, eos=None, eos_boost=0.0, bos=None):
    """A (max_len + 1, V, V) table of next-token log-probabilities, quantized; ``eos_boost``
    raises eos's logit, and the bos token is made unlikely."""
    logits = grader.randn(max_len + 1, vocab, vocab, scale=scale)
    if eos is not None:
        logits[..., eos] += eos_boost
    if bos is not None:
        logits[..., bos] -= 3.0
    return _quantize(torch.log_softmax(logits, dim=-1))


def _beam(table, bos, eos, beam_size, max_len, dtype):
    return Call("@seq2seq.beam", (table.to(dtype), bos, eos, beam_size, max_len))


# -- beam search ---------------------------------------------------------------------------
@check(points=2, public=True, task="beam_search")
def test_greedy(grader):
    """beam_size=1 is greedy decoding: the best token at every step, stopping at eos or max_len"""
    for vocab, max_len, bos, eos, boost in [(5, 6, 0, 1, 0.0), (7, 4, 6, 2, 1.0),
                                            (3, 8, 0, 2, 0.5), (9, 5, 1, 8, -1.0)]:
        table = _random_table(grader, max_len, vocab, eos=eos, eos_boost=boost, bos=bos)
        for dtype in DTYPES:
            grader.compare(
                _beam(table, bos, eos, 1, max_len, dtype),
                case=f"beam_size=1, V={vocab}, max_len={max_len}, bos={bos}, eos={eos}, "
                f"random table (eos boost {boost}), {_dt(dtype)}",
            )


@check(points=2, public=True, task="beam_search")
def test_random_tables(grader):
    """beam_search returns the reference's hypotheses and scores on random tables"""
    settings = [  # (V, beam_size, max_len, bos, eos, eos boost)
        (4, 2, 4, 3, 0, 0.5), (6, 3, 5, 0, 1, 0.0), (8, 5, 6, 0, 7, 0.0),
        (3, 4, 3, 0, 1, 0.0), (5, 10, 4, 4, 2, 0.0), (7, 3, 7, 0, 3, 1.5), (10, 2, 6, 9, 5, 0.0),
    ]
    for vocab, beam_size, max_len, bos, eos, boost in settings:
        table = _random_table(grader, max_len, vocab, eos=eos, eos_boost=boost, bos=bos)
        for dtype in DTYPES:
            grader.compare(
                _beam(table, bos, eos, beam_size, max_len, dtype),
                case=f"beam_size={beam_size}, V={vocab}, max_len={max_len}, bos={bos}, "
                f"eos={eos}, random table (eos boost {boost}), {_dt(dtype)}",
            )


@check(points=2, task="beam_search")
def test_finished_hypotheses(grader):
    """finished hypotheses leave the beam with their score; the search stops when none is live"""
    # from step 3 on eos is nearly certain: every hypothesis finishes long before max_len
    for vocab, beam_size, max_len in [(5, 3, 9), (4, 2, 8), (6, 6, 10)]:
        bos, eos = 0, vocab - 1
        table = _random_table(grader, max_len, vocab, eos=eos, bos=bos)
        table[2:] = -8.0
        table[2:, :, eos] = -0.0078125  # = -2/256
        for dtype in DTYPES:
            grader.compare(
                _beam(table, bos, eos, beam_size, max_len, dtype),
                case=f"beam_size={beam_size}, V={vocab}, max_len={max_len}, all finish at "
                f"step 3, {_dt(dtype)}",
            )
    # eos likely from the first step: many candidates finish early and the beam refills
    for vocab, beam_size, max_len, boost in [(5, 4, 5, 3.0), (6, 3, 6, 2.0), (8, 2, 7, 2.5)]:
        bos, eos = 0, 1
        table = _random_table(grader, max_len, vocab, eos=eos, eos_boost=boost, bos=bos)
        for dtype in DTYPES:
            grader.compare(
                _beam(table, bos, eos, beam_size, max_len, dtype),
                case=f"beam_size={beam_size}, V={vocab}, max_len={max_len}, eos likely "
                f"(boost {boost}), {_dt(dtype)}",
            )


def _uniform(max_len, vocab):
    value = _quantize(torch.tensor(-torch.log(torch.tensor(float(vocab))).item()))
    return torch.full((max_len + 1, vocab, vocab), float(value), dtype=torch.float64)


@check(points=1, task="beam_search")
def test_ties(grader):
    """ties: lower token id, then earlier hypothesis; equal results: finished before live"""
    # every candidate ties: the kept candidates are decided by the tie rules alone
    for vocab, beam_size, max_len, bos, eos in [(4, 3, 3, 3, 0), (4, 6, 3, 3, 0),
                                                (3, 4, 4, 2, 1), (5, 2, 3, 4, 4)]:
        table = _uniform(max_len, vocab)
        for dtype in DTYPES:
            grader.compare(
                _beam(table, bos, eos, beam_size, max_len, dtype),
                case=f"all-tie table, beam_size={beam_size}, V={vocab}, max_len={max_len}, "
                f"bos={bos}, eos={eos}, {_dt(dtype)}",
            )
    # ties between hypotheses only: two prefixes with equal scores and equal rows
    table = _uniform(4, 5)
    table[0, 0] = torch.tensor([-4.0, -0.5, -0.5, -2.0, -4.0])
    table[1:] = torch.tensor([-3.0, -1.0, -3.0, -1.0, -0.5])
    for dtype in DTYPES:
        grader.compare(
            _beam(table, 0, 4, 3, 4, dtype),
            case=f"ties between hypotheses, beam_size=3, V=5, max_len=4, {_dt(dtype)}",
        )


@check(points=1, task="beam_search")
def test_lengths_and_counts(grader):
    """max_len bounds the appended tokens; fewer than beam_size results when fewer exist"""
    cases = [  # (V, beam_size, max_len)
        (5, 3, 0), (2, 4, 1), (3, 5, 1), (2, 8, 2), (4, 1, 0),
    ]
    for vocab, beam_size, max_len in cases:
        bos, eos = 0, vocab - 1
        table = _random_table(grader, max_len, vocab)
        for dtype in DTYPES:
            grader.compare(
                _beam(table, bos, eos, beam_size, max_len, dtype),
                case=f"beam_size={beam_size}, V={vocab}, max_len={max_len}, {_dt(dtype)}",
            )
    # eos almost impossible: every result is live and has exactly max_len + 1 tokens
    for vocab, beam_size, max_len in [(4, 3, 5), (6, 2, 3)]:
        bos, eos = 0, 1
        table = _random_table(grader, max_len, vocab, eos=eos, eos_boost=-12.0)
        for dtype in DTYPES:
            grader.compare(
                _beam(table, bos, eos, beam_size, max_len, dtype),
                case=f"beam_size={beam_size}, V={vocab}, max_len={max_len}, eos unlikely, "
                f"{_dt(dtype)}",
            )


def _trap():
    """bos=0, eos=1, V=4: greedy takes token 2 (−0.5), after which every token costs −1.5;
    token 3 (−1.0) is followed by eos at −0.125. Best: [0, 3, 1] with −1.125."""
    table = torch.full((4, 4, 4), -3.0, dtype=torch.float64)
    table[0, 0] = torch.tensor([-4.0, -4.0, -0.5, -1.0])
    table[1:, 2] = -1.5
    table[1:, 3] = torch.tensor([-4.0, -0.125, -3.0, -3.0])
    table[1:, 1] = -2.0
    table[1:, 0] = -2.0
    return table


@check(points=1, task="beam_search")
def test_known_best(grader):
    """on a greedy-trap table, beam search finds the known best sequence, greedy does not"""
    table = _trap()
    expected = {1: ([0, 2, 0], -2.0), 2: ([0, 3, 1], -1.125)}
    for beam_size, (sequence, score) in expected.items():
        for dtype in DTYPES:
            case = f"greedy-trap table, beam_size={beam_size}, max_len=2, {_dt(dtype)}"
            want = grader.reference(_beam(table, 0, 1, beam_size, 2, dtype))
            best = want.out
            assert best["sequences"][0].tolist() == sequence, case
            assert best["scores"][0].item() == score, case

            grader.compare(_beam(table, 0, 1, beam_size, 2, dtype), case=case)


# -- reverse_source ------------------------------------------------------------------------
def _lengths(grader, sizes):
    s, b, lengths = sizes
    if lengths is None:
        lengths = grader.randint(1, s + 1, (b,)).tolist()
    return torch.tensor(lengths, dtype=torch.long)


TOKEN_SIZES = [  # (S, B, lengths); the first has no full-length column
    (6, 3, [4, 2, 1]), (5, 4, [5, 3, 1, 5]), (1, 1, [1]), (7, 1, [4]), (3, 5, None),
    (9, 6, None),
]


@check(points=1, public=True, task="reverse_source")
def test_reverse_tokens(grader):
    """reverse_source reverses (S, B) columns within length, keeps padding and src"""
    for sizes in TOKEN_SIZES:
        s, b, _ = sizes
        lengths = _lengths(grader, sizes)
        src = grader.randint(1, 20, (s, b))  # padding rows hold tokens too: they must stay
        grader.compare(
            Call("reverse_source", (src, lengths), after=(0,)),
            case=f"reverse_source(src int64[{s}, {b}], lengths={lengths.tolist()})",
        )


@check(points=1, task="reverse_source")
def test_reverse_features(grader):
    """reverse_source on (S, B, D) float features: values, gradients, src left unchanged"""
    for s, b, d, lengths in [(5, 3, 2, [3, 5, 1]), (1, 2, 4, [1, 1]), (8, 1, 3, None),
                             (6, 4, 1, None)]:
        lengths = _lengths(grader, (s, b, lengths))
        for dtype in DTYPES:
            src = grader.randn(s, b, d, dtype=dtype)
            grader.compare(
                Call("reverse_source", (src, lengths), grad=(0,), after=(0,)),
                case=f"reverse_source(src {_dt(dtype)}[{s}, {b}, {d}], "
                f"lengths={lengths.tolist()}) and d/dsrc",
            )
