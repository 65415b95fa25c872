"""Simulated students: filled-in copies of a released notebook, for round-trip tests and benchmarks.

A student's answers come from a Python source in the master's format (the master itself, or the
master with a banked mistake applied): its solution cells, in order, fill the notebook's answer
cells (those nbgrader marks ``solution: true``, or the exercise's ``course-solution`` cells).
"""

from __future__ import annotations

import copy

import jupytext
import nbformat

from course.markers import BEGIN, END, has_solution


def answers_from_source(source: str) -> list[str]:
    """The solution cells of a master-format source, marker lines removed."""
    nb = jupytext.reads(source, fmt="py:percent")
    answers = []
    for cell in nb.cells:
        if cell.cell_type == "code" and has_solution(cell.source):
            lines = [ln for ln in cell.source.splitlines()
                     if not BEGIN.match(ln) and not END.match(ln)]
            answers.append("\n".join(lines))
    return answers


def is_answer_cell(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("solution")) or "course-solution" in cell.metadata.get("tags", [])


def fill(notebook: nbformat.NotebookNode, answers: list[str]) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with its answer cells replaced by ``answers`` (in order)."""
    nb = copy.deepcopy(notebook)
    slots = [cell for cell in nb.cells if is_answer_cell(cell)]
    if len(slots) != len(answers):
        raise ValueError(f"the notebook has {len(slots)} answer cells, got {len(answers)} answers")
    for cell, answer in zip(slots, answers):
        cell.source = answer
    return nb


def add_cell(notebook: nbformat.NotebookNode, source: str, after_answer: int = 0
             ) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with a learner code cell inserted after answer cell
    ``after_answer`` (counting from 0)."""
    nb = copy.deepcopy(notebook)
    positions = [i for i, cell in enumerate(nb.cells) if is_answer_cell(cell)]
    nb.cells.insert(positions[after_answer] + 1, nbformat.v4.new_code_cell(source))
    for number, cell in enumerate(nb.cells):
        cell["id"] = f"sim-{number:03d}"
    return nb


NOISY = '''import sys
import warnings


def _noisy(fn):
    def wrapper(*args, **kwargs):
        warnings.warn("a warning from the student's own code", UserWarning)
        print("progress: 50% (on stderr)", file=sys.stderr)
        print("progress: 50% (on stdout)")
        return fn(*args, **kwargs)
    return wrapper


'''


def _functions(source: str) -> list[str]:
    import ast

    return [node.name for node in ast.parse(source).body
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")]


def simulated_class(master: str, mistake_source: str, release: nbformat.NotebookNode
                    ) -> dict[str, nbformat.NotebookNode]:
    """Seven students for ``release`` (a released notebook of the unit whose master source is
    ``master``): ``reference``, ``stub`` (untouched), ``mistake`` (``mistake_source``, a banked
    mistake applied to the master), ``syntax-error`` (the last answer cell does not parse),
    ``infinite-loop`` (the last task's function never returns), ``kernel-killer``
    (``os._exit`` in a helper cell) and ``warnings`` (correct, but every function warns and
    prints progress to stderr and stdout)."""
    answers = answers_from_source(master)
    reference = fill(release, answers)
    functions = [name for answer in answers for name in _functions(answer)]
    last = functions[-1]
    broken = [*answers[:-1], answers[-1] + "\n\ndef oops(:\n    pass\n"]
    wrap = "".join(f"{name} = _noisy({name})\n" for name in functions)
    return {
        "reference": reference,
        "stub": release,
        "mistake": fill(release, answers_from_source(mistake_source)),
        "syntax-error": fill(release, broken),
        "infinite-loop": add_cell(reference, f"def {last}(*args, **kwargs):\n    while True:\n"
                                  "        pass\n", after_answer=len(answers) - 1),
        "kernel-killer": add_cell(reference, "import os\n\nos._exit(1)\n", after_answer=0),
        "warnings": add_cell(reference, NOISY + wrap, after_answer=len(answers) - 1),
    }
