"""The learner's notebook journey, in a real Jupyter kernel: the generated exercise runs top to
bottom, its check cells report (never crash) on the untouched stub, and report success once
the solution cells hold the reference code."""

from __future__ import annotations

import copy
import re

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

from course.build import CHECK_TAG, SOLUTION_TAG
from tests.conftest import gradable_units

UNITS = gradable_units()


def _execute(nb, cwd):
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def _check_outputs(nb) -> list[str]:
    texts = []
    for cell in nb.cells:
        if cell.cell_type == "code" and CHECK_TAG in cell.metadata.get("tags", []):
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                texts.append(data.get("text/html", "") + data.get("text/plain", ""))
    return texts


def _with_reference(unit, nb):
    master = [c for c in jupytext.read(unit.solution_path).cells
              if c.cell_type == "code" and "BEGIN SOLUTION" in c.source]
    filled = copy.deepcopy(nb)
    slots = [c for c in filled.cells if SOLUTION_TAG in c.metadata.get("tags", [])]
    assert len(slots) == len(master)
    for slot, ref in zip(slots, master):
        slot.source = ref.source
    return filled


@pytest.mark.slow
@pytest.mark.parametrize("unit", UNITS, ids=[u.slug for u in UNITS])
def test_stub_notebook_runs_and_reports_failures(unit, tmp_path):
    nb = _execute(nbformat.read(unit.exercise_path, as_version=4), tmp_path)
    outputs = _check_outputs(nb)
    assert len(outputs) >= 2
    assert all("not implemented yet" in text for text in outputs[:-1] if text)
    assert "All public checks passed" not in "".join(outputs)


@pytest.mark.slow
@pytest.mark.parametrize("unit", UNITS, ids=[u.slug for u in UNITS])
def test_filled_notebook_passes_public_checks(unit, tmp_path):
    nb = _with_reference(unit, nbformat.read(unit.exercise_path, as_version=4))
    outputs = _check_outputs(_execute(nb, tmp_path))
    assert outputs, "no check cell reported"
    *tasks, whole = outputs
    # a task's cell says which checks passed; only the final check() speaks for the exercise
    assert all(re.search(r"All \d+ public checks of `.+` passed", text)
               and "All public checks passed" not in text for text in tasks if text), tasks
    assert "All public checks passed" in whole, whole
