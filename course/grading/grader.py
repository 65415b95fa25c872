"""The grader a check talks to: it builds seeded inputs, runs a probe on the reference and on
the learner's code, compares, and on a mismatch looks the learner's output up in the unit's
mistake bank to give a specific hint."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from course.grading.compare import Difference, Tolerance, compare_values, is_encoded_tensor
from course.grading.failures import Failure
from course.grading.outcome import Outcome
from course.grading.probes import execute
from course.grading.spec import (
    Make,
    Probe,
    in_float64,
    map_tensors,
    places_on_device,
    to_float64,
)

# failures a banked mistake can reproduce word for word, so that its hint applies
DIAGNOSABLE = (Failure.INPUT_MODIFIED, Failure.COLLECTIVE)

DTYPE_WORDS = ("float16", "bfloat16", "float32", "float64", "complex64", "complex128")


def probe_dtypes(probe: Probe) -> list[str]:
    """The floating dtypes of a probe's tensors and built modules, as words, sorted."""
    found: set[str] = set()

    def note(t: torch.Tensor) -> torch.Tensor:
        if t.is_floating_point() or t.is_complex():
            found.add(str(t.dtype).replace("torch.", ""))
        return t

    def note_make(make: Make) -> Make:
        if make.dtype is not None:
            found.add(str(make.dtype).replace("torch.", ""))
        return make

    map_tensors(probe, note, note_make)
    return sorted(found)


def case_label(case: str | None, probe: Probe) -> str:
    """The words that name a case: the check's own label (or the probe's description), with
    the dtype added when the label does not already say it, so that cases differing only in
    dtype never read the same."""
    label = case or probe.describe()
    if any(word in label for word in DTYPE_WORDS):
        return label
    dtypes = probe_dtypes(probe)
    return f"{label}, {'/'.join(dtypes)}" if dtypes else label


def _detached_outputs(want: dict, got: dict) -> str:
    """Words for the floating outputs the reference keeps differentiable and the learner's
    code detached ("" when there are none); the gradient probes back-propagate through all
    of them, so such an output is why the gradients differ."""
    want_flags, got_flags = want.get("differentiable"), got.get("differentiable")
    if not want_flags or got_flags is None or len(got_flags) != len(want_flags):
        return ""
    lost = [i for i, (w, g) in enumerate(zip(want_flags, got_flags)) if w and not g]
    if not lost or len(lost) == len(want_flags):
        return ""  # nothing detached, or everything: the per-input message says it better
    which = " and ".join(f"number {i + 1}" for i in lost)
    return (f"of the {len(want_flags)} tensors your code returns, {which} "
            f"{'is' if len(lost) == 1 else 'are'} detached from the inputs (no autograd "
            "history). The gradient check back-propagates through every returned tensor, so "
            "each must stay differentiable: no .detach(), .data, torch.no_grad() or numpy on "
            "its way.")


def _leaked_gradient(have: dict | None, tol: Tolerance) -> str:
    """Words for a gradient the learner's output sends to an input the reference's output
    does not depend on through autograd (a stop-gradient the reference keeps): "" when there
    is none, or when it is zero within the dtype's tolerance (the same function, written so
    that autograd sees the input)."""
    if have is None or not is_encoded_tensor(have):
        return ""
    data = have["data"]
    if not data.is_floating_point():
        return ""
    _, atol = tol.for_dtype(data.dtype)
    nonzero = ~(data.double().abs() <= atol)  # NaN counts as non-zero
    if not nonzero.any():
        return ""
    return (f"should be none: the reference's output does not depend on it through autograd "
            f"(a stop-gradient, .detach()), but yours sends it {int(nonzero.sum())} non-zero "
            f"of {data.numel()} values")


NOT_IMPLEMENTED = "not implemented yet (your code raised NotImplementedError)"

