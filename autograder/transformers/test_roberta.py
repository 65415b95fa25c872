"""Hidden checks for unit 4.3 `roberta` (Liu et al., 2019).

``pack_sentences`` is compared exactly with the master on hand-made documents (every rule of the
docstring: greedy fit, sentences never split, one separator between documents inside a
sequence and none at a boundary between sequences, empty documents, sentences longer than
``max_len`` cut into pieces), on random corpora, and on the synthetic language of Part 04; the
documents are compared after the call too (they must not change). The master was checked,
outside the checks, against the properties that define the greedy packing and determine it
uniquely, and against hand-worked examples (``tests/test_oracle_roberta.py``).

``DynamicMasker`` calls the exercise's given ``mask_tokens`` (4.2's draws, fixed by the
syllabus), so with a supplied generator its masks are compared exactly, epoch after epoch,
through a grader-owned driver (``course/grading/drivers/roberta.py``) that builds the masker
once and calls ``epoch()`` several times. A statistical check judges the learner's own masks
alone (fresh selection each epoch, labels and untouched positions equal to the original ids),
so a correct masker with other draws still earns it. No input is floating point, so there is
no float32 / float64 distinction to check.
"""

import math

import torch

from course.data.language import corpus, language
from course.grading.dsl import Call, Forbid, Gen, Mistake, check

UNIT = "roberta"

FORBIDDEN = [
    Forbid(
        calls=(
            "transformers.DataCollatorForLanguageModeling",
            "transformers.DataCollatorForWholeWordMask",
        ),
        within=("DynamicMasker", "@roberta.epochs"),
    ),
]

