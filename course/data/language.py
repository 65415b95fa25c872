"""A small synthetic language with known structure, for Part 04 (BERT, RoBERTa, T5, GPT-2/3, LoRA).

Every language-model unit pre-trains a tiny transformer on this one language and fine-tunes it on
the tasks below. Nothing is downloaded; everything is generated from ``seed`` with
:class:`random.Random` and is the same on every machine and Python version.

Vocabulary
----------
:func:`language` returns the fixed :class:`Language`. ``tokens`` is the six special tokens at
fixed ids, then the 91 words of :attr:`Language.words` (``vocab_size == 97``)::

    id 0 <pad>   1 <cls>   2 <sep>   3 <mask>   4 <bos>   5 <eos>

    determiners   Det_sg: the  a  this           Det_pl: the  some  these   ("the" is both)
    relativiser   that
    prepositions  Prep:   near  with  behind  from
    places        Place:  Zürich  Malmö  Kraków  Reykjavík   (proper nouns, singular)
    intransitive  Vi:     sleeps/sleep  waits/wait  moves/move  works/work
    transitive    Vt:     sees/see  likes/like  follows/follow  needs/need  finds/find
    punctuation   .   (ends every sentence)          ->  ;   (used only by pattern_task)

    topic 0 animals  N: cat/cats  dog/dogs  horse/horses  bird/birds  fox/foxes
                     Adj: wild  furry  tiny  hungry
    topic 1 food     N: apple/apples  cake/cakes  crêpe/crêpes  smörgås/smörgåsar  cheese/cheeses
                     Adj: sweet  spicy  fresh  salty
    topic 2 travel   N: tourist/tourists  train/trains  hotel/hotels  café/cafés  city/cities
                     Adj: distant  naïve  busy  foreign
    topic 3 music    N: song/songs  drum/drums  piano/pianos  singer/singers  guitar/guitars
                     Adj: loud  soft  slow  catchy

(x/y is the singular/plural pair; a verb's singular is the ``-s`` form.) Eleven words have
non-ASCII letters (crêpe, smörgås, café, naïve, Zürich, ...), so byte-level BPE meets multi-byte
UTF-8.

Grammar
-------
A probabilistic grammar with number agreement. ``n`` and ``m`` range over {sg, pl}; a category
with ``_n`` has that number; ``m`` is drawn afresh (sg or pl, 1/2 each) wherever it appears.
``d`` is an NP's depth: the main subject and the main object have d = 0, an NP inside a
modifier of a depth-d NP has depth d + 1, and an NP may carry a modifier only while
``d < max_depth``::

    rule                                                probability
    S        -> NP_n(0)  VP_n(0)  "."                   n: sg 1/2, pl 1/2
    NP_n(d)  -> Det_n  [Adj]  N_n  [Mod_n(d)]           Adj: 0.3;  Mod: 0.6 on the main
                                                        subject, 0.2 on any other NP
    Mod_n(d) -> Prep  NP_m(d+1)                         0.5 · 0.85   (PP)
              | Prep  Place                             0.5 · 0.15   (PP)
              | "that"  VP_n(d+1)                       0.25         (subject relative, SRC)
              | "that"  NP_m(d+1)  Vt_m                 0.25         (object relative, ORC)
    VP_n(d)  -> Vi_n                                    0.5
              | Vt_n  NP_m(d)                           0.5
    Det_sg   -> the 0.6 | a 0.2 | this 0.2          Det_pl -> the 0.6 | some 0.2 | these 0.2

Each verb agrees with its own subject: the main verb with the main subject's head noun, the
verb of an SRC with the noun the SRC modifies, the verb of an ORC with the ORC's own subject.
Nouns inside the subject's modifier (and an ORC's verb) may have the other number; they are
*attractors* standing between the subject and the verb it must agree with:
``the dog near the cats sleeps .``, ``the foxes that the bird sees follow a horse .``.
Transitive and intransitive verbs are disjoint classes, "that" only introduces a relative
clause, and a Place has no determiner. :meth:`Language.is_grammatical` recognises exactly the
sentences this grammar can generate (for any depth).

Topics: every N and Adj slot of a sentence with topic t takes its word from topic t's list with
probability ``TOPIC_PROB`` = 0.8, otherwise from one of the other three topics (chosen
uniformly); within the chosen list the word is uniform. Determiners, verbs, prepositions and
places are shared by all topics.

Generators
----------
- :func:`sentences` ``(n, seed, max_depth=2)``: n sentences, each with its own uniform topic.
  Draws come from one stream, so ``sentences(m, s) == sentences(n, s)[:m]`` for m <= n.
- :func:`corpus` ``(n_docs, seed, sentences_per_doc=(3, 8))``: documents; each draws a topic
  (uniform) and a length (uniform in the inclusive range), and all its sentences use that topic.
  :func:`labelled_corpus` returns the same documents with their topic ids.
- :func:`text` ``(n_sentences, seed)``: ``"\\n".join(" ".join(s) for s in sentences(n, seed))``:
  words separated by one space, one sentence per line, "." a separate word, no final newline.
  ``text(...).split()`` gives back the words.
- :func:`agreement_task` ``(n, seed, max_depth=1)``: n sentences and labels (1 = grammatical).
  Every sentence's subject carries a modifier with a common noun (a PP with an NP, an SRC with
  a transitive verb, or an ORC, 1/3 each). Items cycle through the four combinations of
  (label, attractor) and are then shuffled, so labels are balanced (counts differ by at most
  one) and exactly half of the items of each label (up to one) have an *attractor*: the
  modifier's noun has the other number than the subject (with ``max_depth > 1`` nested
  modifiers may add attractors, so "at least half"). A label-0 sentence is a grammatical
  sentence with the main verb's number flipped (sleeps <-> sleep) and nothing else changed; it
  is never grammatical. :func:`agreement_items` returns the same items with the subject and
  verb positions and the attractor flag.
- :func:`topic_task` ``(n, seed, max_depth=2)``: single sentences with their topic id
  (0 animals, 1 food, 2 travel, 3 music), topics uniform. A sentence with few nouns carries
  little evidence, so even the Bayes classifier is not perfect.
- :func:`pattern_task` ``(n, seed, n_shots=4, n_keys=3)``: in-context key -> value lookup; see
  its docstring.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache

SPECIALS = ("<pad>", "<cls>", "<sep>", "<mask>", "<bos>", "<eos>")
TOPICS = ("animals", "food", "travel", "music")
TOPIC_PROB = 0.8
"""Probability that a noun or adjective slot takes its word from the sentence's own topic."""

