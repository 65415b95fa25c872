"""Shared fixtures for the project's own tests."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from course import catalogue

ROOT = Path(__file__).resolve().parent.parent


def gradable_units() -> list[catalogue.Unit]:
    return [u for u in catalogue.units() if u.status == "ready" and not u.lecture_only]


def lecture_units() -> list[catalogue.Unit]:
    return [u for u in catalogue.units() if u.lecture_path.exists()]


@pytest.fixture(autouse=True)
def _isolated_workspace(tmp_path, monkeypatch):
    """Every test gets its own learner workspace; the real work/ is never touched."""
    monkeypatch.setenv("COURSE_WORKSPACE", str(tmp_path / "workspace"))
    yield


@pytest.fixture(params=["none", "bwrap"])
def isolation_level(request, monkeypatch):
    """Each isolation level in turn (``$COURSE_SANDBOX``); bubblewrap skipped where it fails."""
    from course.isolation import sandbox

    monkeypatch.setenv("COURSE_SANDBOX", request.param)
    if request.param == "bwrap" and sandbox.level() != "bubblewrap":
        pytest.skip(f"no bubblewrap here: {sandbox.unavailable_reason()}")
    return request.param


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> Path of a file in a fresh temporary folder."""

    def _write(name: str, text: str | bytes) -> Path:
        path = tmp_path / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return _write


def pytest_configure(config):
    os.environ.setdefault("COURSE_PROBE_TIMEOUT", "30")
    config.stash[_STARTED] = time.time()


_STARTED = pytest.StashKey[float]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Name the artifacts (browser screenshots) this run saved, so that CI's output says where."""
    from tests.site_helpers import artifacts_folder

    folder = artifacts_folder()
    started = config.stash.get(_STARTED, 0.0)
    saved = sorted(p for p in folder.glob("*") if p.is_file() and p.stat().st_mtime >= started) \
        if folder.is_dir() else []
    if saved:
        terminalreporter.section("test artifacts")
        for path in saved:
            terminalreporter.write_line(f"{path} ({path.stat().st_size // 1024} KiB)")


def assert_release_clean(text: str, unit: catalogue.Unit) -> list[str]:
    """A released notebook's text holds none of the master's solution lines and names no
    hidden check (as a whole word); returns the unit's public check ids, which it may name."""
    import json
    import re

    from course.grading.checks import load_checks, master_source
    from course.markers import solution_lines

    leaked = [line for line in solution_lines(master_source(unit))
              if len(line) > 12 and json.dumps(line)[1:-1] in text]
    assert not leaked, leaked
    checks = load_checks(unit).checks
    hidden = [info.id for info, _ in checks if not info.public]
    named = [h for h in hidden if re.search(rf"\b{re.escape(h)}\b", text)]
    assert not named, f"hidden checks named in the release: {named}"
    public = [info.id for info, _ in checks if info.public]
    assert public and hidden
    return public