class CheckFailure(AssertionError):
    """A check failed. It holds data, and ``course.report`` words it (``str()`` is that
    wording): ``message`` the problem, ``case`` the case it occurred in, ``difference`` how an
    output differed (when a comparison found it), ``mistake`` and ``hint`` the diagnosed bank
    entry, ``passed_before`` the cases that passed earlier in the same check."""

    def __init__(self, message: str, mistake: str | None = None, *, case: str | None = None,
                 difference: Difference | None = None, hint: str | None = None,
                 passed_before: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.mistake = mistake
        self.case = case
        self.difference = difference
        self.hint = hint
        self.passed_before = list(passed_before)

    def __str__(self) -> str:
        from course.report import failure_text

        return failure_text(self.message, self.case, self.hint, self.passed_before)


class GraderError(Exception):
    """The reference itself failed: a bug in the course, never the learner's fault."""


@dataclass(frozen=True)
class Mistake:
    """A known mistake: the master solution with ``replace`` applied (each ``old`` must occur
    in the master exactly ``count`` times), and the hint shown when a learner's output matches
    what this variant computes."""

    id: str
    hint: str
    replace: tuple[tuple[str, str], ...] | dict[str, str] = ()
    count: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.replace, dict):  # keep the dataclass hashable
            object.__setattr__(self, "replace", tuple(self.replace.items()))

    @property
    def edits(self) -> tuple[tuple[str, str], ...]:
        return self.replace  # type: ignore[return-value]

    def apply(self, source: str) -> str:
        for old, new in self.edits:
            found = source.count(old)
            if found != self.count:
                raise ValueError(
                    f"mistake {self.id!r}: {old!r} occurs {found} times in the master, "
                    f"expected {self.count}"
                )
            source = source.replace(old, new)
        return source


@dataclass
class Implementation:
    """A trusted implementation (reference or banked mistake) run in the grader's process.
    ``cache``: (unit slug, key) under which :mod:`course.grading.refcache` keeps its results
    (None: always computed)."""

    name: str
    namespace: dict
    cache: tuple[str, str] | None = None

    def run(self, probe: Probe) -> dict:
        def compute() -> dict:
            return execute(probe, self.namespace, torch.device("cpu"), [])

        if self.cache is None:
            return compute()
        from course.grading import refcache

        return refcache.run(self.cache[0], self.name, self.cache[1], probe, compute)


@dataclass
class UnitContext:
    """What a check needs besides the learner: the reference, the mistake bank, the device."""

    slug: str
    reference: Implementation
    mistakes: Sequence[tuple[Mistake, Callable[[], Implementation]]]
    device: str


