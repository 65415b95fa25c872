"""The class report: what a graded class got wrong, counted from the mistake bank.

A real class is graded (``course grade``), and every figure of ``class_report.md`` and
``mistakes.csv`` is recomputed here from the raw records the batch wrote, so the report can
only pass by counting what the grader found. The progress bar is exercised with a runner whose
counts are known.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from course import catalogue
from course.class_report import UNMATCHED, fold, markdown, tally
from course.grading.checks import load_checks, master_source
from course.progress import GradingProgress

LN = catalogue.find("layer-norm")
ENV = {**os.environ, "COURSE_PROBE_TIMEOUT": "5", "COURSE_LOAD_TIMEOUT": "15"}


def _class(root: Path) -> Path:
    sub = root / "class"
    sub.mkdir()
    master = master_source(LN)
    bank = load_checks(LN).mistakes
    (sub / "ann.py").write_text(master)
    (sub / "ben.py").write_text(master + "\n# ben\n")
    (sub / "cat.ipynb").write_bytes(LN.exercise_path.read_bytes())  # the stub
    (sub / "dan.py").write_text(bank[0].apply(master))
    (sub / "eli.py").write_text(bank[0].apply(master) + "\n# eli\n")
    (sub / "fin.py").write_text(bank[1].apply(master))
    # a wrong answer no banked mistake describes: every output doubled
    assert master.count("return y") == 1
    (sub / "gil.py").write_text(master.replace("return y", "return 2 * y"))
    (sub / "hal.ipynb").write_text("{ broken")
    return sub


def test_the_report_counts_what_the_grader_found(tmp_path):
    sub, out = _class(tmp_path), tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "course.cli", "grade", str(sub), "--unit",
                           "layer-norm", "--out", str(out), "--log"], env=ENV,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 1, done.stdout + done.stderr  # hal's notebook is unreadable
    records = [json.loads(p.read_text()) for p in sorted(out.glob("students/*/layer-norm.json"))]
    assert len(records) == 8
    graded = [r for r in records if r["status"] == "graded"]
    bank = load_checks(LN).mistakes
    by_mistake: dict[str, set[str]] = {}
    failed = unmatched = 0
    for r in graded:
        for c in r["result"]["checks"]:
            if c["status"] == "failed" and not c["message"].startswith("not implemented"):
                failed += 1
                unmatched += not c["mistake"]
                if c["mistake"]:
                    by_mistake.setdefault(c["mistake"], set()).add(r["student"])
    assert by_mistake.get(bank[0].id) == {"dan", "eli"}  # the grader did diagnose them
    assert "fin" in by_mistake.get(bank[1].id, set())
    assert unmatched > 0  # gil's doubling, and the stub's other failures
    rows = list(csv.DictReader(io.StringIO((out / "mistakes.csv").read_text())))
    counts = {r["mistake"]: int(r["students"]) for r in rows if r["mistake"] != UNMATCHED}
    assert set(counts) == {m.id for m in bank}, "every banked mistake has a row, also at 0"
    assert counts == {m.id: len(by_mistake.get(m.id, ())) for m in bank}
    first = next(r for r in rows if r["mistake"] == bank[0].id)
    assert first["hint"] == bank[0].hint and first["share_of_graded"] == f"{2 / len(graded):.3f}"
    assert rows[0]["mistake"] == bank[0].id, "the most common mistake comes first"
    report = (out / "class_report.md").read_text()
    assert f"{len(graded)} graded: " in report and "Not graded: 1 unreadable." in report
    assert f"{unmatched} of {failed} failed checks" in report
    for info, _ in load_checks(LN).checks:
        ran = [c for r in graded for c in r["result"]["checks"] if c["id"] == info.id]
        share = 100 * sum(c["status"] == "passed" for c in ran) / len(ran)
        assert f"| {info.title} | {share:.0f} % | {len(ran)} |" in report
    full = sum(r["score"] == r["max_score"] for r in graded)
    assert f"full marks {full}, zero 1." in report  # ann and ben; the stub scores 0
    assert "Most common known mistakes" in done.stdout and bank[0].id in done.stdout


def test_the_report_is_deterministic_and_folds_numbers():
    assert fold("off by 0.51 at [3, 4]\nmore") == fold("off by 1e-3 at [1, 2]")
    record = {"student": "s", "unit": "layer-norm", "status": "graded", "score": 0.0,
              "result": {"checks": [{"id": "forward", "title": "t", "status": "failed",
                                     "message": "max difference 0.5", "mistake": None}]}}
    other = {**record, "student": "t"}
    one = markdown(tally([record, other], [LN]))
    assert one == markdown(tally([other, record], [LN]))
    assert "2× (2 student(s)): max difference 0.5" in one


class _Runner:
    notes: list[str] = []

    def running(self) -> int:
        return 2

    def results(self, jobs):  # pragma: no cover - not called here
        return iter(())


def test_the_progress_bar_shows_done_running_failed_and_time_left():
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=140)
    with GradingProgress(console) as bar:
        bar.start(total=5, kept=1, runner=_Runner())
        bar.record({"status": "graded"}, kept=True)
        bar.record({"status": "graded"}, kept=False)
        bar.record({"status": "error"}, kept=False)
    text = screen.getvalue()
    assert "3/5 done · 2 running · 1 failed · 1 kept" in text
    assert "left" in text
