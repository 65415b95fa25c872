"""`course grade`: a class graded in isolation, in parallel, resumably, with a row per student.

- every student gets a row, also when the submission is missing or unreadable, with the reason;
- a re-run keeps what is graded (same bytes in the gradebook), ``--force`` regrades to the same
  gradebook, and a changed submission alone is graded again;
- a run killed half-way loses nothing it had written, and the next run completes it;
- the batch under fire: 50 submissions mixing correct, wrong, hostile and broken ones; the
  grader never falls over, every student has a row, and a second run gives an identical
  gradebook.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_broken import CASES as BROKEN
from test_hostile import CASES as HOSTILE
from test_hostile import KNOWN_HOLES

from course import batch, catalogue
from course.grading.checks import load_checks, master_source

LN = catalogue.find("layer-norm")
GELU = catalogue.find("gelu")
ENV = {**os.environ, "COURSE_PROBE_TIMEOUT": "5", "COURSE_LOAD_TIMEOUT": "15",
       "COURSE_MEMORY_MB": "3072"}


def _grade(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course.cli", "grade", *args], env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def _rows(out: Path) -> dict[tuple[str, str], dict]:
    with (out / "gradebook.csv").open(newline="", encoding="utf-8") as handle:
        return {(r["student"], r["unit"]): r for r in csv.DictReader(handle)}


def _class(root: Path) -> Path:
    """Seven students, as files and folders, two of them with both units."""
    sub = root / "submissions"
    sub.mkdir()
    (sub / "ada.py").write_text(master_source(LN), encoding="utf-8")
    (sub / "bob.ipynb").write_bytes(LN.exercise_path.read_bytes())  # untouched stub
    (sub / "cy").mkdir()
    (sub / "cy" / "06-layer-norm.ipynb").write_text("{ not json", encoding="utf-8")
    (sub / "dee").mkdir()  # an empty folder
    (sub / "eve.txt").write_text("I could not finish", encoding="utf-8")
    both = sub / "fay"
    both.mkdir()
    (both / "layer_norm.py").write_text(master_source(LN), encoding="utf-8")
    (both / "gelu.py").write_text(load_checks(GELU).mistakes[0].apply(master_source(GELU)),
                                  encoding="utf-8")
    (sub / "gus").mkdir()
    (sub / "gus" / "work.ipynb").write_bytes(GELU.exercise_path.read_bytes())
    return sub


def test_every_student_gets_a_row_with_the_reason(tmp_path):
    sub = _class(tmp_path)
    out = tmp_path / "out"
    done = _grade(str(sub), "--unit", "layer-norm", "--unit", "gelu", "--out", str(out),
                  "--workers", "2")
    assert done.returncode == 1, done.stdout + done.stderr  # some could not be graded
    rows = _rows(out)
    students = {"ada", "bob", "cy", "dee", "eve", "fay", "gus"}
    assert {s for s, _ in rows} == students and len(rows) == 14
    ln_max, gelu_max = load_checks(LN).max_score, load_checks(GELU).max_score
    assert float(rows[("ada", "layer-norm")]["score"]) == ln_max
    assert rows[("ada", "gelu")]["status"] == "graded"  # ada's one file is graded for both
    assert float(rows[("bob", "layer-norm")]["score"]) == 0
    assert rows[("cy", "layer-norm")]["status"] == "unreadable"
    assert "not JSON" in rows[("cy", "layer-norm")]["message"]
    assert rows[("dee", "layer-norm")]["status"] == "missing"
    assert "holds no .ipynb or .py file" in rows[("dee", "layer-norm")]["message"]
    assert rows[("eve", "gelu")]["status"] == "missing"
    assert "not a notebook" in rows[("eve", "gelu")]["message"]
    assert float(rows[("fay", "layer-norm")]["score"]) == ln_max
    assert 0 < float(rows[("fay", "gelu")]["score"]) < gelu_max
    assert float(rows[("gus", "gelu")]["score"]) == 0  # the gelu stub, found by its metadata
    assert rows[("gus", "layer-norm")]["status"] == "missing"
    for student in students:
        results = json.loads((out / "students" / student / "results.json").read_text())
        assert {"score", "max_score", "tests", "output"} <= set(results)
        assert (out / "students" / student / "feedback.md").exists()
    fay = json.loads((out / "students" / "fay" / "results.json").read_text())
    assert fay["score"] == ln_max + float(rows[("fay", "gelu")]["score"])
    feedback = (out / "students" / "fay" / "feedback.md").read_text()
    assert "Hint:" in feedback and "def test_" not in feedback


def test_rerun_keeps_force_regrades_and_changes_are_regraded(tmp_path):
    sub = tmp_path / "subs"
    sub.mkdir()
    (sub / "ann.py").write_text(master_source(LN), encoding="utf-8")
    (sub / "ben.py").write_text(load_checks(LN).mistakes[1].apply(master_source(LN)))
    out = tmp_path / "out"
    first = _grade(str(sub), "--unit", "layer-norm", "--out", str(out))
    assert first.returncode == 0, first.stdout + first.stderr
    before = (out / "gradebook.csv").read_bytes()
    again = _grade(str(sub), "--unit", "layer-norm", "--out", str(out))
    assert again.stdout.count("kept") == 2 and (out / "gradebook.csv").read_bytes() == before
    forced = _grade(str(sub), "--unit", "layer-norm", "--out", str(out), "--force")
    assert "kept" not in forced.stdout and (out / "gradebook.csv").read_bytes() == before
    (sub / "ben.py").write_text(master_source(LN), encoding="utf-8")  # ben fixes his work
    fixed = _grade(str(sub), "--unit", "layer-norm", "--out", str(out))
    assert fixed.stdout.count("kept") == 1
    assert float(_rows(out)[("ben", "layer-norm")]["score"]) == load_checks(LN).max_score


def test_an_interrupted_run_loses_nothing(tmp_path):
    sub = tmp_path / "subs"
    sub.mkdir()
    for i in range(6):
        (sub / f"s{i}.py").write_text(master_source(LN), encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "course.cli", "grade", str(sub), "--unit",
                             "layer-norm", "--out", str(out), "--workers", "1"], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    records = out / "students"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not list(records.glob("*/layer-norm.json")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the instructor's laptop dies mid-run
    proc.wait()
    written = sorted(p.parent.name for p in records.glob("*/layer-norm.json"))
    assert 1 <= len(written) < 6
    assert all(json.loads(p.read_text())["status"] == "graded"
               for p in records.glob("*/layer-norm.json"))
    resumed = _grade(str(sub), "--unit", "layer-norm", "--out", str(out))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert resumed.stdout.count("kept") == len(written)
    rows = _rows(out)
    assert len(rows) == 6 and all(r["status"] == "graded" for r in rows.values())


# -- the batch under fire --------------------------------------------------------------------
def _usable(param) -> bool:
    """Corpus cases that stand alone (no network oracle, gradebook or environment of theirs),
    of the layer-norm unit, and not a known hole."""
    c = param.values[0]
    source = getattr(c, "source", None) or getattr(c, "content", "")
    return (param.id not in KNOWN_HOLES and not getattr(c, "env", None)
            and not getattr(c, "gradebook", False) and getattr(c, "unit", "layer-norm")
            == "layer-norm" and "__PORT__" not in str(source))


def _fire_class(root: Path) -> dict[str, str]:
    """50 students: kind of each ('correct', 'stub', 'wrong', 'hostile', 'broken')."""
    sub = root / "class"
    sub.mkdir()
    kinds: dict[str, str] = {}
    master = master_source(LN)
    for i in range(8):
        (sub / f"correct{i:02d}.py").write_text(master + f"\n# student {i}\n")
        kinds[f"correct{i:02d}"] = "correct"
    (sub / "stub.ipynb").write_bytes(LN.exercise_path.read_bytes())
    kinds["stub"] = "stub"
    for m in load_checks(LN).mistakes:
        (sub / f"wrong-{m.id}.py").write_text(m.apply(master))
        kinds[f"wrong-{m.id}"] = "wrong"
    kinds.update(dict.fromkeys(write_hostile(sub, 16, root / "decoy-output"), "hostile"))
    kinds.update(dict.fromkeys(write_broken(sub, 50 - len(kinds)), "broken"))
    assert len(kinds) == 50, len(kinds)
    return kinds


def write_hostile(sub: Path, count: int, decoy: Path) -> list[str]:
    """The first ``count`` usable hostile cases as submissions in ``sub`` (their output
    decoy folder: ``decoy``); returns the students' names."""
    decoy.mkdir(exist_ok=True)
    names = []
    for p in [p for p in HOSTILE if _usable(p)][:count]:
        c = p.values[0]
        text = c.source.replace("__ROOT__", str(catalogue.paths.ROOT)).replace(
            "__OUT__", str(decoy))
        (sub / f"hostile-{p.id}{c.suffix}").write_text(text, encoding="utf-8")
        names.append(f"hostile-{p.id}")
    return names


