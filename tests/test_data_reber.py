"""course.data.reber: the documented grammar, exact recognisers, a sampler that covers every edge
with the documented probabilities, and a continual stream whose targets are the legal sets.

The reference points are independent of the module: the transition table is read back from
the module's own docstring, grammaticality is decided by a regular expression written from the
diagram, and next-symbol sets come from enumerating every grammatical string up to a length.
"""

from __future__ import annotations

import itertools
import math
import re

import pytest
import torch

from course.data import reber

# The plain grammar as a regular expression, read off the diagram: from state 3 the walk is
# T* V, then either V (to 6) or P X back to 3, or P S (to 6); from state 2 it is S* X, then S
# (to 6) or X (to 3).
_FROM_3 = "T*V(?:PXT*V)*(?:V|PS)"
PLAIN = re.compile(f"B(?:TS*X(?:S|X{_FROM_3})|P{_FROM_3})E")
EMBEDDED = re.compile(f"B(?:T{PLAIN.pattern}T|P{PLAIN.pattern}P)E")
INNER = "TSXPV"  # the symbols strictly between B and E of a plain string


def regex_is_reber(s: str, embedded: bool) -> bool:
    return (EMBEDDED if embedded else PLAIN).fullmatch(s) is not None


def all_plain(max_len: int) -> list[str]:
    """Every plain Reber string of at most ``max_len`` symbols, by brute force."""
    out = []
    for k in range(max_len - 1):
        for middle in itertools.product(INNER, repeat=k):
            s = "B" + "".join(middle) + "E"
            if PLAIN.fullmatch(s):
                out.append(s)
    return out


PLAIN_10 = all_plain(10)
EMBEDDED_14 = [f"B{b}{s}{b}E" for s in PLAIN_10 for b in "TP"]


def enumerated_next(prefix: str, strings: list[str]) -> set[str]:
    return {s[len(prefix)] for s in strings if len(s) > len(prefix) and s.startswith(prefix)}


def test_table_is_the_documented_diagram():
    documented = {}
    for line in reber.__doc__.splitlines():
        m = re.match(r"\s*state (\d):\s+(.*?)(?:\(.*\))?$", line)
        if m:
            edges = re.findall(r"([A-Z]) -> (\d)", m.group(2))
            documented[int(m.group(1))] = {sym: int(nxt) for sym, nxt in edges}
    assert len(documented) == 7
    assert {k: v for k, v in reber.REBER.items() if v} == documented
    assert reber.REBER[reber.END] == {} and reber.START == 0 and reber.END == 7
    assert reber.SYMBOLS == "BTSXPVE"
    # two ways out of every state but 0 and 6, and every symbol used
    assert [len(reber.REBER[s]) for s in range(8)] == [1, 2, 2, 2, 2, 2, 1, 0]
    assert {sym for out in reber.REBER.values() for sym in out} == set(reber.SYMBOLS)


def test_documented_examples():
    for s in ["BTXSE", "BPVVE", "BTSSXXTVVE"]:
        assert reber.is_reber(s, embedded=False) and regex_is_reber(s, embedded=False)
    for s in ["BTBPVPXVVETE", "BPBTXSEPE"]:
        assert reber.is_reber(s) and regex_is_reber(s, embedded=True)
    assert not reber.is_reber("BTBPVPXVVEPE")  # the second T/P must repeat the first


def test_enumeration_is_sane():
    # the shortest strings, counted by hand from the diagram
    assert sorted(s for s in PLAIN_10 if len(s) == 5) == ["BPVVE", "BTXSE"]
    assert sorted(s for s in PLAIN_10 if len(s) == 6) == ["BPTVVE", "BPVPSE", "BTSXSE"]
    assert len(PLAIN_10) > 40


