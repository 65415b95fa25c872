"""Drivers for unit 4.4 `t5`.

:func:`bias_with_given_buckets` runs the learner's ``T5RelativeBias`` with the name
``relative_position_bucket`` in the learner's namespace bound, for the duration of the call, to
a grader-owned stand-in: a lookup in bucket tables the grader computed with the reference and
sent along with the probe. The stand-in holds no formula, only those tables, so a mistake in
the learner's own bucket function costs the bucket function's checks and not the module's.
A call with settings the grader did not tabulate, or with an offset outside the table, fails
with a message in words.

:func:`span_layouts` calls the learner's ``span_corrupt`` many times with one generator, for
the statistical check. Both return plain tensors; the grader judges them in its own process.
"""

from __future__ import annotations

import torch
from torch import nn

from course.grading.probes import ProbeError, lookup


def _stand_in(tables: list) -> object:
    """``relative_position_bucket`` answered from ``tables``, a list of ``(bidirectional,
    num_buckets, max_distance, lowest offset, buckets)``, ``buckets[k]`` being the bucket of
    the offset ``lowest + k``."""
    known = {(bool(b), int(nb), int(md)): (int(lo), t) for b, nb, md, lo, t in tables}

    def relative_position_bucket(relative_position, bidirectional=True, num_buckets=32,
                                 max_distance=128):
        key = (bool(bidirectional), int(num_buckets), int(max_distance))
        if key not in known:
            raise ProbeError(
                f"your T5RelativeBias called relative_position_bucket(..., bidirectional="
                f"{key[0]}, num_buckets={key[1]}, max_distance={key[2]}), settings this module "
                "was not built with: pass the module's own bidirectional, num_buckets and "
                "max_distance"
            )
        lo, table = known[key]
        if not isinstance(relative_position, torch.Tensor):
            relative_position = torch.as_tensor(relative_position)
        index = relative_position.long() - lo
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= len(table)):
            raise ProbeError(
                f"your T5RelativeBias asked for buckets of offsets from "
                f"{int(relative_position.min())} to {int(relative_position.max())}; the "
                f"offsets j - i of a (Lq, Lk) bias lie between -(Lq - 1) and Lk - 1"
            )
        return table.to(relative_position.device)[index]

    return relative_position_bucket


def bias_with_given_buckets(ns: dict, module: nn.Module, Lq: int, Lk: int,
                            tables: list) -> torch.Tensor:
    """``module(Lq, Lk)`` with ``ns["relative_position_bucket"]`` replaced by the stand-in
    (restored afterwards)."""
    if not isinstance(module, nn.Module):
        raise ProbeError("T5RelativeBias(...) should build a torch.nn.Module")
    missing = object()
    own = ns.get("relative_position_bucket", missing)
    ns["relative_position_bucket"] = _stand_in(tables)
    try:
        return module(Lq, Lk)
    finally:
        if own is missing:
            del ns["relative_position_bucket"]
        else:
            ns["relative_position_bucket"] = own


def span_layouts(ns: dict, tokens: torch.Tensor, noise_density: float, mean_span_length: float,
                 sentinel_ids: list, draws: int, seed: int) -> dict:
    """``{"inputs": (draws, len_in), "targets": (draws, len_out)}``: ``draws`` calls of the
    learner's ``span_corrupt`` sharing one generator seeded with ``seed`` (every call of a
    correct implementation returns the same two lengths)."""
    corrupt = lookup(ns, "span_corrupt")
    generator = torch.Generator().manual_seed(seed)
    inputs, targets = [], []
    for _ in range(draws):
        out = corrupt(tokens, noise_density, mean_span_length, sentinel_ids, generator=generator)
        if not (isinstance(out, tuple) and len(out) == 2
                and all(isinstance(t, torch.Tensor) and t.dim() == 1 for t in out)):
            raise ProbeError("span_corrupt should return a pair (inputs, targets) of 1-D tensors")
        inputs.append(out[0])
        targets.append(out[1])
    if len({len(t) for t in inputs}) != 1 or len({len(t) for t in targets}) != 1:
        raise ProbeError("span_corrupt returned inputs (or targets) of different lengths for the "
                         "same tokens and settings; their lengths depend only on L, "
                         "noise_density and mean_span_length")
    return {"inputs": torch.stack(inputs), "targets": torch.stack(targets)}
