"""Grade several units at once (``course check --all``, ``course check A B C``) in worker
processes, one unit per worker at a time, and hand the results back in the order asked for.

Each worker imports torch and starts its fork server once, then grades unit after unit with the
same isolated engine as a single ``course check`` (its own child per unit, its own budget).
References are computed in the worker, so two units use two cores. One worker, or a machine
with one core, grades in this process as before.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course.catalogue import Unit, find


@dataclass(frozen=True)
class UnitJob:
    unit: Unit
    path: Path


def default_workers(jobs: int) -> int:
    """One worker per core this process may use, never more than there are units."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, jobs))


def parallel(jobs: int, workers: int | None = None, isolation: str = "process") -> bool:
    """Whether :func:`grade_units` grades ``jobs`` units in worker processes. Not when the
    parent's spawn start points at the sandbox wrapper (its own fork server was started, which
    sets that for all of multiprocessing): workers started that way would run sandboxed, without
    the shared memory their queues need. Callers that grade in parallel start no server."""
    from multiprocessing import spawn

    if isolation == "none" or jobs < 2 or (workers or default_workers(jobs)) < 2:
        return False
    return os.fsdecode(spawn.get_executable()) in (sys.executable,
                                                   getattr(sys, "_base_executable", None))


def grade_one(unit: Unit, path: Path, device: str, public_only: bool = False,
              budget: float | None = None, isolation: str = "process") -> tuple[str, Any]:
    """("result", UnitResult) or ("unreadable", why): one unit graded in this process."""
    from course.grading.engine import SubmissionError, grade_submission

    try:
        return "result", grade_submission(unit, path, device=device, public_only=public_only,
                                          isolation=isolation, budget=budget)
    except SubmissionError as exc:
        return "unreadable", str(exc)


def _grade(slug: str, path: str, device: str, public_only: bool, budget: float | None
           ) -> tuple[str, Any]:
    """In a worker process: :func:`grade_one`, isolated."""
    return grade_one(find(slug), Path(path), device, public_only, budget)


def grade_units(jobs: list[UnitJob], device: str, public_only: bool = False,
                budget: float | None = None, workers: int | None = None,
                isolation: str = "process") -> Iterator[tuple[UnitJob, str, Any]]:
    """(job, "result" | "unreadable" | "error", UnitResult or message), in the order of
    ``jobs``, graded by ``workers`` processes (default: :func:`default_workers`). A grader
    fault costs its unit an "error" with the reason; a worker that dies costs the unit it held
    (the first unfinished one in order), and the units after it are graded in this process.
    Without isolation, or with one worker or one unit, this process grades them in turn."""
    if not parallel(len(jobs), workers, isolation):
        for job in jobs:
            yield (job, *grade_one(job.unit, job.path, device, public_only, budget, isolation))
        return
    import multiprocessing

    from course.batch import _worker_start

    count = default_workers(len(jobs)) if workers is None else workers
    pool = ProcessPoolExecutor(max_workers=count, initializer=_worker_start,
                               mp_context=multiprocessing.get_context("spawn"))
    futures: list[Future] = [
        pool.submit(_grade, job.unit.slug, str(job.path), device, public_only, budget)
        for job in jobs]
    finished = False
    try:
        for index, (job, future) in enumerate(zip(jobs, futures)):
            try:
                kind, value = future.result()
            except BrokenProcessPool:  # a worker died: this unit errs, the rest are graded here
                yield job, "error", ("the grading worker died while grading this unit (killed "
                                     "from outside, or out of memory); grade it again alone")
                for rest, later in zip(jobs[index + 1:], futures[index + 1:]):
                    if later.done() and not later.cancelled() and later.exception() is None:
                        yield (rest, *later.result())  # finished before the worker died
                    else:
                        yield (rest, *grade_one(rest.unit, rest.path, device, public_only,
                                                budget, isolation))
                break
            except Exception as exc:  # a grader fault on this unit alone
                kind, value = "error", f"the grader failed: {type(exc).__name__}: {exc}"
            yield job, kind, value
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:  # Ctrl-C or a closed generator: stop now, not after the remaining units
            pool.shutdown(wait=False, cancel_futures=True)
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
