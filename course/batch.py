"""``course grade``: a class's submissions, graded in isolation, in parallel, resumably.

Input: a folder with one sub-folder or one file per student, or an nbgrader course's
``submitted/<student>/<assignment>/`` tree. For every (student, unit) pair a worker process
(torch imported once per worker) grades the submission with the engine's isolation; the parent
only reads files and writes results, so nothing a submission does reaches it.

Output folder::

    gradebook.csv                      student, unit, score, max_score, status, message
    class_report.md, mistakes.csv      what the class got wrong (course.class_report)
    students/<student>/<unit>.json     the raw record of one grade (written atomically)
    students/<student>/results.json    Gradescope's schema, every unit of that student
    students/<student>/feedback.md     readable feedback: what was checked and what differed

Resumable: a record is kept when its submission's bytes and the unit's checks and reference
are unchanged (a fingerprint of the three), so a re-run grades only what is new or changed,
and an interrupted run loses nothing already written. ``--force`` grades everything again.
Every student gets a row, also when the submission is missing or unreadable, with the reason.
Statuses: ``graded`` (checks ran; the score says how well), ``unreadable``, ``missing``,
``error`` (the grader itself failed on this submission; the message says how).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import signal
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from course.catalogue import Unit
from course.files import remove_partial_files, write_atomic

if TYPE_CHECKING:
    from course.grading.submission import Submission

SUFFIXES = (".ipynb", ".py")
CSV_FIELDS = ("student", "unit", "score", "max_score", "status", "message")


@dataclass(frozen=True)
class Job:
    student: str
    unit: Unit
    path: Path | None  # None: missing
    problem: str = ""  # why there is no usable path


# -- finding submissions ---------------------------------------------------------------------
def safe_name(name: str) -> str:
    """A student id usable as a folder name (other characters become '_')."""
    cleaned = re.sub(r"[^A-Za-z0-9._@-]", "_", name).strip(".") or "_"
    return cleaned[:120]


def submission_files(folder: Path) -> list[Path]:
    """The notebooks and .py files below ``folder`` (Jupyter checkpoints left out), sorted."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.suffix in SUFFIXES and ".ipynb_checkpoints" not in p.parts)


def _notebook_unit(path: Path) -> str | None:
    if path.suffix != ".ipynb":
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8-sig")).get("metadata", {})
        return (meta.get("course") or {}).get("unit")
    except (OSError, ValueError, AttributeError):
        return None


def pick_file(files: list[Path], unit: Unit) -> Path | None:
    """The student's file for ``unit``: one named or tagged (notebook metadata) for the unit,
    else the only file, unless that one is a notebook of another unit."""
    keys = (unit.slug, unit.module, unit.stem)
    named = [f for f in files if any(k in f.stem for k in keys)]
    if named:
        return named[0]
    tags = {f: _notebook_unit(f) for f in files}
    tagged = [f for f in files if tags[f] == unit.slug]
    if tagged:
        return tagged[0]
    if len(files) == 1 and tags[files[0]] in (None, unit.slug):
        return files[0]
    return None


def folder_jobs(root: Path, units: list[Unit]) -> list[Job]:
    """One job per (student, unit) for a folder of per-student files or sub-folders."""
    jobs = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        student = safe_name(entry.stem if entry.is_file() else entry.name)
        if entry.is_file():
            files = [entry] if entry.suffix in SUFFIXES else []
            problem = "" if files else (f"{entry.name} is not a notebook (.ipynb) or a .py file")
        else:
            files = submission_files(entry)
            problem = "" if files else f"{entry.name}/ holds no .ipynb or .py file"
        for unit in units:
            path = pick_file(files, unit) if files else None
            reason = problem or ("" if path else f"no file for unit {unit.slug} among "
                                 f"{', '.join(f.name for f in files)} (name it after the unit)")
            jobs.append(Job(student, unit, path, reason))
    return jobs


def nbgrader_jobs(course_dir: Path, assignment: str, units: list[Unit],
                  submitted: Path | None = None) -> list[Job]:
    """Jobs for ``submitted/<student>/<assignment>/`` plus every student the gradebook knows."""
    submitted = submitted or course_dir / "submitted"
    students = {p.name for p in submitted.iterdir() if p.is_dir()} if submitted.exists() else set()
    students |= set(_gradebook_students(course_dir))
    jobs = []
    for student in sorted(students):
        folder = submitted / student / assignment
        files = submission_files(folder) if folder.is_dir() else []
        for unit in units:
            path = pick_file(files, unit) if files else None
            problem = "" if path else (f"no submission of {assignment} in {folder}" if not files
                                       else f"no notebook for unit {unit.slug} in {folder}")
            jobs.append(Job(student, unit, path, problem))
    return jobs


def _gradebook_students(course_dir: Path) -> list[str]:
    db = course_dir / "gradebook.db"
    if not db.exists():
        return []
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}") as gb:
        return [s.id for s in gb.students]


