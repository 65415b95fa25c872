"""The Gradescope bundle, run locally against a temporary /autograder tree.

`run_autograder` must grade /autograder/submission into /autograder/results/results.json with
only what the bundle carries (COURSE_ROOT points into its source/), and always leave a results
file, with the reason, when the submission is missing or unreadable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from course import catalogue
from course.export import gradescope
from course.grading.checks import load_checks, master_source

UNIT = catalogue.find("layer-norm")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gradescope")
    gradescope.export(UNIT, out)
    return out


def _run(bundle: Path, root: Path, files: dict[str, str | bytes]) -> dict:
    submission = root / "submission"
    submission.mkdir(parents=True)
    for name, content in files.items():
        path = submission / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "PYTHON": sys.executable}
    env.pop("COURSE_ROOT", None)
    done = subprocess.run(["bash", str(bundle / "run_autograder")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))


def test_bundle_holds_scripts_and_this_unit_only(bundle):
    names = zipfile.ZipFile(bundle / "autograder.zip").namelist()
    assert {"setup.sh", "run_autograder"} <= set(names)
    assert "source/solutions/optimization/layer_norm.py" in names
    assert "source/autograder/optimization/test_layer_norm.py" in names
    assert not [n for n in names if "test_gelu" in n or n.startswith("source/tests/")]
    assert os.access(bundle / "run_autograder", os.X_OK)
    assert "pip install" in (bundle / "setup.sh").read_text()


@pytest.mark.slow
def test_run_autograder_grades_the_submission(bundle, tmp_path):
    results = _run(bundle, tmp_path / "ref", {"06-layer-norm.ipynb":
                                             UNIT.exercise_path.read_text(encoding="utf-8")})
    assert results["score"] == 0 and results["tests"], "the untouched stub scores zero"
    mistake = load_checks(UNIT).mistakes[0]
    results = _run(bundle, tmp_path / "mistake", {"layer_norm.py": mistake.apply(
        master_source(UNIT))})
    most = load_checks(UNIT).max_score
    assert results["max_score"] == most and 0 < results["score"] < most
    assert any(mistake.hint in t["output"] for t in results["tests"])
    results = _run(bundle, tmp_path / "full", {"layer_norm.py": master_source(UNIT)})
    assert results["score"] == most
    assert results["extra_data"]["units"][0]["submission"].endswith("layer_norm.py")


@pytest.mark.slow
def test_missing_or_unreadable_submission_still_gets_results(bundle, tmp_path):
    results = _run(bundle, tmp_path / "none", {"notes.txt": "sorry"})
    assert results["score"] == 0 and "No notebook or .py file" in results["output"]
    results = _run(bundle, tmp_path / "junk", {"06-layer-norm.ipynb": b"\x00\xff junk"})
    assert results["score"] == 0 and "could not be read" in results["output"]
