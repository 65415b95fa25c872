"""Generating exercise notebooks from master solution files.

A master (``solutions/<part>/<unit>.py``, jupytext percent format) is the single source of a
unit's exercise. ``course build`` turns it into ``exercises/<NN-part>/<MM-slug>.ipynb``:

- the first markdown cell (context) gains a link to the lecture and how to check work;
- a hidden-from-grading setup cell creates ``check = Checker("<slug>")``;
- every solution region becomes ``# YOUR CODE HERE`` / ``raise NotImplementedError()``;
- after each cell with a solution region comes a check cell ``check("<name>", ...)`` for the
  functions and classes that cell defines, and the notebook ends with ``check()``.

Check and setup cells carry the ``course-check`` tag, so grading skips them. The output is
deterministic (stable cell ids, no outputs), so ``course build --check`` can compare bytes.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

from course.catalogue import Unit, units
from course.markers import has_solution, strip_solutions

CHECK_TAG = "course-check"
SOLUTION_TAG = "course-solution"
# The kernelspec JupyterLab writes when ipykernel's Python 3 kernel starts: files carry exactly
# this, so opening one does not mark it modified.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
# What the kernel reports of its language, less the Python version (machine-specific; the only
# field a save after running adds to a generated notebook).
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}


def defined_names(source: str) -> list[str]:
    """Public functions and classes a cell defines (what its check cell checks)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")
    ]


def _relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target, start)).as_posix()


def master_notebook(unit: Unit) -> nbformat.NotebookNode:
    """The master solution file read as a notebook (solution markers still in place)."""
    return jupytext.reads(unit.solution_path.read_text(encoding="utf-8"), fmt="py:percent")


def build_notebook(unit: Unit) -> nbformat.NotebookNode:
    """The exercise notebook for ``unit`` (not written to disk)."""
    master = master_notebook(unit)
    cells: list[nbformat.NotebookNode] = []
    lecture = _relative(unit.lecture_path, unit.exercise_path.parent)
    intro_done = False
    for cell in master.cells:
        source = cell.source
        if cell.cell_type == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(source))
            if not intro_done:
                intro_done = True
                cells.append(nbformat.v4.new_markdown_cell(_intro(unit, lecture)))
                cells.append(_check_cell(f'from course.notebook import Checker\n\ncheck = '
                                         f'Checker("{unit.slug}")'))
            continue
        if cell.cell_type != "code":
            continue
        tags = list(cell.metadata.get("tags", []))
        if has_solution(source):
            code = nbformat.v4.new_code_cell(strip_solutions(source))
            code.metadata["tags"] = sorted(set(tags) | {SOLUTION_TAG})
            cells.append(code)
            names = defined_names(source)
            args = ", ".join(f'"{n}"' for n in names)
            cells.append(_check_cell(f"check({args})"))
        else:
            code = nbformat.v4.new_code_cell(source)
            if tags:
                code.metadata["tags"] = tags
            cells.append(code)
    cells.append(nbformat.v4.new_markdown_cell(_outro(unit)))
    cells.append(_check_cell("check()"))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = notebook_metadata(unit)
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"{unit.module.replace('_', '-')}-{index:02d}"
    return nb


def notebook_metadata(unit: Unit) -> dict:
    return {
        "kernelspec": dict(KERNELSPEC),
        "language_info": dict(LANGUAGE_INFO),
        "course": {"unit": unit.slug, "number": unit.number,
                   "generated_from": _relative(unit.solution_path, unit.exercise_path.parent)},
    }


def _check_cell(source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [CHECK_TAG]
    cell.metadata["editable"] = False
    cell.metadata["deletable"] = False
    return cell


def _intro(unit: Unit, lecture: str) -> str:
    cites = "\n".join(f"- {p.citation()}" for p in unit.papers)
    return (
        f"**Lecture:** [{unit.number} {unit.title}]({lecture}) — read it first.\n\n"
        f"{cites}\n\n"
        "**How this works.** Fill in every `# YOUR CODE HERE`, then run the check cell below "
        "it: `check(...)` runs the public checks for that task right here and tells you what "
        "differs. Helper cells of your own are welcome. When everything passes, run "
        f"`course check {unit.slug}` in a terminal for the full (hidden) checks, graded in an "
        "isolated process."
    )


def _outro(unit: Unit) -> str:
    return (
        "## All public checks\n\n"
        "Run the cell below to re-run every public check. The hidden checks add edge cases, "
        "gradients and more shapes: `course check "
        f"{unit.slug}` runs them."
    )


def render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb, version=4) + "\n"


def canonical_lecture(text: str) -> str:
    """A lecture (MyST notebook) as JupyterLab's jupytext saves it under the project's
    ``jupytext.toml``, with the kernelspec the kernel sets: the committed form, so that opening,
    running and saving a lecture leaves it byte for byte unchanged."""
    from jupytext.config import load_jupytext_configuration_file

    from course import paths

    nb = jupytext.reads(text, fmt="md:myst")
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    config = load_jupytext_configuration_file(str(paths.ROOT / "jupytext.toml"))
    return jupytext.writes(nb, fmt="md:myst", config=config)


@dataclass
class BuildResult:
    unit: Unit
    path: Path
    status: str  # "written" | "unchanged" | "stale" | "missing"


def buildable_units() -> list[Unit]:
    return [u for u in units() if not u.lecture_only and u.solution_path.exists()]


def build(check_only: bool = False, only: list[Unit] | None = None) -> list[BuildResult]:
    """Regenerate exercises and put lectures in their canonical form (or, with
    ``check_only``, report the files that are stale)."""
    results = []
    chosen = only or buildable_units()
    jobs = [(u, u.exercise_path, lambda u=u: render(build_notebook(u))) for u in chosen]
    lectures = only or [u for u in units() if u.lecture_path.exists()]
    jobs += [(u, u.lecture_path,
              lambda u=u: canonical_lecture(u.lecture_path.read_text(encoding="utf-8")))
             for u in lectures if u.lecture_path.exists()]
    for unit, path, make in jobs:
        text = make()
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            results.append(BuildResult(unit, path, "unchanged"))
        elif check_only:
            results.append(BuildResult(unit, path, "missing" if current is None else "stale"))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            results.append(BuildResult(unit, path, "written"))
    return results
