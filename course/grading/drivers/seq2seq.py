"""Driver for unit 3.7 `seq2seq`: run an implementation's ``beam_search`` with a grader-owned
``step_fn``.

``beam(ns, table, bos, eos, beam_size, max_len)`` builds a step function from a table of
log-probabilities and calls ``ns["beam_search"](step_fn, bos, eos, beam_size, max_len)``.

The step function is a position-dependent first-order model: for a prefix of length t whose
last token is y, the next-token log-probabilities are ``table[t - 1, y]`` (a row of V values),
so ``table`` has shape (T, V, V) with T >= max_len (the checks give one row more,
T = max_len + 1, so that a search running one step too long still gets an answer). It
accepts any batch of prefixes of equal length (an integer tensor (N, t) on any device, each
row starting with bos; an empty batch gets an empty answer), and returns (N, V) in the
table's dtype and on its device. Prefixes it cannot answer (wrong type or shape,
longer than the table, tokens outside the vocabulary, not starting with bos) stop the run with
a message in words.

The result comes back as plain data: ``{"sequences": [LongTensor (len_i,)], "scores": float64
(k,)}``, on the table's device, best first as returned.
"""

from __future__ import annotations

import numbers

import torch

from course.grading.probes import ProbeError, lookup


def _step_fn(table: torch.Tensor, bos: int):
    steps, vocab = table.shape[0], table.shape[-1]

    def step_fn(prefixes):
        if isinstance(prefixes, torch.Tensor) and prefixes.numel() == 0:
            return table.new_zeros(0, vocab)  # an empty beam asks for nothing
        if not isinstance(prefixes, torch.Tensor):
            raise ProbeError(
                f"step_fn was called with a {type(prefixes).__name__}; pass the prefixes as "
                "a LongTensor of shape (N, t)"
            )
        if prefixes.dtype == torch.bool or prefixes.is_floating_point() or prefixes.is_complex():
            raise ProbeError(
                f"step_fn was called with a {str(prefixes.dtype).replace('torch.', '')} "
                "tensor; pass the prefixes as a LongTensor (torch.long) of shape (N, t)"
            )
        if prefixes.dim() != 2 or prefixes.shape[0] < 1 or prefixes.shape[1] < 1:
            raise ProbeError(
                f"step_fn was called with prefixes of shape {tuple(prefixes.shape)}; expected "
                "(N, t) with N >= 1 hypotheses of t >= 1 tokens each"
            )
        rows = prefixes.detach().to("cpu", torch.long)
        t = rows.shape[1]
        if t > steps:
            raise ProbeError(
                f"step_fn was called with prefixes of {t} tokens, more than this search can "
                "produce: the search takes at most max_len steps, so a prefix that is "
                "extended holds bos and at most max_len - 1 more tokens"
            )
        if bool((rows < 0).any() or (rows >= vocab).any()):
            raise ProbeError(f"step_fn was called with tokens outside 0..{vocab - 1}")
        if bool((rows[:, 0] != bos).any()):
            raise ProbeError("step_fn was called with a prefix that does not start with bos")
        return table[t - 1][rows[:, -1].to(table.device)]

    return step_fn


def _sequence(value, k: int) -> list[int]:
    if isinstance(value, torch.Tensor):
        raise ProbeError(
            f"result {k}: the sequence is a tensor; return it as a list of Python ints "
            "(e.g. tensor.tolist())"
        )
    if not isinstance(value, (list, tuple)):
        raise ProbeError(
            f"result {k}: the sequence is a {type(value).__name__}; expected a list of ints"
        )
    tokens = []
    for token in value:
        if isinstance(token, bool) or not isinstance(token, numbers.Integral):
            raise ProbeError(
                f"result {k}: the sequence holds a {type(token).__name__}; expected Python ints"
            )
        tokens.append(int(token))
    return tokens


def _score(value, k: int) -> float:
    if isinstance(value, torch.Tensor):
        raise ProbeError(
            f"result {k}: the score is a tensor; return it as a Python float (float(score))"
        )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ProbeError(
            f"result {k}: the score is a {type(value).__name__}; expected a Python float"
        )
    return float(value)


def beam(ns: dict, table: torch.Tensor, bos: int, eos: int, beam_size: int,
         max_len: int) -> dict:
    """``beam_search(step_fn, bos, eos, beam_size, max_len)`` with the table's step function;
    returns ``{"sequences": [LongTensor], "scores": float64 tensor}`` in result order."""
    search = lookup(ns, "beam_search")
    result = search(_step_fn(table, bos), bos, eos, beam_size, max_len)
    if not isinstance(result, (list, tuple)):
        raise ProbeError(
            f"beam_search returned a {type(result).__name__}; expected a list of "
            "(sequence, score) pairs"
        )
    sequences, scores = [], []
    for k, item in enumerate(result):
        if not (isinstance(item, (list, tuple)) and len(item) == 2):
            raise ProbeError(
                f"beam_search returned {type(item).__name__} as result {k}; expected a "
                "(sequence, score) pair"
            )
        sequences.append(torch.tensor(_sequence(item[0], k), dtype=torch.long,
                                      device=table.device))
        scores.append(_score(item[1], k))
    return {
        "sequences": sequences,
        "scores": torch.tensor(scores, dtype=torch.float64, device=table.device),
    }
