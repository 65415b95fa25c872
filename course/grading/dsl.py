"""The vocabulary check files are written in, in one leaf module::

    from course.grading.dsl import Call, Forbid, Make, Mistake, Tolerance, check

Probes (:class:`Call`, :class:`Make`, :class:`Inspect`, :class:`Gen`, :class:`Fixture`,
:class:`Device`), the dtypes every check runs its cases in (:data:`FLOAT_DTYPES`, named in
feedback by :func:`dtype_word`), forbidden-call rules (:class:`Forbid`, the autograd lists),
the mistake bank (:class:`Mistake`), tolerances, and the ``@check`` decorator. Importing it
loads only what these need, not the runner, the sandbox or the front ends.
"""

from course.grading.checks import check
from course.grading.compare import Tolerance
from course.grading.forbidden import (
    ATTENTION_ATEN,
    ATTENTION_CALLS,
    AUTOGRAD_CALLS,
    AUTOGRAD_ENGINE,
    CROSS_ENTROPY_ATEN,
    CROSS_ENTROPY_CALLS,
    LOGISTIC_LOSS_ATEN,
    LOGISTIC_LOSS_CALLS,
    LSTM_ATEN,
    LSTM_CALLS,
    MOE_ATEN,
    MOE_CALLS,
    TRANSFORMER_LAYERS,
    Forbid,
)
from course.grading.grader import CheckFailure, Grader, Mistake
from course.grading.outcome import Outcome
from course.grading.spec import (
    FLOAT_DTYPES,
    Call,
    Device,
    Fixture,
    Gen,
    Group,
    Inspect,
    Make,
    dtype_word,
)

__all__ = [
    "ATTENTION_ATEN",
    "ATTENTION_CALLS",
    "TRANSFORMER_LAYERS",
    "AUTOGRAD_CALLS",
    "AUTOGRAD_ENGINE",
    "CROSS_ENTROPY_ATEN",
    "CROSS_ENTROPY_CALLS",
    "LOGISTIC_LOSS_ATEN",
    "LOGISTIC_LOSS_CALLS",
    "LSTM_ATEN",
    "LSTM_CALLS",
    "MOE_ATEN",
    "MOE_CALLS",
    "FLOAT_DTYPES",
    "Call",
    "CheckFailure",
    "Device",
    "Fixture",
    "Forbid",
    "Gen",
    "Grader",
    "Group",
    "Inspect",
    "Make",
    "Mistake",
    "Outcome",

    "Tolerance",
    "check",
    "dtype_word",
]
