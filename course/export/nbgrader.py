"""``course export nbgrader``: a complete nbgrader course, one assignment per unit.

Layout written under DIR::

    nbgrader_config.py            course id, per-cell timeout, COURSE_ROOT for grading kernels
    source/<slug>/<slug>.ipynb    the assignment, with nbgrader cell metadata (schema 3)

The source notebook is the master solution turned into an nbgrader assignment:

- markdown cells as in the exercise (context, lecture link, citations);
- the master's code cells without solution regions (imports, helpers) and the setup cell are
  read-only (locked);
- each code cell with ``# BEGIN SOLUTION`` / ``# END SOLUTION`` is an autograded answer cell
  (nbgrader replaces the region by ``# YOUR CODE HERE`` / ``raise NotImplementedError()``, the
  same stub as the exercise), followed by the exercise's ``check(...)`` cell for that task;
- at the end, one locked test cell per check, worth the check's points. A public check's cell is
  ``grade_check("<slug>", "<id>")``; a hidden check's call sits in a
  ``### BEGIN HIDDEN TESTS`` region, which nbgrader strips at release and restores at autograde,
  so the release names no hidden check. The checks' code lives in the course (``autograder/``),
  never in the notebook, so neither the release, nor nbgrader's feedback, nor ``gradebook.db``
  holds check code or reference code.

Stock ``nbgrader autograde`` runs these cells in the student's kernel: convenient, not
trustworthy (see :mod:`course.classroom`). ``course grade --nbgrader`` grades the same
submissions in isolation and writes its scores into the gradebook.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from course import paths
from course.build import defined_names, master_notebook, notebook_metadata, render
from course.catalogue import Unit
from course.grading.checks import load_checks
from course.markers import has_solution

COURSE_ID = "deep-learning-history"
SCHEMA_VERSION = 3
SETUP = ('from course.notebook import Checker\nfrom course.classroom import grade_check\n\n'
         'check = Checker("{slug}")')


def assignment_name(unit: Unit) -> str:
    return unit.slug


def notebook_name(unit: Unit) -> str:
    return f"{unit.slug}.ipynb"


def answer_id(names: list[str], index: int) -> str:
    return "answer-" + ("-".join(names) if names else f"cell{index}")


def test_id(position: int) -> str:
    """The grade cell of the unit's ``position``-th check (opaque: a hidden check's id must
    not appear in the release)."""
    return f"check-{position:02d}"


def _meta(cell, grade_id: str, *, solution: bool, grade: bool, locked: bool,
          points: float | None = None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked,
            "schema_version": SCHEMA_VERSION, "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    cell.metadata["nbgrader"] = meta
    return cell


def _read_only(source: str, grade_id: str, kind: str = "code"):
    cell = (nbformat.v4.new_code_cell(source) if kind == "code"
            else nbformat.v4.new_markdown_cell(source))
    return _meta(cell, grade_id, solution=False, grade=False, locked=True)


def _intro(unit: Unit) -> str:
    cites = "\n".join(f"- {p.citation()}" for p in unit.papers)
    return (
        f"**Unit {unit.number} — {unit.title}.**\n\n{cites}\n\n"
        "Fill in every `# YOUR CODE HERE`. The `check(...)` cell after each task runs its "
        "public checks right here (where the course's checks are installed). The cells under "
        "*Graded checks* are what your instructor grades; some of them are hidden until then. "
        "Do not rename the functions or classes you are asked to write."
    )


def source_notebook(unit: Unit) -> nbformat.NotebookNode:
    """The nbgrader source notebook of ``unit`` (not written)."""
    master = master_notebook(unit)
    cells = []
    intro_done = False
    for index, cell in enumerate(master.cells):
        if cell.cell_type == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(cell.source))
            if not intro_done:
                intro_done = True
                cells.append(_read_only(_intro(unit), "intro", kind="markdown"))
                setup = _read_only(SETUP.format(slug=unit.slug), "setup")
                setup.metadata["tags"] = ["course-check"]
                cells.append(setup)
            continue
        if cell.cell_type != "code":
            continue
        if not has_solution(cell.source):
            cells.append(_read_only(cell.source, f"context-{index:02d}"))
            continue
        names = defined_names(cell.source)
        answer = nbformat.v4.new_code_cell(cell.source)
        cells.append(_meta(answer, answer_id(names, index), solution=True, grade=False,
                           locked=False))
        checker = nbformat.v4.new_code_cell("check(" + ", ".join(f'"{n}"' for n in names) + ")")
        checker.metadata["tags"] = ["course-check"]
        cells.append(checker)
    cells.append(_read_only(
        "## Graded checks\n\nEach cell below is one check, worth the points nbgrader shows. "
        "Hidden checks (more shapes, dtypes, gradients, edge cases) are filled in when your "
        "work is graded.", "graded-checks-intro", kind="markdown"))
    for position, (info, _) in enumerate(load_checks(unit).checks, start=1):
        if info.public:
            source = f'grade_check("{unit.slug}", "{info.id}")'
        else:
            source = ("# A hidden check: it runs when your work is graded.\n"
                      "### BEGIN HIDDEN TESTS\n"
                      f'grade_check("{unit.slug}", "{info.id}")\n'
                      "### END HIDDEN TESTS")
        test = nbformat.v4.new_code_cell(source)
        test.metadata["tags"] = ["course-check"]
        cells.append(_meta(test, test_id(position), solution=False, grade=True, locked=True,
                           points=info.points))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = notebook_metadata(unit)
    for number, cell in enumerate(nb.cells):
        cell["id"] = f"{unit.module.replace('_', '-')}-nbg-{number:02d}"
    return nb


CONFIG = '''"""nbgrader configuration written by `course export nbgrader` (safe to edit)."""
import os

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {course_id!r}
# Grading kernels find the course's checks and references here.
os.environ.setdefault("COURSE_ROOT", {root!r})
# One cell may run a training-to-target check; a hung cell is interrupted after this long.
c.Execute.timeout = {timeout}
c.Execute.interrupt_on_timeout = True
c.ExecutePreprocessor.timeout = {timeout}
'''


def export(units: list[Unit], out: Path, timeout: int = 300) -> list[Path]:
    """Write the course for ``units`` under ``out``; returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    config = out / "nbgrader_config.py"
    config.write_text(CONFIG.format(course_id=COURSE_ID, root=str(paths.ROOT), timeout=timeout),
                      encoding="utf-8")
    written.append(config)
    for unit in units:
        folder = out / "source" / assignment_name(unit)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / notebook_name(unit)
        path.write_text(render(source_notebook(unit)), encoding="utf-8")
        written.append(path)
    return written


