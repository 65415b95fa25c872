"""The nbgrader round trip with real nbgrader, and `course grade --nbgrader` on the same class.

For two units: `course export nbgrader` → `nbgrader generate_assignment` → seven simulated
students in submitted/ → `nbgrader autograde` → `nbgrader generate_feedback` → `nbgrader
export`; then `course grade --nbgrader` grades the same submissions in isolation and writes its
scores into nbgrader's gradebook, and `nbgrader export` shows them.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course import catalogue
from course.export import nbgrader as nbg
from course.export import simulate
from course.grading.checks import load_checks, master_source
from tests.conftest import assert_release_clean

pytestmark = pytest.mark.slow
UNITS = ["layer-norm", "gelu"]
STUDENTS = ["reference", "stub", "mistake", "syntax-error", "infinite-loop", "kernel-killer",
            "warnings"]
ENV = {**os.environ, "COURSE_CHECK_SECONDS": "4", "COURSE_PROBE_TIMEOUT": "4",
       "COURSE_LOAD_TIMEOUT": "30", "PYTHONWARNINGS": "default"}


def _run(args, cwd, timeout=900):
    done = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode in (0, 1), (
        f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def _nbgrader(*args, cwd):
    return _run([sys.executable, "-m", "nbgrader", *args], cwd)


def _csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module", params=UNITS)
def course_dir(request, tmp_path_factory):
    unit = catalogue.find(request.param)
    root = tmp_path_factory.mktemp(f"nbgrader-{unit.slug}")
    nbg.export([unit], root, timeout=60)
    _nbgrader("generate_assignment", unit.slug, "--force", cwd=root)
    release = root / "release" / unit.slug / nbg.notebook_name(unit)
    mistake = load_checks(unit).mistakes[0]
    students = simulate.simulated_class(master_source(unit),
                                        mistake.apply(master_source(unit)),
                                        nbformat.read(release, as_version=4))
    for name, nb in students.items():
        folder = root / "submitted" / name / unit.slug
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / nbg.notebook_name(unit))
    autograde = _nbgrader("autograde", unit.slug, "--force", cwd=root)
    _nbgrader("generate_feedback", unit.slug, "--force", cwd=root)
    _nbgrader("export", "--to", str(root / "stock.csv"), cwd=root)
    out = root / "course-grade"
    graded = _run([sys.executable, "-m", "course.cli", "grade", "--nbgrader", str(root),
                   "--assignment", unit.slug, "--out", str(out), "--workers", "2"], root)
    _nbgrader("export", "--to", str(root / "after.csv"), cwd=root)
    return {"unit": unit, "root": root, "release": release, "autograde": autograde,
            "graded": graded, "out": out}


def _scores(path: Path) -> dict[str, float]:
    return {row["student_id"]: float(row["score"]) for row in _csv(path)}


def test_release_holds_no_solution_and_no_hidden_check(course_dir):
    unit = course_dir["unit"]
    text = course_dir["release"].read_text(encoding="utf-8")
    public = assert_release_clean(text, unit)
    assert all(f'\\"{p}\\"' in text for p in public), "public checks are visible"
    assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
    assert "YOUR CODE HERE" in text
    source = unit.checks_path.read_text(encoding="utf-8")
    assert "MISTAKES" in source and "MISTAKES" not in text


def test_stock_autograde_scores_the_simulated_class(course_dir):
    unit = course_dir["unit"]
    checks = load_checks(unit)
    total = checks.max_score
    stock = _scores(course_dir["root"] / "stock.csv")
    assert stock["reference"] == total
    assert stock["warnings"] == total, "warnings and stderr output must not cost points"
    assert stock["stub"] == 0
    assert 0 <= stock["mistake"] < total
    assert stock["syntax-error"] < total
    assert stock["kernel-killer"] == 0
    ours = {r["student"]: float(r["score"]) for r in _csv(course_dir["out"] / "gradebook.csv")}
    # in-kernel (nbgrader) and isolated (course grade) agree on every student whose kernel lived
    for student in STUDENTS:
        if student != "kernel-killer":
            assert stock[student] == ours[student], student
    # the looping function costs exactly the checks that call it
    assert 0 < ours["infinite-loop"] < total


def test_feedback_shows_no_check_code(course_dir):
    unit = course_dir["unit"]
    feedback = course_dir["root"] / "feedback" / "reference" / unit.slug
    pages = list(feedback.glob("*.html"))
    assert pages, f"no feedback in {feedback}"
    html = pages[0].read_text(encoding="utf-8")
    assert "grade_check" in html  # the test cells are visible, one line each
    check_source = unit.checks_path.read_text(encoding="utf-8")
    assert "def test_" in check_source and "def test_" not in html
    assert "Mistake(" not in html


def test_course_grade_writes_every_student_into_the_gradebook(course_dir):
    unit = course_dir["unit"]
    total = load_checks(unit).max_score
    rows = {r["student"]: r for r in _csv(course_dir["out"] / "gradebook.csv")}
    assert set(rows) == set(STUDENTS)
    assert all(r["status"] == "graded" for r in rows.values())
    killer = rows["kernel-killer"]
    assert float(killer["score"]) == 0 and "ended the process" in killer["message"]
    assert float(rows["reference"]["score"]) == total
    after = _scores(course_dir["root"] / "after.csv")
    assert after == {s: float(r["score"]) for s, r in rows.items()}
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_dir['root'] / 'gradebook.db'}") as gb:
        comment = gb.find_comment(nbg.answer_ids(unit)[0], unit.slug, unit.slug, "kernel-killer")
        assert "ended the process" in (comment.manual_comment or "")
        assert gb.find_submission(unit.slug, "reference").score == total
    feedback = (course_dir["out"] / "students" / "mistake" / "feedback.md").read_text()
    assert "Hint:" in feedback and "def test_" not in feedback
    results = json.loads((course_dir["out"] / "students" / "reference" / "results.json")
                         .read_text())
    assert results["score"] == total and results["tests"]