MISTAKES = [
    # -- pack_sentences ----------------------------------------------------------------------
    Mistake(
        "sentences-split",
        "Your sequences match the token stream cut into blocks of exactly max_len ids, which "
        "splits sentences across sequences. FULL-SENTENCES packs whole sentences: when the "
        "next sentence does not fit, finish the sequence and start the next one with it (only "
        "a sentence longer than max_len is cut).",
        {
            "            for start in range(0, len(sentence), max_len):  # one piece unless it "
            "is too long\n"
            "                piece = [int(i) for i in sentence[start:start + max_len]]\n":
            "            for start in range(len(sentence)):  # one piece unless it is too long\n"
            "                piece = [int(sentence[start])]\n"
        },
    ),
    Mistake(
        "separator-missing",
        "Your sequences match documents joined without a separator. When a sequence goes on "
        "with the next document, put one sep_id between the two documents (it counts toward "
        "max_len).",
        {"glue = [sep_id] if new_doc and current else []": "glue = []"},
    ),
    Mistake(
        "separator-at-document-end",
        "Your sequences match a separator added at the end of every document whenever there "
        "is room, before knowing whether the next document joins the sequence: sequences end "
        "with sep_id, and empty documents double it. Put one sep_id only right before the "
        "first sentence of a document that joins the same sequence.",
        {
            "        new_doc = True  # the next piece is the first one of this document\n":
            "        if current and len(current) < max_len:  # room for a separator\n"
            "            current = current + [sep_id]\n"
            "        new_doc = False  # the next piece is the first one of this document\n"
        },
    ),
    Mistake(
        "separator-opens-sequence",
        "Your sequences begin with sep_id when a new document starts a new sequence. A "
        "document boundary that falls between two sequences needs no separator: the new "
        "sequence starts with the document's first sentence.",
        {"current = piece\n": "current = glue + piece\n"},
    ),
    Mistake(
        "separator-not-counted",
        "Your sequences match a length test that leaves the separator out, so a sequence "
        "holding a separator can reach max_len + 1 ids. The separator counts toward max_len: "
        "join only when len(current) + 1 + len(sentence) <= max_len.",
        {"len(current) + len(glue) + len(piece) <= max_len":
         "len(current) + len(piece) <= max_len"},
    ),
    Mistake(
        "full-length-excluded",
        "Your sequences never reach max_len ids exactly (the length test uses < instead of "
        "<=). A sequence may hold max_len ids.",
        {"len(current) + len(glue) + len(piece) <= max_len":
         "len(current) + len(glue) + len(piece) < max_len"},
    ),
    Mistake(
        "documents-not-crossed",
        "Your sequences match every document starting a new sequence (DOC-SENTENCES). "
        "FULL-SENTENCES crosses document boundaries: the next document goes on in the same "
        "sequence, after one sep_id, as long as its first sentence fits.",
        {
            "        new_doc = True  # the next piece is the first one of this document\n":
            "        new_doc = True  # the next piece is the first one of this document\n"
            "        if current and doc:\n"
            "            sequences.append(current)\n"
            "            current = []\n"
        },
    ),
    Mistake(
        "last-sequence-dropped",
        "Your output is missing the last sequence: after the last sentence, the sequence "
        "being filled must be finished (appended) too.",
        {"    if current:\n        sequences.append(current)\n": ""},
    ),
    Mistake(
        "long-sentence-truncated",
        "Your sequences drop the end of every sentence longer than max_len. Cut such a "
        "sentence into consecutive pieces of max_len ids (the last piece holds the rest) and "
        "pack every piece.",
        {"range(0, len(sentence), max_len)": "range(0, min(len(sentence), 1), max_len)"},
    ),
    Mistake(
        "docs-modified",
        "Your function changed the documents it was given (a sentence list was extended in "
        "place after a sequence started as that very list). Build new lists: copy a sentence "
        "before adding to it (list(sentence), or current + piece), and never append to the "
        "caller's lists.",
        {
            "                piece = [int(i) for i in sentence[start:start + max_len]]\n":
            "                piece = sentence if len(sentence) <= max_len else "
            "sentence[start:start + max_len]\n",
            "current = current + glue + piece": "current += glue + piece",
        },
    ),
    # -- DynamicMasker -------------------------------------------------------------------------
    Mistake(
        "static-mask",
        "Your masker returns the same mask every epoch: it masked once (static masking, as the "
        "original BERT did while preparing the data). Dynamic masking calls mask_tokens afresh "
        "inside every epoch() call, with the masker's generator.",
        {
            "        self.generator = generator\n":
            "        self.generator = generator\n"
            "        self.masked = mask_tokens(ids, vocab_size, mask_id, special_mask, p, "
            "generator)\n",
            "        return mask_tokens(self.ids, self.vocab_size, self.mask_id, "
            "self.special_mask,\n                           self.p, self.generator)\n":
            "        return self.masked\n",
        },
    ),
    Mistake(
        "masks-accumulate",
        "Your epochs mask the previous epoch's masked inputs (the masked copy replaced the "
        "stored ids), so masks pile up and labels hold mask ids. Mask the original ids at "
        "every epoch and keep them as they are.",
        {
            "        return mask_tokens(self.ids, self.vocab_size, self.mask_id, "
            "self.special_mask,\n                           self.p, self.generator)\n":
            "        inputs, labels = mask_tokens(self.ids, self.vocab_size, self.mask_id,\n"
            "                                     self.special_mask, self.p, self.generator)\n"
            "        self.ids = inputs\n"
            "        return inputs, labels\n",
        },
    ),
    Mistake(
        "generator-not-passed",
        "Your masks match mask_tokens drawing from torch's global generator: the masker's "
        "generator was not passed on. Call mask_tokens(..., p, generator) with the generator "
        "the masker was given, at every epoch.",
        {"                           self.p, self.generator)":
         "                           self.p)"},
    ),
    Mistake(
        "p-not-passed",
        "Your masks match a selection probability of 0.15 whatever p the masker was given. "
        "Pass the masker's p on to mask_tokens.",
        {"                           self.p, self.generator)":
         "                           generator=self.generator)"},
    ),
    Mistake(
        "mask-id-and-vocab-size-swapped",
        "Your masks match mask_tokens called with vocab_size and mask_id swapped (masked "
        "positions get vocab_size, random ids come from range(mask_id)). Its arguments are "
        "(ids, vocab_size, mask_id, special_mask, p, generator), in this order.",
        {"mask_tokens(self.ids, self.vocab_size, self.mask_id, self.special_mask,":
         "mask_tokens(self.ids, self.mask_id, self.vocab_size, self.special_mask,"},
    ),
]