_DET_SG = (("the", 0.6), ("a", 0.2), ("this", 0.2))
_DET_PL = (("the", 0.6), ("some", 0.2), ("these", 0.2))
_REL = "that"
_PREPS = ("near", "with", "behind", "from")
_PLACES = ("Zürich", "Malmö", "Kraków", "Reykjavík")
_VI = (("sleeps", "sleep"), ("waits", "wait"), ("moves", "move"), ("works", "work"))
_VT = (("sees", "see"), ("likes", "like"), ("follows", "follow"), ("needs", "need"),
       ("finds", "find"))
_END, _ARROW, _SEMI = ".", "->", ";"
_NOUNS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("cat", "cats"), ("dog", "dogs"), ("horse", "horses"), ("bird", "birds"), ("fox", "foxes")),
    (("apple", "apples"), ("cake", "cakes"), ("crêpe", "crêpes"), ("smörgås", "smörgåsar"),
     ("cheese", "cheeses")),
    (("tourist", "tourists"), ("train", "trains"), ("hotel", "hotels"), ("café", "cafés"),
     ("city", "cities")),
    (("song", "songs"), ("drum", "drums"), ("piano", "pianos"), ("singer", "singers"),
     ("guitar", "guitars")),
)
_ADJS: tuple[tuple[str, ...], ...] = (
    ("wild", "furry", "tiny", "hungry"),
    ("sweet", "spicy", "fresh", "salty"),
    ("distant", "naïve", "busy", "foreign"),
    ("loud", "soft", "slow", "catchy"),
)

