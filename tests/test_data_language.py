"""course.data.language: fixed vocabulary, the documented grammar, seeded tasks with real signal."""

from collections import Counter

import pytest

from course import data
from course.data.language import (
    SPECIALS,
    TOPIC_PROB,
    Language,
    agreement_items,
    agreement_task,
    corpus,
    labelled_corpus,
    language,
    pattern_task,
    sentences,
    text,
    topic_task,
)

L = language()
PREPS = {"near", "with", "behind", "from"}
PLACES = {"Zürich", "Malmö", "Kraków", "Reykjavík"}


# -- vocabulary ----------------------------------------------------------------------------------


def test_special_ids_are_fixed():
    assert (Language.PAD, Language.CLS, Language.SEP, Language.MASK, Language.BOS,
            Language.EOS) == (0, 1, 2, 3, 4, 5)
    assert (L.pad_id, L.cls_id, L.sep_id, L.mask_id, L.bos_id, L.eos_id) == (0, 1, 2, 3, 4, 5)
    assert L.tokens[:6] == SPECIALS == ("<pad>", "<cls>", "<sep>", "<mask>", "<bos>", "<eos>")
    assert L.special_ids == frozenset(range(6))
    assert L.tokens == SPECIALS + L.words
    assert L.word_ids == tuple(range(6, L.vocab_size))


def test_vocabulary_is_small_distinct_and_cached():
    assert language() is L
    assert 60 <= len(L.words) <= 120
    assert L.vocab_size == len(L.tokens) == len(L.words) + 6 == 97
    assert len(set(L.tokens)) == L.vocab_size
    assert not set(L.words) & set(SPECIALS)
    assert all(w and " " not in w and "\n" not in w for w in L.words)


def test_non_ascii_words_present():
    wide = [w for w in L.words if not w.isascii()]
    assert {"café", "naïve", "Zürich", "smörgås"} <= set(wide)
    assert len(wide) >= 8
    # multi-byte in UTF-8, and they occur in generated text
    assert all(len(w.encode("utf-8")) > len(w) for w in wide)
    assert any(not ch.isascii() for ch in text(300))


def test_encode_decode_round_trip():
    for s in sentences(200, seed=4):
        ids = L.encode(s)
        assert all(isinstance(i, int) and 6 <= i < L.vocab_size for i in ids)
        assert L.decode(ids) == s
    assert L.decode(L.encode(list(L.tokens))) == list(L.tokens)
    assert L.encode(["<mask>", "the", "<pad>"]) == [L.MASK, L.id("the"), L.PAD]
    assert L.decode(range(L.vocab_size)) == list(L.tokens)
    with pytest.raises(KeyError):
        L.encode(["the", "unicorn"])


def test_word_classes():
    assert L.number("cat") == 0 and L.number("cats") == 1
    assert L.number("sleeps") == 0 and L.number("sleep") == 1 and L.number("Zürich") == 0
    assert L.number("the") is None
    assert L.flip_number("smörgås") == "smörgåsar" and L.flip_number("sees") == "see"
    with pytest.raises(ValueError):
        L.flip_number("the")
    assert L.topics == ("animals", "food", "travel", "music")
    assert L.topic("fox") == 0 and L.topic("café") == 2 and L.topic("naïve") == 2
    assert L.topic("sleeps") is None
    for t in range(4):
        assert all(L.topic(w) == t for w in L.topic_nouns[t] + L.topic_adjectives[t])


# -- grammar -------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_depth", [0, 1, 2, 3])
def test_every_sentence_parses(max_depth):
    ss = sentences(1500, seed=max_depth, max_depth=max_depth)
    assert all(L.is_grammatical(s) for s in ss)
    assert all(s[-1] == "." and "." not in s[:-1] for s in ss)
    assert all("->" not in s and ";" not in s for s in ss)
    if max_depth == 0:
        assert all(not (set(s) & (PREPS | {"that"})) and len(s) <= 8 for s in ss)
    else:
        assert sum(bool(set(s) & (PREPS | {"that"})) for s in ss) > 0.4 * len(ss)


def test_deeper_sentences_are_longer():
    mean = [sum(map(len, sentences(2000, seed=1, max_depth=d))) / 2000 for d in (0, 1, 3)]
    assert mean[0] < mean[1] < mean[2]


@pytest.mark.parametrize("good", [
    "the cat sleeps .",
    "these dogs see a bird .",
    "the dog near the cats sleeps .",
    "the foxes that the bird sees follow a horse .",
    "the fox that sees the cats sleeps .",
    "some naïve tourists from Zürich like the café .",
    "the song that the singers that the drum needs like works .",
])
def test_recogniser_accepts(good):
    assert L.is_grammatical(good.split())


