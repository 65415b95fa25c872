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
