"""Several units graded at once (course check A B --workers 2): the same scores as one by one,
and one unit's unreadable submission costs that unit only."""

from __future__ import annotations

import sys
from multiprocessing import spawn
from pathlib import Path

import pytest

from course.catalogue import find
from course.many import UnitJob, grade_units, parallel


def _scores(jobs: list[UnitJob], workers: int) -> list[tuple[str, str, object]]:
    out = []
    for job, kind, value in grade_units(jobs, "cpu", workers=workers):
        out.append((job.unit.slug, kind, value.score if kind == "result" else value))
    return out


@pytest.fixture
def plain_spawn():
    """Workers started by this Python, as in a fresh `course check` (the suite's own fork
    server set multiprocessing's start executable to the sandbox wrapper)."""
    previous = spawn.get_executable()
    spawn.set_executable(sys.executable)
    yield
    spawn.set_executable(previous)


def test_parallel_grades_as_one_by_one(tmp_path: Path, plain_spawn) -> None:
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ not a notebook", encoding="utf-8")
    jobs = [UnitJob(find("conv"), find("conv").solution_path),
            UnitJob(find("relu"), broken),
            UnitJob(find("gelu"), find("gelu").solution_path)]
    assert parallel(len(jobs), 2)
    together, alone = _scores(jobs, 2), _scores(jobs, 1)
    assert [(slug, kind) for slug, kind, _ in together] == [
        ("conv", "result"), ("relu", "unreadable"), ("gelu", "result")]
    assert together[0][2] == alone[0][2] > 0 and together[2][2] == alone[2][2] > 0
    assert together[1] == alone[1]


def test_not_parallel_without_isolation_or_with_one_unit() -> None:
    assert not parallel(5, 2, isolation="none")
    assert not parallel(1, 2)
    assert not parallel(5, 1)