@pytest.mark.parametrize("bad", [
    "the cat sleeps",                          # no full stop
    "the cat sleep .",                         # verb disagrees
    "the cats near the dog sleeps .",          # agrees with the attractor
    "a cats sleep .",                          # determiner disagrees
    "these cat sleeps .",
    "the cat sees .",                          # transitive verb without object
    "the cat sleeps the dog .",                # intransitive verb with object
    "the dog that the cats see the bird sleeps .",   # ORC with an object
    "the dog that see the cats sleeps .",      # SRC verb disagrees with its head
    "the dog that the cats sees sleeps .",     # ORC verb disagrees with its own subject
    "cat sleeps .",                            # no determiner
    "the Zürich sleeps .",                     # place with determiner
    "Zürich sleeps .",                         # place as subject
    "the cat sleeps . the dog sleeps .",
    "the wild furry cat sleeps .",             # at most one adjective
    "the cat sleeps sleeps .",
    ".",
    "",
])
def test_recogniser_rejects(bad):
    assert not L.is_grammatical(bad.split())


# -- determinism and caching ---------------------------------------------------------------------


def test_sentences_are_seeded():
    assert sentences(300, seed=7) == sentences(300, seed=7)
    assert sentences(300, seed=7) != sentences(300, seed=8)
    assert sentences(50, seed=7) == sentences(300, seed=7)[:50]
    assert sentences(0) == []


def test_every_generator_is_seeded():
    calls = [
        lambda s: corpus(30, seed=s),
        lambda s: labelled_corpus(30, seed=s),
        lambda s: text(40, seed=s),
        lambda s: agreement_task(40, seed=s),
        lambda s: topic_task(40, seed=s),
        lambda s: pattern_task(40, seed=s),
    ]
    for call in calls:
        assert call(3) == call(3)
        assert call(3) != call(4)


def test_callers_cannot_corrupt_the_cache():
    a = sentences(5, seed=2)
    a[0][0] = "XXX"
    a.append(["junk"])
    assert sentences(5, seed=2)[0][0] != "XXX" and len(sentences(5, seed=2)) == 5
    docs = corpus(3, seed=2)
    docs[0][0][0] = "XXX"
    assert corpus(3, seed=2)[0][0][0] != "XXX"
    xs, ys = agreement_task(8, seed=2)
    xs[0][0], ys[0] = "XXX", 7
    assert agreement_task(8, seed=2)[0][0][0] != "XXX" and 7 not in agreement_task(8, seed=2)[1]
    ps, ans = pattern_task(4, seed=2)
    ps[0][0], ans[0] = "XXX", "XXX"
    assert "XXX" not in pattern_task(4, seed=2)[0][0] and "XXX" not in pattern_task(4, seed=2)[1]


def test_bad_arguments():
    with pytest.raises(ValueError):
        sentences(-1)
    with pytest.raises(ValueError):
        sentences(3, max_depth=-1)
    with pytest.raises(ValueError):
        corpus(3, sentences_per_doc=(4, 2))
    with pytest.raises(ValueError):
        agreement_task(4, max_depth=0)
    with pytest.raises(ValueError):
        pattern_task(3, n_shots=0)
    with pytest.raises(ValueError):
        pattern_task(3, n_keys=17)


# -- corpus, text, topics ------------------------------------------------------------------------


def test_corpus_layout():
    docs, topics = labelled_corpus(200, seed=1, sentences_per_doc=(2, 5))
    assert docs == corpus(200, seed=1, sentences_per_doc=(2, 5))
    assert len(docs) == len(topics) == 200
    assert Counter(len(d) for d in docs).keys() == {2, 3, 4, 5}
    assert set(topics) == {0, 1, 2, 3}
    assert all(L.is_grammatical(s) for d in docs for s in d)
    assert all(len(d) == 3 for d in corpus(10, sentences_per_doc=(3, 3)))


def test_topic_words_dominate_their_document():
    docs, topics = labelled_corpus(1000, seed=3)
    own = total = plurality = 0
    for doc, t in zip(docs, topics):
        marks = [L.topic(w) for s in doc for w in s if L.topic(w) is not None]
        assert marks, "every sentence has a noun"
        own += marks.count(t)
        total += len(marks)
        plurality += Counter(marks).most_common(1)[0][0] == t
    assert abs(own / total - TOPIC_PROB) < 0.03
    assert plurality / len(docs) > 0.97


def test_text_is_the_sentences_one_per_line():
    s = text(100, seed=5)
    assert s == "\n".join(" ".join(x) for x in sentences(100, seed=5))
    lines = s.split("\n")
    assert len(lines) == 100 and not s.endswith("\n")
    assert [line.split(" ") for line in lines] == sentences(100, seed=5)
    assert s.split() == [w for x in sentences(100, seed=5) for w in x]


