"""``course grade --scheduler ADDRESS``: the class's jobs on a Dask distributed cluster.

The grading machine reads every submission, sends each (student, unit) job to the cluster as
the submission's bytes (never a shared path) and writes every output itself from the records
that come back: the cluster is only a pool of graders. On a worker, a job is graded by the same
isolated engine as local grading (:func:`course.batch.grade_job`): a sandbox where bubblewrap
is installed, limits, the per-submission budget.

Which workers may grade: ``course worker`` starts its processes with the Dask resource
``course-<digest of its own manifest>`` (:func:`course.manifest.manifest`: the engine's
source, every hidden check and reference, the version), and every job asks for one unit of the
resource named after the grading machine's manifest. Only workers holding this very course
therefore ever receive a job, one at a time each, and a worker restarted by its nanny comes
back with the same resource. Before sending anything, the grading machine asks every worker
for its manifest and names each one that differs, with the files that differ (refused: it
gets no job), or that was started without ``course worker``. Each job also compares the
manifests once more before grading (a file edited on a worker after it started) and refuses
in words. ``course worker`` itself refuses to join a cluster whose course (published by the
last grading run) it does not match.

Worker death: Dask reschedules a job whose worker died on another worker; a job that killed
``distributed.scheduler.allowed-failures`` + 1 workers comes back as ``KilledWorker`` and is
recorded as an error with that reason. If no matching worker is left for
``COURSE_CLUSTER_WAIT`` seconds (default 120), the jobs still waiting are recorded as errors.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from course import catalogue
from course.batch import Job, fingerprint, make_record, outcome, safe_name
from course.manifest import differences, digest, manifest

if TYPE_CHECKING:
    from distributed import Client, Future

INSTALL = 'cluster grading needs Dask distributed: pip install "course[cluster]"'


class ClusterError(RuntimeError):
    """The cluster cannot grade this class at all (unreachable, no matching worker)."""


class StaleCourse(RuntimeError):
    """This worker's course differs from the grading machine's: it refuses to grade."""


def resource_name(whole: str) -> str:
    return f"course-{whole[:16]}"


def refusal(worker: str, diff: list[str]) -> str:
    shown = "; ".join(diff[:5]) + (f"; and {len(diff) - 5} more" if len(diff) > 5 else "")
    return (f"worker {worker} refused: its course differs from this machine's ({shown}). "
            "Install the same course there and restart it.")


# -- the worker side -------------------------------------------------------------------------
_PREPARED = False


def prepare_worker() -> None:
    """Once per worker process: torch, the engine and the fork server, warm. A daemonic Dask
    worker may start no process, and grading starts one per submission: say how to fix it."""
    global _PREPARED
    if _PREPARED:
        return
    import multiprocessing

    if multiprocessing.current_process().daemon:
        raise ClusterError("this Dask worker is a daemonic process, which may start no "
                           "process; start workers with `course worker ADDRESS` (or set "
                           "distributed.worker.daemon to False)")
    import torch  # noqa: F401

    from course.grading import engine  # noqa: F401
    from course.isolation.forkserver import prestart

    prestart(many=True)
    _PREPARED = True


def hide_also(hide: list[str]) -> None:
    """Add ``hide`` to the paths this worker's sandbox hides (``$COURSE_SANDBOX_HIDE``): the
    grading machine's output folder and gradebook, which a worker on that same machine could
    otherwise show to learner code. A worker grades one job at a time, and the same list for
    every job of a run restarts its fork server once."""
    hidden = [p for p in os.environ.get("COURSE_SANDBOX_HIDE", "").split(os.pathsep) if p]
    added = [p for p in hide if p not in hidden]
    if added:
        os.environ["COURSE_SANDBOX_HIDE"] = os.pathsep.join(hidden + added)


def grade_remote(slug: str, name: str, data: bytes, label: str, device: str,
                 budget: float | None, expected: str,
                 hide: list[str] | None = None) -> tuple[str, str, dict | None]:
    """A job on a worker: (status, message, result) of the submission ``data`` (whose file
    was called ``name`` and is reported as ``label``) for unit ``slug``; ``hide``: paths the
    sandbox hides besides the worker's own."""
    from course.batch import crash_point
    from course.grading.submission import read_submission

    hide_also(hide or [])

    mine = manifest()
    if digest(mine) != expected:
        raise StaleCourse(f"this worker's course changed after it joined (manifest "
                          f"{digest(mine)[:12]}, expected {expected[:12]}); not graded here")
    prepare_worker()
    crash_point(f"cluster-job-{slug}-{name}")
    unit = catalogue.find(slug)
    with tempfile.TemporaryDirectory(prefix="course-job-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        return outcome(unit, lambda: replace(read_submission(path), path=Path(label)), device,
                       budget)


def dask_setup(worker: Any) -> None:
    """Dask's preload hook (``dask worker --preload course.cluster``): warm the worker."""
    prepare_worker()


def worker_command(address: str, nworkers: int = 1, name: str | None = None) -> list[str]:
    """The ``dask worker`` command line for ``course worker``, after checking this machine's
    course against the manifest the grading machine published on the scheduler (when one has
    graded there already); a difference is a ClusterError naming the files."""
    import shutil
    import sys

    client = connect(address)
    try:
        published = client.get_metadata(["course", "manifest"], default=None)
    finally:
        client.close()
    if published:
        diff = differences(published, manifest())
        if diff:
            raise ClusterError(refusal(name or "on this machine", diff))
    dask = shutil.which("dask") or str(Path(sys.executable).with_name("dask"))
    argv = [dask, "worker", address, "--nthreads", "1", "--nworkers", str(nworkers),
            "--resources", f"{resource_name(digest(manifest()))}=1",
            "--preload", "course.cluster", "--no-dashboard"]
    return argv + (["--name", name] if name else [])


