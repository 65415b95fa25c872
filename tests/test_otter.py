"""`course export otter`: the master format, and a real round trip with otter-grader 7.

For two units: `course export otter` → `otter assign` → the release (dist/student) holds no
solution line and names no hidden check → five simulated students built from the release →
`otter run` with the autograder zip, each wrapped in a timeout → otter's results.json scores
match what `course`'s own grader gives the same notebooks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from course import catalogue
from course.cli import main
from course.export import otter, simulate
from course.grading.checks import load_checks, master_source
from course.grading.engine import grade_submission
from course.markers import has_solution
from tests.conftest import assert_release_clean

UNITS = ["layer-norm", "gelu"]
STUDENTS = ["reference", "stub", "mistake", "syntax-error", "warnings", "infinite-loop",
            "kernel-killer"]
# in-kernel checks are time-limited by grade_check itself (otter run has no timeout of its own)
ENV = {**os.environ, "COURSE_CHECK_SECONDS": "15", "COURSE_PROBE_TIMEOUT": "15",
       "PYTHONWARNINGS": "default"}
OTTER = [sys.executable, "-m", "otter"]


def _questions(nb) -> list[dict]:
    """Walk the master's raw block cells: each question's config, answer cells and tests."""
    questions, block = [], None
    for cell in nb.cells:
        first = cell.source.splitlines()[0] if cell.source else ""
        if cell.cell_type == "raw" and first.startswith("# BEGIN QUESTION"):
            questions.append({"config": cell.source, "answers": [], "tests": []})
        elif cell.cell_type == "raw" and first.startswith("# BEGIN "):
            block = first.split()[2]
        elif cell.cell_type == "raw" and first.startswith("# END "):
            block = None
        elif block == "SOLUTION":
            questions[-1]["answers"].append(cell)
        elif block == "TESTS":
            questions[-1]["tests"].append(cell.source)
    return questions


@pytest.mark.parametrize("slug", ["layer-norm", "gelu", "relu", "backprop"])
def test_master_has_one_question_per_answer_and_one_test_per_check(slug):
    unit = catalogue.find(slug)
    checks = load_checks(unit)
    nb = otter.master_notebook(unit)
    config = nb.cells[0]
    assert config.cell_type == "raw" and config.source.startswith("# ASSIGNMENT CONFIG")
    assert "ok_format: false" in config.source and "pdf: false" in config.source
    questions = _questions(nb)
    answers = [c for q in questions for c in q["answers"]]
    masters = [c for c in nb.cells if c.cell_type == "code" and has_solution(c.source)]
    assert answers == masters and all(len(q["answers"]) == 1 for q in questions)
    assert all(simulate.is_answer_cell(c) for c in answers)
    setup = [c for c in nb.cells if "course-check" in c.metadata.get("tags", [])]
    assert len(setup) == 1 and "import grade_check" in setup[0].source
    assert nb.cells.index(setup[0]) < nb.cells.index(answers[0])
    tests = [t for q in questions for t in q["tests"]]
    assert len(tests) == len(checks.checks)
    points = []
    for q in questions:
        listed = re.search(r"^points: \[(.*)\]$", q["config"], re.M).group(1)
        points += [float(p) for p in listed.split(",")]
    assert sum(points) == checks.max_score
    by_call = {re.search(r'grade_check\("[^"]+", "([^"]+)"', t).group(1): (t, p)
               for t, p in zip(tests, points)}
    assert set(by_call) == {info.id for info, _ in checks.checks}
    for info, _ in checks.checks:
        test, worth = by_call[info.id]
        assert f'grade_check("{unit.slug}", "{info.id}", namespace=env)' in test
        assert f"def test_{info.id}(env):" in test
        assert test.startswith("# HIDDEN\n") == (not info.public)
        assert worth == info.points


def test_checks_without_a_task_go_in_a_final_question(monkeypatch):
    unit = catalogue.find("gelu")
    real = load_checks(unit)
    loose = [(replace(info, task=None), fn) for info, fn in real.checks[:2]]
    monkeypatch.setattr(otter, "load_checks",
                        lambda u: replace(real, checks=[*real.checks[2:], *loose]))
    questions = _questions(otter.master_notebook(unit))
    last = questions[-1]
    assert f"name: {otter.OTHER_QUESTION}" in last["config"] and not last["answers"]
    assert [t.split("(env)")[0].split()[-1] for t in last["tests"]] == [
        f"test_{info.id}" for info, _ in loose]


def test_cli_writes_one_master_per_unit(tmp_path):
    result = CliRunner().invoke(main, ["export", "otter", str(tmp_path), "--unit", "gelu",
                                       "--unit", "relu"])
    assert result.exit_code == 0, result.output
    for slug in ("gelu", "relu"):
        nb = nbformat.read(tmp_path / slug / f"{slug}.ipynb", as_version=4)
        assert nb.metadata["course"]["unit"] == slug
    assert "otter assign" in result.output
    bad = CliRunner().invoke(main, ["export", "otter", str(tmp_path)])
    assert bad.exit_code != 0


def _run(args, cwd, timeout):
    done = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _otter_score(zip_path: Path, submission: Path) -> tuple[float, float, dict]:
    out = submission.parent / "otter-out"
    out.mkdir()
    done = subprocess.run([*OTTER, "run", "-a", str(zip_path), "-o", str(out), "--no-logo",
                           submission.name], cwd=submission.parent, env=ENV,
                          capture_output=True, text=True, timeout=900)
    if not (out / "results.json").exists():
        # what stock `otter run` does when it cannot finish (the kernel died): no results
        return (float("nan"), float("nan"), {"returncode": done.returncode,
                                             "stderr": done.stderr[-3000:]})
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    graded = [t for t in results["tests"] if "score" in t]
    return (sum(t["score"] for t in graded), sum(t["max_score"] for t in graded), results)


@pytest.fixture(scope="module", params=UNITS)
def round_trip(request, tmp_path_factory):
    unit = catalogue.find(request.param)
    root = tmp_path_factory.mktemp(f"otter-{unit.slug}")
    [master] = otter.export([unit], root)
    _run([*OTTER, "assign", master.name, "dist"], cwd=master.parent, timeout=600)
    release = master.parent / "dist" / "student" / otter.notebook_name(unit)
    [zip_path] = (master.parent / "dist" / "autograder").glob("*.zip")
    mistake = load_checks(unit).mistakes[0]
    everyone = simulate.simulated_class(master_source(unit), mistake.apply(master_source(unit)),
                                        nbformat.read(release, as_version=4))
    paths = {}
    for name in STUDENTS:
        path = root / "students" / name / otter.notebook_name(unit)
        path.parent.mkdir(parents=True)
        nbformat.write(everyone[name], path)
        paths[name] = path
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(STUDENTS, pool.map(lambda s: _otter_score(zip_path, paths[s]),
                                           STUDENTS)))
    graded = {name: grade_submission(unit, paths[name], device="cpu")
              for name in ("mistake", "syntax-error", "reference", "infinite-loop",
                           "kernel-killer")}
    ours = {name: graded[name].score for name in ("mistake", "syntax-error", "infinite-loop")}
    ours_killer = graded["kernel-killer"]
    return {"unit": unit, "release": release, "zip": zip_path, "runs": runs, "ours": ours,
            "reference_notes": graded["reference"].notes, "killer": ours_killer}


@pytest.mark.slow
def test_release_holds_no_solution_and_no_hidden_check(round_trip):
    unit = round_trip["unit"]
    text = round_trip["release"].read_text(encoding="utf-8")
    public = assert_release_clean(text, unit)
    assert all(f"'{p}'" in text for p in public), "public checks are in the release's tests"
    assert "BEGIN SOLUTION" not in text and "HIDDEN" not in text
    assert "MISTAKES" not in text and "def test_" in text


@pytest.mark.slow
def test_otter_run_scores_the_simulated_class(round_trip):
    unit = round_trip["unit"]
    total = load_checks(unit).max_score
    runs, ours = round_trip["runs"], round_trip["ours"]
    # the kernel-killer and the infinite loop: see the next test
    runs = {name: run for name, run in runs.items()
            if name not in ("kernel-killer", "infinite-loop")}
    scores = {name: score for name, (score, _, _) in runs.items()}
    assert all(most == total for _, most, _ in runs.values()), "otter's total is the course's"
    expected = {"reference": total, "stub": 0.0, "warnings": total,
                "mistake": ours["mistake"], "syntax-error": ours["syntax-error"]}
    assert scores == expected
    assert 0 <= ours["mistake"] < total and ours["syntax-error"] < total
    # course grade skips otter's own cells (grader = otter.Notebook(...), grader.check(...))
    assert round_trip["reference_notes"] == []
    # the feedback a student sees is the check's own message, not its source
    failed = "\n".join(t.get("output", "") for t in runs["mistake"][2]["tests"])
    assert "CheckFailed" in failed and "load_checks" not in failed


@pytest.mark.slow
def test_otter_run_on_a_kernel_killer_and_an_infinite_loop(round_trip):
    """The two students stock otter handles worst. `course grade` scores the infinite loop by
    the looping task's checks and the kernel-killer zero with the reason; what `otter run` gives
    them is printed and stated in the README, not controlled by the project."""
    unit = round_trip["unit"]
    total = load_checks(unit).max_score
    runs, ours = round_trip["runs"], round_trip["ours"]
    loop_score, _, _ = runs["infinite-loop"]
    assert 0 < ours["infinite-loop"] < total  # the isolated grader: the loop costs its task
    killer_score, _, killer_results = runs["kernel-killer"]
    # what stock otter does is recorded, not asserted (README): observed for layer-norm, the
    # infinite loop got full marks from `otter run`, where `course grade` gives 10 of 13
    print("otter run: infinite loop", loop_score, "; kernel-killer", killer_score,
          str(killer_results)[:1500])
    killer = round_trip["killer"]
    assert killer.score == 0 and "ended the process" in killer.fatal
