"""Unit 4.3 `roberta`: the master against independent implementations.

- ``pack_sentences`` satisfies, on random corpora, the properties that define the greedy
  FULL-SENTENCES packing and determine it uniquely (checked by a parser written from the
  definition, not by a second packer): every output is a non-empty run of at most ``max_len``
  ids; reading the outputs in order gives back exactly the pieces of the corpus (each sentence
  whole, or cut at multiples of ``max_len`` when it alone is longer) with one ``sep_id`` before
  a document's first piece when it shares a sequence with the previous piece and none
  otherwise; and no sequence could have taken the next sequence's first piece (greedy). It also
  gives the outputs worked out by hand for the docstring's example and a few boundary cases.
- The exercise's given ``mask_tokens`` equals a position-by-position implementation of the
  syllabus's draws (4.2), and 4.2's own master when that file exists.
- ``DynamicMasker`` against ``transformers``' ``DataCollatorForLanguageModeling`` (the library's
  dynamic masking, built from a minimal tokenizer stand-in, nothing downloaded): over many
  epochs both select p of the ordinary positions afresh at every epoch (consecutive epochs
  overlap like independent draws), split the selected 80/10/10, and select each position
  binomially often, within stated bounds; a static masker fails the same tests.
"""

from __future__ import annotations

import math

import pytest
import torch

from course import catalogue
from course.grading.checks import reference

UNIT = catalogue.find("roberta")
NS = reference(UNIT).namespace


# -- pack_sentences ---------------------------------------------------------------------------

def _pieces(docs, max_len):
    """(piece, first piece of its document) for every piece of the corpus, in order."""
    found = []
    for doc in docs:
        first = True
        for sentence in doc:
            for start in range(0, len(sentence), max_len):
                found.append((list(sentence[start:start + max_len]), first))
                first = False
    return found


def _assert_packing(docs, max_len, sep, out):
    pieces = _pieces(docs, max_len)
    k = 0
    firsts = []  # index of each sequence's first piece
    for seq in out:
        assert isinstance(seq, list) and 1 <= len(seq) <= max_len, seq
        assert all(type(i) is int for i in seq)
        pos, opening = 0, True
        firsts.append(k)
        while pos < len(seq):
            assert k < len(pieces), f"more ids than the corpus holds: {seq}"
            piece, starts_doc = pieces[k]
            if starts_doc and not opening:  # a document boundary inside the sequence
                assert seq[pos] == sep, f"separator expected at {pos} of {seq}"
                pos += 1
            assert seq[pos:pos + len(piece)] == piece, f"{piece} expected at {pos} of {seq}"
            pos += len(piece)
            k += 1
            opening = False
    assert k == len(pieces), "some pieces of the corpus are missing from the output"
    for seq, nxt in zip(out, firsts[1:]):  # greedy: the next piece did not fit
        piece, starts_doc = pieces[nxt]
        assert len(seq) + len(piece) + (1 if starts_doc else 0) > max_len


def _random_corpus(g, n_docs, max_sentences, max_words, vocab=40):
    docs = []
    for _ in range(n_docs):
        n = int(torch.randint(0, max_sentences + 1, (1,), generator=g))
        doc = []
        for _ in range(n):
            length = int(torch.randint(1, max_words + 1, (1,), generator=g))
            doc.append(torch.randint(1, vocab, (length,), generator=g).tolist())
        docs.append(doc)
    return docs


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("max_len", [1, 2, 5, 16, 40])
def test_packing_has_the_defining_properties(seed, max_len):
    g = torch.Generator().manual_seed(seed * 100 + max_len)
    docs = _random_corpus(g, 1 + seed * 3, 6, 1 + seed * 2)
    before = [[list(s) for s in d] for d in docs]
    out = NS["pack_sentences"](docs, max_len, 0)
    assert docs == before, "pack_sentences modified its input"
    _assert_packing(docs, max_len, 0, out)


def test_the_property_parser_rejects_wrong_packings():
    docs = [[[1, 2], [3]], [[4, 5]]]
    for wrong in ([[1, 2, 3], [4, 5]][:1],  # a piece missing
                  [[1, 2], [3], [4, 5]],  # not greedy
                  [[1, 2, 3, 4, 5]],  # no separator
                  [[1, 2, 3], [0, 4, 5]],  # separator opening a sequence
                  [[1, 2, 3, 0], [4, 5]]):  # separator closing one
        with pytest.raises(AssertionError):
            _assert_packing(docs, 4, 0, wrong)
    _assert_packing(docs, 4, 0, [[1, 2, 3], [4, 5]])
    _assert_packing(docs, 6, 0, [[1, 2, 3, 0, 4, 5]])


