"""The command line: exit codes, messages, JSON schema, workspace safety, build --check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from course import workspace
from course.catalogue import find
from course.cli import main
from course.isolation import sandbox

LN = find("layer-norm")
ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_list_shows_whole_syllabus():
    result = run("list")
    assert result.exit_code == 0
    assert "layer-norm" in result.output and "dall-e-2" in result.output
    assert "ready" in result.output


@pytest.fixture(scope="module")
def with_a_planned_unit(tmp_path_factory):
    """A copy of the course in which 6.1 data-parallel has no unit files: planned again (every
    unit of the course itself is ready)."""
    copy = tmp_path_factory.mktemp("course-copy")
    for name in ("lectures", "solutions", "exercises", "autograder"):
        shutil.copytree(ROOT / name, copy / name)
    shutil.copy(ROOT / "jupytext.toml", copy / "jupytext.toml")
    for path in ("solutions/compute/data_parallel.py", "autograder/compute/test_data_parallel.py",
                 "lectures/06-compute/01-data-parallel.md",
                 "exercises/06-compute/01-data-parallel.ipynb"):
        (copy / path).unlink()
    return copy


def _course_in(tree: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COURSE_ROOT": str(tree), "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "course.cli", *args], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=600)


def test_list_shows_planned_units(with_a_planned_unit):
    listed = _course_in(with_a_planned_unit, "list")
    assert listed.returncode == 0, listed.stderr
    line = next(t for t in listed.stdout.splitlines() if "data-parallel" in t)
    assert "planned" in line and "ready" in listed.stdout


def test_unknown_unit_exits_2_with_message():
    result = run("check", "no-such-unit")
    assert result.exit_code == 2
    assert "unknown unit 'no-such-unit'" in result.output


def test_missing_submission_exits_2(tmp_path):
    result = run("check", "layer-norm", "--submission", str(tmp_path / "nope.ipynb"))
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_unreadable_submission_exits_2_and_says_why(write):
    result = run("check", "layer-norm", "--submission", str(write("bad.ipynb", "{not json")))
    assert result.exit_code == 2
    assert "not JSON" in result.output


def test_bad_arguments_exit_2():
    assert run("check").exit_code == 2
    assert run("check", "layer-norm", "--device", "tpu").exit_code == 2
    assert run("check", "--all", "layer-norm").exit_code == 2
    assert run("start", "nope").exit_code == 2


def test_planned_unit_cannot_be_checked(with_a_planned_unit):
    result = _course_in(with_a_planned_unit, "check", "data-parallel")
    assert result.returncode == 2 and "no exercise to grade yet" in result.stdout + result.stderr


def test_check_without_started_workspace_exits_2():
    result = run("check", "layer-norm")
    assert result.exit_code == 2 and "course start layer-norm" in result.output


def test_reference_passes_with_json(tmp_path):
    out = tmp_path / "results.json"
    result = run("check", "layer-norm", "--reference", "--json", str(out), "--device", "cpu")
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["score"] == data["max_score"] > 0
    assert data["tests"] and all(
        set(t) >= {"name", "score", "max_score", "status", "output"} for t in data["tests"]
    )
    assert {t["status"] for t in data["tests"]} == {"passed"}
    assert data["extra_data"]["isolation"] == [sandbox.level()]


def test_start_then_check_stub_fails_with_exit_1_and_records_progress(tmp_path):
    result = run("start", "layer-norm")
    assert result.exit_code == 0
    copy = workspace.workspace_copy(LN)
    assert copy.exists()
    out = tmp_path / "r.json"
    result = run("check", "layer-norm", "--json", str(out))
    assert result.exit_code == 1
    data = json.loads(out.read_text())
    assert data["score"] == 0 and {t["status"] for t in data["tests"]} == {"failed"}
    assert workspace.load_progress()["layer-norm"]["best"] == 0
    assert "0/" in run("progress").output


def test_start_never_overwrites_work():
    run("start", "layer-norm")
    copy = workspace.workspace_copy(LN)
    copy.write_text("my precious work", encoding="utf-8")
    result = run("start", "layer-norm")
    # the message wraps at the console's width, wherever the (long) workspace path puts it
    assert result.exit_code == 0 and "left untouched" in " ".join(result.output.split())
    assert copy.read_text(encoding="utf-8") == "my precious work"


def test_build_check_detects_stale_exercise(tmp_path, monkeypatch):
    assert run("build", "--check").exit_code == 0
    original = LN.exercise_path.read_text(encoding="utf-8")
    try:
        LN.exercise_path.write_text(original.replace("Task 1", "Task one"), encoding="utf-8")
        result = run("build", "--check")
        assert result.exit_code == 1 and "stale" in result.output
        assert LN.exercise_path.read_text(encoding="utf-8") != original  # --check wrote nothing
        assert run("build").exit_code == 0
        assert LN.exercise_path.read_text(encoding="utf-8") == original
    finally:
        LN.exercise_path.write_text(original, encoding="utf-8")


@pytest.mark.parametrize("args", [["--help"], ["check", "--help"], ["--version"]])
def test_console_script_runs(args):
    proc = subprocess.run([sys.executable, "-m", "course.cli", *args], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout


QUICK_EXIT = """
import atexit, sys
from course import cli
marker = sys.argv[1]
atexit.register(lambda: open(marker, "w").write("exit handlers ran"))
sys.argv = ["course", *sys.argv[2:]]
cli.run()
print("not reached")
"""


@pytest.mark.parametrize("args, code", [(["list"], 0), (["check", "no-such-unit"], 2),
                                        (["check", "layer-norm", "--reference"], 0)])
def test_the_command_ends_at_once_with_its_code_output_and_exit_handlers(tmp_path, args,
                                                                          code):
    marker = tmp_path / "marker"
    proc = subprocess.run([sys.executable, "-c", QUICK_EXIT, str(marker), *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == code, proc.stderr
    assert marker.read_text() == "exit handlers ran"
    assert "not reached" not in proc.stdout
    if code == 0:  # everything printed arrives, through a pipe too
        assert proc.stdout.rstrip().endswith(("ready.", "limits)."))
    else:
        assert "no-such-unit" in proc.stderr


def test_info_gives_full_citation_and_files():
    result = run("info", "lstm")
    assert result.exit_code == 0
    assert "Long Short-Term Memory" in result.output and "1997" in result.output
    assert "Learning to Forget" in result.output
    assert "solutions/sequence/lstm.py" in result.output
