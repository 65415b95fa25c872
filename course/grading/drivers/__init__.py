"""Grader-owned routines that drive learner code through more than one call.

A probe ``Call("@adam.trajectory", args, kwargs)`` runs ``trajectory(ns, *args, **kwargs)``
from ``course/grading/drivers/adam.py`` with ``ns`` the implementation's namespace: e.g. build
the learner's optimizer, run 100 steps on a fixed problem and return every iterate. Drivers run
where learner code runs (the isolated child), so they return plain tensors for the grader to
compare, never verdicts. Drivers must not themselves call anything the unit forbids.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def resolve(target: str) -> Callable:
    """``"@module.function"`` -> the driver function."""
    module_name, _, function = target.lstrip("@").rpartition(".")
    if not module_name or not function:
        raise ValueError(f"driver target {target!r} must look like '@module.function'")
    module = importlib.import_module(f"course.grading.drivers.{module_name}")
    return getattr(module, function)