def _pack(grader, docs, max_len, sep_id, label):
    grader.compare(Call("pack_sentences", (docs, max_len, sep_id), after=(0,)), exact=True,
                   case=f"pack_sentences({label}, max_len={max_len}, sep_id={sep_id})")


def _random_docs(grader, n_docs, max_sentences, max_words, vocab, empty_docs=True):
    """Documents of random numbers of sentences (0 allowed when ``empty_docs``) of random
    lengths 1..max_words, ids 1..vocab - 1 (0 is the separator)."""
    docs = []
    low = 0 if empty_docs else 1
    for n in grader.randint(low, max_sentences + 1, (n_docs,)).tolist():
        lengths = grader.randint(1, max_words + 1, (n,)).tolist()
        docs.append([grader.randint(1, vocab, (k,)).tolist() for k in lengths])
    return docs


def _shape(docs):
    return "[" + ", ".join(str(len(d)) for d in docs[:8]) + (", …]" if len(docs) > 8 else "]")


# -- pack_sentences ---------------------------------------------------------------------------

@check(points=2, public=True, task="pack_sentences")
def test_pack_greedy(grader):
    """pack_sentences output and docs afterwards equal the reference's: greedy whole sentences"""
    _pack(grader, [[[1, 2, 3], [4, 5], [6], [7, 8, 9, 10], [11, 12]]], 6, 0,
          "one document, sentences of 3, 2, 1, 4, 2 ids")
    _pack(grader, [[[1, 2]], [[3, 4]], [[5]], [[6, 7, 8]]], 8, 99,
          "four short documents, three in one sequence")
    _pack(grader, [[[4, 4], [5, 5, 5]], [[6], [7, 7, 7, 7]], [[8, 8, 8]]], 7, 1,
          "three documents of 2, 2, 1 sentences")
    example = [[[1, 2], [3]], [[4, 5, 6]], [], [[7], [8, 9, 10, 11, 12, 13], [14]]]
    _pack(grader, example, 5, 0, "the docstring's example")
    for n_docs, max_len in [(5, 10), (8, 16), (3, 7)]:
        docs = _random_docs(grader, n_docs, 4, 6, 30, empty_docs=False)
        _pack(grader, docs, max_len, 0, f"{n_docs} random documents of {_shape(docs)} "
              "sentences of 1-6 ids")


@check(points=2, public=True, task="pack_sentences")
def test_pack_document_boundaries(grader):
    """pack_sentences equals the reference at document boundaries (counted, single separators)"""
    _pack(grader, [[[1, 2, 3, 4]], [[5]], [[6, 7]]], 5, 0,
          "a separator that no longer fits after a sequence of 4")
    _pack(grader, [[[1, 2, 3]], [[4, 5]], [[6]]], 6, 0,
          "separator and sentence filling the sequence exactly")
    _pack(grader, [[[1, 2, 3]], [[4, 5, 6]], [[7, 8, 9]]], 3, 0,
          "every document boundary falling between two sequences")
    _pack(grader, [[[1]], [], [], [[2]], [], [[3, 4]]], 10, 0, "empty documents in between")
    _pack(grader, [[], [[1, 2], [3]], [], [[4]], []], 4, 0,
          "empty documents first and last")
    _pack(grader, [[[7, 7]], [[8, 8], [9, 9]]], 4, 7, "a sep_id that also occurs as a token")


@check(points=1, task="pack_sentences")
def test_pack_long_sentences(grader):
    """pack_sentences equals the reference on sentences longer than max_len (cut into pieces)"""
    _pack(grader, [[[1, 2, 3, 4, 5, 6, 7]]], 3, 0, "one sentence of 7 ids")
    _pack(grader, [[[1, 2, 3, 4, 5, 6], [7]]], 4, 0, "the last piece joined by the next sentence")
    _pack(grader, [[[1, 2], [3, 4, 5, 6, 7, 8, 9]], [[10]]], 4, 0,
          "a long sentence after a short one, then a new document")
    _pack(grader, [[[1]], [[2, 3, 4, 5, 6]]], 2, 0, "a long first sentence of a new document")
    _pack(grader, [[[1, 2, 3, 4, 5, 6]], [[7, 8, 9]]], 3, 0,
          "sentences of exactly 2 × max_len and max_len ids")
    _pack(grader, [[[1, 2], [3]], [[4]]], 1, 0, "max_len=1")


@check(points=1, task="pack_sentences")
def test_pack_edges(grader):
    """pack_sentences equals the reference with no documents, empty documents, one sentence"""
    _pack(grader, [], 4, 0, "no documents")
    _pack(grader, [[], []], 4, 0, "two empty documents")
    _pack(grader, [[[5]]], 1, 0, "one sentence of one id")
    _pack(grader, [[[5, 6, 7]]], 3, 0, "one sentence of exactly max_len ids")


@check(points=1, task="pack_sentences")
def test_pack_random_corpora(grader):
    """pack_sentences equals the reference on random corpora and on Part 04's language"""
    for n_docs, max_sentences, max_words, max_len in [(30, 6, 12, 16), (60, 4, 5, 9),
                                                       (20, 8, 30, 24), (40, 3, 3, 2)]:
        docs = _random_docs(grader, n_docs, max_sentences, max_words, 50)
        _pack(grader, docs, max_len, 0, f"{n_docs} random documents of 0-{max_sentences} "
              f"sentences of 1-{max_words} ids")
    lang = language()
    docs = [[lang.encode(s) for s in doc] for doc in corpus(12, seed=3)]
    _pack(grader, docs, 48, lang.id("<sep>"), "12 documents of the synthetic language (ids)")


# -- DynamicMasker -----------------------------------------------------------------------------

def _masking_data(grader, n, length, vocab, special_rate=0.2):
    ids = grader.randint(6, vocab, (n, length))
    special = grader.rand(n, length) < special_rate
    return ids, special


def _epochs(grader, n, length, vocab, epochs, p=None, seed=None, mask_id=3, special=None,
            label=""):
    ids, special_mask = _masking_data(grader, n, length, vocab)
    if special is not None:
        special_mask = special(special_mask)
    kwargs = {}
    if p is not None:
        kwargs["p"] = p
    if seed is not None:
        kwargs["generator"] = Gen(seed)
    args = (ids, vocab, mask_id, special_mask, epochs)
    words = [f"ids[{n}, {length}]", f"vocab_size={vocab}", f"mask_id={mask_id}"]
    words += [f"p={p}"] if p is not None else ["p omitted (0.15)"]
    words += [f"Generator(seed={seed})"] if seed is not None else ["generator omitted"]
    grader.compare(Call("@roberta.epochs", args, kwargs), exact=True,
                   case=f"DynamicMasker({', '.join(words)}){label}: (inputs, labels) of "
                   f"{epochs} epoch{'s' if epochs > 1 else ''} and ids afterwards, int64")


@check(points=1, public=True, task="DynamicMasker")
def test_masker_one_epoch(grader):
    """one DynamicMasker.epoch() equals mask_tokens on the same generator; ids unchanged"""
    for n, length, vocab, p in [(4, 12, 40, 0.3), (1, 9, 97, 0.5), (6, 5, 20, 0.15)]:
        _epochs(grader, n, length, vocab, 1, p=p, seed=grader.seed())


@check(points=2, public=True, task="DynamicMasker")
def test_masker_epochs(grader):
    """E epochs of DynamicMasker equal E consecutive mask_tokens calls on one generator; ids kept"""
    for n, length, vocab, p, epochs in [(4, 12, 40, 0.3, 4), (1, 16, 97, 0.25, 3),
                                        (8, 20, 30, 0.15, 5), (3, 1, 10, 0.5, 4)]:
        _epochs(grader, n, length, vocab, epochs, p=p, seed=grader.seed())


