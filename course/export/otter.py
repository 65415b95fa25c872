"""``course export otter``: one otter-grader master notebook per unit.

Layout written under DIR::

    <slug>/<slug>.ipynb    the master, named after the student notebook

``otter assign <slug>/<slug>.ipynb dist`` turns it into ``dist/student/`` (the release) and
``dist/autograder/`` (a zip for ``otter run`` or Gradescope). The master is the unit's master
solution in otter's format (exception-style tests, no Docker, no network, no PDFs):

- a raw ``# ASSIGNMENT CONFIG`` cell;
- the exercise's context markdown, an intro, and a setup cell importing ``grade_check``
  (outside every question, so it is never stripped or graded);
- the master's code cells without solution regions (imports, helpers), outside questions;
- one question per answer cell (the cell with ``# BEGIN SOLUTION`` / ``# END SOLUTION``), named
  after the tasks it defines (``CheckInfo.task``) and worth their checks' points: the task's
  markdown as the prompt, the answer cell (otter replaces each region by ``...``), and one
  test cell per check. Checks whose task no answer cell defines go in a final question;
- a test cell is one function ``test_<id>(env)`` calling
  ``grade_check("<slug>", "<id>", namespace=env)``: otter passes the student's whole global
  environment to a parameter named ``env``. A hidden check's cell starts with ``# HIDDEN``, so
  otter keeps it out of ``dist/student`` (the release names no hidden check). The question's
  ``points`` is the list of its checks' points, in test order (otter sums it).

The checks' code lives in the course (``autograder/``), never in the notebook. As with
nbgrader, otter runs the tests in the student's kernel: convenient, not trustworthy (see
:mod:`course.classroom`); ``course grade`` grades the same notebooks in isolation.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from course import build
from course.build import SOLUTION_TAG, defined_names, notebook_metadata, render
from course.catalogue import Unit
from course.grading.checks import CheckInfo, load_checks
from course.markers import has_solution

OTHER_QUESTION = "other_checks"
SETUP = ("# The graded checks come from the course package (it must be installed).\n"
         "from course.classroom import grade_check")
CONFIG = """# ASSIGNMENT CONFIG
name: {name}
environment: null
requirements: null
init_cell: true
check_all_cell: false
export_cell: false
solutions_pdf: false
template_pdf: false
run_tests: true
save_environment: false
tests:
  files: false
  ok_format: false
generate:
  pdf: false
  filtering: false
  show_stdout: true"""


def notebook_name(unit: Unit) -> str:
    return f"{unit.slug}.ipynb"


def test_source(unit: Unit, info: CheckInfo) -> str:
    """The exception-style test cell of one check (otter keeps the function, drops the call)."""
    return (("# HIDDEN\n" if not info.public else "")
            + f"def test_{info.id}(env):\n"
            "    from course.classroom import grade_check\n\n"
            f"    grade_check({json.dumps(unit.slug)}, {json.dumps(info.id)}, namespace=env)\n\n\n"
            f"test_{info.id}(globals())")


def _raw(source: str):
    return nbformat.v4.new_raw_cell(source)


def _intro(unit: Unit) -> str:
    cites = "\n".join(f"- {p.citation()}" for p in unit.papers)
    return (
        f"**Unit {unit.number} — {unit.title}.**\n\n{cites}\n\n"
        "Replace every `...` in the answer cells with your code. The `grader.check(...)` cell "
        "after each task runs its public checks right here (where the course is installed); "
        "more checks are hidden until your work is graded. Do not rename the functions or "
        "classes you are asked to write."
    )


def _question(unit: Unit, name: str, checks: list[CheckInfo], prompt: list, answer=None
              ) -> list:
    """The cells of one question: config, prompt, solution block, tests block."""
    points = "[" + ", ".join(f"{info.points:g}" for info in checks) + "]" if checks else "0"
    cells = [_raw(f"# BEGIN QUESTION\nname: {name}\npoints: {points}"), *prompt]
    if answer is not None:
        cells += [_raw("# BEGIN SOLUTION"), answer, _raw("# END SOLUTION")]
    if checks:
        cells.append(_raw("# BEGIN TESTS"))
        cells += [nbformat.v4.new_code_cell(test_source(unit, info)) for info in checks]
        cells.append(_raw("# END TESTS"))
    cells.append(_raw("# END QUESTION"))
    return cells


def master_notebook(unit: Unit) -> nbformat.NotebookNode:
    """The otter master notebook of ``unit`` (not written)."""
    infos = [info for info, _ in load_checks(unit).checks]
    source = build.master_notebook(unit)
    answer_names = {name for cell in source.cells
                    if cell.cell_type == "code" and has_solution(cell.source)
                    for name in defined_names(cell.source)}
    cells = [_raw(CONFIG.format(name=json.dumps(unit.slug)))]
    pending: list = []  # markdown since the last code cell: the next question's prompt
    intro_done = False
    for cell in source.cells:
        if cell.cell_type == "markdown":
            markdown = nbformat.v4.new_markdown_cell(cell.source)
            if intro_done:
                pending.append(markdown)
                continue
            intro_done = True
            setup = nbformat.v4.new_code_cell(SETUP)
            setup.metadata["tags"] = ["course-check"]
            cells += [markdown, nbformat.v4.new_markdown_cell(_intro(unit)), setup]
            continue
        if cell.cell_type != "code":
            continue
        tags = list(cell.metadata.get("tags", []))
        if not has_solution(cell.source):
            code = nbformat.v4.new_code_cell(cell.source)
            if tags:
                code.metadata["tags"] = tags
            cells += [*pending, code]
            pending = []
            continue
        names = defined_names(cell.source)
        checks = [info for info in infos if info.task in names]
        tasks = [t for t in dict.fromkeys(info.task for info in checks) if t] or names or ["answer"]
        answer = nbformat.v4.new_code_cell(cell.source)
        answer.metadata["tags"] = sorted(set(tags) | {SOLUTION_TAG})
        cells += _question(unit, "_".join(tasks), checks, pending, answer)
        pending = []
    cells += pending
    rest = [info for info in infos if info.task not in answer_names]
    if rest:
        prompt = nbformat.v4.new_markdown_cell(
            "## Further checks\n\nThese checks look at your work as a whole.")
        cells += _question(unit, OTHER_QUESTION, rest, [prompt])
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = notebook_metadata(unit)
    for number, cell in enumerate(nb.cells):
        cell["id"] = f"{unit.module.replace('_', '-')}-otter-{number:02d}"
    return nb


def export(units: list[Unit], out: Path) -> list[Path]:
    """Write one otter master notebook per unit under ``out``; returns the files written."""
    out = Path(out)
    written = []
    for unit in units:
        folder = out / unit.slug
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / notebook_name(unit)
        path.write_text(render(master_notebook(unit)), encoding="utf-8")
        written.append(path)
    return written
