"""For every ready unit, through the learner's path (isolated child process):

- the master solution, submitted as a .py file, scores full marks;
- the generated exercise notebook, untouched, scores zero;
- every banked mistake loses points and is diagnosed with its own hint, never another's;
- the bank holds at least five mistakes, each a real edit of the master;
- the committed exercise notebook matches its master, and leaks no solution code.
"""

from __future__ import annotations

import pytest

from course.build import build_notebook, render
from course.grading.checks import load_checks, master_source
from course.grading.engine import grade_submission
from course.isolation import sandbox
from course.markers import solution_lines
from tests.conftest import gradable_units

UNITS = gradable_units()
MISTAKES = [(u, m) for u in UNITS for m in load_checks(u).mistakes]


def _ids(value):
    if hasattr(value, "slug"):
        return value.slug
    return getattr(value, "id", str(value))


@pytest.mark.parametrize("unit", UNITS, ids=_ids)
def test_reference_scores_full_marks(unit):
    result = grade_submission(unit, unit.solution_path, device="cpu")
    failures = {c.id: c.output for c in result.checks if c.status != "passed"}
    assert not failures, failures
    assert result.score == result.max_score > 0
    assert result.isolation == sandbox.level()
    for c in result.checks:  # a failing case and a passed case can never read the same
        repeated = sorted({case for case in c.cases if c.cases.count(case) > 1})
        assert not repeated, f"{c.id}: case labels used twice: {repeated}"


@pytest.mark.parametrize("unit", UNITS, ids=_ids)
def test_untouched_stub_scores_zero(unit):
    result = grade_submission(unit, unit.exercise_path, device="cpu")
    assert result.checks, "no checks ran"
    assert result.score == 0, [(c.id, c.output) for c in result.checks if c.score]
    assert all("not implemented" in c.output.lower() or c.status == "failed"
               for c in result.checks)


@pytest.mark.parametrize(("unit", "mistake"), MISTAKES, ids=[f"{u.slug}-{m.id}" for u, m in
                                                               MISTAKES])
def test_mistake_is_rejected_and_diagnosed(unit, mistake, write):
    path = write(f"{unit.module}_{mistake.id}.py", mistake.apply(master_source(unit)))
    result = grade_submission(unit, path, device="cpu")
    failed = [c for c in result.checks if c.status == "failed"]
    assert failed, f"mistake {mistake.id} passed every check"
    assert result.score < result.max_score
    diagnosed = {c.mistake for c in failed} - {None}
    assert mistake.id in diagnosed, [(c.id, c.output) for c in failed]
    assert diagnosed == {mistake.id}, f"also diagnosed as {diagnosed - {mistake.id}}"
    hinted = [c for c in failed if c.mistake == mistake.id]
    assert all(mistake.hint in c.output for c in hinted)


@pytest.mark.parametrize("unit", UNITS, ids=_ids)
def test_mistake_bank_is_large_and_distinct(unit):
    checks = load_checks(unit)
    assert len(checks.mistakes) >= 5
    assert len({m.id for m in checks.mistakes}) == len(checks.mistakes)
    source = master_source(unit)
    variants = {m.apply(source) for m in checks.mistakes}  # raises if an edit does not apply
    assert len(variants) == len(checks.mistakes) and source not in variants


@pytest.mark.parametrize("unit", UNITS, ids=_ids)
def test_checks_are_well_formed(unit):
    checks = load_checks(unit)
    assert checks.checks, "no checks"
    assert any(info.public for info, _ in checks.checks), "no public check for the notebook"
    assert all(info.points > 0 for info, _ in checks.checks)
    assert checks.forbidden, "every unit forbids the library call that would make it trivial"
    assert len({info.id for info, _ in checks.checks}) == len(checks.checks)


@pytest.mark.parametrize("unit", UNITS, ids=_ids)
def test_committed_exercise_matches_master(unit):
    assert unit.exercise_path.read_text(encoding="utf-8") == render(build_notebook(unit)), (
        f"{unit.exercise_path} is stale: run `course build`"
    )


@pytest.mark.parametrize("unit", UNITS, ids=_ids)
def test_exercise_leaks_no_solution_code(unit):
    text = unit.exercise_path.read_text(encoding="utf-8")
    leaked = [line for line in solution_lines(master_source(unit))
              if len(line) > 12 and line.replace('"', '\\"') in text]
    assert not leaked, leaked
    assert "BEGIN SOLUTION" not in text