@pytest.mark.parametrize("embedded", [False, True])
def test_is_reber_matches_the_regular_expression(embedded):
    # every string B ... E with up to 7 inner symbols over all seven symbols, plus the
    # grammatical strings and their one-symbol corruptions
    candidates = ["", "B", "E", "BE", "btxse", "BTXSE ", "BTXSEB"]
    for k in range(8):
        words = ["B" + "".join(m) + "E" for m in itertools.product(INNER, repeat=k)]
        candidates += words
        if embedded and k <= 5:
            candidates += [f"B{a}{w}{b}E" for w in words for a in "TP" for b in "TP"]
    base = EMBEDDED_14[:300] if embedded else PLAIN_10
    for s in base:
        candidates.append(s)
        for k in range(len(s)):
            candidates.append(s[:k] + s[k + 1:])
            candidates += [s[:k] + a + s[k + 1:] for a in reber.SYMBOLS if a != s[k]]
    n_true = 0
    for s in candidates:
        want = regex_is_reber(s, embedded)
        assert reber.is_reber(s, embedded) is want, s
        n_true += want
    assert n_true > 100


@pytest.mark.parametrize("embedded", [False, True])
def test_reber_next_matches_enumeration(embedded):
    """After its first symbol a plain string can be finished within 3 more (XSE or VVE at
    worst), an embedded one after its third within 5 more (the inner rest, the branch, E); so
    for prefixes up to ``bound - 4`` (plain) or ``bound - 6`` (embedded) symbols, every legal
    next symbol shows up in the enumeration of all strings up to ``bound``."""
    strings, bound, longest = (EMBEDDED_14, 14, 8) if embedded else (PLAIN_10, 10, 6)
    prefixes = {s[:k] for s in strings for k in range(min(len(s), longest) + 1)}
    prefixes |= {p + a for p in list(prefixes) for a in reber.SYMBOLS + "Q"}
    prefixes = {p for p in prefixes if len(p) <= longest}
    dead = 0
    for p in sorted(prefixes):
        want = enumerated_next(p, strings)
        assert reber.reber_next(p, embedded) == want, p
        dead += not want
    assert dead > 20  # prefixes that begin no string are among those checked
    assert reber.reber_next("BTXSE", embedded=False) == set()
    assert reber.reber_next("BTBTXSETE") == set()
    assert reber.reber_next("BTBTXSE") == {"T"} and reber.reber_next("BPBTXSE") == {"P"}


def test_automaton_edges():
    assert len(reber.edges(embedded=False)) == 12
    assert len(reber.edges(embedded=True)) == 30
    assert len(set(reber.edges(embedded=True))) == 30
    table, start, final = reber.automaton(embedded=True)
    assert reber.automaton(embedded=True) is reber.automaton(embedded=True)
    assert table[final] == {} and start in table
    s = "BPBTXSEPE"
    used = reber.edges_of(s)
    assert len(used) == len(s) and [sym for _, sym in used] == list(s)
    assert used[0] == ("start", "B") and used[-1] == ("close", "E")
    with pytest.raises(ValueError):
        reber.edges_of("BTBTXSEPE")


@pytest.mark.parametrize("embedded", [False, True])
def test_samples_grammatical_and_cover_every_edge(embedded):
    g = torch.Generator().manual_seed(0)
    samples = [reber.sample_reber(g, embedded) for _ in range(600)]
    assert all(regex_is_reber(s, embedded) for s in samples)
    used = {e for s in samples for e in reber.edges_of(s, embedded)}
    assert used == set(reber.edges(embedded))


def test_sampler_is_seeded_by_its_generator_only():
    def draw(seed, n=50):
        g = torch.Generator().manual_seed(seed)
        return [reber.sample_reber(g) for _ in range(n)]

    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = draw(5)
    assert torch.equal(torch.random.get_rng_state(), before)  # the global RNG is untouched
    torch.manual_seed(999)
    assert draw(5) == first
    assert draw(6) != first


def _expected_plain_length() -> float:
    """Expected length of a plain string when every choice is uniform, from the diagram:
    L(s) = 1 + mean over the ways out of L(next), L(7) = 0 (solved by fixed-point iteration)."""
    length = {s: 0.0 for s in range(8)}
    for _ in range(2000):
        length = {s: (1 + sum(length[n] for n in out.values()) / len(out)) if out else 0.0
                  for s, out in reber.REBER.items()}
    return length[0]


