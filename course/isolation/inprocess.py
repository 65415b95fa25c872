"""Learner code in the current process: the notebook's in-kernel ``check()``, the test
cells of the nbgrader and otter exports, and benchmarks. Not a security boundary: use
:class:`course.isolation.runner.IsolatedRunner` for credit.

Kept apart from the isolated runner so that the in-kernel path imports nothing of the fork
server, the sandbox or the notebook reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from course.grading import encode as enc
from course.grading.forbidden import Forbid
from course.grading.probes import execute
from course.grading.spec import Probe


@dataclass
class LoadResult:
    ok: bool
    problems: list[str] = field(default_factory=list)
    output: str = ""
    fatal: str = ""  # set when nothing can be graded (the process died, timed out...)


class InProcessRunner:
    """Learner code in this process (the notebook kernel, or benchmarks). Not a security
    boundary: use :class:`IsolatedRunner` for credit."""

    isolation = "none"
    # no time budget in-kernel (the notebook's checks have their own time limits)
    budget_spent = False
    current_check = ""

    def __init__(self, namespace: dict, device: str, rules: list[Forbid]) -> None:
        self.ns = namespace
        self.device = torch.device(device)
        self.rules = list(rules)
        self._problems: list[str] = []

    @classmethod
    def from_cells(cls, cells, device: str, rules: list[Forbid]) -> InProcessRunner:
        from course.grading.submission import execute_cells

        ns, problems = execute_cells(cells, "_course_submission_inproc")
        runner = cls(ns, device, rules)
        runner._problems = problems
        return runner

    def load(self) -> LoadResult:
        return LoadResult(True, list(self._problems))

    def run(self, probe: Probe, timeout: float | None = None) -> dict:
        payload = execute(probe, self.ns, self.device, self.rules, deep=False)
        payload.setdefault("output", "")
        return enc.validate(payload)

    def close(self) -> None:
        pass
