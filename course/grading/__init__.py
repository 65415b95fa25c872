"""The grading engine: one set of checks per unit, four front ends.

Layers, bottom up:

- the check vocabulary, :mod:`course.grading.dsl` (probes in :mod:`~course.grading.spec`,
  tolerances and comparison in :mod:`~course.grading.compare`, the ``Grader`` a check talks
  to in :mod:`~course.grading.grader`, forbidden calls in :mod:`~course.grading.forbidden`);
- running a probe on an implementation, :mod:`~course.grading.probes` (with grader-owned
  :mod:`~course.grading.drivers` and :mod:`~course.grading.fixtures`);
- where learner code runs: in this process (:mod:`~course.isolation.inprocess`) or isolated
  (:mod:`~course.isolation.runner`, :mod:`~course.isolation.child`, :mod:`~course.isolation.zygote`,
  :mod:`~course.isolation.confine`, :mod:`~course.isolation.integrity`);
- :mod:`~course.grading.engine`, which runs a unit's checks and collects the results.

Importing this package imports none of them; the names check files use are re-exported
lazily here for older check files, but new ones import from :mod:`course.grading.dsl`.
"""

from __future__ import annotations

import importlib
from typing import Any

_DSL = ("AUTOGRAD_CALLS", "AUTOGRAD_ENGINE", "Call", "CheckFailure", "Device", "Fixture",
        "Forbid", "Gen", "Grader", "Inspect", "Make", "Mistake", "Tolerance", "check")

__all__ = list(_DSL)


def __getattr__(name: str) -> Any:
    if name in _DSL:
        return getattr(importlib.import_module("course.grading.dsl"), name)
    raise AttributeError(f"module 'course.grading' has no attribute {name!r}")