P_ADJ = 0.3
P_MOD_SUBJECT = 0.6
P_MOD_OTHER = 0.2
P_PLACE = 0.15
SG, PL = 0, 1


def _word_list() -> tuple[str, ...]:
    words = ["the", "a", "this", "some", "these", _REL, *_PREPS, _END, _ARROW, _SEMI]
    for topic in range(len(TOPICS)):
        for pair in _NOUNS[topic]:
            words += pair
        words += _ADJS[topic]
    for pair in _VI + _VT:
        words += pair
    words += _PLACES
    return tuple(words)


@dataclass(frozen=True)
class Language:
    """The fixed vocabulary and grammar (see the module docstring). Get it from :func:`language`.

    - ``words``: the 91 words; ``tokens``: ``SPECIALS + words``, and a token's id is its index
      in ``tokens`` (word ``words[i]`` has id ``i + 6``).
    - ``PAD, CLS, SEP, MASK, BOS, EOS = 0, 1, 2, 3, 4, 5`` (also as ``pad_id``, ``cls_id``, ...).
    - ``topics``: the topic names; ``topic_nouns[t]``, ``topic_adjectives[t]``: topic t's words
      (nouns in both numbers).
    """

    PAD = 0
    CLS = 1
    SEP = 2
    MASK = 3
    BOS = 4
    EOS = 5

    words: tuple[str, ...]
    tokens: tuple[str, ...]
    topics: tuple[str, ...] = TOPICS
    topic_nouns: tuple[tuple[str, ...], ...] = field(default=(), repr=False)
    topic_adjectives: tuple[tuple[str, ...], ...] = field(default=(), repr=False)
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    pad_id = PAD
    cls_id = CLS
    sep_id = SEP
    mask_id = MASK
    bos_id = BOS
    eos_id = EOS

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset(range(len(SPECIALS)))

    @property
    def word_ids(self) -> tuple[int, ...]:
        """Ids of the (non-special) words, in order."""
        return tuple(range(len(SPECIALS), len(self.tokens)))

    def id(self, token: str) -> int:
        """The id of one token (word or special); ``KeyError`` for anything else."""
        try:
            return self._index[token]
        except KeyError:
            raise KeyError(f"{token!r} is not a token of the language") from None

    def encode(self, words: list[str]) -> list[int]:
        """Ids of ``words`` (words or special tokens); ``KeyError`` for an unknown word."""
        return [self.id(w) for w in words]

    def decode(self, ids) -> list[str]:
        """Tokens of ``ids`` (any iterable of ints, e.g. a list or a 1-D LongTensor)."""
        return [self.tokens[int(i)] for i in ids]

    # -- word classes ------------------------------------------------------------------------

    def number(self, word: str) -> int | None:
        """0 (singular) or 1 (plural) for a noun, place or verb; None for other words.

        Places are singular. Determiners are not marked ("the" is both).
        """
        return _NUMBER.get(word)

    def topic(self, word: str) -> int | None:
        """The topic id of a noun or adjective; None for shared words."""
        return _TOPIC_OF.get(word)

    def is_noun(self, word: str) -> bool:
        """A common noun (either number)."""
        return word in _NOUN_NUMBER

    def is_verb(self, word: str) -> bool:
        return word in _VI_NUMBER or word in _VT_NUMBER

    def flip_number(self, word: str) -> str:
        """The same noun or verb in the other number (cat <-> cats, sleeps <-> sleep)."""
        try:
            return _FLIP[word]
        except KeyError:
            raise ValueError(f"{word!r} has no other number") from None

    def is_grammatical(self, words: list[str]) -> bool:
        """Whether the grammar of the module docstring generates ``words`` (any depth)."""
        return _Recogniser(tuple(words)).sentence()


