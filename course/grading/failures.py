"""The one vocabulary of failures that the child, the runners, the probes and the grader share.

A payload that did not succeed carries ``error = {"type", "message", "where"}``. When learner
code raised, ``type`` is the exception's class name (``ValueError``) and the grader words it as
"your code raised ValueError: …". Every other failure is one of the :class:`Failure` kinds,
whose values cannot be mistaken for a class name a learner might define, and whose message is
already in words for the learner.
"""

from __future__ import annotations

from enum import Enum


class Failure(str, Enum):
    PROBE = "grader:probe"  # the probe could not be set up (a name is missing, weights refused)
    ENCODE = "grader:encode"  # the returned value cannot be graded (a tensor subclass, …)
    CRASH = "grader:crash"  # the process running the code died or hung during this probe
    FATAL = "grader:fatal"  # the code could not be loaded at all: nothing can be graded
    TAMPERED = "grader:tampered"  # the code modified the grader's own code in its process
    PROTOCOL = "grader:protocol"  # the child got a request it does not know (a grader bug)
    BUDGET = "grader:budget"  # the submission's time budget is spent: not run
    TIMED_OUT_BEFORE = "grader:timed-out-before"  # this function already hung once: not run
    INPUT_MODIFIED = "grader:input-modified"  # the code changed a tensor it was given
    COLLECTIVE = "grader:collective"  # the ranks of a process group made different collectives

    @classmethod
    def of(cls, error: dict | None) -> Failure | None:
        """The kind of an error record, or None when it is the learner's own exception."""
        try:
            return cls((error or {}).get("type"))
        except ValueError:
            return None


def error(kind: Failure, message: str, where: str = "") -> dict:
    """An error record of ``kind`` (plain data, as payloads carry it)."""
    return {"type": kind.value, "message": message, "where": where}


NOT_RUN = (Failure.BUDGET, Failure.TIMED_OUT_BEFORE)
