"""Presenting results: rich terminal report, Gradescope ``results.json``, notebook HTML."""

from __future__ import annotations

import html
import json
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from course.grading.engine import ISOLATION_WORDS, UnitResult

STATUS_STYLE = {"passed": "green", "failed": "red", "error": "magenta"}
STATUS_MARK = {"passed": "✓", "failed": "✗", "error": "!"}


def _points(x: float) -> str:
    return f"{x:g}"


def print_result(result: UnitResult, console: Console | None = None, verbose: bool = False):
    console = console or Console()
    score = f"{_points(result.score)}/{_points(result.max_score)}"
    title = f"{result.number} {result.title}  —  {score}"
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("", width=1)
    table.add_column("check")
    table.add_column("points", justify="right")
    for c in result.checks:
        style = STATUS_STYLE[c.status]
        label = c.title + ("" if c.public else "  [dim](hidden)[/dim]")
        table.add_row(Text(STATUS_MARK[c.status], style=style), label,
                      f"{_points(c.score)}/{_points(c.max_score)}")
    console.print(table)
    for note in result.notes:
        console.print(f"[yellow]Note:[/yellow] {note}")
    if result.fatal:
        console.print(f"[red]{result.fatal}[/red]")
    for c in result.checks:
        if c.status != "passed" and not (result.fatal and c.output == result.fatal):
            console.print(Panel(c.output, title=f"{c.title}", border_style=STATUS_STYLE[c.status],
                                title_align="left"))
        elif verbose and c.status == "passed":
            console.print(f"[green]{c.title}[/green]: {c.output}")
    console.print(
        f"[dim]Graded on {result.device} in {result.seconds:.1f} s; isolation: "
        f"{ISOLATION_WORDS.get(result.isolation, result.isolation)}.[/dim]"
    )


def gradescope_json(results: list[UnitResult]) -> dict:
    """Gradescope's results.json: ``score`` and ``tests[]`` (name, score, max_score, status,
    output); course metadata goes in ``extra_data``."""
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
                 "seconds": round(r.seconds, 3)}
                for r in results
            ],
            "isolation": sorted({r.isolation for r in results}),
        },
    }


def write_json(results: list[UnitResult], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(gradescope_json(results), indent=2) + "\n", encoding="utf-8")


def to_html(result: UnitResult) -> str:
    """A compact HTML report for the notebook's check() cell."""
    rows = []
    for c in result.checks:
        color = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#8250df"}[c.status]
        detail = ""
        if c.status != "passed":
            detail = (f"<pre style='white-space:pre-wrap;margin:4px 0 8px 18px;font-size:90%'>"
                      f"{html.escape(c.output)}</pre>")
        rows.append(
            f"<div><span style='color:{color};font-weight:bold'>{STATUS_MARK[c.status]}</span> "
            f"{html.escape(c.title)} <span style='color:#57606a'>({_points(c.score)}/"
            f"{_points(c.max_score)})</span>{detail}</div>"
        )
    notes = "".join(f"<div style='color:#9a6700'>Note: {html.escape(n)}</div>"
                    for n in result.notes)
    verdict = ("All public checks passed." if result.passed
               else f"{sum(c.status == 'passed' for c in result.checks)} of "
                    f"{len(result.checks)} checks passed.")
    if not result.checks:
        verdict = "No public checks for this selection."
    return (
        f"<div style='font-family:sans-serif'><b>{html.escape(result.number)} "
        f"{html.escape(result.title)}</b> — {verdict}{notes}{''.join(rows)}</div>"
    )


def to_text(result: UnitResult) -> str:
    lines = [f"{result.number} {result.title}: {_points(result.score)}/"
             f"{_points(result.max_score)}"]
    lines += [f"Note: {n}" for n in result.notes]
    for c in result.checks:
        lines.append(f"  {STATUS_MARK[c.status]} {c.title} ({_points(c.score)}/"
                     f"{_points(c.max_score)})")
        if c.status != "passed":
            lines += ["      " + line for line in c.output.splitlines()]
    return "\n".join(lines)
