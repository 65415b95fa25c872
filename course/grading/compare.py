"""Comparing a learner's payload with the reference's, and saying how they differ in words.

Order of questions, first difference wins: did the code run; is the structure (tuple, dict)
the same; then per tensor: shape, dtype, device (exactly), finiteness, and values within a
dtype-aware tolerance. Values are compared in float64 against the float64 reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from course.grading.encode import describe_encoded

# (rtol, atol) per learner dtype
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-7, 1e-9),
    torch.float32: (1e-4, 1e-5),
    torch.float16: (1e-2, 1e-3),
    torch.bfloat16: (2e-2, 1e-2),
}


@dataclass(frozen=True)
class Tolerance:
    rtol: float | None = None
    atol: float | None = None
    scale: float = 1.0  # multiplies the dtype defaults

    def for_dtype(self, dtype: torch.dtype) -> tuple[float, float]:
        rtol, atol = TOLERANCES.get(dtype, (0.0, 0.0))
        return (
            self.rtol if self.rtol is not None else rtol * self.scale,
            self.atol if self.atol is not None else atol * self.scale,
        )


@dataclass
class Difference:
    """How a learner's value differs from the reference's: ``where`` ("output", "output[1]",
    "gradient w.r.t. x"), ``message`` in words, and for a value difference the max absolute
    and relative errors and the first index outside tolerance."""

    where: str
    message: str
    max_abs: float | None = None
    max_rel: float | None = None
    index: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.index is not None:  # a list when read back from JSON
            self.index = tuple(self.index)


def is_encoded_tensor(v: Any) -> bool:
    """Whether ``v`` is an encoded tensor (a dict of kind "tensor")."""
    return isinstance(v, dict) and v.get("__kind__") == "tensor"


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    idx = []
    for size in reversed(shape):
        idx.append(flat % size)
        flat //= size
    return tuple(reversed(idx))


def _fmt_index(flat: int, shape: tuple[int, ...]) -> str:
    return str(_unravel(flat, shape)) if shape else "()"


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def fmt_pair(got: float, want: float) -> tuple[str, str]:
    """``got`` and ``want`` with enough significant digits (6 to 17) that two different values
    never print the same."""
    for digits in range(6, 18):
        a, b = f"{got:.{digits}g}", f"{want:.{digits}g}"
        if a != b or got == want:
            return a, b
    return repr(got), repr(want)


def got_expected(got: float, want: float) -> str:
    """"got 1.0000012, expected 1.0000003 (off by 9e-07)"."""
    a, b = fmt_pair(got, want)
    text = f"got {a}, expected {b}"
    if math.isfinite(got) and math.isfinite(want) and got != want:
        text += f" (off by {abs(got - want):.2g})"
    return text


def compare_tensor(
    got: dict, want: dict, want64: dict, where: str, tol: Tolerance, device: str | None,
    exact: bool = False,
) -> Difference | None:
    g, w, w64 = got["data"], want["data"], want64["data"]
    if tuple(g.shape) != tuple(w.shape):
        return Difference(
            where, f"{where} has shape {tuple(g.shape)}, expected {tuple(w.shape)}"
        )
    if g.dtype != w.dtype:
        return Difference(
            where,
            f"{where} has dtype {str(g.dtype).replace('torch.', '')}, expected "
            f"{str(w.dtype).replace('torch.', '')} (keep the input's dtype)",
        )
    if device is not None and got["device"] != device:
        return Difference(where, f"{where} is on {got['device']}, expected {device}")
    if g.dtype == torch.bool or not (g.is_floating_point() or g.is_complex()):
        if not torch.equal(g, w64.to(g.dtype)):
            mismatch = (g != w64.to(g.dtype)).nonzero()
            at = tuple(mismatch[0].tolist()) if len(mismatch) else ()
            return Difference(
                where,
                f"{where} differs at {int((g != w64.to(g.dtype)).sum())} of {g.numel()} "
                f"entries; first at index {at}: got {g[at].item()}, "
                f"expected {w64.to(g.dtype)[at].item()}",
                index=at,
            )
        return None
    gd, wd = g.double(), w64.double()
    finite_w = torch.isfinite(wd)
    bad = ~torch.isfinite(gd) & finite_w
    if bad.any():
        first = int(bad.flatten().nonzero()[0])
        kind = "NaN" if math.isnan(gd.flatten()[first].item()) else "inf"
        return Difference(
            where,
            f"{where} holds {int(bad.sum())} non-finite values ({kind} at index "
            f"{_fmt_index(first, tuple(g.shape))}) where the reference is finite",
            index=_unravel(first, tuple(g.shape)),
        )
    rtol, atol = (0.0, 0.0) if exact else tol.for_dtype(g.dtype)
    same_special = (gd == wd) | (torch.isnan(gd) & torch.isnan(wd))
    err = torch.where(finite_w, (gd - wd).abs(), torch.where(same_special, 0.0, math.inf))
    allowed = torch.where(finite_w, atol + rtol * wd.abs(), torch.zeros_like(wd))
    over = err > allowed
    if not over.any():
        return None
    max_abs = float(err.max()) if err.numel() else 0.0
    rel = err / wd.abs().clamp_min(1e-12)
    max_rel = float(rel.max()) if rel.numel() else 0.0
    first = int(over.flatten().nonzero()[0])
    return Difference(
        where,
        f"{where} differs: {int(over.sum())} of {g.numel()} values outside tolerance "
        f"(rtol {rtol:g}, atol {atol:g}); max abs error {_fmt(max_abs)}, max rel error "
        f"{_fmt(max_rel)}; first at index {_fmt_index(first, tuple(g.shape))}: "
        f"{got_expected(gd.flatten()[first].item(), wd.flatten()[first].item())}",
        max_abs,
        max_rel,
        _unravel(first, tuple(g.shape)),
    )


def compare_values(
    got: Any, want: Any, want64: Any, where: str, tol: Tolerance, device: str | None,
    exact=False,
) -> Difference | None:
    """First difference between encoded values ``got`` and ``want`` (None when equal)."""
    if is_encoded_tensor(want):
        if not is_encoded_tensor(got):
            return Difference(where, f"{where} is {describe_encoded(got)}, expected a tensor")
        return compare_tensor(got, want, want64, where, tol, device, exact)
    if isinstance(want, dict) and want.get("__kind__") in ("tuple", "list"):
        kind = want["__kind__"]
        n = len(want["items"])
        if not (isinstance(got, dict) and got.get("__kind__") in ("tuple", "list")):
            return Difference(
                where, f"{where} is {describe_encoded(got)}, expected a {kind} of {n}"
            )
        if len(got["items"]) != n:
            return Difference(
                where, f"{where} is a {got['__kind__']} of {len(got['items'])}, expected {n} items"
            )
        for i, (g, w, w64) in enumerate(zip(got["items"], want["items"], want64["items"])):
            diff = compare_values(g, w, w64, f"{where}[{i}]", tol, device, exact)
            if diff:
                return diff
        return None
    if isinstance(want, dict) and want.get("__kind__") == "dict":
        if not (isinstance(got, dict) and got.get("__kind__") == "dict"):
            return Difference(where, f"{where} is {describe_encoded(got)}, expected a dict")
        missing = sorted(set(want["items"]) - set(got["items"]))
        extra = sorted(set(got["items"]) - set(want["items"]))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {missing}")
            if extra:
                parts.append(f"unexpected {extra}")
            return Difference(where, f"{where} keys differ: " + "; ".join(parts))
        for k in want["items"]:
            diff = compare_values(
                got["items"][k], want["items"][k], want64["items"][k], f"{where}[{k!r}]", tol,
                device, exact,
            )
            if diff:
                return diff
        return None
    if isinstance(want, dict) and want.get("__kind__") in ("dtype", "device"):
        if got != want:
            return Difference(where, f"{where} is {describe_encoded(got)}, expected {want['name']}")
        return None
    if isinstance(want, float) and not isinstance(want, bool):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return Difference(where, f"{where} is {describe_encoded(got)}, expected a number")
        rtol, atol = tol.for_dtype(torch.float64) if exact else tol.for_dtype(torch.float32)
        if not math.isclose(float(got), float(want64), rel_tol=rtol, abs_tol=atol):
            return Difference(where, f"{where}: {got_expected(float(got), float(want64))}")
        return None
    if type(got) is not type(want) or got != want:
        return Difference(where, f"{where} is {describe_encoded(got)}, expected {want!r}")
    return None
