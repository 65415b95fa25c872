"""What a grade depends on, as hashes: the grading engine's source, the syllabus, every unit's
hidden checks and reference solution, and the course's version.

Two machines with the same :func:`manifest` grade the same submission to the same record, so a
cluster worker whose manifest differs from the grading machine's is refused
(:mod:`course.cluster`): stale hidden checks on one worker must never grade silently.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from course import paths

PACKAGE = Path(__file__).resolve().parent


def course_version() -> str:
    try:
        return version("course")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _files() -> dict[str, Path]:
    """Label → file, for every file a grade depends on."""
    found: dict[str, Path] = {}
    for pattern in ("**/*.py", "syllabus/*.toml"):
        for path in PACKAGE.glob(pattern):
            found[f"course/{path.relative_to(PACKAGE).as_posix()}"] = path
    for root, name in ((paths.AUTOGRADER, "autograder"), (paths.SOLUTIONS, "solutions")):
        for path in root.glob("**/*.py"):
            found[f"{name}/{path.relative_to(root).as_posix()}"] = path
    return found


def manifest() -> dict[str, str]:
    """Label → sha256 of its bytes, plus ``version`` → the course's version; read afresh on
    every call (a check edited on disk since the last call counts)."""
    hashes = {"version": course_version()}
    for label, path in sorted(_files().items()):
        hashes[label] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def digest(hashes: dict[str, str]) -> str:
    """One hash for a whole manifest."""
    whole = hashlib.sha256()
    for label in sorted(hashes):
        whole.update(f"{label}\0{hashes[label]}\n".encode())
    return whole.hexdigest()


def differences(mine: dict[str, str], theirs: dict[str, str]) -> list[str]:
    """The labels whose hashes differ, in words: ``changed: autograder/x.py``, ``missing: …``
    (only here), ``extra: …`` (only there); the version first."""
    out = []
    if mine.get("version") != theirs.get("version"):
        out.append(f"version: {theirs.get('version')} there, {mine.get('version')} here")
    for label in sorted(set(mine) | set(theirs)):
        if label == "version" or mine.get(label) == theirs.get(label):
            continue
        word = "missing" if label not in theirs else "extra" if label not in mine else "changed"
        out.append(f"{word}: {label}")
    return out
