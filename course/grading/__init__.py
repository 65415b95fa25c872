"""The grading engine: one set of checks per unit, four front ends.

Check files (``autograder/<part>/test_<slug>.py``) import their vocabulary from here::

    from course.grading import Call, Forbid, Make, Mistake, Tolerance, check

and :func:`course.grading.engine.grade` runs them against a submission in isolation.
"""

from course.grading.checks import check
from course.grading.compare import Tolerance
from course.grading.forbidden import AUTOGRAD_CALLS, AUTOGRAD_ENGINE, Forbid
from course.grading.grader import CheckFailure, Grader, Mistake
from course.grading.spec import Call, Device, Fixture, Gen, Inspect, Make

__all__ = [
    "AUTOGRAD_CALLS",
    "AUTOGRAD_ENGINE",
    "Call",
    "CheckFailure",
    "Device",
    "Fixture",
    "Forbid",
    "Gen",
    "Grader",
    "Inspect",
    "Make",
    "Mistake",
    "Tolerance",
    "check",
]
