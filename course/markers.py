"""Solution markers in master files: ``# BEGIN SOLUTION`` / ``# END SOLUTION``.

The one-``#`` form is the only one that both nbgrader and otter accept. A region is replaced,
indentation kept, by ``# YOUR CODE HERE`` and ``raise NotImplementedError()`` (nbgrader's own
stub), so an untouched stub fails every check.
"""

from __future__ import annotations

import re

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION\s*$")
END = re.compile(r"^[ \t]*# END SOLUTION\s*$")


class MarkerError(ValueError):
    pass


def has_solution(source: str) -> bool:
    return any(BEGIN.match(line) for line in source.splitlines())


def strip_solutions(source: str) -> str:
    """The stub: every solution region replaced by ``raise NotImplementedError()``."""
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(), start=1):
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise MarkerError(f"line {number}: BEGIN SOLUTION inside a solution region")
            inside = True
            indent = begin.group("indent")
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f"{indent}raise NotImplementedError()")
            continue
        if END.match(line):
            if not inside:
                raise MarkerError(f"line {number}: END SOLUTION without BEGIN SOLUTION")
            inside = False
            continue
        if not inside:
            out.append(line)
    if inside:
        raise MarkerError("a BEGIN SOLUTION region is never closed")
    return "\n".join(out) + ("\n" if source.endswith("\n") else "")


def solution_lines(source: str) -> list[str]:
    """The non-blank lines inside solution regions (for leak tests)."""
    lines, inside = [], False
    for line in source.splitlines():
        if BEGIN.match(line):
            inside = True
        elif END.match(line):
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines
