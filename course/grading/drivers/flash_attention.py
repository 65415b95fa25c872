"""Drivers for unit 6.2 `flash-attention`.

The point of the unit is what ``flash_attention`` does *not* allocate, which a plain probe
cannot see, so the memory check goes through :func:`allocations`: it calls the learner's
``flash_attention(q, k, v, block_q, block_k, causal)`` under a
:class:`~torch.utils._python_dispatch.TorchDispatchMode` that looks at every ATen operation
the call runs (below autograd, so factory functions such as ``torch.ones`` and every
intermediate are seen) and notes each result that is a newly allocated tensor: a return
without alias annotation in the operator's schema. Views and in-place results (``slice``,
``transpose``, ``view``, ``expand``, ``add_``, ``out=`` …) alias an existing tensor and are not
counted. It reports the output and the largest new tensor (elements, shape, dtype, operator);
the check compares the element count with its stated bound.

Drivers run where learner code runs and return plain data, never verdicts.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from course.grading.probes import ProbeError, lookup


class AllocationRecorder(TorchDispatchMode):
    """Record the largest newly allocated tensor (by number of elements) among the results of
    the ATen operations run while the mode is active; views and in-place results are skipped.
    ``count`` is how many new tensors were seen."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0
        self.shape: list[int] = []
        self.dtype = ""
        self.op = ""
        self.count = 0

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # False: torch then leaves ``__torch_dispatch__`` undecorated; its default wraps it in
        # ``torch._disable_dynamo``, whose first call imports torch._dynamo (seconds per
        # grading process) for nothing, since nothing here is compiled.
        return False

    def _note(self, func: Any, t: torch.Tensor) -> None:
        self.count += 1
        n = t.numel()
        if n > self.largest:
            self.largest, self.shape = n, [int(s) for s in t.shape]
            self.dtype, self.op = str(t.dtype).replace("torch.", ""), str(func)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        returns = func._schema.returns
        results = out if isinstance(out, (tuple, list)) and len(returns) > 1 else (out,)
        for ret, value in zip(returns, results):
            if ret.alias_info is not None:  # a view or an in-place / out= result
                continue
            items = value if isinstance(value, (tuple, list)) else (value,)
            for t in items:
                if isinstance(t, torch.Tensor):
                    self._note(func, t)
        return out


def allocations(ns: dict, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                block_q: int, block_k: int, causal: bool) -> dict:
    """``flash_attention(q, k, v, block_q=…, block_k=…, causal=…)`` under the recorder: the
    output and the largest tensor allocated during the call (elements, shape, dtype, op)."""
    fn = lookup(ns, "flash_attention")
    recorder = AllocationRecorder()
    with recorder:
        out = fn(q, k, v, block_q=block_q, block_k=block_k, causal=causal)
    if not isinstance(out, torch.Tensor):
        raise ProbeError("flash_attention(q, k, v, ...) should return a tensor")
    return {
        "output": out,
        "largest new tensor (elements)": recorder.largest,
        "largest new tensor shape": recorder.shape,
        "largest new tensor dtype": recorder.dtype,
        "largest new tensor op": recorder.op,
        "new tensors": recorder.count,
    }
