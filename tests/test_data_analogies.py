"""course.data.analogies: seeded, the documented layout, and analogies that are really planted."""

import pytest
import torch

from course.data.analogies import BASE_VOCAB, SENTENCE_LENGTH, analogy_corpus, filler_names


def test_shapes_dtypes_and_seed():
    c = analogy_corpus(num_sentences=500, num_filler=50, seed=3)
    assert c.tokens.shape == (500 * SENTENCE_LENGTH,) and c.tokens.dtype == torch.long
    assert c.sentences.shape == (500, SENTENCE_LENGTH)
    assert c.vocab_size == len(c.vocab) == BASE_VOCAB + 50
    assert len(set(c.vocab)) == c.vocab_size
    assert int(c.tokens.min()) >= 0 and int(c.tokens.max()) < c.vocab_size
    assert c.counts.shape == (c.vocab_size,) and c.counts.dtype == torch.long
    assert torch.equal(c.counts, torch.bincount(c.tokens, minlength=c.vocab_size))
    again = analogy_corpus(num_sentences=500, num_filler=50, seed=3)
    assert torch.equal(c.tokens, again.tokens) and c.vocab == again.vocab
    assert not torch.equal(c.tokens, analogy_corpus(500, 50, seed=4).tokens)


def test_fresh_tensors_each_call():
    c = analogy_corpus(100, 20, seed=0)
    first = int(c.tokens[0])
    c.tokens[0] = first + 1
    c.questions[0, 0] = -1
    again = analogy_corpus(100, 20, seed=0)
    assert int(again.tokens[0]) == first and int(again.questions[0, 0]) != -1


def test_questions_are_the_planted_pairs():
    c = analogy_corpus(100, 20)
    assert c.questions.shape == (10 * 9 + 10 * 9, 4) and c.questions.dtype == torch.long
    assert c.pairs["gender"][1] == ("king", "queen")
    assert c.pairs["capital"][0] == ("france", "paris")
    first = [c.vocab[i] for i in c.questions[0].tolist()]
    assert first == ["man", "woman", "king", "queen"]
    for a, b, q, d in c.questions.tolist():
        assert len({a, b, q, d}) == 4
    words = {c.vocab[i] for i in c.questions.flatten().tolist()}
    assert words == {w for pairs in c.pairs.values() for p in pairs for w in p}
    assert c.ids("king", "queen").tolist() == [c.word_to_id["king"], c.word_to_id["queen"]]


def test_planted_contexts_factor_into_two_attributes():
    c = analogy_corpus(4000, 30, seed=1)
    s = c.sentences

    def neighbours(word):
        rows = s[s[:, 2] == c.word_to_id[word]]
        return {c.vocab[i] for i in rows[:, [1, 3]].flatten().tolist()}

    assert neighbours("king") == {"he", "him", "his", "throne", "crown", "reign"}
    assert neighbours("queen") == {"she", "her", "hers", "throne", "crown", "reign"}
    assert neighbours("paris") == {"city", "mayor", "downtown", "french", "seine"}
    assert neighbours("france") - {"nation", "border", "government"} == {"french", "seine"}
    # planted words appear only in the middle of a sentence, fillers only among fillers/contexts
    planted = {w for pairs in c.pairs.values() for p in pairs for w in p}
    ids = torch.tensor([c.word_to_id[w] for w in planted])
    assert not torch.isin(s[:, [0, 1, 3, 4]], ids).any()
    assert bool((s[:, [0, 4]] >= BASE_VOCAB).all())


def test_planted_fraction_and_zipf_fillers():
    c = analogy_corpus(20_000, 200, seed=0)
    planted_rows = (c.sentences[:, 2] < BASE_VOCAB).double().mean()
    assert abs(float(planted_rows) - 0.5) < 0.02
    f = c.counts[BASE_VOCAB:].double()
    assert f[0] > 1.7 * f[1] > 1.7 * f[3]  # about 1/rank
    assert c.vocab[BASE_VOCAB] == "the" and filler_names(40)[35] == "w00035"


@pytest.mark.parametrize("num_filler", [1, 100, 10_000])
def test_vocabulary_size_spans_orders_of_magnitude(num_filler):
    c = analogy_corpus(2000, num_filler, seed=0)
    assert c.vocab_size == BASE_VOCAB + num_filler
    assert int(c.tokens.max()) < c.vocab_size


def test_count_based_embeddings_solve_the_analogies():
    """PPMI + SVD on window-2 co-occurrences answers most questions: the structure is there."""
    c = analogy_corpus(20_000, 200, seed=0)
    v, t = c.vocab_size, c.tokens
    m = torch.zeros(v, v, dtype=torch.float64)
    for d in (1, 2):
        m.index_put_((t[:-d], t[d:]), torch.ones(len(t) - d, dtype=torch.float64),
                     accumulate=True)
    m = m + m.T
    p = m / m.sum()
    pw = p.sum(1, keepdim=True)
    ppmi = torch.log(p / (pw * pw.T)).clamp_min(0).nan_to_num(0.0)
    u, sv, _ = torch.linalg.svd(ppmi)
    e = u[:, :20] * sv[:20].sqrt()
    a, b, q, d = c.questions.T
    query = e[b] - e[a] + e[q]
    sim = torch.nn.functional.normalize(query, dim=1) @ torch.nn.functional.normalize(e, dim=1).T
    rows = torch.arange(len(a))
    for col in (a, b, q):
        sim[rows, col] = -float("inf")
    accuracy = float((sim.argmax(1) == d).double().mean())
    assert accuracy > 0.6, accuracy


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        analogy_corpus(0)
    with pytest.raises(ValueError):
        analogy_corpus(10, num_filler=0)
    with pytest.raises(ValueError):
        analogy_corpus(10, planted_fraction=1.5)
