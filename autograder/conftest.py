"""The pytest front end of the checks.

    pytest autograder/optimization/test_layer_norm.py --submission my_notebook.ipynb

grades a submission with the same checks, probes and isolation as ``course check`` (one
isolated child per check module). Without ``--submission`` the unit's master solution is
graded, which is how authors try a check while writing it.
"""

from __future__ import annotations

import pytest

from course.catalogue import find
from course.grading.engine import resolve_device, unit_context
from course.grading.grader import Grader
from course.grading.submission import read_submission
from course.isolation.runner import IsolatedRunner, Limits


def pytest_addoption(parser):
    group = parser.getgroup("course")
    group.addoption("--submission", default=None, help="notebook or .py file to grade")
    group.addoption("--device", default="cpu", help="auto, cpu, cuda or mps")


@pytest.fixture(scope="module")
def _course_runner(request):
    unit = find(request.module.UNIT)
    path = request.config.getoption("--submission") or unit.solution_path
    device = resolve_device(request.config.getoption("--device"))
    from course.grading.checks import load_checks

    runner = IsolatedRunner(read_submission(path).cells, device, load_checks(unit).forbidden,
                            Limits.from_env())
    yield unit, runner, device
    runner.close()


@pytest.fixture
def grader(request, _course_runner):
    unit, runner, device = _course_runner
    return Grader(unit_context(unit, device), runner, request.node.name.removeprefix("test_"))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "check(id, task, public, points): a graded check of the course; select "
                   "with -m \"check(task='layer_norm')\" or -m \"check(public=True)\"")


def pytest_collection_modifyitems(items):
    """Each check carries a ``check`` marker with its id, task, public flag and points."""
    for item in items:
        info = getattr(getattr(item, "function", None), "__course_check__", None)
        if info is not None:
            item.add_marker(pytest.mark.check(id=info.id, task=info.task or "",
                                              public=info.public, points=info.points))
