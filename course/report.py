"""All the wording of results: a check's feedback from its fields (case, difference, hint,
what passed before), the rich terminal report, Gradescope's ``results.json``, the notebook's
HTML and text. Checks and the engine produce data; only this module turns it into words."""


from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from course.grading.engine import CheckResult, UnitResult

ISOLATION_WORDS = {
    "bubblewrap": "bubblewrap sandbox (separate process, read-only file system without "
    "references or hidden checks, no network, own process tree, time/memory/output limits)",
    "process": "process isolation only (separate process, time/memory/output limits; "
    "no OS sandbox on this machine)",
    "none": "none (in-kernel: your code ran in this process)",
}

STATUS_STYLE = {"passed": "green", "failed": "red", "error": "magenta"}
STATUS_MARK = {"passed": "✓", "failed": "✗", "error": "!"}
NOT_RUN_MARK = "–"


def failure_text(message: str, case: str | None = None, hint: str | None = None,
                 passed_before: Sequence[str] = ()) -> str:
    """A failed check in words: "case: problem", the mistake's hint, what passed before."""
    text = f"{case}: {message}" if case else message
    if hint:
        text += f"\nHint: {hint}"
    if passed_before:
        shown = "; ".join(passed_before[:6]) + (" …" if len(passed_before) > 6 else "")
        text += f"\n(Passed before this: {shown})"
    return text


def check_output(c: CheckResult) -> str:
    """One check's feedback in words, from its fields."""
    from course.grading.engine import INTERNAL_ERROR

    if c.status == "passed":
        return "Passed: " + ("; ".join(c.cases) if c.cases else c.title)
    if c.status == "error":
        return INTERNAL_ERROR + c.message
    return failure_text(c.message, c.case, c.hint, c.cases)


def mark(c) -> str:
    return STATUS_MARK[c.status] if c.ran else NOT_RUN_MARK


def _points(x: float) -> str:
    return f"{x:g}"


