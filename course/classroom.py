"""One check, graded in the learner's own kernel: the test cells of the nbgrader and otter exports.

nbgrader and otter run test cells inside the student's kernel, so these cells are convenient
but not a security boundary (a submission can patch anything in its own process). For credit
you can trust, grade the saved notebooks with ``course grade`` (isolated, in parallel), which can
also write its scores into nbgrader's gradebook.

A test cell is one line, ``grade_check("layer-norm", "forward")``. It runs that check (public or
hidden) against the names the notebook defined, prints what was checked, and raises
``AssertionError`` with the feedback when the check fails, which is how both tools see a failed
test. The check's own source never appears in the notebook or in the traceback.

Both tools fail a test cell that writes anything to stderr (a ``UserWarning``, a progress bar).
A correct submission that warns must not lose points for it, so while the check runs, Python
warnings are silenced and stderr (Python's and the file descriptor's) is captured and shown on
stdout instead.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import tempfile
import threading
import warnings

from course import catalogue

DEFAULT_SECONDS = 120.0


class CheckFailed(AssertionError):
    """A graded check failed; the message is the learner's feedback."""

    def _render_traceback_(self) -> list[str]:  # IPython: show the feedback, not our frames
        return [f"CheckFailed: {self}"]


@contextlib.contextmanager
def _quiet_stderr():
    """Silence warnings and divert stderr (Python-level and fd 2) to a buffer."""
    buffer = io.StringIO()
    saved_fd = None
    capture = None
    try:
        capture = tempfile.TemporaryFile(mode="w+b")
        saved_fd = os.dup(2)
        os.dup2(capture.fileno(), 2)
    except OSError:  # no usable fd 2 (some embedded interpreters): Python-level only
        saved_fd = None
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(buffer):
            warnings.simplefilter("ignore")
            yield buffer
    finally:
        if saved_fd is not None:
            with contextlib.suppress(OSError):
                sys.stderr.flush()
                os.dup2(saved_fd, 2)
                os.close(saved_fd)
            capture.seek(0)
            buffer.write(capture.read(20_000).decode("utf-8", "replace"))
        if capture is not None:
            capture.close()


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Raise TimeoutError in the main thread after ``seconds`` (no-op elsewhere)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(signum, frame):
        raise TimeoutError(f"this check took longer than {seconds:g} s and was stopped")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_check(unit: str, check_id: str, namespace: dict, device: str = "cpu"):
    """Grade one check of ``unit`` against ``namespace`` in this process; the UnitResult."""
    from course.grading import refcache
    from course.grading.checks import load_checks
    from course.grading.engine import grade_runner, resolve_device
    from course.isolation.inprocess import InProcessRunner

    # learner code shares this process (a stock nbgrader or otter run): results stay in its
    # memory, and nothing a notebook may have written to the cache's folder is read
    refcache.use_disk(False)
    found = catalogue.find(unit)
    checks = load_checks(found)
    if check_id not in {info.id for info, _ in checks.checks}:
        raise KeyError(f"unit {found.slug} has no check {check_id!r}")
    resolved = resolve_device(device)
    runner = InProcessRunner(namespace, resolved, checks.forbidden)
    return grade_runner(found, runner, resolved, ids=(check_id,))


def grade_check(unit: str, check_id: str, namespace: dict | None = None,
                seconds: float | None = None) -> float:
    """The test cell: run one check, print the outcome, raise on failure; returns the points.

    ``namespace`` defaults to the caller's globals (the notebook). ``seconds`` bounds the
    check (default ``$COURSE_CHECK_SECONDS`` or 120 s).
    """
    ns = namespace if namespace is not None else sys._getframe(1).f_globals
    if seconds is None:
        seconds = float(os.environ.get("COURSE_CHECK_SECONDS", DEFAULT_SECONDS))
    with _quiet_stderr() as diverted, _time_limit(seconds):
        try:
            result = run_check(unit, check_id, ns)
            error = None
        except TimeoutError as exc:
            result, error = None, str(exc)
    extra = diverted.getvalue().strip()
    if extra:
        print("(output your code wrote to stderr while checked, shown here instead:)")
        print(extra[:2000])
    if result is None:
        raise CheckFailed(error)
    outcome = result.checks[0]
    if outcome.status != "passed":
        raise CheckFailed(f"{outcome.title} ({outcome.max_score:g} points)\n{outcome.output}")
    print(f"✓ {outcome.title} ({outcome.score:g}/{outcome.max_score:g})")
    return outcome.score
