"""``course new SLUG``: the four sources of a planned unit, scaffolded where its catalogue entry
says they live, ready to be written.

- the master ``solutions/<part>/<module>.py``: one task per function or class of the unit's
  API in SYLLABUS.md (when the syllabus is found), with its signature, a docstring skeleton
  (shapes, dtypes, differentiability, draws, forbidden calls) and solution markers;
- the checks ``autograder/<part>/test_<module>.py``: one example check, an empty
  ``FORBIDDEN`` and ``MISTAKES``;
- the lecture ``lectures/<NN>-<part>/<MM>-<slug>.md`` with the required sections and a claim
  cell.

The master carries :data:`course.catalogue.SCAFFOLD_MARK`: until the author deletes that line
the unit is a *draft*, which the tests and ``course check --all`` leave alone. Nothing that
exists is ever overwritten.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from course.catalogue import SCAFFOLD_MARK, Unit
from course.paths import ROOT


class ScaffoldError(Exception):
    """The unit cannot be scaffolded (files exist, or it is a lecture-only unit)."""


@dataclass
class ApiItem:
    """One function or class of the syllabus API."""

    name: str
    params: list[tuple[str, str]]  # (python parameter, the syllabus's words for it)
    returns: str = ""
    is_class: bool = False
    forward: list[tuple[str, str]] = field(default_factory=list)


def syllabus_path() -> Path | None:
    """``$COURSE_SYLLABUS``, else ``SYLLABUS.md`` in the ``shared`` folder beside the course
    (where the course's authors keep it), else None."""
    env = os.environ.get("COURSE_SYLLABUS")
    candidates = [Path(env)] if env else []
    candidates += [ROOT.parent / "shared" / "SYLLABUS.md", ROOT / "SYLLABUS.md"]
    return next((p for p in candidates if p.is_file()), None)


def syllabus_entry(text: str, unit: Unit) -> str:
    """The unit's paragraph of SYLLABUS.md (from ``**N.M `slug`**`` to the next entry)."""
    start = re.search(rf"^\*\*{re.escape(unit.number)} `{re.escape(unit.slug)}`\*\*", text,
                      flags=re.M)
    if not start:
        return ""
    rest = text[start.end():]
    end = re.search(r"^\*\*\d+\.\d+ `|^#", rest, flags=re.M)
    return text[start.start(): start.end() + (end.start() if end else len(rest))]


def _split_top_level(args: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in args:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _params(args: str) -> list[tuple[str, str]]:
    """``(python, words)`` per parameter: ``reward (B,)`` → ``("reward", "reward (B,)")``,
    ``p=0.15`` stays, anything unreadable becomes ``*args``."""
    found = []
    for part in _split_top_level(args):
        match = re.match(r"(\*{0,2}[A-Za-z_]\w*)\s*(=\s*[^=].*)?$", part)
        name = re.match(r"\*{0,2}[A-Za-z_]\w*", part)
        if match and match.group(2):
            python = f"{match.group(1)}={match.group(2).lstrip('= ').strip()}"
        elif name:
            python = name.group(0)
        else:
            continue
        try:
            ast.parse(f"def f({python}): pass")
        except SyntaxError:
            python = name.group(0) if name else "*args"
        found.append((python, part))
    return found


HEAD = re.compile(r"^(class\s+)?([A-Za-z_]\w*)\(")


def _signature(span: str) -> tuple[bool, str, str, str] | None:
    """``(is_class, name, args, returns)`` of ``name(args) -> returns`` (balanced
    parentheses), or None when the span is not a signature."""
    head = HEAD.match(span)
    if not head:
        return None
    depth = 0
    for i in range(head.end() - 1, len(span)):
        depth += {"(": 1, ")": -1}.get(span[i], 0)
        if depth == 0:
            rest = span[i + 1:].strip()
            if rest and not rest.startswith("->"):
                return None
            return (bool(head.group(1)), head.group(2), span[head.end():i],
                    rest.removeprefix("->").strip())
    return None


def api_items(entry: str) -> list[ApiItem]:
    """The functions and classes an entry's code spans declare, in order."""
    items: list[ApiItem] = []
    for span in re.findall(r"`([^`]+)`", entry):
        span = " ".join(span.split())
        parsed = _signature(span)
        if not parsed:
            continue
        is_class, name, args, returns = parsed
        if is_class:
            items.append(ApiItem(name, [], is_class=True))
        elif name in ("__init__", "forward") and items and items[-1].is_class:
            target = items[-1].params if name == "__init__" else items[-1].forward
            target[:] = _params(args)
        elif name[0].islower() and "." not in name and name not in {i.name for i in items}:
            items.append(ApiItem(name, _params(args), (returns or "").strip()))
    return items


def _docstring(lines: list[str], indent: str) -> str:
    body = "\n".join(f"{indent}{line}" if line else "" for line in lines)
    return f'{indent}"""{body.lstrip()}\n{indent}"""\n'


def _args_block(params: list[tuple[str, str]]) -> list[str]:
    out = ["", "Args:"]
    for python, words in params:
        name = python.split("=")[0].lstrip("*")
        if name == "self":
            continue
        out.append(f"    {name}: TODO shape, dtype and meaning (syllabus: ``{words}``).")
    return out if len(out) > 2 else []


COMMON_RULES = [
    "",
    "TODO: every requirement a check enforces, in words the learner reads: the dtype rule",
    "(\"in x's dtype and on its device\"), whether the result is differentiable w.r.t. which",
    "inputs, the random draws and their order (\"draws ... from generator\"), precision.",
    "",
    "Forbidden: TODO (the library calls that would do the exercise for the learner).",
]


def master_source(unit: Unit, items: list[ApiItem]) -> str:
    head = [
        f"# %% [markdown]\n# # {unit.number} {unit.title}\n#\n"
        f"# TODO: the exercise's introduction: what the learner builds and why.\n",
        f"# %%\n# {SCAFFOLD_MARK}: delete this line when the unit is written (until then it is a"
        "\n# draft, which tests and `course check --all` skip).\n"
        "import torch\nfrom torch import nn\n",
    ]
    if not items:
        items = [ApiItem("todo", [("x", "x")], "TODO")]
    cells = []
    for number, item in enumerate(items, 1):
        cell = [f"# %% [markdown]\n# ## Task {number} — `{item.name}`\n#\n"
                "# TODO: the equations this task implements, in the lecture's notation.\n",
                "# %%\n"]
        if item.is_class:
            init = ", ".join(["self", *(p for p, _ in item.params)])
            forward = ", ".join(["self", *(p for p, _ in item.forward)] or ["self", "x"])
            doc = [f"TODO: one line on what {item.name} is.", *_args_block(item.params),
                   "", "Submodules and parameters: TODO names and shapes (state dicts are",
                   "copied into them).", "", "``forward``: TODO shapes in and out.",
                   *COMMON_RULES]
            cell[1] += (f"class {item.name}(nn.Module):\n{_docstring(doc, '    ')}\n"
                        f"    def __init__({init}) -> None:\n        super().__init__()\n"
                        "        # BEGIN SOLUTION\n        raise NotImplementedError\n"
                        "        # END SOLUTION\n\n"
                        f"    def forward({forward}):\n        # BEGIN SOLUTION\n"
                        "        raise NotImplementedError\n        # END SOLUTION\n")
        else:
            args = ", ".join(p for p, _ in item.params)
            doc = [f"TODO: one line on what {item.name} computes.", *_args_block(item.params),
                   "", "Returns:", f"    TODO (syllabus: ``{item.returns or '?'}``).",
                   *COMMON_RULES]
            cell[1] += (f"def {item.name}({args}):\n{_docstring(doc, '    ')}"
                        "    # BEGIN SOLUTION\n    raise NotImplementedError\n"
                        "    # END SOLUTION\n")
        cells += cell
    return "\n\n".join(head + cells)


def checks_source(unit: Unit, items: list[ApiItem]) -> str:
    first = items[0] if items else ApiItem("todo", [("x", "x")])
    target = f'Make("{first.name}", ())' if first.is_class else f'"{first.name}"'
    params = first.forward if first.is_class else first.params
    needed = max(1, sum("=" not in p and not p.startswith("*") and p != "self" for p, _ in params))
    return f'''"""Hidden checks for unit {unit.number} `{unit.slug}`.

TODO: what the checks compare, on which inputs, and the bounds of any statistical check.
"""

import torch

from course.grading.dsl import Call, Forbid, Make, Mistake, check

UNIT = "{unit.slug}"

FORBIDDEN: list[Forbid] = []

# Each mistake: a text edit of the master (each old text must occur exactly once) and the
# hint shown when a learner's output matches what the edited master computes.
MISTAKES: list[Mistake] = []

DTYPES = [torch.float32, torch.float64]

# keep the linters quiet until the first check builds a module
_ = Make


@check(points=1, public=True, task="{first.name}")
def test_example(grader):
    """TODO: the title says exactly what this check compares"""
    for dtype in DTYPES:
        inputs = tuple(grader.randn(4, 8, dtype=dtype) for _ in range({needed}))
        grader.compare(Call({target}, inputs), case=f"{first.name} on [4, 8] inputs, {{dtype}}")
'''


def lecture_source(unit: Unit) -> str:
    papers = "\n".join(f"- {p.citation()}" for p in unit.papers) or "- TODO"
    return f"""---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3 (ipykernel)
  language: python
  name: python3
---

# {unit.number} {unit.title}

**Papers.**

{papers}

TODO: two sentences on what this lecture builds and shows.

## The problem of the day

TODO

## The idea and its math

TODO: derive what the exercise asks for.

## Its place among the constraints

TODO: {", ".join(unit.constraints) or "which constraint it eases"}.

## The headline result

TODO: the paper's numbers, cited; what later work kept or changed.

## The exercise

`course start {unit.slug}` copies the exercise into your workspace; `course check {unit.slug}`
grades it.

## A miniature reproduction

TODO: own code, at most 30 s on two CPU cores, at least one figure.

```{{code-cell}} ipython3
import torch

torch.manual_seed(0)
measured = 0.0  # TODO
```

The claim, calibrated over at least ten seeds (TODO: the measured range):

```{{code-cell}} ipython3
:tags: [claim]

assert measured > 0, "TODO: assert what the text claims"
```
"""


def targets(unit: Unit) -> list[Path]:
    return [unit.solution_path, unit.checks_path, unit.lecture_path]


def scaffold(unit: Unit, syllabus: Path | None = None) -> list[Path]:
    """Write the unit's three hand-written sources; refuse if any exists."""
    if unit.lecture_only:
        raise ScaffoldError(f"{unit.slug} is a lecture-only unit: write {unit.lecture_path}")
    existing = [p for p in targets(unit) + [unit.exercise_path] if p.exists()]
    if existing:
        names = ", ".join(str(p.relative_to(ROOT)) for p in existing)
        raise ScaffoldError(f"{unit.slug} already has {names}; nothing was written "
                            "(course new never overwrites a file)")
    syllabus = syllabus or syllabus_path()
    entry = syllabus_entry(syllabus.read_text(encoding="utf-8"), unit) if syllabus else ""
    items = api_items(entry)
    sources = [master_source(unit, items), checks_source(unit, items), lecture_source(unit)]
    for path, text in zip(targets(unit), sources):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return targets(unit)
