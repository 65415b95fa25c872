"""Grading one unit against one submission: load the unit's checks, run each against the
learner's runner, collect scores and feedback. Front ends (CLI, notebook, pytest, batch) all
come through :func:`grade_runner`."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from course.catalogue import Unit
from course.grading import refcache
from course.grading.checks import load_checks, mistake_implementation, reference
from course.grading.compare import Difference
from course.grading.deferred_dynamo import defer_optimizers
from course.grading.grader import CheckFailure, Grader, GraderError, UnitContext
from course.grading.submission import Submission, SubmissionError, read_submission

if TYPE_CHECKING:
    from course.isolation.runner import Limits

INTERNAL_ERROR = "Internal grader error (not your fault): "


@dataclass
class CheckResult:
    """One check's result as data; ``course.report`` words it (``output``).

    ``message`` is the problem found (or, for ``error``, what went wrong in the grader, for
    ``fatal`` and not-run checks the reason), ``case`` the case it occurred in, ``difference``
    how an output differed when a comparison found it, ``mistake`` and ``hint`` the matched
    bank entry, ``cases`` the cases that passed, in order."""

    id: str
    title: str
    max_score: float
    score: float
    status: str  # "passed" | "failed" | "error"
    public: bool
    message: str = ""
    case: str | None = None
    difference: Difference | None = None
    mistake: str | None = None
    hint: str | None = None
    seconds: float = 0.0
    cases: list[str] = field(default_factory=list)
    ran: bool = True  # False: not run (the submission's time budget was spent before it)

    @property
    def output(self) -> str:
        """The feedback in words (terminal, notebook, Gradescope and nbgrader alike)."""
        from course.report import check_output

        return check_output(self)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["output"] = self.output
        return data

    @classmethod
    def from_dict(cls, data: dict) -> CheckResult:
        """Read :meth:`to_dict`'s record (or a record written before checks kept their
        fields, whose ``output`` becomes the message)."""
        fields = {k: v for k, v in data.items() if k in CHECK_FIELDS}
        if data.get("difference"):
            fields["difference"] = Difference(**data["difference"])
        if "message" not in data and data.get("status") != "passed":
            fields["message"] = data.get("output", "").removeprefix(INTERNAL_ERROR)
        return cls(**fields)


@dataclass
class UnitResult:
    unit: str
    number: str
    title: str
    device: str
    isolation: str
    submission: str | None
    checks: list[CheckResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fatal: str = ""
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(c.score for c in self.checks)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.checks)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.status == "passed" for c in self.checks)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["checks"] = [c.to_dict() for c in self.checks]
        data.update(score=self.score, max_score=self.max_score)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> UnitResult:
        fields = {k: v for k, v in data.items() if k not in ("score", "max_score", "checks")}
        return cls(**fields, checks=[CheckResult.from_dict(c) for c in data.get("checks", [])])


def resolve_device(device: str) -> str:
    """``auto`` picks cuda, then mps, then cpu; an unavailable explicit device is an error."""
    device = device.lower()
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available here")
    if device == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ValueError("--device mps: no Apple MPS device is available here")
    if device not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or mps")
    return device


def unit_context(unit: Unit, device: str) -> UnitContext:
    checks = load_checks(unit)
    mistakes = [(m, partial(mistake_implementation, unit, m)) for m in checks.mistakes]
    return UnitContext(unit.slug, reference(unit), mistakes, device)


def grade_runner(
    unit: Unit,
    runner,
    device: str,
    public_only: bool = False,
    tasks: tuple[str, ...] = (),
    submission: str | None = None,
    ids: tuple[str, ...] = (),
) -> UnitResult:
    """Run the unit's checks (optionally only public ones, those of ``tasks``, or those whose
    id is in ``ids``)."""
    started = time.perf_counter()
    # an optimizer built here (a reference, or learner code run in this process: the in-kernel
    # check) does not import torch._dynamo for nothing, as in the isolated children
    defer_optimizers()
    checks = load_checks(unit)
    ctx = unit_context(unit, device)
    result = UnitResult(unit.slug, unit.number, unit.title, device, runner.isolation, submission)
    prev_tf32 = torch.backends.cuda.matmul.allow_tf32
    prev_threads = torch.get_num_threads()
    torch.backends.cuda.matmul.allow_tf32 = False
    # References are small float64 computations; one thread, like the learner's child, keeps
    # a grader and its child from fighting over the cores (and batch workers from each other).
    torch.set_num_threads(1)
    try:
        loaded = runner.load()
        result.notes.extend(loaded.problems)
        if loaded.fatal:
            result.fatal = loaded.fatal
        for info, fn in checks.checks:
            if public_only and not info.public:
                continue
            if tasks and info.task not in tasks:
                continue
            if ids and info.id not in ids:
                continue
            runner.current_check = info.title
            result.checks.append(_run_one(info, fn, ctx, runner, loaded.fatal))
        not_run = [c.title for c in result.checks if not c.ran]
        if not_run:
            result.notes.append(runner.budget_note(not_run))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev_tf32
        torch.set_num_threads(prev_threads)
        refcache.save()
    result.seconds = time.perf_counter() - started
    return result


def _run_one(info, fn, ctx, runner, fatal: str) -> CheckResult:
    started = time.perf_counter()
    grader = Grader(ctx, runner, info.id)
    status, ran = "passed", True
    found: dict = {}
    if fatal:
        status, found["message"] = "failed", fatal
    elif runner.budget_spent:
        status, found["message"], ran = "failed", runner.budget_message(), False
    else:
        try:
            fn(grader)
        except CheckFailure as exc:
            status = "failed"
            found = dict(message=exc.message, case=exc.case, difference=exc.difference,
                         mistake=exc.mistake, hint=exc.hint)
            grader.cases[:] = exc.passed_before
        except GraderError as exc:
            status, found["message"] = "error", str(exc)
        except Exception as exc:  # a bug in a check must not take the run down
            status, found["message"] = "error", f"{type(exc).__name__}: {exc}"
    return CheckResult(
        id=info.id,
        title=info.title,
        max_score=info.points,
        score=info.points if status == "passed" else 0.0,
        status=status,
        public=info.public,
        seconds=time.perf_counter() - started,
        cases=list(grader.cases),
        ran=ran,
        **found,
    )


def grade_submission(
    unit: Unit,
    submission: str | Path | Submission,
    device: str = "auto",
    isolation: str = "process",
    limits: Limits | None = None,
    public_only: bool = False,
    budget: float | None = None,
) -> UnitResult:
    """Grade a notebook or .py file. Raises SubmissionError when it cannot be read at all."""
    from course.isolation.inprocess import InProcessRunner
    from course.isolation.runner import IsolatedRunner, Limits

    device = resolve_device(device)
    sub = submission if isinstance(submission, Submission) else read_submission(submission)
    checks = load_checks(unit)
    label = str(sub.path) if sub.path else None
    runner: InProcessRunner | IsolatedRunner
    if isolation == "none":
        runner = InProcessRunner.from_cells(sub.cells, device, checks.forbidden)
    else:
        limits = limits or Limits.from_env()
        if budget is not None:
            limits = replace(limits, budget_seconds=budget)
        runner = IsolatedRunner(sub.cells, device, checks.forbidden, limits)
    try:
        result = grade_runner(unit, runner, device, public_only=public_only, submission=label)
    finally:
        runner.close()
    result.notes[:0] = sub.notes
    return result


CHECK_FIELDS = {f for f in CheckResult.__dataclass_fields__}

__all__ = [
    "CheckResult",
    "SubmissionError",
    "UnitResult",
    "grade_runner",
    "grade_submission",
    "resolve_device",
]