@pytest.mark.parametrize(("docs", "max_len", "want"), [
    ([[[1, 2], [3]], [[4, 5, 6]], [], [[7], [8, 9, 10, 11, 12, 13], [14]]], 5,
     [[1, 2, 3], [4, 5, 6, 0, 7], [8, 9, 10, 11, 12], [13, 14]]),
    ([[[1, 2, 3, 4]], [[5]]], 5, [[1, 2, 3, 4], [5]]),
    ([[[1, 2, 3]], [[4]]], 5, [[1, 2, 3, 0, 4]]),
    ([[[1]], [], [], [[2]]], 9, [[1, 0, 2]]),
    ([[[1, 2, 3, 4, 5, 6, 7]]], 3, [[1, 2, 3], [4, 5, 6], [7]]),
    ([], 3, []),
    ([[], []], 3, []),
])
def test_packing_matches_hand_worked_examples(docs, max_len, want):
    assert NS["pack_sentences"](docs, max_len, 0) == want


def test_packing_the_synthetic_language():
    from course.data.language import corpus, language

    lang = language()
    docs = [[lang.encode(s) for s in doc] for doc in corpus(50, seed=1)]
    out = NS["pack_sentences"](docs, 64, lang.SEP)
    _assert_packing(docs, 64, lang.SEP, out)
    words = sum(len(s) for d in docs for s in d)
    assert words / (len(out) * 64) > 0.85  # packed inputs are mostly text


# -- the given mask_tokens ----------------------------------------------------------------------

def _mask_by_position(ids, vocab_size, mask_id, special_mask, p, generator):
    """The syllabus's draws (4.2), then the rule applied one position at a time."""
    sel = torch.rand(ids.shape, generator=generator) < p
    rep = torch.rand(ids.shape, generator=generator) < 0.8
    rnd = torch.rand(ids.shape, generator=generator) < 0.5
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    inputs, labels = ids.clone(), torch.full_like(ids, -100)
    for b in range(ids.shape[0]):
        for i in range(ids.shape[1]):
            if sel[b, i] and not special_mask[b, i]:
                labels[b, i] = ids[b, i]
                if rep[b, i]:
                    inputs[b, i] = mask_id
                elif rnd[b, i]:
                    inputs[b, i] = random_ids[b, i]
    return inputs, labels


def _data(seed, n, length, vocab):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (n, length), generator=g)
    return ids, torch.rand(n, length, generator=g) < 0.2


@pytest.mark.parametrize(("n", "length", "p"), [(3, 7, 0.15), (1, 20, 0.5), (5, 1, 1.0),
                                                (4, 9, 0.0)])
def test_given_mask_tokens_follows_the_syllabus_draws(n, length, p):
    ids, special = _data(n * 10 + length, n, length, 30)
    kept = ids.clone()
    got = NS["mask_tokens"](ids, 30, 3, special, p, torch.Generator().manual_seed(5))
    want = _mask_by_position(ids, 30, 3, special, p, torch.Generator().manual_seed(5))
    assert torch.equal(ids, kept)
    for a, b in zip(got, want):
        assert a.dtype == torch.int64 and torch.equal(a, b)


def test_given_mask_tokens_equals_bert_master():
    bert = catalogue.find("bert")
    if not bert.solution_path.exists():
        pytest.skip("unit 4.2's master is not written yet")
    theirs = reference(bert).namespace["mask_tokens"]
    for seed, (n, length, p) in enumerate([(4, 11, 0.15), (1, 30, 0.4), (6, 3, 1.0)]):
        ids, special = _data(seed, n, length, 50)
        a = NS["mask_tokens"](ids, 50, 3, special, p, torch.Generator().manual_seed(seed))
        b = theirs(ids, 50, 3, special, p, torch.Generator().manual_seed(seed))
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_dynamic_masker_equals_consecutive_mask_tokens_calls():
    ids, special = _data(3, 5, 12, 40)
    masker = NS["DynamicMasker"](ids, 40, 3, special, p=0.3,
                                 generator=torch.Generator().manual_seed(11))
    g = torch.Generator().manual_seed(11)
    for _ in range(4):
        got, want = masker.epoch(), _mask_by_position(ids, 40, 3, special, 0.3, g)
        assert all(torch.equal(x, y) for x, y in zip(got, want))


# -- DynamicMasker against transformers' DataCollatorForLanguageModeling -------------------------

