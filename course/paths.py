"""Where things live: the repository root and the fixed top-level folders."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The course repository: ``$COURSE_ROOT`` if set, else the folder above this package."""
    env = os.environ.get("COURSE_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent


ROOT = repo_root()
LECTURES = ROOT / "lectures"
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
AUTOGRADER = ROOT / "autograder"


REFERENCE_CACHE_ENV = "COURSE_REFERENCE_CACHE"


def reference_cache() -> Path | None:
    """Where reference results are kept between runs (:mod:`course.grading.refcache`):
    ``$COURSE_REFERENCE_CACHE``, else ``.course-cache/references`` in the course; None when
    that variable says ``off``."""
    value = os.environ.get(REFERENCE_CACHE_ENV, "").strip()
    if value.lower() in ("off", "0", "no", "false", "none"):
        return None
    if value:
        return Path(value).expanduser().resolve()
    return ROOT / ".course-cache" / "references"