@check(points=1, task="DynamicMasker")
def test_masker_edges(grader):
    """3 DynamicMasker epochs equal the reference's: p = 0, p = 1, all-special rows, default p"""
    _epochs(grader, 5, 8, 30, 3, p=1.0, seed=grader.seed())
    _epochs(grader, 5, 8, 30, 3, p=0.0, seed=grader.seed())

    def all_special_rows(mask):
        mask = mask.clone()
        mask[::2] = True
        return mask

    _epochs(grader, 4, 10, 30, 3, p=0.4, seed=grader.seed(), special=all_special_rows,
            label=" with every other row all special")
    _epochs(grader, 4, 10, 30, 3, seed=grader.seed())


@check(points=1, task="DynamicMasker")
def test_masker_global_generator(grader):
    """3 DynamicMasker epochs without a generator equal the reference's (torch's global one)"""
    _epochs(grader, 4, 10, 30, 3, p=0.3)


# the statistics: N x L positions, about 20 % special
STAT_N, STAT_L, STAT_EPOCHS, STAT_P, STAT_V = 64, 48, 6, 0.15, 50
SDS = 5  # each bound is 5 standard deviations (normal approximation): a correct masker fails
# one of its 11 tests with probability below 1e-5


@check(points=1, task="DynamicMasker")
def test_masker_fresh_masks(grader):
    """your own masks over 6 epochs: selection rate p, consecutive epochs overlapping p² (fresh)"""
    ids, special = _masking_data(grader, STAT_N, STAT_L, STAT_V)
    case = (f"DynamicMasker(ids[{STAT_N}, {STAT_L}], vocab_size={STAT_V}, mask_id=3, "
            f"p={STAT_P}, Generator(seed=…)), {STAT_EPOCHS} epochs, judged on your masks alone")
    got = grader.learner(Call("@roberta.epochs", (ids, STAT_V, 3, special, STAT_EPOCHS),
                              {"p": STAT_P, "generator": Gen(grader.seed())}), case)
    inputs, labels = got.out["inputs"], got.out["labels"]

    grader.require(inputs.dtype == torch.int64 and labels.dtype == torch.int64,
                   f"{case}: inputs and labels should be int64, got {inputs.dtype} and "
                   f"{labels.dtype}")
    selected = labels != -100
    ordinary = ~special
    n = int(ordinary.sum())
    for e in range(STAT_EPOCHS):
        grader.require(not bool((selected[e] & special).any()),
                       f"{case}: epoch {e + 1} selected a special position")
        grader.require(bool((labels[e][selected[e]] == ids[selected[e]]).all()),
                       f"{case}: epoch {e + 1}: labels at the selected positions are not the "
                       "original ids (is an earlier epoch's masked copy masked again?)")
        grader.require(bool((inputs[e][~selected[e]] == ids[~selected[e]]).all()),
                       f"{case}: epoch {e + 1}: positions that are not selected do not keep "
                       "their original id (is an earlier epoch's masked copy masked again?)")
        rate = float(selected[e][ordinary].double().mean())
        bound = SDS * math.sqrt(STAT_P * (1 - STAT_P) / n)
        grader.require(abs(rate - STAT_P) <= bound,
                       f"{case}: epoch {e + 1} selects {rate:.4f} of the {n} non-special "
                       f"positions, expected p = {STAT_P} ± {bound:.4f} ({SDS} standard "
                       "deviations)")
    q = STAT_P**2
    bound = SDS * math.sqrt(q * (1 - q) / n)
    for e in range(1, STAT_EPOCHS):
        both = float((selected[e] & selected[e - 1])[ordinary].double().mean())
        grader.require(abs(both - q) <= bound,
                       f"{case}: epochs {e} and {e + 1} both select {both:.4f} of the "
                       f"non-special positions; independent fresh masks give p² = {q:.4f} ± "
                       f"{bound:.4f} ({SDS} standard deviations), a repeated mask gives p = "
                       f"{STAT_P}. Draw a new mask at every epoch.")
    grader.cases.append(case)
