"""``course export gradescope``: a Gradescope autograder bundle for one unit.

Written under DIR (and zipped as ``DIR/autograder.zip``, the file to upload)::

    setup.sh          installs Python, torch (CPU) and the course from source/ (image build time)
    run_autograder    grades /autograder/submission into /autograder/results/results.json
    source/           the course package, this unit's master and hidden checks, pyproject.toml

``run_autograder`` reads its paths from ``$AUTOGRADER_ROOT`` (default ``/autograder``) and its
interpreter from ``$PYTHON`` (default ``python3``), so it runs locally against a temporary tree
exactly as it runs on Gradescope. Learner code is graded with the engine's isolation (Gradescope
containers rarely allow bubblewrap, so expect process isolation; the results say which).
Whatever goes wrong, a ``results.json`` is written, with the reason in its ``output``.
"""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path

from course import paths
from course.catalogue import Unit, find

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder image (network allowed here only).
set -euo pipefail
cd "$(dirname "$0")/source"
apt-get update -qq && apt-get install -y -qq python3 python3-pip python3-venv bubblewrap || true
python3 -m pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu
python3 -m pip install --quiet .
"""

RUN = """#!/usr/bin/env bash
# Grades the submission of unit {slug}; paths configurable for a local run.
set -u
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
HERE="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$ROOT/results"
export COURSE_ROOT="$HERE/source"
export COURSE_SANDBOX_HIDE="$HERE/source/solutions:$HERE/source/autograder"
exec "${{PYTHON:-python3}}" -m course.export.gradescope {slug} "$ROOT/submission" \\
  "$ROOT/results/results.json" --budget "${{COURSE_BUDGET:-{budget:g}}}"
"""


def export(unit: Unit, out: Path, budget: float = 60.0) -> list[Path]:
    """Write the bundle for ``unit`` under ``out``; returns setup.sh, run_autograder, zip.
    ``budget``: the seconds a submission's code may take in all (``$COURSE_BUDGET`` at grading
    time overrides it)."""
    out = Path(out)
    source = out / "source"
    if source.exists():
        shutil.rmtree(source)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(paths.ROOT / "course", source / "course", ignore=ignore)
    for path in (unit.solution_path, unit.checks_path, paths.AUTOGRADER / "conftest.py"):
        target = source / path.relative_to(paths.ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(paths.ROOT / name, source / name)
    setup, run = out / "setup.sh", out / "run_autograder"
    setup.write_text(SETUP, encoding="utf-8")
    run.write_text(RUN.format(slug=unit.slug, budget=budget), encoding="utf-8")
    for script in (setup, run):
        script.chmod(0o755)
    bundle = out / "autograder.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted([setup, run, *source.rglob("*")]):
            if path.is_file():
                info = zipfile.ZipInfo.from_file(path, path.relative_to(out).as_posix())
                info.date_time = (2020, 1, 1, 0, 0, 0)  # reproducible bytes
                archive.writestr(info, path.read_bytes())
    return [setup, run, bundle]


def _failure(message: str, max_score: float) -> dict:
    return {"score": 0.0, "max_score": max_score, "output": message, "tests": []}


def grade_folder(slug: str, submission_dir: Path, results: Path,
                 budget: float | None = None) -> dict:
    """Grade the one submission in ``submission_dir`` and write ``results``; the JSON."""
    from course.batch import pick_file, submission_files
    from course.isolation.forkserver import prestart

    prestart()  # the fork server imports torch while this process does
    from course.grading.checks import load_checks
    from course.grading.engine import SubmissionError, grade_submission
    from course.report import gradescope_json

    unit = find(slug)
    max_score = load_checks(unit).max_score
    files = submission_files(Path(submission_dir))
    chosen = pick_file(files, unit) if files else None
    if chosen is None:
        found = ", ".join(p.name for p in files) or "nothing"
        data = _failure(f"No notebook or .py file for unit {slug} was found in the submission "
                        f"(found: {found}). Submit your {unit.stem}.ipynb.", max_score)
    else:
        try:
            data = gradescope_json([grade_submission(unit, chosen, device="cpu",
                                                     budget=budget)])
        except SubmissionError as exc:
            data = _failure(f"Your submission could not be read: {exc}", max_score)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return data


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m course.export.gradescope")
    parser.add_argument("unit")
    parser.add_argument("submission_dir", type=Path)
    parser.add_argument("results", type=Path)
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds all of the submission's code may take")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage
        return 2 if exc.code else 0
    slug, results = args.unit, args.results
    try:
        data = grade_folder(slug, args.submission_dir, results, args.budget)
    except Exception as exc:  # always leave a results.json behind
        results.parent.mkdir(parents=True, exist_ok=True)
        data = _failure(f"The autograder failed (not your fault): {type(exc).__name__}: {exc}",
                        0.0)
        results.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"{slug}: {data['score']:g}/{data['max_score']:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