_ALL_NOUNS = tuple(pair for topic in _NOUNS for pair in topic)
_NOUN_NUMBER = {w: k for pair in _ALL_NOUNS for k, w in enumerate(pair)}
_VI_NUMBER = {w: k for pair in _VI for k, w in enumerate(pair)}
_VT_NUMBER = {w: k for pair in _VT for k, w in enumerate(pair)}
_DET_NUMBERS = {"the": {SG, PL}, "a": {SG}, "this": {SG}, "some": {PL}, "these": {PL}}
_NUMBER = {**_NOUN_NUMBER, **_VI_NUMBER, **_VT_NUMBER, **{p: SG for p in _PLACES}}
_FLIP = {w: pair[1 - k] for pair in _ALL_NOUNS + _VI + _VT for k, w in enumerate(pair)}
_TOPIC_OF = {w: t for t in range(len(TOPICS)) for pair in _NOUNS[t] for w in pair}
_TOPIC_OF.update({w: t for t in range(len(TOPICS)) for w in _ADJS[t]})
_ALL_ADJS = frozenset(w for t in _ADJS for w in t)


@lru_cache(maxsize=1)
def language() -> Language:
    """The language (always the same object)."""
    words = _word_list()
    tokens = SPECIALS + words
    index = {t: i for i, t in enumerate(tokens)}
    assert len(index) == len(tokens), "tokens must be distinct"
    return Language(
        words=words,
        tokens=tokens,
        topic_nouns=tuple(tuple(w for pair in _NOUNS[t] for w in pair)
                          for t in range(len(TOPICS))),
        topic_adjectives=_ADJS,
        _index=index,
    )


# -- recogniser ----------------------------------------------------------------------------------


class _Recogniser:
    """Set-of-end-positions parser for the grammar (memoised, so ambiguity is cheap)."""

    def __init__(self, words: tuple[str, ...]):
        self.w = words
        self.memo: dict[tuple[str, int, int], frozenset[int]] = {}

    def at(self, i: int) -> str:
        return self.w[i] if i < len(self.w) else ""

    def sentence(self) -> bool:
        if len(self.w) < 3 or self.w[-1] != _END:
            return False
        last = len(self.w) - 1
        return any(last in self.vp(j, n) for n in (SG, PL) for j in self.np(0, n))

    def np(self, i: int, n: int) -> frozenset[int]:
        key = ("np", i, n)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = frozenset()  # guards against (impossible) left recursion
        out: set[int] = set()
        if n in _DET_NUMBERS.get(self.at(i), ()):
            j = i + 1
            for k in (j, j + 1) if self.at(j) in _ALL_ADJS else (j,):
                if _NOUN_NUMBER.get(self.at(k)) == n:
                    out.add(k + 1)
                    out |= self.mod(k + 1, n)
        self.memo[key] = frozenset(out)
        return self.memo[key]

    def mod(self, i: int, n: int) -> frozenset[int]:
        key = ("mod", i, n)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = frozenset()
        out: set[int] = set()
        word = self.at(i)
        if word in _PREPS:
            if self.at(i + 1) in _PLACES:
                out.add(i + 2)
            for m in (SG, PL):
                out |= self.np(i + 1, m)
        elif word == _REL:
            out |= self.vp(i + 1, n)
            for m in (SG, PL):
                out |= {j + 1 for j in self.np(i + 1, m) if _VT_NUMBER.get(self.at(j)) == m}
        self.memo[key] = frozenset(out)
        return self.memo[key]

    def vp(self, i: int, n: int) -> frozenset[int]:
        word = self.at(i)
        if _VI_NUMBER.get(word) == n:
            return frozenset({i + 1})
        if _VT_NUMBER.get(word) == n:
            return frozenset(j for m in (SG, PL) for j in self.np(i + 1, m))
        return frozenset()


# -- generator -----------------------------------------------------------------------------------


@dataclass
class _Sentence:
    words: list[str]
    subject: int  # index of the main subject's head noun
    verb: int  # index of the main verb


