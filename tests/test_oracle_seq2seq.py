"""Unit 3.7 `seq2seq`: the master against independent implementations.

- ``reverse_source`` equals PyTorch's own padded-sequence utilities: ``unpad_sequence``, a
  flip of each sequence, ``pad_sequence`` back (time first), with the padding rows taken from
  the input;
- ``beam_search`` with a beam wide enough to keep every candidate is exhaustive search: its
  results equal the best of all sequences enumerated by brute force (every prefix ended by eos
  within max_len steps, and every eos-free sequence of max_len tokens), ranked by summed
  log-probability, on random tables and on a real (randomly initialised) LSTM decoder;
- ``beam_search`` with ``beam_size=1`` equals a plain greedy loop (argmax at every step,
  stopping at eos);
- beam search never returns a lower best score than greedy on the trap table of the checks,
  and every returned score equals the summed log-probability of its sequence.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence, unpad_sequence

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("seq2seq")).namespace
beam_search, reverse_source = NS["beam_search"], NS["reverse_source"]


@pytest.mark.parametrize("seed", range(6))
def test_reverse_source_equals_torch_padding_utilities(seed):
    g = torch.Generator().manual_seed(seed)
    s, b = 2 + seed, 1 + seed % 4
    lengths = torch.randint(1, s + 1, (b,), generator=g)
    src = torch.randint(1, 50, (s, b), generator=g)
    # unpad_sequence transposes its argument in place: hand it a copy
    pieces = unpad_sequence(src.clone(), lengths)  # time first: B tensors (L_b,)
    oracle = pad_sequence([p.flip(0) for p in pieces], padding_value=-1)
    oracle = torch.cat([oracle, torch.full((s - oracle.shape[0], b), -1)])
    oracle = torch.where(oracle == -1, src, oracle)
    before = src.clone()
    assert torch.equal(reverse_source(src, lengths), oracle)
    assert torch.equal(src, before)
    feats = torch.randn(s, b, 3, generator=g, dtype=torch.float64)
    out = reverse_source(feats, lengths)
    for j in range(b):
        n = int(lengths[j])
        assert torch.equal(out[:n, j], feats[:n, j].flip(0))
        assert torch.equal(out[n:, j], feats[n:, j])


def _table_step(table):
    def step_fn(prefixes):
        return table[prefixes.shape[1] - 1][prefixes[:, -1]]
    return step_fn


def _score(step_fn, seq):
    total = 0.0
    for t in range(1, len(seq)):
        total += float(step_fn(torch.tensor([seq[:t]]))[0, seq[t]])
    return total


def _exhaustive(step_fn, vocab, bos, eos, max_len):
    """Every sequence beam search may end with, with its score."""
    found = []
    for n in range(1, max_len + 1):
        for body in itertools.product([v for v in range(vocab) if v != eos], repeat=n - 1):
            seq = [bos, *body, eos]
            found.append((seq, _score(step_fn, seq)))
    for body in itertools.product([v for v in range(vocab) if v != eos], repeat=max_len):
        seq = [bos, *body]
        found.append((seq, _score(step_fn, seq)))
    return found


@pytest.mark.parametrize(("vocab", "max_len", "k", "seed"),
                         [(3, 3, 4, 0), (4, 3, 5, 1), (5, 2, 3, 2), (3, 4, 6, 3), (2, 5, 4, 4)])
def test_wide_beam_is_exhaustive_search(vocab, max_len, k, seed):
    g = torch.Generator().manual_seed(seed)
    table = torch.log_softmax(torch.randn(max_len, vocab, vocab, generator=g,
                                          dtype=torch.float64) * 2, -1)
    step_fn = _table_step(table)
    bos, eos = 0, vocab - 1
    wide = vocab ** (max_len + 1)  # never prunes anything
    everything = sorted(_exhaustive(step_fn, vocab, bos, eos, max_len), key=lambda r: -r[1])
    got = beam_search(step_fn, bos, eos, wide, max_len)
    assert len(got) == len(everything)
    for (seq, score), (want_seq, want_score) in zip(got, everything):
        assert score == pytest.approx(want_score, abs=1e-12)
        assert seq == want_seq
    # and each narrower beam's best is never better than the exhaustive optimum
    best = everything[0][1]
    for beam in (1, 2, k):
        assert beam_search(step_fn, bos, eos, beam, max_len)[0][1] <= best + 1e-12


def test_wide_beam_is_exhaustive_search_on_an_lstm_decoder():
    torch.manual_seed(0)
    vocab, hidden, max_len, bos, eos = 4, 8, 3, 0, 3
    embed = nn.Embedding(vocab, 5).double()
    lstm, out = nn.LSTM(5, hidden).double(), nn.Linear(hidden, vocab).double()

    @torch.no_grad()
    def step_fn(prefixes):  # prefixes (N, t): run the decoder over the whole prefix
        h, _ = lstm(embed(prefixes.T))
        return torch.log_softmax(out(h[-1]), -1)

    everything = sorted(_exhaustive(step_fn, vocab, bos, eos, max_len), key=lambda r: -r[1])
    got = beam_search(step_fn, bos, eos, vocab ** (max_len + 1), max_len)
    assert [s for s, _ in got] == [s for s, _ in everything]
    assert [sc for _, sc in got] == pytest.approx([sc for _, sc in everything], abs=1e-9)


def _greedy(step_fn, bos, eos, max_len):
    seq, score = [bos], 0.0
    for _ in range(max_len):
        row = step_fn(torch.tensor([seq]))[0]
        token = int(torch.argmax(row))  # the first maximum: the lowest id among ties
        seq.append(token)
        score += float(row[token])
        if token == eos:
            break
    return seq, score


@pytest.mark.parametrize("seed", range(8))
def test_beam_one_is_a_greedy_loop(seed):
    g = torch.Generator().manual_seed(seed)
    vocab, max_len = 3 + seed % 5, 2 + seed % 6
    table = torch.log_softmax(torch.randn(max_len, vocab, vocab, generator=g) * 2, -1)
    if seed % 2:
        table = torch.round(table * 4) / 4  # exact ties: argmax takes the lowest id
    step_fn = _table_step(table)
    (seq, score), = beam_search(step_fn, 0, 1, 1, max_len)
    want_seq, want_score = _greedy(step_fn, 0, 1, max_len)
    assert seq == want_seq
    assert score == pytest.approx(want_score, abs=1e-12)
    assert isinstance(score, float) and all(type(t) is int for t in seq)


@pytest.mark.parametrize("seed", range(5))
def test_scores_are_summed_log_probabilities(seed):
    g = torch.Generator().manual_seed(100 + seed)
    vocab, max_len = 6, 5
    table = torch.log_softmax(torch.randn(max_len, vocab, vocab, generator=g,
                                          dtype=torch.float64), -1)
    step_fn = _table_step(table)
    results = beam_search(step_fn, 0, 2, 4, max_len)
    assert 1 <= len(results) <= 4
    assert [s for _, s in results] == sorted((s for _, s in results), reverse=True)
    for seq, score in results:
        assert seq[0] == 0 and 2 not in seq[1:-1] and len(seq) <= max_len + 1
        assert score == pytest.approx(_score(step_fn, seq), abs=1e-12)
