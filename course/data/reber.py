"""The Reber grammar and its embedded version, as finite automata (grader- and lecture-side).

Reber (1967) studied implicit learning with strings from a small finite-state grammar over the
seven symbols ``BTSXPVE``; Fahlman, Smith and Zipser used it, and its *embedded* version, as a
benchmark for recurrent nets, and Hochreiter & Schmidhuber (1997) and Gers, Schmidhuber &
Cummins (2000) adopted it. Its transition diagram, as a table (states
numbered as in :data:`REBER`; start 0, accept 7)::

    state 0:  B -> 1
    state 1:  T -> 2    P -> 3
    state 2:  S -> 2    X -> 4        (the S loop)
    state 3:  T -> 3    V -> 5        (the T loop)
    state 4:  X -> 3    S -> 6
    state 5:  P -> 4    V -> 6
    state 6:  E -> 7

Every plain string starts with ``B`` and ends
with ``E``; ``E`` occurs nowhere else. The **embedded** grammar wraps one plain string between
``B T … T E`` or ``B P … P E``: the symbol after the outer ``B`` must be repeated just before the
outer ``E``, which is a dependency across the whole inner string (the long time lag that makes
the task hard for recurrent nets). Example strings: ``BTXSE``, ``BPVVE``, ``BTSSXXTVVE``
(plain) and ``BTBPVPXVVETE``, ``BPBTXSEPE`` (embedded).

This module is the course's own copy (for data generation in lectures and for the hidden
checks); the exercise of unit 3.3 asks learners to write ``reber_next``, ``is_reber`` and
``sample_reber`` themselves.
"""

from __future__ import annotations

import torch

SYMBOLS = "BTSXPVE"

#: The plain Reber grammar: ``REBER[state] = {symbol: next_state}``; start state 0, accepting
#: state 7 (no way out).
REBER: dict[int, dict[str, int]] = {
    0: {"B": 1},
    1: {"T": 2, "P": 3},
    2: {"S": 2, "X": 4},
    3: {"T": 3, "V": 5},
    4: {"X": 3, "S": 6},
    5: {"P": 4, "V": 6},
    6: {"E": 7},
    7: {},
}
START, END = 0, 7


def automaton(embedded: bool = True) -> tuple[dict, object, object]:
    """``(table, start, final)`` of the (embedded) grammar as a deterministic automaton.

    Embedded states: ``"start"`` -B-> ``"open"`` -T/P-> ``(branch, 0)``; ``(branch, s)`` runs
    the plain grammar; ``(branch, 7)`` -branch-> ``"close"`` -E-> ``"end"``. The tables are
    shared: read them, do not change them.
    """
    return _AUTOMATA[bool(embedded)]


def _build(embedded: bool) -> tuple[dict, object, object]:
    if not embedded:
        return REBER, START, END
    table: dict = {"start": {"B": "open"}, "open": {"T": ("T", START), "P": ("P", START)}}
    for branch in "TP":
        for state, edges in REBER.items():
            table[(branch, state)] = {sym: (branch, nxt) for sym, nxt in edges.items()}
        table[(branch, END)] = {branch: "close"}
    table["close"] = {"E": "end"}
    table["end"] = {}
    return table, "start", "end"


_AUTOMATA = {False: _build(False), True: _build(True)}


def _walk(prefix: str, embedded: bool):
    table, state, _ = automaton(embedded)
    for ch in prefix:
        edges = table[state]
        if ch not in edges:
            return None
        state = edges[ch]
    return state


def reber_next(prefix: str, embedded: bool = True) -> set[str]:
    """The symbols that may follow ``prefix`` (empty if it is no prefix of a grammar string)."""
    state = _walk(prefix, embedded)
    if state is None:
        return set()
    table, _, _ = automaton(embedded)
    return set(table[state])


def is_reber(s: str, embedded: bool = True) -> bool:
    """Whether ``s`` is a complete string of the (embedded) Reber grammar."""
    return _walk(s, embedded) == automaton(embedded)[2]


def edges(embedded: bool = True) -> list[tuple]:
    """Every edge ``(state, symbol)`` of the automaton (12 plain, 30 embedded)."""
    table, _, _ = automaton(embedded)
    return [(state, sym) for state, out in table.items() for sym in out]


def edges_of(s: str, embedded: bool = True) -> list[tuple]:
    """The edges ``(state, symbol)`` that the grammatical string ``s`` traverses, in order."""
    table, state, _ = automaton(embedded)
    used = []
    for ch in s:
        if ch not in table[state]:
            raise ValueError(f"{s!r} is not a prefix of the grammar")
        used.append((state, ch))
        state = table[state][ch]
    return used


def sample_reber(generator: torch.Generator, embedded: bool = True) -> str:
    """One string, choosing uniformly among the legal next symbols at every step."""
    table, state, final = automaton(embedded)
    out = []
    while state != final:
        choices = sorted(table[state], key=SYMBOLS.index)
        pick = choices[int(torch.randint(len(choices), (1,), generator=generator))]
        out.append(pick)
        state = table[state][pick]
    return "".join(out)


def reber_stream(n_strings: int, seed: int = 0, embedded: bool = True):
    """A continual stream of ``n_strings`` concatenated (embedded) Reber strings.

    Returns ``(x, y, crit)``: x float32 (T, 7), the one-hot symbol at each step (order
    :data:`SYMBOLS`); y float32 (T, 7), the multi-hot set of symbols that may come next, where
    the end of one string is followed by the next string's ``B``; crit bool (T,), True at the
    steps whose next symbol is the repeated branch symbol (the long-lag prediction: after the
    inner string's ``E``). The last step's target is ``{B}`` too (the stream goes on).
    """
    g = torch.Generator().manual_seed(seed)
    table, start, final = automaton(embedded)
    states = list(table)
    choices = {st: sorted(table[st], key=SYMBOLS.index) for st in states}
    # the multi-hot "may come next" row of every state; after the end comes the next B
    rows = torch.zeros(len(states), len(SYMBOLS))
    for k, st in enumerate(states):
        for sym in table[st] or "B":
            rows[k, SYMBOLS.index(sym)] = 1.0
    number = {st: k for k, st in enumerate(states)}
    symbol_index = {sym: k for k, sym in enumerate(SYMBOLS)}
    x_idx, state_idx, crit = [], [], []
    uniforms: list[float] = []
    for _ in range(n_strings):
        state, length = start, 0
        while state != final:  # choose uniformly among the legal next symbols
            if not uniforms:
                uniforms = torch.rand(4096, generator=g, dtype=torch.float64).tolist()
            options = choices[state]
            pick = options[int(uniforms.pop() * len(options))]
            state = table[state][pick]
            x_idx.append(symbol_index[pick])
            state_idx.append(number[state])
            length += 1
        crit.extend([False] * length)
        if embedded:
            crit[-3] = True  # the inner E: next comes the repeated T or P
    x = torch.nn.functional.one_hot(torch.tensor(x_idx), len(SYMBOLS)).float()
    y = rows[torch.tensor(state_idx)]
    return x, y, torch.tensor(crit, dtype=torch.bool)