V, MASK_ID, P = 60, 3, 0.15
N, L, EPOCHS = 48, 40, 30
SDS = 5  # every bound below: 5 standard deviations (normal approximation)


class _Tokenizer:
    """What DataCollatorForLanguageModeling.torch_mask_tokens reads from a tokenizer."""

    mask_token = "<mask>"
    pad_token_id = 0

    def convert_tokens_to_ids(self, token):
        assert token == self.mask_token
        return MASK_ID

    def __len__(self):
        return V


def _library_epochs(ids, special):
    transformers = pytest.importorskip("transformers")
    collator = transformers.DataCollatorForLanguageModeling(tokenizer=_Tokenizer(),
                                                            mlm_probability=P)
    collator.generator = torch.Generator().manual_seed(1)
    out = [collator.torch_mask_tokens(ids.clone(), special_tokens_mask=special)
           for _ in range(EPOCHS)]
    return torch.stack([x for x, _ in out]), torch.stack([y for _, y in out])


def _our_epochs(ids, special, static=False):
    masker = NS["DynamicMasker"](ids, V, MASK_ID, special, p=P,
                                 generator=torch.Generator().manual_seed(2))
    first = masker.epoch()
    out = [first if static else masker.epoch() for _ in range(EPOCHS - 1)]
    return torch.stack([first[0]] + [x for x, _ in out]), torch.stack([first[1]] +
                                                                      [y for _, y in out])


def _statistics(ids, special, inputs, labels):
    """Failures (strings) of the dynamic-masking statistics of E epochs of masks."""
    problems = []
    ordinary = ~special
    n = int(ordinary.sum())
    sel = labels != -100
    if bool((sel & special).any()):
        problems.append("a special position was selected")
    if not bool((labels[sel] == ids.expand_as(labels)[sel]).all()):
        problems.append("labels differ from the original ids")
    rates = sel[:, ordinary].double().mean(1)
    sd = math.sqrt(P * (1 - P) / n)
    if not bool(((rates - P).abs() <= SDS * sd).all()):
        problems.append(f"selection rates {rates.min():.4f}..{rates.max():.4f}")
    both = (sel[1:] & sel[:-1])[:, ordinary].double().mean(1)
    q = P * P
    if not bool(((both - q).abs() <= SDS * math.sqrt(q * (1 - q) / n)).all()):
        problems.append(f"consecutive overlap {both.min():.4f}..{both.max():.4f}, not p²")
    counts = sel[:, ordinary].sum(0).double()  # selections per position over E epochs
    var, want = float(counts.var()), EPOCHS * P * (1 - P)
    # the sample variance of n binomial counts: sd about want * sqrt(2 / n) (normal approx.)
    if abs(var - want) > SDS * want * math.sqrt(2 / n) * 1.5:
        problems.append(f"variance of per-position counts {var:.2f}, binomial {want:.2f}")
    total = int(sel.sum())
    masked = int((inputs[sel] == MASK_ID).sum()) / total
    kept = int((inputs[sel] == ids.expand_as(inputs)[sel]).sum()) / total
    for name, got, expected in (("[MASK]", masked, 0.8 + 0.1 / V),
                                ("unchanged", kept, 0.1 + 0.1 / V)):
        sd = math.sqrt(expected * (1 - expected) / total)
        if abs(got - expected) > SDS * sd:
            problems.append(f"{name} fraction {got:.4f}, expected {expected:.4f}")
    return problems


def test_dynamic_masker_has_the_statistics_of_the_library_collator():
    ids, special = _data(0, N, L, V)
    ids[ids == MASK_ID] = MASK_ID + 1  # keep "[MASK] in the input" unambiguous
    lib_inputs, lib_labels = _library_epochs(ids, special)
    ours_inputs, ours_labels = _our_epochs(ids, special)
    assert _statistics(ids, special, lib_inputs, lib_labels) == []
    assert _statistics(ids, special, ours_inputs, ours_labels) == []
    # and the two agree with each other on the pooled selection rate
    a, b = ((lab[:, ~special] != -100) for lab in (lib_labels, ours_labels))
    m = a.numel()
    assert abs(a.double().mean() - b.double().mean()) <= SDS * math.sqrt(2 * P * (1 - P) / m)


def test_a_static_masker_fails_those_statistics():
    ids, special = _data(0, N, L, V)
    ids[ids == MASK_ID] = MASK_ID + 1
    inputs, labels = _our_epochs(ids, special, static=True)
    problems = _statistics(ids, special, inputs, labels)
    assert any("overlap" in p for p in problems) and any("variance" in p for p in problems)