def write_broken(sub: Path, count: int) -> list[str]:
    """The first ``count`` usable broken files as submissions in ``sub``; their names."""
    names = []
    for p in [p for p in BROKEN if _usable(p)][:count]:
        c = p.values[0]
        target = sub / f"broken-{p.id}{c.suffix}"
        if isinstance(c.content, bytes):
            target.write_bytes(c.content)
        else:
            target.write_text(c.content, encoding="utf-8")
        names.append(f"broken-{p.id}")
    return names


@pytest.mark.slow
def test_batch_under_fire(tmp_path):
    kinds = _fire_class(tmp_path)
    sub = tmp_path / "class"
    out = tmp_path / "out"
    first = _grade(str(sub), "--unit", "layer-norm", "--out", str(out), "--workers", "2",
                   timeout=1800)
    assert first.returncode in (0, 1), first.stdout[-3000:] + first.stderr[-3000:]
    rows = {s: r for (s, _), r in _rows(out).items()}
    assert set(rows) == {batch.safe_name(s) for s in kinds}, "every student has a row"
    assert not [s for s, r in rows.items() if r["status"] == "error"], "the grader fell over"
    most = load_checks(LN).max_score
    for student, kind in kinds.items():
        row = rows[student]
        score = float(row["score"])
        if kind == "correct":
            assert score == most, (student, row)
        elif kind == "stub":
            assert score == 0
        elif kind in ("wrong", "hostile"):
            assert row["status"] == "graded" and score < most, (student, row)
        assert row["message"], (student, row)
    assert any(r["status"] == "unreadable" for s, r in rows.items() if kinds[s] == "broken")
    book = (out / "gradebook.csv").read_bytes()
    second = _grade(str(sub), "--unit", "layer-norm", "--out", str(out), "--workers", "2",
                    "--force", timeout=1800)
    assert second.returncode == first.returncode
    assert (out / "gradebook.csv").read_bytes() == book, "a second run changed the gradebook"