# -- fingerprints and records ----------------------------------------------------------------
def fingerprint(job: Job) -> str:
    digest = hashlib.sha256()
    for path in (job.path, job.unit.solution_path, job.unit.checks_path):
        digest.update(path.read_bytes() if path and path.exists() else b"-")
        digest.update(b"\0")
    digest.update(job.problem.encode())
    return digest.hexdigest()


def record_path(out: Path, job: Job) -> Path:
    return out / "students" / job.student / f"{job.unit.slug}.json"


def crash_point(name: str) -> None:
    """For the crash-consistency tests: with ``COURSE_CRASH_AT=name`` this process kills itself
    with SIGKILL here, exactly as an outer kill at this moment would."""
    if os.environ.get("COURSE_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _summary(result: dict) -> str:
    if result.get("fatal"):
        return result["fatal"]
    checks = result.get("checks", [])
    passed = sum(c["status"] == "passed" for c in checks)
    text = f"{passed} of {len(checks)} checks passed"
    failed = [c for c in checks if c["status"] != "passed"]
    if failed:
        text += "; first failure: " + failed[0]["title"]
    notes = result.get("notes") or []
    return text + (f" (note: {notes[0]})" if notes else "")


def make_record(job: Job, status: str, message: str, result: dict | None) -> dict:
    from course.grading.checks import load_checks

    max_score = (result or {}).get("max_score")
    if max_score is None:
        max_score = load_checks(job.unit).max_score
    return {
        "student": job.student,
        "unit": job.unit.slug,
        "submission": str(job.path) if job.path else None,
        "fingerprint": fingerprint(job),
        "status": status,
        "score": (result or {}).get("score", 0.0),
        "max_score": max_score,
        "message": message,
        "result": result,
    }


# -- the worker side -------------------------------------------------------------------------
def _worker_start() -> None:
    from course.isolation.lifetime import die_with_parent

    die_with_parent()  # a killed `course grade` takes its workers (and their servers) along
    import torch  # noqa: F401  (once per worker)

    from course.grading import engine  # noqa: F401
    from course.isolation.forkserver import prestart

    prestart(many=True)


def outcome(unit: Unit, load: Callable[[], Submission | Path], device: str,
            budget: float | None = None) -> tuple[str, str, dict | None]:
    """(status, message, result) of grading what ``load`` gives (a path or a read
    submission): the one grading step of local and cluster workers alike."""
    from course.grading import refcache
    from course.grading.engine import SubmissionError, grade_submission
    from course.isolation import sandbox

    # other people's submissions: without a sandbox one could write the cache's folder
    refcache.use_disk(sandbox.level() == "bubblewrap")
    try:
        result = grade_submission(unit, load(), device=device, budget=budget)
    except SubmissionError as exc:
        return "unreadable", str(exc), None
    except Exception as exc:  # a grader failure on one submission must not stop the class
        return "error", (f"the grader failed on this submission: "
                         f"{type(exc).__name__}: {exc}"), None
    data = result.to_dict()
    return "graded", _summary(data), data


def grade_job(job: Job, device: str, budget: float | None = None) -> dict:
    """Grade one job (runs in a worker process); returns its record."""
    if job.path is None:
        return make_record(job, "missing", job.problem or "no submission", None)
    path = job.path
    return make_record(job, *outcome(job.unit, lambda: path, device, budget))


# -- the parent side -------------------------------------------------------------------------
def load_record(out: Path, job: Job) -> dict | None:
    path = record_path(out, job)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if record.get("fingerprint") == fingerprint(job) else None


class Runner(Protocol):
    """Grades jobs somewhere (local processes, a cluster) and yields their records."""

    notes: list[str]

    def results(self, jobs: list[Job]) -> Iterable[tuple[Job, dict]]: ...

    def running(self) -> int: ...


class Display(Protocol):
    """What follows a batch: ``start`` once, then ``record`` for each record."""

    def start(self, total: int, kept: int, runner: Runner) -> None: ...

    def record(self, record: dict, kept: bool) -> None: ...


def grade_all(jobs: list[Job], out: Path, workers: int = 2, device: str = "cpu",
              force: bool = False, progress: Callable[[dict, bool], None] | None = None,
              budget: float | None = None, runner: Runner | None = None,
              display: Display | None = None) -> list[dict]:
    """Grade every job not already recorded (all with ``force``) with ``runner`` (default:
    ``workers`` local processes); returns every record. ``progress`` is called for each record
    (``kept``: it was already graded), ``display`` also hears how many jobs there are."""
    runner = runner or LocalRunner(workers, device, budget)
    out.mkdir(parents=True, exist_ok=True)
    remove_partial_files(out)
    records: dict[tuple[str, str], dict] = {}
    todo = []
    for job in jobs:
        kept = None if force else load_record(out, job)
        if kept is not None:
            records[(job.student, job.unit.slug)] = kept
        else:
            todo.append(job)
    if display:
        display.start(len(jobs), len(jobs) - len(todo), runner)
    for record in records.values():
        if progress:
            progress(record, True)
        if display:
            display.record(record, True)
    for count, (job, record) in enumerate(runner.results(todo), start=1):
        write_atomic(record_path(out, job), json.dumps(record, indent=1))
        crash_point(f"after-record-{count}")
        records[(record["student"], record["unit"])] = record
        if progress:
            progress(record, False)
        if display:
            display.record(record, False)
    ordered = [records[(j.student, j.unit.slug)] for j in jobs]
    write_outputs(out, ordered)
    return ordered


class LocalRunner:
    """Grades jobs in ``workers`` spawned processes on this machine; a broken pool is replaced
    and the unfinished jobs tried once more, then reported as grader errors."""

    def __init__(self, workers: int = 2, device: str = "cpu", budget: float | None = None):
        self.workers, self.device, self.budget = max(1, workers), device, budget
        self.notes: list[str] = []
        self._futures: dict = {}

    def running(self) -> int:
        """Jobs handed to a worker process (the pool queues a few ahead: capped at workers)."""
        return min(self.workers, sum(f.running() for f in list(self._futures)))

    def results(self, jobs: list[Job]) -> Iterable[tuple[Job, dict]]:
        import multiprocessing

        pending = list(jobs)
        for attempt in range(2):
            if not pending:
                return
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                     initializer=_worker_start) as pool:
                self._futures = {pool.submit(grade_job, job, self.device, self.budget): job
                                 for job in pending}
                done: list[Job] = []
                try:
                    for future in as_completed(self._futures):
                        job = self._futures[future]
                        try:
                            record = future.result()
                        except BrokenProcessPool:
                            raise
                        except Exception as exc:
                            record = make_record(job, "error", f"the grader failed: {exc}", None)
                        done.append(job)
                        yield job, record
                except BrokenProcessPool:
                    pending = [j for j in pending if j not in done]
                    if attempt == 1:
                        for job in pending:
                            yield job, make_record(job, "error", "a grading worker died while "
                                                   "grading this submission", None)
                        return
                    continue
                finally:
                    self._futures = {}
            return