class _Generator:
    def __init__(self, rng: random.Random, max_depth: int):
        self.rng = rng
        self.max_depth = max_depth

    def _topic_of_slot(self, topic: int) -> int:
        r = self.rng
        if r.random() < TOPIC_PROB:
            return topic
        return r.choice([t for t in range(len(TOPICS)) if t != topic])

    def _number(self) -> int:
        return SG if self.rng.random() < 0.5 else PL

    def _det(self, n: int) -> str:
        x = self.rng.random()
        for word, p in _DET_SG if n == SG else _DET_PL:
            x -= p
            if x < 0:
                return word
        return "the"

    def np(self, out: list[str], n: int, depth: int, topic: int, p_mod: float,
           forced_mod: int | None = None) -> int:
        """Append an NP; return the index of its head noun. ``forced_mod``: number of the
        modifier's noun (a modifier with a common noun is then always added)."""
        r = self.rng
        out.append(self._det(n))
        if r.random() < P_ADJ:
            out.append(r.choice(_ADJS[self._topic_of_slot(topic)]))
        out.append(r.choice(_NOUNS[self._topic_of_slot(topic)])[n])
        head = len(out) - 1
        if forced_mod is not None:
            self.mod(out, n, depth, topic, forced_mod)
        elif depth < self.max_depth and r.random() < p_mod:
            self.mod(out, n, depth, topic, None)
        return head

    def mod(self, out: list[str], n: int, depth: int, topic: int, forced: int | None) -> None:
        r = self.rng
        x = r.random()
        if forced is not None:  # PP with an NP, SRC with Vt, ORC: 1/3 each
            kind = "pp" if x < 1 / 3 else "src" if x < 2 / 3 else "orc"
        else:
            kind = "pp" if x < 0.5 else "src" if x < 0.75 else "orc"
        if kind == "pp":
            out.append(r.choice(_PREPS))
            if forced is None and r.random() < P_PLACE:
                out.append(r.choice(_PLACES))
            else:
                m = self._number() if forced is None else forced
                self.np(out, m, depth + 1, topic, P_MOD_OTHER)
        elif kind == "src":
            out.append(_REL)
            self.vp(out, n, depth + 1, topic, object_number=forced)
        else:
            out.append(_REL)
            m = self._number() if forced is None else forced
            self.np(out, m, depth + 1, topic, P_MOD_OTHER)
            out.append(r.choice(_VT)[m])

    def vp(self, out: list[str], n: int, depth: int, topic: int,
           object_number: int | None = None) -> int:
        """Append a VP; return the index of its verb. ``object_number`` forces Vt NP_m."""
        r = self.rng
        if object_number is None and r.random() < 0.5:
            out.append(r.choice(_VI)[n])
            return len(out) - 1
        out.append(r.choice(_VT)[n])
        verb = len(out) - 1
        m = self._number() if object_number is None else object_number
        self.np(out, m, depth, topic, P_MOD_OTHER)
        return verb

    def sentence(self, topic: int, n: int | None = None,
                 forced_mod: int | None = None) -> _Sentence:
        out: list[str] = []
        n = self._number() if n is None else n
        subject = self.np(out, n, 0, topic, P_MOD_SUBJECT, forced_mod)
        verb = self.vp(out, n, 0, topic)
        out.append(_END)
        return _Sentence(out, subject, verb)


def _check(n: int, name: str = "n") -> int:
    if int(n) != n or n < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return int(n)


def _check_depth(max_depth: int) -> int:
    if int(max_depth) != max_depth or max_depth < 0:
        raise ValueError("max_depth must be a non-negative integer")
    return int(max_depth)


# -- public generators ---------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _sentences(n: int, seed: int, max_depth: int) -> tuple[tuple[tuple[str, ...], int], ...]:
    rng = random.Random(f"language.sentences:{seed}")
    gen = _Generator(rng, max_depth)
    out = []
    for _ in range(n):
        topic = rng.randrange(len(TOPICS))
        out.append((tuple(gen.sentence(topic).words), topic))
    return tuple(out)