def test_topic_task_has_signal():
    xs, ys = topic_task(2000, seed=1)
    assert len(xs) == len(ys) == 2000
    counts = Counter(ys)
    assert set(counts) == {0, 1, 2, 3} and min(counts.values()) > 400
    assert all(L.is_grammatical(x) for x in xs)
    right = 0
    for x, t in zip(xs, ys):
        votes = Counter(L.topic(w) for w in x if L.topic(w) is not None)
        right += votes.most_common(1)[0][0] == t
    assert right / len(xs) > 0.8


# -- agreement -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7, 400, 401])
def test_agreement_labels_and_attractors_are_balanced(n):
    items = agreement_items(n, seed=2)
    xs, ys = agreement_task(n, seed=2)
    assert [list(it.words) for it in items] == xs and [it.label for it in items] == ys
    assert set(ys) <= {0, 1} and abs(2 * sum(ys) - n) <= 1
    for label in (0, 1):
        group = [it for it in items if it.label == label]
        assert abs(2 * sum(it.attractor for it in group) - len(group)) <= 1


def test_agreement_flip_is_the_only_difference():
    items = agreement_items(600, seed=5)
    for it in items:
        w = list(it.words)
        assert L.is_grammatical(w) == bool(it.label)
        assert L.is_noun(w[it.subject]) and L.is_verb(w[it.verb])
        assert (L.number(w[it.verb]) == L.number(w[it.subject])) == bool(it.label)
        assert it.number == L.number(w[it.subject])
        fixed = w.copy()
        if not it.label:
            fixed[it.verb] = L.flip_number(w[it.verb])
            assert L.is_grammatical(fixed)
        broken = fixed.copy()
        broken[it.verb] = L.flip_number(fixed[it.verb])
        assert [i for i, (a, b) in enumerate(zip(fixed, broken)) if a != b] == [it.verb]
        assert not L.is_grammatical(broken)
        # the subject always carries a modifier, standing between it and the main verb
        assert w[it.subject + 1] in PREPS | {"that"} and it.verb > it.subject + 2
        between = w[it.subject + 1:it.verb]
        other = [x for x in between if L.is_noun(x) and L.number(x) != it.number]
        assert it.attractor == bool(other)
        assert not set(between) & PLACES


def test_agreement_with_deeper_nesting_is_still_a_minimal_pair_task():
    items = agreement_items(800, seed=1, max_depth=3)
    assert sum(it.attractor for it in items) >= 400
    assert all(L.is_grammatical(list(it.words)) == bool(it.label) for it in items)
    assert max(len(it.words) for it in items) > max(len(it.words) for it in agreement_items(800))


def test_agreement_verb_forms_do_not_give_the_label_away():
    # in both labels, singular and plural verbs are equally common (the subject decides)
    items = agreement_items(4000, seed=9)
    for label in (0, 1):
        plural = [L.number(it.words[it.verb]) for it in items if it.label == label]
        assert abs(sum(plural) / len(plural) - 0.5) < 0.05


# -- in-context patterns -------------------------------------------------------------------------


@pytest.mark.parametrize("n_shots,n_keys", [(1, 1), (4, 3), (10, 6)])
def test_pattern_task_answer_is_in_context(n_shots, n_keys):
    prompts, answers = pattern_task(300, seed=1, n_shots=n_shots, n_keys=n_keys)
    assert len(prompts) == len(answers) == 300
    nouns = {w for t in L.topic_nouns for w in t if L.number(w) == 0}
    adjs = {w for t in L.topic_adjectives for w in t}
    maps = []
    for p, a in zip(prompts, answers):
        assert len(p) == 4 * n_shots + 2 and p[-1] == "->"
        assert p[1::4] == ["->"] * (n_shots + 1) and p[3::4] == [";"] * n_shots
        keys, values = p[0::4], p[2::4]
        assert set(keys) <= nouns and set(values) <= adjs and a in adjs
        mapping = {}
        for k, v in zip(keys[:-1], values):
            assert mapping.setdefault(k, v) == v  # one value per key within a prompt
        assert len(set(mapping.values())) == len(mapping) <= n_keys  # one-to-one
        assert mapping[keys[-1]] == a  # the query was shown with its answer
        maps.append(frozenset(mapping.items()))
        L.encode(p + [a])
    assert len(set(maps)) > 180  # a fresh mapping per sequence (1 key: 320 possible)


def test_pattern_answers_need_the_context():
    # the same key maps to many different values across prompts: no context-free answer
    prompts, answers = pattern_task(2000, seed=3)
    by_key: dict[str, Counter] = {}
    for p, a in zip(prompts, answers):
        by_key.setdefault(p[-2], Counter())[a] += 1
    best = sum(c.most_common(1)[0][1] for c in by_key.values())
    assert best / len(answers) < 0.2


def test_the_module_is_not_shadowed_by_a_package_export():
    """The names live in their module only: ``course.data.language`` stays the module."""
    import importlib

    module = importlib.import_module("course.data.language")
    assert module.sentences(3, seed=1) == sentences(3, seed=1)
    assert "language" not in data.__all__ and "course.data.language" in data.__doc__