def print_result(result: UnitResult, console: Console | None = None, verbose: bool = False,
                 waited: float | None = None) -> None:
    """The terminal report. It wraps at any width (never crops), piped or not; ``waited`` is
    the wall time the learner waited, shown beside the time spent grading."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    out = _wrapping(console)
    score = f"{_points(result.score)}/{_points(result.max_score)}"
    title = f"{result.number} {result.title}  —  {score}"
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("", width=1)
    table.add_column("check", overflow="fold")
    table.add_column("points", justify="right", no_wrap=True)
    for c in result.checks:
        style = STATUS_STYLE[c.status]
        label = c.title + ("" if c.public else "  [dim](hidden)[/dim]")
        table.add_row(Text(mark(c), style=style), label,
                      f"{_points(c.score)}/{_points(c.max_score)}")
    out(table)
    for note in result.notes:
        out(Text.assemble(("Note: ", "yellow"), note))
    if result.fatal:
        out(Text(result.fatal, style="red"))
    for c in result.checks:
        if not c.ran:
            continue  # the note above names every check that did not run
        if c.status != "passed" and not (result.fatal and c.output == result.fatal):
            # the panel's title is a line of its own inside it: a panel title is cut to one line
            body = Text.assemble((c.title, "bold"), "\n", c.output)
            out(Panel(body, border_style=STATUS_STYLE[c.status]))
        elif verbose and c.status == "passed":
            out(Text.assemble((c.title, "green"), ": ", c.output))
    out(Text(timing_line(result, waited), style="dim"))


def timing_line(result: UnitResult, waited: float | None = None) -> str:
    """"Checked on cpu: grading took 1.8 s of the 6.4 s you waited; isolation: …"."""
    took = f"grading took {result.seconds:.1f} s"
    if waited is not None and waited > result.seconds:
        took += f" of the {waited:.1f} s you waited (the rest is start-up: Python, torch, "
        took += "the isolated process)"
    isolation = ISOLATION_WORDS.get(result.isolation, result.isolation)
    return f"Checked on {result.device}: {took}; isolation: {isolation}."


def _wrapping(console: Console):
    """``console.print`` that always wraps long lines (a console made with ``soft_wrap=True``
    would otherwise crop panels and tables at its width)."""

    def out(renderable) -> None:
        console.print(renderable, soft_wrap=False, overflow="fold")

    return out


def gradescope_json(results: list[UnitResult], timings: bool = True) -> dict:
    """Gradescope's results.json: ``score`` and ``tests[]`` (name, score, max_score, status,
    output); course metadata goes in ``extra_data``. ``timings=False`` leaves out the seconds
    grading took, so that the same grades always give the same bytes (``course grade``)."""
    tests = []
    for r in results:
        for c in r.checks:
            tests.append({
                "name": f"{r.number} {r.unit}: {c.title}",
                "score": c.score,
                "max_score": c.max_score,
                "status": "passed" if c.status == "passed" else "failed",
                "output": c.output,
                "visibility": "visible",
                **({"extra_data": _check_data(c)} if c.status != "passed" else {}),
            })
    notes = [f"{r.unit}: {n}" for r in results for n in r.notes]
    fatal = [f"{r.unit}: {r.fatal}" for r in results if r.fatal]
    return {
        "score": sum(r.score for r in results),
        "max_score": sum(r.max_score for r in results),
        "output": "\n".join(fatal + notes),
        "tests": tests,
        "extra_data": {
            "units": [
                {"unit": r.unit, "number": r.number, "score": r.score, "max_score": r.max_score,
                 "device": r.device, "isolation": r.isolation, "submission": r.submission,
                 **({"seconds": round(r.seconds, 3)} if timings else {})}
                for r in results
            ],
            "isolation": sorted({r.isolation for r in results}),
        },
    }


def _check_data(c: CheckResult) -> dict:
    """A failed check's fields as data, beside its words: the case, the mistake matched, and
    how the output differed (where, max abs and rel error, first index)."""
    data: dict = {"check": c.id, "case": c.case, "mistake": c.mistake}
    if c.difference is not None:
        d = c.difference
        data["difference"] = {"where": d.where, "max_abs": d.max_abs, "max_rel": d.max_rel,
                              "index": list(d.index) if d.index is not None else None}
    return data


def write_json(results: list[UnitResult], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(gradescope_json(results), indent=2) + "\n", encoding="utf-8")


def verdict(result: UnitResult, tasks: tuple[str, ...] = (),
            public_total: int | None = None) -> str:
    """The report's first sentence. For ``check("name")`` it says which checks it ran and how
    they relate to the whole exercise, so a task's success never reads as the exercise's."""
    if not result.checks:
        return "No public checks for this selection."
    passed = sum(c.status == "passed" for c in result.checks)
    ran = len(result.checks)
    if not tasks:
        if result.passed:
            return "All public checks passed."
        return f"{passed} of {ran} public checks passed."
    names = ", ".join(f"`{t}`" for t in tasks)
    whole = ""
    if public_total is not None and public_total > ran:
        whole = (f" The exercise has {public_total} public checks in all; `check()` runs "
                 "every one.")
    if result.passed:
        return f"All {ran} public checks of {names} passed.{whole}"
    return f"{passed} of the {ran} public checks of {names} passed.{whole}"


def to_html(result: UnitResult, tasks: tuple[str, ...] = (),
            public_total: int | None = None) -> str:
    """A compact HTML report for the notebook's check() cell."""
    rows = []
    for c in result.checks:
        color = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#8250df"}[c.status]
        detail = ""
        if c.status != "passed":
            detail = (f"<pre style='white-space:pre-wrap;margin:4px 0 8px 18px;font-size:90%'>"
                      f"{html.escape(c.output)}</pre>")
        rows.append(
            f"<div><span style='color:{color};font-weight:bold'>{mark(c)}</span> "
            f"{html.escape(c.title)} <span style='color:#57606a'>({_points(c.score)}/"
            f"{_points(c.max_score)})</span>{detail}</div>"
        )
    notes = "".join(f"<div style='color:#9a6700'>Note: {html.escape(n)}</div>"
                    for n in result.notes)
    said = html.escape(verdict(result, tasks, public_total))
    return (
        f"<div style='font-family:sans-serif'><b>{html.escape(result.number)} "
        f"{html.escape(result.title)}</b> — {said}{notes}{''.join(rows)}</div>"
    )


def to_text(result: UnitResult, tasks: tuple[str, ...] = (),
            public_total: int | None = None) -> str:
    lines = [f"{result.number} {result.title}: {_points(result.score)}/"
             f"{_points(result.max_score)} — {verdict(result, tasks, public_total)}"]
    lines += [f"Note: {n}" for n in result.notes]
    for c in result.checks:
        lines.append(f"  {mark(c)} {c.title} ({_points(c.score)}/"
                     f"{_points(c.max_score)})")
        if c.status != "passed":
            lines += ["      " + line for line in c.output.splitlines()]
    return "\n".join(lines)
