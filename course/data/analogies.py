"""A seeded synthetic corpus with planted analogies (for word2vec and negative sampling).

:func:`analogy_corpus` writes ``num_sentences`` sentences of five tokens each and returns them
as one flat stream of token ids. The planted words form two *families*, each a 2 × R grid of
words indexed by two attributes:

- ``"gender"``: gender (male, female) × role (person, royal, child, heir, actor, parent, ...):
  man/woman, king/queen, boy/girl, prince/princess, actor/actress, father/mother, ...
- ``"capital"``: kind (country, capital) × nation: france/paris, germany/berlin, ...

Every attribute value owns a few *context words* (male: he, him, his; female: she, her, hers;
royal: throne, crown, reign; france: french, seine; capital: city, mayor, downtown; ...). A
planted sentence is ``filler, c1, w, c2, filler``: the planted word ``w`` in the middle, one
context word of each of its two attributes on either side (in random order), and a filler word
at each end. "king" is therefore seen next to he/him/his and throne/crown/reign, "queen" next to
she/her/hers and throne/crown/reign: the words of one role share their role contexts and the
words of one gender share their gender contexts, so the co-occurrence statistics factor as
gender × role and the vector offsets king − man and queen − woman agree. A filler sentence is
five filler words. Filler words follow a Zipf law (p(rank r) ∝ 1 / (r + 1)); the most frequent
ones are named like English function words ("the", "of", "and", ...), the rest ``w00030``,
``w00031``, ...; their number ``num_filler`` sets the vocabulary size (``BASE_VOCAB`` planted and
context words plus ``num_filler``), from about 100 to tens of thousands.

The questions are the planted analogies in the layout of Mikolov et al.'s test set: for two
different pairs i ≠ j of one family, ``(x_i, y_i, x_j, y_j)``, "x_i is to y_i as x_j is to ?"
(man : woman :: king : queen, france : paris :: italy : rome); the answer d = y_j is what
e_b − e_a + e_c should point at. Everything is generated from ``seed`` with a
``torch.Generator``; nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch

SENTENCE_LENGTH = 5
"""Tokens per sentence; the planted word sits at position 2 of a planted sentence."""

# family -> (the two values of the first attribute with their context words,
#            [(x word, y word, context words of the second attribute), ...])
_FAMILIES: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]],
                           list[tuple[str, str, tuple[str, ...]]]]] = {
    "gender": (
        (("he", "him", "his"), ("she", "her", "hers")),
        [
            ("man", "woman", ("adult", "crowd", "walks")),
            ("king", "queen", ("throne", "crown", "reign")),
            ("boy", "girl", ("school", "toys", "young")),
            ("prince", "princess", ("castle", "heir", "knight")),
            ("actor", "actress", ("film", "stage", "role")),
            ("father", "mother", ("parent", "raised", "children")),
            ("son", "daughter", ("born", "eldest", "birth")),
            ("brother", "sister", ("sibling", "twin", "older")),
            ("uncle", "aunt", ("relatives", "cousin", "visit")),
            ("husband", "wife", ("married", "wedding", "spouse")),
        ],
    ),
    "capital": (
        (("nation", "border", "government"), ("city", "mayor", "downtown")),
        [
            ("france", "paris", ("french", "seine")),
            ("germany", "berlin", ("german", "rhine")),
            ("italy", "rome", ("italian", "tiber")),
            ("spain", "madrid", ("spanish", "paella")),
            ("japan", "tokyo", ("japanese", "sushi")),
            ("china", "beijing", ("chinese", "yangtze")),
            ("russia", "moscow", ("russian", "volga")),
            ("egypt", "cairo", ("egyptian", "nile")),
            ("greece", "athens", ("greek", "acropolis")),
            ("poland", "warsaw", ("polish", "vistula")),
        ],
    ),
}

_FUNCTION_WORDS = (
    "the", "of", "and", "a", "to", "in", "is", "was", "that", "for", "on", "with", "as", "at",
    "by", "from", "it", "an", "be", "this", "or", "which", "are", "not", "but", "were", "had",
    "have", "one", "all",
)


def _base_words() -> tuple[list[str], list[str]]:
    """(planted words in family order x0, y0, x1, y1, ...; context words), no fillers."""
    planted: list[str] = []
    contexts: list[str] = []
    for first, pairs in _FAMILIES.values():
        for x, y, _ in pairs:
            planted += [x, y]
        for words in first:
            contexts += list(words)
        for _, _, words in pairs:
            contexts += list(words)
    return planted, contexts


BASE_VOCAB = sum(len(part) for part in _base_words())
"""Number of planted and context words; the vocabulary has ``BASE_VOCAB + num_filler`` words."""


def filler_names(num_filler: int) -> list[str]:
    """Names of the filler words by frequency rank: function words first, then ``w00030``, ..."""
    named = list(_FUNCTION_WORDS[:num_filler])
    return named + [f"w{r:05d}" for r in range(len(named), num_filler)]


@dataclass(frozen=True)
class AnalogyCorpus:
    """A generated corpus. Token ids index ``vocab``.

    - ``tokens``: LongTensor (num_sentences · 5,), the sentences one after another.
    - ``vocab``: tuple of V distinct strings; planted words first (man, woman, king, queen, ...,
      france, paris, ...), then the context words, then the fillers by frequency rank.
    - ``questions``: LongTensor (Q, 4) of ids (a, b, c, d): a is to b as c is to d.
    - ``counts``: LongTensor (V,), occurrences of each id in ``tokens`` (fillers may be 0).
    - ``pairs``: family name -> tuple of (x, y) word pairs, e.g. ``pairs["gender"][1] ==
      ("king", "queen")``.
    - ``word_to_id``: dict from word to id.
    """

    tokens: torch.Tensor
    vocab: tuple[str, ...]
    questions: torch.Tensor
    counts: torch.Tensor
    pairs: dict[str, tuple[tuple[str, str], ...]]
    word_to_id: dict[str, int]

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def sentences(self) -> torch.Tensor:
        """The tokens as a (num_sentences, 5) view."""
        return self.tokens.view(-1, SENTENCE_LENGTH)

    def ids(self, *words: str) -> torch.Tensor:
        """LongTensor of the ids of ``words``."""
        return torch.tensor([self.word_to_id[w] for w in words], dtype=torch.long)


@cache
def _build(num_sentences: int, num_filler: int, seed: int,
           planted_fraction: float) -> AnalogyCorpus:
    planted, contexts = _base_words()
    vocab = tuple(planted + contexts + filler_names(num_filler))
    index = {w: i for i, w in enumerate(vocab)}
    assert len(index) == len(vocab), "vocabulary words must be distinct"

    # Per planted word: ids of its first-attribute and second-attribute context words.
    width = max(len(ws) for first, pairs in _FAMILIES.values()
                for ws in list(first) + [p[2] for p in pairs])
    ctx = torch.zeros(len(planted), 2, width, dtype=torch.long)
    ctx_len = torch.zeros(len(planted), 2, dtype=torch.long)
    questions: list[list[int]] = []
    pairs_out: dict[str, tuple[tuple[str, str], ...]] = {}
    for first, pairs in _FAMILIES.values():
        for x, y, second in pairs:
            for side, word in enumerate((x, y)):
                w = index[word]
                for k, words in enumerate((first[side], second)):
                    ctx[w, k, :len(words)] = torch.tensor([index[c] for c in words])
                    ctx_len[w, k] = len(words)
        for i, (xi, yi, _) in enumerate(pairs):
            for j, (xj, yj, _) in enumerate(pairs):
                if i != j:
                    questions.append([index[xi], index[yi], index[xj], index[yj]])
    for name, (_, pairs) in _FAMILIES.items():
        pairs_out[name] = tuple((x, y) for x, y, _ in pairs)

    g = torch.Generator().manual_seed(seed)
    n = num_sentences
    # The draws, always all of them and in this order: sentence kind, planted word, the two
    # context choices, their order, then the five fillers of every sentence.
    is_planted = torch.rand(n, generator=g, dtype=torch.float64) < planted_fraction
    centre = torch.randint(0, len(planted), (n,), generator=g)
    pick = torch.rand(n, 2, generator=g, dtype=torch.float64)
    swap = torch.rand(n, generator=g, dtype=torch.float64) < 0.5
    zipf = 1.0 / torch.arange(1, num_filler + 1, dtype=torch.float64)
    filler = torch.multinomial(zipf / zipf.sum(), n * SENTENCE_LENGTH, replacement=True,
                               generator=g).view(n, SENTENCE_LENGTH) + BASE_VOCAB

    slot = (pick * ctx_len[centre]).long().clamp_max(width - 1)  # (n, 2) index into each list
    chosen = ctx[centre].gather(2, slot.unsqueeze(2)).squeeze(2)  # (n, 2)
    c1 = torch.where(swap, chosen[:, 1], chosen[:, 0])
    c2 = torch.where(swap, chosen[:, 0], chosen[:, 1])
    sent = filler.clone()
    sent[is_planted, 1] = c1[is_planted]
    sent[is_planted, 2] = centre[is_planted]
    sent[is_planted, 3] = c2[is_planted]
    tokens = sent.reshape(-1)
    counts = torch.bincount(tokens, minlength=len(vocab))
    return AnalogyCorpus(tokens, vocab, torch.tensor(questions, dtype=torch.long), counts,
                         pairs_out, index)


def analogy_corpus(num_sentences: int = 20_000, num_filler: int = 200, seed: int = 0,
                   planted_fraction: float = 0.5) -> AnalogyCorpus:
    """The corpus of ``num_sentences`` five-token sentences (see the module docstring).

    ``planted_fraction`` of the sentences (in expectation) carry a planted word; the others are
    filler only. The vocabulary has ``BASE_VOCAB + num_filler`` words (``num_filler >= 1``).
    Same arguments, same corpus (generation is cached; each call returns fresh tensors, so
    editing them in place does not leak into later calls).
    """
    if num_sentences < 1:
        raise ValueError("num_sentences must be at least 1")
    if num_filler < 1:
        raise ValueError("num_filler must be at least 1")
    if not 0.0 <= planted_fraction <= 1.0:
        raise ValueError("planted_fraction must lie in [0, 1]")
    c = _build(int(num_sentences), int(num_filler), int(seed), float(planted_fraction))
    return AnalogyCorpus(c.tokens.clone(), c.vocab, c.questions.clone(), c.counts.clone(),
                         dict(c.pairs), dict(c.word_to_id))
