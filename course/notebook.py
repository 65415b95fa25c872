"""The exercise notebook's ``check()``: public checks, in the learner's own kernel.

This is the fast, friendly loop for learning (well under a second): learner code runs in the
kernel, the reference in float64 beside it. It is not a security boundary: for credit,
``course check`` / ``course grade`` grade the saved notebook in an isolated process.
"""

from __future__ import annotations

import sys

from course import catalogue


class CheckReport:
    """What ``check()`` returns: shows itself as HTML in Jupyter and as text elsewhere."""

    def __init__(self, result, tasks: tuple[str, ...] = (),
                 public_total: int | None = None) -> None:
        self.result = result
        self.tasks = tasks
        self.public_total = public_total

    @property
    def passed(self) -> bool:
        return self.result.passed

    def _repr_html_(self) -> str:
        from course.report import to_html

        return to_html(self.result, self.tasks, self.public_total)

    def __repr__(self) -> str:
        from course.report import to_text

        return to_text(self.result, self.tasks, self.public_total)


class Checker:
    """``check = Checker("layer-norm")``; then ``check("layer_norm")`` or ``check()``."""

    def __init__(self, unit: str, device: str = "cpu") -> None:
        self.unit = catalogue.find(unit)
        self.device = device

    def __call__(self, *tasks: str, namespace: dict | None = None) -> CheckReport:
        from course.grading.checks import load_checks
        from course.grading.engine import grade_runner, resolve_device
        from course.isolation.inprocess import InProcessRunner

        if not self.unit.solution_path.exists() or not self.unit.checks_path.exists():
            raise RuntimeError(
                "the public checks need the course repository (solutions/ and autograder/); "
                "in a class, your instructor's grader checks your work instead"
            )
        ns = namespace if namespace is not None else sys._getframe(1).f_globals
        device = resolve_device(self.device)
        checks = load_checks(self.unit)
        runner = InProcessRunner(ns, device, checks.forbidden)
        result = grade_runner(self.unit, runner, device, public_only=True, tasks=tasks)
        public_total = sum(info.public for info, _ in checks.checks)
        return CheckReport(result, tuple(tasks), public_total)
