"""Every check is also a pytest marker: ``pytest autograder -m "check(task='layer_norm')"``
selects a task's checks, ``-m "check(public=True)"`` the public ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from course.catalogue import find
from course.grading.checks import load_checks

ROOT = Path(__file__).resolve().parent.parent


def _collected(expression: str) -> set[str]:
    unit = find("layer-norm")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(unit.checks_path),
         "-m", expression, "--collect-only", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr  # 5: nothing selected
    return {line.rsplit("::", 1)[1].removeprefix("test_")
            for line in proc.stdout.splitlines() if "::" in line}


@pytest.mark.parametrize("expression, keep", [
    ("check(task='layer_norm_backward')", lambda info: info.task == "layer_norm_backward"),
    ("check(public=True)", lambda info: info.public),
    ("check(id='forward')", lambda info: info.id == "forward"),
])
def test_a_marker_expression_selects_exactly_those_checks(expression, keep):
    infos = [info for info, _ in load_checks(find("layer-norm")).checks]
    expected = {info.id for info in infos if keep(info)}
    assert expected and expected != {info.id for info in infos}
    assert _collected(expression) == expected
