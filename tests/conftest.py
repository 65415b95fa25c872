"""Shared fixtures for the project's own tests."""

from __future__ import annotations

import os
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