@dataclass
class Grader:
    ctx: UnitContext
    runner: Any  # IsolatedRunner | InProcessRunner
    check_id: str
    cases: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        seed = zlib.crc32(f"{self.ctx.slug}/{self.check_id}".encode())
        self.generator = torch.Generator().manual_seed(seed)

    # -- inputs ---------------------------------------------------------------------------
    @property
    def device(self) -> str:
        return torch.device(self.ctx.device).type

    def randn(self, *shape: int, dtype: torch.dtype = torch.float64, scale: float = 1.0):
        x = torch.randn(shape, generator=self.generator, dtype=torch.float64) * scale
        return x.to(dtype)

    def rand(self, *shape: int, dtype: torch.dtype = torch.float64):
        return torch.rand(shape, generator=self.generator, dtype=torch.float64).to(dtype)

    def randint(self, low: int, high: int, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randint(low, high, shape, generator=self.generator)

    def seed(self) -> int:
        return int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))

    # -- running --------------------------------------------------------------------------
    def reference(self, probe: Probe, float64: bool = True) -> Outcome:
        """The reference's outcome on ``probe`` (by default with its inputs in float64)."""
        return Outcome(self._reference(probe, float64))

    def _reference(self, probe: Probe, float64: bool = True) -> dict:
        payload = self.ctx.reference.run(to_float64(probe) if float64 else probe)
        if not payload["ok"]:
            err = payload["error"]
            raise GraderError(f"the reference failed on {probe.describe()}: {err}")
        return payload

    def learner(self, probe: Probe, case: str | None = None) -> Outcome:
        """Run the probe on the learner's code; fail the check if it raised or cheated."""
        return Outcome(self._learner(probe, case_label(case, probe)))

    def _learner(self, probe: Probe, case: str) -> dict:
        payload = self.runner.run(probe)
        forbidden = payload.get("forbidden") or []
        if forbidden:
            names = ", ".join(f"`{n}`" for n in forbidden)
            self.fail(f"your code called {names}, which this exercise forbids. "
                      "Implement it with elementary tensor operations.", case=case)
        if not payload.get("ok"):
            err = payload.get("error", {})
            where = f" ({err['where']})" if err.get("where") else ""
            kind = Failure.of(err)
            if kind is not None:  # the grader's own words
                mistake = self._diagnose_failure(probe, err) if kind in DIAGNOSABLE else None
                self.fail(err.get("message", ""), mistake=mistake, case=case)
            if err.get("type") == "NotImplementedError":
                self.fail(NOT_IMPLEMENTED, case=case)
            self.fail(f"your code raised {err.get('type')}: {err.get('message')}{where}",
                      case=case)
        return payload

    def compare(
        self,
        probe: Probe,
        case: str | None = None,
        tol: Tolerance | None = None,
        exact: bool = False,
    ) -> Outcome:
        """Run ``probe`` on both sides and fail with a diagnosis if the learner differs; the
        learner's outcome when it agrees."""
        tol = tol or Tolerance()
        case = case_label(case, probe)
        native = self._reference(probe, float64=False)
        # a probe already in float64 is its own float64 run: the reference runs once
        ref64 = native if in_float64(probe) else self._reference(probe, float64=True)
        got = self._learner(probe, case)
        device = self._expected_device(probe)
        diff = self._difference(got, native, ref64, tol, exact, device)
        if diff is not None:
            mistake = self._diagnose(probe, got, native, ref64, tol, exact, device)
            self.fail(diff.message, mistake=mistake, case=case, difference=diff)
        self.cases.append(case)
        return Outcome(got)

    def banked_mistake(self, probe: Probe, matches: Callable[[Outcome], bool]) -> Mistake | None:
        """The first banked mistake whose outcome on ``probe`` (the same draws the learner's
        code got) satisfies ``matches``: for checks that judge a property (statistics,
        grammaticality) rather than compare with the reference."""
        for mistake, load in self.ctx.mistakes:
            try:
                payload = load().run(probe)
            except Exception:
                continue
            if payload.get("ok"):
                try:
                    if matches(Outcome(payload)):
                        return mistake
                except Exception:
                    continue
        return None

    def _expected_device(self, probe: Probe) -> str:
        """Where the learner's tensors belong: on the graded device when the probe put its
        inputs there, else on the CPU (the reference always runs on the CPU, so it cannot
        say)."""
        return self.device if places_on_device(probe) else "cpu"

    def _difference(self, got, native, ref64, tol, exact,
                    device: str | None) -> Difference | None:
        """First difference of ``got`` from the reference; ``device`` is where got's tensors
        must be (None: not checked, for two trusted implementations run on the CPU)."""
        diff = compare_values(got["out"], native["out"], ref64["out"], "output", tol,
                              device, exact)
        if diff:
            return diff
        if "after" in native:
            diff = compare_values(got.get("after"), native["after"], ref64["after"],
                                  "after the call, input", tol, device, exact)
            if diff:
                return diff
        if "grads" not in native:
            return None
        want_grads = native["grads"]["items"]
        got_grads = (got.get("grads") or {}).get("items", {})
        detached = _detached_outputs(native["grads"], got.get("grads") or {})
        if detached:
            return Difference("gradients", detached)
        for name, want in want_grads.items():
            label = f"gradient w.r.t. {name}"
            have = got_grads.get(name)
            if want is None:
                leak = _leaked_gradient(have, tol)
                if leak:
                    return Difference(label, f"{label} {leak}")
                continue
            if have is None:
                return Difference(
                    label,
                    f"{label} is missing: your output does not depend on {name} through "
                    "autograd (detached, .data, .item() or numpy on the way?)",
                )
            diff = compare_values(have, want, ref64["grads"]["items"][name], label, tol,
                                  device, exact)
            if diff:
                return diff
        return None

    def _diagnose(self, probe, got, native, ref64, tol, exact, device) -> Mistake | None:
        for mistake, load in self.ctx.mistakes:
            try:
                impl = load()
                m_native = impl.run(probe)
                m64 = m_native if in_float64(probe) else impl.run(to_float64(probe))
            except Exception:
                continue
            if not (m_native.get("ok") and m64.get("ok")):
                continue
            if self._difference(m_native, native, ref64, tol, exact, None) is None:
                continue  # this mistake is invisible on this input: it explains nothing
            loose = Tolerance(scale=max(tol.scale, 1.0) * 10)
            if self._difference(got, m_native, m64, loose, exact, device) is None:
                return mistake
        return None

    def _diagnose_failure(self, probe: Probe, err: dict) -> Mistake | None:
        """The banked mistake that fails ``probe`` with the very same error, if one does (an
        input changed in place is an error, not an output to compare)."""
        for mistake, load in self.ctx.mistakes:
            try:
                got = load().run(probe)
            except Exception:
                continue
            if not got.get("ok") and got.get("error", {}).get("type") == err.get("type") and (
                got["error"].get("message") == err.get("message")
            ):
                return mistake
        return None

    def fail(self, message: str, mistake: Mistake | None = None, case: str | None = None,
             difference: Difference | None = None):
        """Fail the check: ``message`` says what is wrong, ``case`` (when given) names the
        case it is about, ``mistake`` the banked mistake it matches."""
        raise CheckFailure(message, mistake.id if mistake else None, case=case,
                           difference=difference, hint=mistake.hint if mistake else None,
                           passed_before=self.cases)

    def require(self, condition: bool, message: str) -> None:
        """Fail the check with ``message`` unless ``condition`` holds."""
        if not condition:
            self.fail(message)