def sentences(n: int, seed: int = 0, max_depth: int = 2) -> list[list[str]]:
    """``n`` grammatical sentences (lists of words, each ending with "."), each with its own
    uniformly drawn topic; modifiers nest at most ``max_depth`` deep (0: no modifiers)."""
    return [list(s) for s, _ in _sentences(_check(n), int(seed), _check_depth(max_depth))]


def topic_task(n: int, seed: int = 0, max_depth: int = 2) -> tuple[list[list[str]], list[int]]:
    """``n`` single sentences and their topic ids (0 animals, 1 food, 2 travel, 3 music).

    Topics are uniform; each noun or adjective comes from the sentence's topic with probability
    ``TOPIC_PROB`` (0.8). Uses its own random stream (not the one of :func:`sentences`).
    """
    items = _topic_task(_check(n), int(seed), _check_depth(max_depth))
    return [list(s) for s, _ in items], [t for _, t in items]


@lru_cache(maxsize=64)
def _topic_task(n: int, seed: int, max_depth: int) -> tuple[tuple[tuple[str, ...], int], ...]:
    rng = random.Random(f"language.topic_task:{seed}")
    gen = _Generator(rng, max_depth)
    out = []
    for _ in range(n):
        topic = rng.randrange(len(TOPICS))
        out.append((tuple(gen.sentence(topic).words), topic))
    return tuple(out)


def text(n_sentences: int, seed: int = 0) -> str:
    """``"\\n".join(" ".join(s) for s in sentences(n_sentences, seed))``: one sentence per
    line, words separated by single spaces, "." a separate word, no trailing newline."""
    return "\n".join(" ".join(s) for s in sentences(n_sentences, seed))


@lru_cache(maxsize=64)
def _corpus(n_docs: int, seed: int, lo: int, hi: int, max_depth: int):
    rng = random.Random(f"language.corpus:{seed}")
    gen = _Generator(rng, max_depth)
    docs = []
    for _ in range(n_docs):
        topic = rng.randrange(len(TOPICS))
        length = rng.randint(lo, hi)
        docs.append((tuple(tuple(gen.sentence(topic).words) for _ in range(length)), topic))
    return tuple(docs)


def labelled_corpus(n_docs: int, seed: int = 0, sentences_per_doc: tuple[int, int] = (3, 8),
                    max_depth: int = 2) -> tuple[list[list[list[str]]], list[int]]:
    """The documents of :func:`corpus` (same arguments, same documents) and their topic ids."""
    lo, hi = (int(x) for x in sentences_per_doc)
    if not 1 <= lo <= hi:
        raise ValueError("sentences_per_doc must be (lo, hi) with 1 <= lo <= hi")
    docs = _corpus(_check(n_docs, "n_docs"), int(seed), lo, hi, _check_depth(max_depth))
    return [[list(s) for s in doc] for doc, _ in docs], [t for _, t in docs]


def corpus(n_docs: int, seed: int = 0, sentences_per_doc: tuple[int, int] = (3, 8),
           max_depth: int = 2) -> list[list[list[str]]]:
    """``n_docs`` documents, each a list of sentences (lists of words) on one topic.

    Each document draws its topic uniformly and its number of sentences uniformly from the
    inclusive range ``sentences_per_doc``; :func:`labelled_corpus` also returns the topics.
    """
    return labelled_corpus(n_docs, seed, sentences_per_doc, max_depth)[0]


@dataclass(frozen=True)
class AgreementItem:
    """One item of :func:`agreement_task`.

    ``words``: the sentence; ``label``: 1 grammatical, 0 main verb's number flipped;
    ``subject``, ``verb``: indices of the main subject's head noun and of the main verb;
    ``number``: the subject's number (0 sg, 1 pl); ``attractor``: whether some noun or place
    between subject and verb has the other number; ``topic``: the sentence's topic.
    """

    words: tuple[str, ...]
    label: int
    subject: int
    verb: int
    number: int
    attractor: bool
    topic: int