# -- the grading machine's side --------------------------------------------------------------
def connect(address: str, timeout: float = 20) -> Client:
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError(INSTALL) from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


class ClusterRunner:
    """Grades jobs on the cluster at ``address``; ``notes`` collects the refused workers."""

    def __init__(self, address: str, device: str = "cpu", budget: float | None = None):
        self.address, self.device, self.budget = address, device, budget
        self.hide = [p for p in os.environ.get("COURSE_SANDBOX_HIDE", "").split(os.pathsep) if p]
        self.notes: list[str] = []
        self._client: Client | None = None
        self._futures: dict[Future, Job] = {}

    def running(self) -> int:
        """How many of this run's jobs a worker holds now."""
        if self._client is None or not self._futures:
            return 0
        try:
            held = {key for keys in self._client.processing().values() for key in keys}
        except Exception:  # the display never breaks grading
            return 0
        return sum(f.key in held for f in self._futures if not f.done())

    def _admit(self, client: Client, expected: dict[str, str]) -> str:
        """The resource jobs ask for; every worker that lacks it is named in ``notes``."""
        client.set_metadata(["course", "manifest"], expected)
        resource = resource_name(digest(expected))
        theirs = client.run(manifest)
        workers = client.scheduler_info(n_workers=-1)["workers"]
        admitted = 0
        for address, info in sorted(workers.items()):
            name = str(info.get("name", address))
            diff = differences(expected, theirs[address]) if address in theirs else ["no answer"]
            if diff:
                self.notes.append(refusal(name, diff))
            elif not info.get("resources", {}).get(resource):
                self.notes.append(f"worker {name} has this course but was not started with "
                                  "`course worker` (it lacks the resource "
                                  f"{resource}); it gets no job")
            else:
                admitted += 1
        if not admitted:
            why = " ".join(self.notes) or "the cluster has no worker"
            raise ClusterError(f"no worker at {self.address} can grade with this course: {why}")
        return resource

    def results(self, jobs: list[Job]) -> Iterator[tuple[Job, dict]]:
        from course.grading.submission import SubmissionError, read_submission

        client = self._client = connect(self.address)
        try:
            expected = manifest()
            resource = self._admit(client, expected)
            for job in jobs:
                if job.path is None:
                    yield job, make_record(job, "missing", job.problem or "no submission", None)
                    continue
                try:  # what cannot be read is decided here, in the same words as locally
                    read_submission(job.path)
                except SubmissionError as exc:
                    yield job, make_record(job, "unreadable", str(exc), None)
                    continue
                key = f"grade-{safe_name(job.student)}-{job.unit.slug}-{fingerprint(job)[:16]}"
                future = client.submit(
                    grade_remote, job.unit.slug, job.path.name, job.path.read_bytes(),
                    str(job.path), self.device, self.budget, digest(expected), self.hide,
                    key=key,
                    pure=False, resources={resource: 1})
                self._futures[future] = job
            yield from self._collect(client, resource)
        finally:
            self._futures.clear()
            self._client = None
            client.close()

    def _collect(self, client: Client, resource: str) -> Iterator[tuple[Job, dict]]:
        """Records as jobs finish. Results are fetched in the background (a result lost with
        its worker before it was fetched is computed again, never waited on here), so a
        cluster left with no able worker is noticed within ``COURSE_CLUSTER_WAIT`` s."""
        from distributed import as_completed

        patience = float(os.environ.get("COURSE_CLUSTER_WAIT", "120"))
        finished = as_completed(list(self._futures), loop=client.loop, with_results=True,
                                raise_errors=False)
        left = len(self._futures)
        alone_since: float | None = None
        checked = time.monotonic()
        while left:
            done = finished.next_batch(block=False)
            for future, value in done:
                left -= 1
                job = self._futures[future]
                yield job, self._record(job, value)
            if done:
                alone_since = None
                continue
            time.sleep(0.2)
            if time.monotonic() - checked < 2:
                continue
            checked = time.monotonic()
            if self._has_worker(client, resource):
                alone_since = None
                continue
            alone_since = alone_since or checked
            if checked - alone_since > patience:
                for future, job in self._futures.items():
                    if not future.done():
                        future.cancel()
                        yield job, make_record(job, "error", "no worker able to grade with "
                                               "this course was left on the cluster for "
                                               f"{patience:g} s", None)
                return

    @staticmethod
    def _has_worker(client: Client, resource: str) -> bool:
        try:
            workers = client.scheduler_info(n_workers=-1)["workers"].values()
        except Exception:
            return False
        return any(w.get("resources", {}).get(resource) for w in workers)

    @staticmethod
    def _record(job: Job, value: Any) -> dict:
        """The record of a finished future: ``value`` is the job's (status, message, result),
        or for a failed job the (type, exception, traceback) Dask gives. (The future's own
        status is no guide: it reads "lost" again once the worker that held it has died.)"""
        from distributed import KilledWorker

        if isinstance(value, tuple) and len(value) == 3 and isinstance(value[0], str):
            return make_record(job, *value)
        exc = value[1] if isinstance(value, tuple) else value
        if isinstance(exc, KilledWorker):
            return make_record(job, "error", "the worker grading this submission died every "
                               "time it was tried, and the scheduler gave up on it "
                               f"({type(exc).__name__}: {exc})", None)
        if isinstance(exc, StaleCourse):
            return make_record(job, "error", str(exc), None)
        return make_record(job, "error", f"the grader failed on the cluster: "
                           f"{type(exc).__name__}: {exc}", None)
