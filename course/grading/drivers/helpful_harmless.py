"""Drivers for unit 4.11 `helpful-harmless`.

- :func:`kl_errors` calls the learner's ``best_of_n_kl`` on numbers of samples it must reject
  and reports, for each, the name of the exception raised (or that it returned), so that the
  grader can compare that list with the reference's.

They run where learner code runs and return plain values, never verdicts.
"""

from __future__ import annotations

from course.grading.probes import lookup


def kl_errors(ns: dict, values: list) -> list:
    """``[<exception class name> or "returned <type>" for best_of_n_kl(n) in values]``."""
    fn = lookup(ns, "best_of_n_kl")
    found = []
    for n in values:
        try:
            value = fn(n)
        except Exception as exc:  # the learner's own exception: its class is the answer
            found.append(type(exc).__name__)
        else:
            found.append(f"returned a {type(value).__name__}")
    return found