@lru_cache(maxsize=64)
def _agreement(n: int, seed: int, max_depth: int) -> tuple[AgreementItem, ...]:
    rng = random.Random(f"language.agreement_task:{seed}")
    gen = _Generator(rng, max_depth)
    combos = [((1, 1), (0, 1), (1, 0), (0, 0))[i % 4] for i in range(n)]
    rng.shuffle(combos)
    items = []
    for label, attract in combos:
        topic = rng.randrange(len(TOPICS))
        number = gen._number()
        s = gen.sentence(topic, number, forced_mod=1 - number if attract else number)
        words = list(s.words)
        if not label:
            words[s.verb] = _FLIP[words[s.verb]]
        between = words[s.subject + 1:s.verb]
        has = any(_NUMBER.get(w, number) != number for w in between
                  if w in _NOUN_NUMBER or w in _PLACES)
        items.append(AgreementItem(tuple(words), label, s.subject, s.verb, number, has, topic))
    return tuple(items)


def agreement_items(n: int, seed: int = 0, max_depth: int = 1) -> list[AgreementItem]:
    """The items behind :func:`agreement_task` (same arguments, same sentences and labels)."""
    if _check_depth(max_depth) < 1:
        raise ValueError("agreement_task needs max_depth >= 1 (the subject has a modifier)")
    return list(_agreement(_check(n), int(seed), int(max_depth)))


def agreement_task(n: int, seed: int = 0, max_depth: int = 1) -> tuple[list[list[str]], list[int]]:
    """``n`` sentences and labels, 1 = grammatical, 0 = the main verb's number flipped.

    Every subject carries a modifier with a common noun; labels are balanced and half of each
    label's items have an attractor (the modifier's noun has the other number); the flip is the
    only difference from a grammatical sentence. ``max_depth`` >= 1 (see the module docstring).
    """
    items = agreement_items(n, seed, max_depth)
    return [list(it.words) for it in items], [it.label for it in items]


@lru_cache(maxsize=64)
def _pattern(n: int, seed: int, n_shots: int, n_keys: int):
    rng = random.Random(f"language.pattern_task:{seed}")
    keys_pool = [pair[SG] for pair in _ALL_NOUNS]
    values_pool = [w for t in _ADJS for w in t]
    out = []
    for _ in range(n):
        keys = rng.sample(keys_pool, n_keys)
        mapping = dict(zip(keys, rng.sample(values_pool, n_keys)))
        shots = [rng.choice(keys) for _ in range(n_shots)]
        seen = list(dict.fromkeys(shots))
        query = rng.choice(seen)
        prompt: list[str] = []
        for k in shots:
            prompt += [k, _ARROW, mapping[k], _SEMI]
        prompt += [query, _ARROW]
        out.append((tuple(prompt), mapping[query]))
    return tuple(out)


def pattern_task(n: int, seed: int = 0, n_shots: int = 4,
                 n_keys: int = 3) -> tuple[list[list[str]], list[str]]:
    """In-context lookup: ``n`` prompts and the word that should follow each.

    For each sequence: draw ``n_keys`` distinct keys from the 20 singular nouns and map them
    one-to-one onto ``n_keys`` distinct values drawn from the 16 adjectives (a fresh random
    mapping per sequence). Draw ``n_shots`` shot keys uniformly, with replacement, from the
    sequence's keys, and a query key uniformly from the distinct keys among the shots. The
    prompt is ``k1 -> v1 ; k2 -> v2 ; ... ; k_shots -> v_shots ; query ->`` (as words, each
    ``v_i`` the mapping of ``k_i``), and the answer is the query's value, so it can only be
    read off an earlier pair of the same prompt (without context, 1/16 is chance). Prompt
    length is ``4 * n_shots + 2``. For pre-training use ``prompt + [answer]``; every value
    after a key's first appearance is predictable too.
    """
    if int(n_shots) != n_shots or n_shots < 1:
        raise ValueError("n_shots must be a positive integer")
    if int(n_keys) != n_keys or not 1 <= n_keys <= 16:
        raise ValueError("n_keys must be an integer in [1, 16]")
    items = _pattern(_check(n), int(seed), int(n_shots), int(n_keys))
    return [list(p) for p, _ in items], [a for _, a in items]