def test_sampler_choices_are_uniform():
    g = torch.Generator().manual_seed(1)
    n = 4000
    samples = [reber.sample_reber(g) for _ in range(n)]
    # the outer branch: T or P with probability 1/2 each (5 standard deviations allowed)
    share_t = sum(s[1] == "T" for s in samples) / n
    assert abs(share_t - 0.5) < 5 * math.sqrt(0.25 / n)
    # the inner string's first choice, independent of the outer one
    share_inner_t = sum(s[3] == "T" for s in samples) / n
    assert abs(share_inner_t - 0.5) < 5 * math.sqrt(0.25 / n)
    # mean length of the inner plain strings against the exact expectation
    inner = torch.tensor([len(s) - 4 for s in samples], dtype=torch.float64)
    want = _expected_plain_length()
    assert want == pytest.approx(8.0)  # by hand: L6 = 1, L4 = 13/3, L3 = 17/3, L2 = 19/3, L1 = 7
    assert abs(float(inner.mean()) - want) < 5 * float(inner.std()) / math.sqrt(n)


def _decode(x):
    return "".join(reber.SYMBOLS[k] for k in x.argmax(1).tolist())


def _split(stream: str, embedded: bool) -> list[str]:
    """Cut a continual stream into strings: each string starts with B and ends at the E that
    completes it (the automaton's final state)."""
    out, start = [], 0
    for k in range(1, len(stream) + 1):
        if reber.is_reber(stream[start:k], embedded):
            out.append(stream[start:k])
            start = k
    assert start == len(stream), "the stream does not end with a complete string"
    return out


@pytest.mark.parametrize("embedded", [True, False])
def test_stream_is_concatenated_strings_with_legal_targets(embedded):
    n = 60
    x, y, crit = reber.reber_stream(n, seed=3, embedded=embedded)
    t = x.shape[0]
    assert x.shape == (t, 7) and y.shape == (t, 7) and crit.shape == (t,)
    assert x.dtype == torch.float32 and y.dtype == torch.float32 and crit.dtype == torch.bool
    assert torch.equal(x.sum(1), torch.ones(t))  # one-hot
    assert set(x.unique().tolist()) == {0.0, 1.0} and set(y.unique().tolist()) == {0.0, 1.0}
    stream = _decode(x)
    strings = _split(stream, embedded)
    assert len(strings) == n and all(regex_is_reber(s, embedded) for s in strings)
    # the target at every step: the legal next symbols within the current string; after the
    # end of a string, the next string's B
    k = 0
    for s in strings:
        for j in range(len(s)):
            legal = reber.reber_next(s[: j + 1], embedded) or {"B"}
            assert {reber.SYMBOLS[i] for i in y[k].nonzero().flatten().tolist()} == legal
            k += 1
    # the actual next symbol is always among the targets
    nxt = x[1:].argmax(1)
    assert bool((y[:-1].gather(1, nxt[:, None]) == 1).all())
    assert y[-1].tolist() == [1.0, 0, 0, 0, 0, 0, 0]


def test_stream_critical_steps():
    n = 80
    x, y, crit = reber.reber_stream(n, seed=4)
    stream = _decode(x)
    assert int(crit.sum()) == n
    positions = crit.nonzero().flatten().tolist()
    k = 0
    for s, p in zip(_split(stream, True), positions):
        assert p == k + len(s) - 3  # the inner string's E
        assert stream[p] == "E" and stream[p + 1] == s[1]  # next: the repeated branch symbol
        assert y[p].sum() == 1 and y[p, reber.SYMBOLS.index(s[1])] == 1
        k += len(s)
    # a plain stream has no long-lag step
    plain_x, _, plain_crit = reber.reber_stream(20, seed=4, embedded=False)
    assert not plain_crit.any() and len(plain_crit) == len(plain_x)


def test_stream_seeded_and_statistics():
    a = reber.reber_stream(200, seed=7)
    b = reber.reber_stream(200, seed=7)
    c = reber.reber_stream(200, seed=8)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0][: len(c[0])], c[0][: len(a[0])])
    x, _, _ = reber.reber_stream(1500, seed=0)
    strings = _split(_decode(x), True)
    used = {e for s in strings for e in reber.edges_of(s)}
    assert used == set(reber.edges())
    share_t = sum(s[1] == "T" for s in strings) / len(strings)
    assert abs(share_t - 0.5) < 5 * math.sqrt(0.25 / len(strings))
    mean_len = sum(map(len, strings)) / len(strings)
    assert abs(mean_len - (_expected_plain_length() + 4)) < 0.5