def write_outputs(out: Path, records: list[dict]) -> None:
    """gradebook.csv, and per student results.json and feedback.md."""
    from course.grading.engine import UnitResult
    from course.report import gradescope_json, to_text

    lines = []
    for r in sorted(records, key=lambda r: (r["student"], r["unit"])):
        lines.append({"student": r["student"], "unit": r["unit"], "score": f"{r['score']:g}",
                      "max_score": f"{r['max_score']:g}", "status": r["status"],
                      "message": r["message"].replace("\n", " ")})
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=CSV_FIELDS)
    writer.writeheader()
    writer.writerows(lines)
    write_atomic(out / "gradebook.csv", table.getvalue())
    crash_point("after-gradebook-csv")
    by_student: dict[str, list[dict]] = {}
    for r in records:
        by_student.setdefault(r["student"], []).append(r)
    for student, mine in by_student.items():
        results = [UnitResult.from_dict(r["result"]) for r in mine if r["result"]]
        data = gradescope_json(results, timings=False)
        problems = [f"{r['unit']}: {r['status']}: {r['message']}" for r in mine
                    if r["status"] != "graded"]
        data["output"] = "\n".join(problems + ([data["output"]] if data["output"] else []))
        data["score"] = sum(r["score"] for r in mine)
        data["max_score"] = sum(r["max_score"] for r in mine)
        folder = out / "students" / student
        write_atomic(folder / "results.json", json.dumps(data, indent=2) + "\n")
        parts = [f"# Feedback for {student}\n"]
        for r in mine:
            parts.append(f"## {r['unit']}: {r['score']:g}/{r['max_score']:g} ({r['status']})\n")
            if r["result"]:
                parts.append("```\n" + to_text(UnitResult.from_dict(r["result"])) + "\n```\n")
            else:
                parts.append(r["message"] + "\n")
        write_atomic(folder / "feedback.md", "\n".join(parts))
        crash_point("after-first-student-outputs")
    write_class_report(out, records)


def _tallies(records: list[dict]) -> dict:
    from course import catalogue
    from course.class_report import tally

    return tally(records, [catalogue.find(s) for s in sorted({r["unit"] for r in records})])


def write_class_report(out: Path, records: list[dict]) -> None:
    """class_report.md and mistakes.csv (:mod:`course.class_report`)."""
    from course.class_report import markdown, mistakes_csv

    tallies = _tallies(records)
    write_atomic(out / "class_report.md", markdown(tallies))
    write_atomic(out / "mistakes.csv", mistakes_csv(tallies))


def top_mistakes(records: list[dict], n: int = 5) -> list[str]:
    """The class's ``n`` most common banked mistakes, in words."""
    from course.class_report import top_mistakes as ranked

    return ranked(_tallies(records), n)