def answer_ids(unit: Unit) -> list[str]:
    """grade_ids of the unit's answer cells, in order."""
    return [c.metadata["nbgrader"]["grade_id"] for c in source_notebook(unit).cells
            if c.metadata.get("nbgrader", {}).get("solution")]


def write_gradebook(course_dir: Path, assignment: str, unit: Unit, records: list[dict]) -> int:
    """Write ``course grade`` records into nbgrader's ``gradebook.db`` as manual scores (which
    nbgrader's export and formgrader prefer over its own autograded scores), with the reason in
    the first answer cell's comment. Students and submissions missing from the gradebook (a
    kernel that died during ``nbgrader autograde`` leaves none) are created. Returns the number
    of students written."""
    from nbgrader.api import Gradebook, MissingEntry

    from course.batch import crash_point

    checks = load_checks(unit).checks
    notebook = Path(notebook_name(unit)).stem
    first_answer = answer_ids(unit)[0]
    written = 0
    with Gradebook(f"sqlite:///{Path(course_dir) / 'gradebook.db'}") as gb:
        gb.find_assignment(assignment)  # raises MissingEntry: run generate_assignment first
        for record in records:
            student = record["student"]
            gb.update_or_create_student(student)
            try:
                gb.find_submission(assignment, student)
            except MissingEntry:
                gb.add_submission(assignment, student)
            scores = {c["id"]: c["score"] for c in (record["result"] or {}).get("checks", [])}
            for position, (info, _) in enumerate(checks, start=1):
                grade = gb.find_grade(test_id(position), notebook, assignment, student)
                grade.manual_score = float(scores.get(info.id, 0.0))
            comment = gb.find_comment(first_answer, notebook, assignment, student)
            comment.manual_comment = (
                f"Graded by `course grade` ({record['status']}): {record['score']:g}/"
                f"{record['max_score']:g}. {record['message']}")
            written += 1
            crash_point("inside-gradebook-db")  # before the commit: nothing half-written
        gb.db.commit()
    return written
