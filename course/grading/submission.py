"""Reading a submission (a filled exercise notebook, or a .py file) into code cells, and
executing those cells into a namespace.

Reading happens in the grader and never executes anything. A notebook is read as plain JSON
(nbformat 4's cells, tags and sources), without nbformat's schema validation, which is slow to
import and would refuse notebooks whose code can still be graded. Cells tagged as check, demo or
training cells are left out; IPython magics and shell escapes are commented out. Execution
(:func:`execute_cells`) happens where learner code may run: the isolated child, or the
learner's own kernel. Each cell runs on its own, so a broken helper cell costs only the names
it would have defined.
"""

from __future__ import annotations

import json
import re
import types
from dataclasses import dataclass, field
from pathlib import Path

from course.grading.probes import describe_exception, learner_filename, register_source

SKIP_TAGS = frozenset({"course-check", "course-demo", "skip-grading"})
# otter-grader's own cells in a released notebook (``grader = otter.Notebook(...)``,
# ``grader.check("q1")``): they belong to otter's in-kernel checks, not to the learner's code.
OTTER_LINE = re.compile(r"^(import otter|grader\s*=\s*otter\.Notebook\(.*\)|"
                        r"grader\.(check|check_all|export)\(.*\))\s*$")
MAX_FILE_BYTES = 200 * 1024 * 1024  # stored outputs are dropped before parsing
MAX_CELLS = 2000
MAX_SOURCE_CHARS = 2_000_000


class SubmissionError(Exception):
    """The submission could not be read at all; the message says why in words."""


@dataclass
class Submission:
    path: Path | None
    cells: list[tuple[int, str]]  # (cell number, source)
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "python file" if self.path and self.path.suffix == ".py" else "notebook"


def _clean_magics(source: str) -> str:
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            line = line[: len(line) - len(stripped)] + "pass  # " + stripped
        lines.append(line)
    return "\n".join(lines)


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark is not part of the code
    except UnicodeDecodeError as exc:
        raise SubmissionError(
            f"{path.name} is not UTF-8 text (byte {exc.start} cannot be decoded); "
            "save the file as UTF-8"
        ) from None


def read_submission(path: str | Path) -> Submission:
    """Read ``path`` (.ipynb or .py) into cells; raise SubmissionError with a reason."""
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"no such file: {path}")
    if path.is_dir():
        raise SubmissionError(f"{path} is a folder; give a notebook (.ipynb) or a .py file")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SubmissionError(
                f"{path.name} is {size / 2**20:.0f} MiB; the limit is "
                f"{MAX_FILE_BYTES // 2**20} MiB (clear the notebook's outputs and save again)"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise SubmissionError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not raw.strip():
        raise SubmissionError(f"{path.name} is empty")
    if path.suffix == ".py":
        return Submission(path, _split_percent_cells(_decode(raw, path)))
    if path.suffix != ".ipynb":
        raise SubmissionError(f"{path.name}: expected a .ipynb notebook or a .py file")
    return _read_notebook(path, _decode(raw, path))


def _split_percent_cells(text: str) -> list[tuple[int, str]]:
    """A .py file in jupytext percent format is graded cell by cell (``# %%`` lines start a
    cell), so one broken helper cell costs only its own names; other files are one cell."""
    cells: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        if line.startswith("# %%") and any(s.strip() for s in cells[-1]):
            cells.append([])
        cells[-1].append(line)
    return [(i, "".join(lines)) for i, lines in enumerate(cells, start=1)]


def _read_notebook(path: Path, text: str) -> Submission:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SubmissionError(
            f"{path.name} is not a valid notebook: it is not JSON ({exc.msg} at line "
            f"{exc.lineno}). Was it saved completely?"
        ) from None
    if not isinstance(data, dict) or "cells" not in data or "nbformat" not in data:
        raise SubmissionError(f"{path.name} is JSON but not a Jupyter notebook (no cells)")
    if data.get("nbformat") != 4:
        raise SubmissionError(
            f"{path.name} has nbformat version {data.get('nbformat')!r}; only version 4 "
            "notebooks (Jupyter 4 and later) are supported"
        )
    cells_data = data.get("cells")
    if not isinstance(cells_data, list):
        raise SubmissionError(f"{path.name} is not a readable notebook: its 'cells' is not a list")
    notes: list[str] = []
    cells: list[tuple[int, str]] = []
    total = 0
    for number, cell in enumerate(cells_data, start=1):
        if not isinstance(cell, dict):
            raise SubmissionError(f"{path.name} is not a readable notebook: cell {number} is "
                                  "not a JSON object")
        if cell.get("cell_type") != "code":
            continue
        if _tags(cell) & SKIP_TAGS:
            continue
        source = _source(cell, number, path)
        if not source.strip() or _is_otter_cell(source):
            continue
        total += len(source)
        if len(cells) >= MAX_CELLS or total > MAX_SOURCE_CHARS:
            notes.append(
                f"only the first {len(cells)} code cells were graded: the notebook holds more "
                f"than {MAX_CELLS} cells or {MAX_SOURCE_CHARS:,} characters of code"
            )
            break
        cells.append((number, _clean_magics(source)))
    if not cells:
        notes.append("the notebook holds no code cells to grade")
    return Submission(path, cells, notes)


def _tags(cell: dict) -> set[str]:
    metadata = cell.get("metadata")
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    return {t for t in tags if isinstance(t, str)} if isinstance(tags, list) else set()


def _source(cell: dict, number: int, path: Path) -> str:
    """A code cell's source (nbformat stores a string or a list of lines)."""
    source = cell.get("source", "")
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    if isinstance(source, str):
        return source
    raise SubmissionError(f"{path.name} is not a readable notebook: the source of cell {number} "
                          "is neither text nor a list of lines")


def _is_otter_cell(source: str) -> bool:
    lines = [ln.strip() for ln in source.splitlines()]
    code = [ln for ln in lines if ln and not ln.startswith("#")]
    return bool(code) and all(OTTER_LINE.match(ln) for ln in code)


def execute_cells(cells: list[tuple[int, str]], module_name: str) -> tuple[dict, list[str]]:
    """Execute cells one by one into a fresh module namespace; returns (namespace, problems)."""
    import sys

    module = types.ModuleType(module_name)
    module.__dict__["__builtins__"] = __builtins__
    sys.modules[module_name] = module
    ns = module.__dict__
    problems: list[str] = []
    for number, source in cells:
        filename = learner_filename(number)
        register_source(filename, source)
        try:
            code = compile(source, filename, "exec")
        except SyntaxError as exc:
            problems.append(
                f"cell {number} has a syntax error on line {exc.lineno}: {exc.msg}; "
                "names it defines are missing"
            )
            continue
        try:
            exec(code, ns)
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            info = describe_exception(exc)
            where = f" ({info['where']})" if info["where"] else ""
            problems.append(f"cell {number} raised {info['type']}: {info['message']}{where}")
    return ns, problems
