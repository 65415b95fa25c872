"""Check steps shared by units whose learners rebuild a PyTorch recurrent cell with its exact
parameter layout (3.2 ``LSTMCell``, 3.6 ``GRUCell``): the layout compared with the reference's,
and PyTorch's uniform initialisation checked statistically (random values are never compared
exactly). Check files call these from their own ``@check`` functions."""

from __future__ import annotations

import math

from course.grading.grader import Grader
from course.grading.outcome import Outcome
from course.grading.spec import Call, Inspect, dtype_word


def _named(got: Outcome, kind: str) -> dict:
    """``{name: tensor}`` of an :class:`Inspect` outcome's ``parameters`` or ``buffers``."""
    return dict(got.out[kind])



def require_layout(grader: Grader, probe: Inspect, case: str, advice: str) -> None:
    """The built module's parameters and buffers have the reference's names, shapes and
    dtypes (values are not compared); ``advice`` says what the layout should be."""
    want = grader.reference(probe, float64=False)
    got = grader.learner(probe, case)
    for kind in ("parameters", "buffers"):
        have = {n: (tuple(t.shape), dtype_word(t.dtype)) for n, t in _named(got, kind).items()}
        expected = {n: (tuple(t.shape), dtype_word(t.dtype))
                    for n, t in _named(want, kind).items()}
        grader.require(
            have == expected,
            f"{case}: {kind} (name: (shape, dtype)) are {have}, expected {expected}. {advice}",
        )
    grader.cases.append(case)


def require_uniform_init(grader: Grader, probe: Inspect, case: str, hidden_size: int,
                         library: str) -> None:
    """Every parameter of the built module lies in ±1/√H and has the mean and variance of a
    uniform draw there, within 5 standard deviations.

    For n draws from U(-b, b): the mean has sd b/√(3n); the biased sample variance has mean
    b²/3 and sd about b²·√(4/(45n)). Each bound fails a correct initialisation with probability
    about 6e-7 (normal approximation)."""
    got = grader.learner(probe, case)
    bound = 1.0 / math.sqrt(hidden_size)
    params = _named(got, "parameters")
    grader.require(bool(params), f"{case} has no parameters")
    for name, value in params.items():
        v = value.double().flatten()
        n = v.numel()
        where = f"{case}: {name}"
        grader.require(n > 0, f"{where} is empty")
        grader.require(
            bool(v.abs().max() <= bound * (1 + 1e-6)),
            f"{where} has values up to {float(v.abs().max()):.4g} in absolute value; "
            f"every parameter should lie in [-1/sqrt(H), 1/sqrt(H)] = ±{bound:.4g} "
            f"({library}'s init, with H the hidden size).",
        )
        grader.require(
            bool(v.max() > v.min()),
            f"{where} is constant ({float(v[0]):.4g}); draw it uniformly in "
            f"[-1/sqrt(H), 1/sqrt(H)].",
        )
        mean, var = float(v.mean()), float(v.var(unbiased=False))
        mean_tol = 5 * bound / math.sqrt(3 * n)
        var_tol = 5 * bound**2 * math.sqrt(4 / (45 * n))
        grader.require(
            abs(mean) <= mean_tol,
            f"{where} has mean {mean:.4g}; a uniform init on ±{bound:.4g} has mean 0 "
            f"(allowed ±{mean_tol:.3g}, 5 standard deviations over {n} values).",
        )
        grader.require(
            abs(var - bound**2 / 3) <= var_tol,
            f"{where} has variance {var:.4g}; uniform on ±1/sqrt(H) has variance "
            f"{bound**2 / 3:.4g} (allowed ±{var_tol:.3g}, 5 standard deviations over "
            f"{n} values). Use the bound 1/sqrt(hidden_size) for every parameter.",
        )
    grader.cases.append(case)


def require_state_layout(grader: Grader, probe: Call, case: str, advice: str) -> None:
    """The state dict a driver reports (``{name: tensor}``) has the reference's names, shapes
    and dtypes; the failure lists what is missing, unexpected or of the wrong shape/dtype."""

    def shapes(got: Outcome) -> dict:
        return {k: (tuple(v.shape), dtype_word(v.dtype)) for k, v in got.out.items()}

    expected = shapes(grader.reference(probe, float64=False))
    have = shapes(grader.learner(probe, case))
    missing = sorted(set(expected) - set(have))
    extra = sorted(set(have) - set(expected))
    wrong = [f"{k}: {have[k]}, expected {expected[k]}" for k in sorted(set(have) & set(expected))
             if have[k] != expected[k]]
    problems = ([f"missing {missing}"] if missing else []) + \
               ([f"unexpected {extra}"] if extra else []) + \
               ([f"(shape, dtype) of {'; '.join(wrong)}"] if wrong else [])
    if problems:
        grader.fail(f"{'; '.join(problems)}. {advice}", case=case)
