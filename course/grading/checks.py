"""Declaring checks, and loading a unit's check module, reference and mistake bank."""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from course.catalogue import Unit
from course.grading.forbidden import Forbid
from course.grading.grader import Implementation, Mistake


@dataclass(frozen=True)
class CheckInfo:
    id: str
    title: str
    points: float
    public: bool
    task: str | None
    line: int


def check(points: float = 1.0, public: bool = False, task: str | None = None):
    """Mark a function ``test_<id>(grader)`` as a graded check worth ``points``.

    ``public`` checks also run in the notebook's in-kernel ``check()``; ``task`` names the
    exercise function or class the check is about (``check("layer_norm")`` runs those).
    The first docstring line is the title shown to learners.
    """

    def mark(fn: Callable) -> Callable:
        doc = (fn.__doc__ or fn.__name__).strip().splitlines()[0]
        fn.__course_check__ = CheckInfo(  # type: ignore[attr-defined]
            id=fn.__name__.removeprefix("test_"),
            title=doc,
            points=float(points),
            public=public,
            task=task,
            line=fn.__code__.co_firstlineno,
        )
        return fn

    return mark


@dataclass
class UnitChecks:
    unit: Unit
    module: types.ModuleType
    checks: list[tuple[CheckInfo, Callable]]
    forbidden: list[Forbid]
    mistakes: list[Mistake]

    @property
    def max_score(self) -> float:
        return sum(info.points for info, _ in self.checks)


def _import_file(name: str, path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@cache
def load_checks(unit: Unit) -> UnitChecks:
    module = _import_file(f"autograder.{unit.part.package}.test_{unit.module}", unit.checks_path)
    found: list[tuple[CheckInfo, Callable]] = [
        (fn.__course_check__, fn)
        for _, fn in inspect.getmembers(module, inspect.isfunction)
        if hasattr(fn, "__course_check__")
    ]
    found.sort(key=lambda pair: pair[0].line)
    return UnitChecks(
        unit=unit,
        module=module,
        checks=found,
        forbidden=list(getattr(module, "FORBIDDEN", [])),
        mistakes=list(getattr(module, "MISTAKES", [])),
    )


def master_source(unit: Unit) -> str:
    return unit.solution_path.read_text(encoding="utf-8")


def _exec_source(source: str, name: str, filename: str) -> dict:
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module
    exec(compile(source, filename, "exec"), module.__dict__)
    return module.__dict__


def _cache_key(unit: Unit, name: str, source: str) -> tuple[str, str]:
    from course.grading import refcache

    checks_source = unit.checks_path.read_text(encoding="utf-8")
    return unit.slug, refcache.implementation_key(unit.slug, name, source, checks_source)


@cache
def reference(unit: Unit) -> Implementation:
    """The master solution, executed in the grader's process."""
    source = master_source(unit)
    ns = _exec_source(source, f"_course_reference_{unit.module}", str(unit.solution_path))
    return Implementation("reference", ns, _cache_key(unit, "reference", source))


@cache
def mistake_implementation(unit: Unit, mistake: Mistake) -> Implementation:
    source = mistake.apply(master_source(unit))
    name = f"_course_mistake_{unit.module}_{mistake.id.replace('-', '_')}"
    ns = _exec_source(source, name, f"<mistake {mistake.id}>")
    return Implementation(mistake.id, ns, _cache_key(unit, mistake.id, source))
