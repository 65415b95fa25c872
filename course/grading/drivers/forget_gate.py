"""Drivers for unit 3.3 `forget-gate`: call an implementation's grammar functions on many
strings, and unroll its ``ForgetLSTMCell`` over a sequence.

The grammar functions return Python sets and bools, which a probe cannot hand back as such;
these drivers call them once per string and return plain data for the grader to compare:

- :func:`next_symbols`: ``{prefix: "{S, X}"}``, each set written in the order ``BTSXPVE``;
- :func:`recognise`: ``{string: bool}``;
- :func:`samples`: a list of strings drawn with one generator;
- :func:`unroll`: ``(hs, cs)``, the (T, B, H) hidden and cell states of a cell stepped over
  ``xs`` (T, B, I), so that gradients flow through every step.
"""

from __future__ import annotations

import torch

from course.grading.probes import ProbeError, lookup

SYMBOLS = "BTSXPVE"


def _order(symbol) -> tuple:
    return (SYMBOLS.index(symbol) if symbol in SYMBOLS else len(SYMBOLS), str(symbol))


def _kwargs(embedded):
    return {} if embedded is None else {"embedded": embedded}


def next_symbols(ns: dict, prefixes: list[str], embedded: bool | None = None) -> dict:
    """``reber_next(prefix[, embedded=...])`` for every prefix, as ``{prefix: "{a, b}"}``."""
    fn = lookup(ns, "reber_next")
    out = {}
    for prefix in prefixes:
        result = fn(prefix, **_kwargs(embedded))
        if not isinstance(result, (set, frozenset)):
            raise ProbeError(
                f"reber_next({prefix!r}) returned a {type(result).__name__}; return a set of "
                "one-character strings, e.g. {'S', 'X'}"
            )
        if not all(isinstance(s, str) for s in result):
            raise ProbeError(f"reber_next({prefix!r}) returned a set holding non-strings")
        out[prefix] = "{" + ", ".join(sorted(result, key=_order)) + "}"
    return out


def recognise(ns: dict, strings: list[str], embedded: bool | None = None) -> dict:
    """``is_reber(s[, embedded=...])`` for every string, as ``{s: bool}``."""
    fn = lookup(ns, "is_reber")
    out = {}
    for s in strings:
        result = fn(s, **_kwargs(embedded))
        if type(result) is not bool:
            raise ProbeError(
                f"is_reber({s!r}) returned a {type(result).__name__}; return True or False"
            )
        out[s] = result
    return out


def samples(ns: dict, generator: torch.Generator, n: int, embedded: bool | None = None) -> list:
    """``n`` calls of ``sample_reber(generator[, embedded=...])`` with one generator."""
    fn = lookup(ns, "sample_reber")
    out = []
    for _ in range(n):
        s = fn(generator, **_kwargs(embedded))
        if type(s) is not str:
            raise ProbeError(f"sample_reber returned a {type(s).__name__}; return a str")
        if len(s) > 2000:
            raise ProbeError(f"sample_reber returned a string of {len(s)} symbols")
        out.append(s)
    return out


def unroll(ns: dict, cell, xs: torch.Tensor, state=None):
    """Step ``cell`` over ``xs`` (T, B, I) from ``state``; return ``(hs, cs)``, (T, B, H)."""
    hs, cs = [], []
    for x in xs:
        result = cell(x, state)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise ProbeError("ForgetLSTMCell.forward should return a pair (h, c)")
        state = result
        hs.append(result[0])
        cs.append(result[1])
    return torch.stack(hs), torch.stack(cs)
