"""The self-learner's workspace: copies of exercise notebooks that belong to the learner.

``course start`` copies an exercise into the workspace (``work/`` at the repository root, or
``$COURSE_WORKSPACE``) and never overwrites an existing copy; rebuilding exercises or pulling
new versions never touches it. ``course check`` records the best score per unit in
``<workspace>/.progress.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from course import paths
from course.catalogue import Unit

PROGRESS_FILE = ".progress.json"


def workspace_dir() -> Path:
    env = os.environ.get("COURSE_WORKSPACE")
    return Path(env).resolve() if env else paths.ROOT / "work"


def workspace_copy(unit: Unit) -> Path:
    return workspace_dir() / unit.part.folder / unit.exercise_path.name


def start(unit: Unit) -> tuple[Path, bool]:
    """Copy the exercise into the workspace. Returns (path, created); never overwrites."""
    target = workspace_copy(unit)
    if target.exists():
        return target, False
    if not unit.exercise_path.exists():
        raise FileNotFoundError(f"unit {unit.slug} has no exercise notebook yet")
    target.parent.mkdir(parents=True, exist_ok=True)
    # write to a temporary name then link into place: a concurrent start cannot clobber work
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(unit.exercise_path, tmp)
        try:
            os.link(tmp, target)
        except FileExistsError:
            return target, False
    finally:
        os.unlink(tmp)
    return target, True


def load_progress() -> dict:
    path = workspace_dir() / PROGRESS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def record(unit: Unit, score: float, max_score: float) -> dict:
    """Remember the latest and best score for ``unit``; returns its progress entry."""
    data = load_progress()
    entry = data.get(unit.slug, {})
    best = max(float(entry.get("best", 0.0)), score)
    entry.update(
        best=best,
        max_score=max_score,
        last=score,
        attempts=int(entry.get("attempts", 0)) + 1,
        updated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    data[unit.slug] = entry
    path = workspace_dir() / PROGRESS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return entry
