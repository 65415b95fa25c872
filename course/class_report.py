"""What a class got wrong: ``class_report.md`` and ``mistakes.csv`` from a batch's records.

Every failing check is compared with the unit's bank of known mistakes, so the records already
say which misconception each failure was. Per unit this module counts:

- the score distribution of the graded submissions (and how many were not graded, and why);
- each check's pass rate among the submissions it ran on;
- each banked mistake: how many students' submissions matched it, with its hint;
- the failures that matched no banked mistake: their share of all failures (checks not
  implemented yet left out), and their most common first-divergence messages (numbers
  folded, so "off by 0.51" and "off by 0.49" count as one message).

Deterministic: the same records give the same bytes (no times, sorted everywhere).
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from course.catalogue import Unit

MISTAKE_FIELDS = ("unit", "mistake", "students", "share_of_graded", "checks", "hint")
UNMATCHED = "(no banked mistake)"
BUCKETS = 5  # score bands of 20 %


@dataclass
class UnitTally:
    unit: Unit
    scores: list[float] = field(default_factory=list)
    max_score: float = 0.0
    not_graded: Counter = field(default_factory=Counter)  # status -> students
    check_titles: dict[str, str] = field(default_factory=dict)  # id -> title, in order
    check_ran: Counter = field(default_factory=Counter)
    check_passed: Counter = field(default_factory=Counter)
    mistake_students: dict[str, set[str]] = field(default_factory=dict)
    mistake_checks: dict[str, set[str]] = field(default_factory=dict)
    failures: int = 0  # failed checks, not counting those not implemented yet
    not_implemented: int = 0
    unmatched: Counter = field(default_factory=Counter)  # folded message -> failures
    unmatched_example: dict[str, str] = field(default_factory=dict)
    unmatched_students: dict[str, set[str]] = field(default_factory=dict)

    @property
    def graded(self) -> int:
        return len(self.scores)


def fold(message: str) -> str:
    """A message with its numbers replaced by '#', its first line only, to group alike."""
    first = message.strip().splitlines()[0] if message.strip() else "(no message)"
    return re.sub(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?", "#", first)[:200]


def tally(records: Iterable[dict], units: list[Unit]) -> dict[str, UnitTally]:
    from course.grading.checks import load_checks
    from course.grading.grader import NOT_IMPLEMENTED

    tallies = {u.slug: UnitTally(u) for u in units}
    for t in tallies.values():
        checks = load_checks(t.unit)
        t.max_score = checks.max_score
        t.check_titles = {info.id: info.title for info, _ in checks.checks}
        t.mistake_students = {m.id: set() for m in checks.mistakes}
        t.mistake_checks = {m.id: set() for m in checks.mistakes}
    for r in sorted(records, key=lambda r: (r["unit"], r["student"])):
        if r["unit"] not in tallies:
            continue
        t = tallies[r["unit"]]
        if r["status"] != "graded" or not r.get("result"):
            t.not_graded[r["status"]] += 1
            continue
        t.scores.append(float(r["score"]))
        for c in r["result"].get("checks", []):
            t.check_titles.setdefault(c["id"], c["title"])
            if not c.get("ran", True):
                continue
            t.check_ran[c["id"]] += 1
            if c["status"] == "passed":
                t.check_passed[c["id"]] += 1
                continue
            if c["status"] != "failed":
                continue
            if c.get("message") == NOT_IMPLEMENTED:
                t.not_implemented += 1
                continue
            t.failures += 1
            if c.get("mistake"):
                t.mistake_students.setdefault(c["mistake"], set()).add(r["student"])
                t.mistake_checks.setdefault(c["mistake"], set()).add(c["id"])
            else:
                key = fold(c.get("message", ""))
                t.unmatched[key] += 1
                t.unmatched_example.setdefault(key, c.get("message", "").strip().splitlines()[0]
                                               if c.get("message", "").strip() else "")
                t.unmatched_students.setdefault(key, set()).add(r["student"])
    return tallies


def _hints(unit: Unit) -> dict[str, str]:
    from course.grading.checks import load_checks

    return {m.id: m.hint for m in load_checks(unit).mistakes}


def _ranked_mistakes(t: UnitTally) -> list[tuple[str, int]]:
    return sorted(((m, len(s)) for m, s in t.mistake_students.items()),
                  key=lambda item: (-item[1], item[0]))


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "–"


def _distribution(t: UnitTally) -> list[str]:
    if not t.scores:
        return ["No submission was graded."]
    s = t.scores
    lines = [f"{t.graded} graded: mean {statistics.fmean(s):.3g}, median "
             f"{statistics.median(s):g}, min {min(s):g}, max {max(s):g} of {t.max_score:g}; "
             f"full marks {sum(x >= t.max_score for x in s)}, zero {sum(x == 0 for x in s)}.",
             "", "| score | students |", "|---|---|"]
    counts = [0] * BUCKETS
    for x in s:
        share = x / t.max_score if t.max_score else 0.0
        counts[min(BUCKETS - 1, int(share * BUCKETS))] += 1
    for i, n in enumerate(counts):
        low, high = 100 * i // BUCKETS, 100 * (i + 1) // BUCKETS
        band = f"{low}–{high} %" + (" (incl. full)" if i == BUCKETS - 1 else "")
        lines.append(f"| {band} | {n} {'█' * n} |")
    return lines


def markdown(tallies: dict[str, UnitTally]) -> str:
    out = ["# Class report", "",
           "What the class got wrong, from the mistake bank every failing check is compared "
           "with. Counts are students (a student's submission counts once per mistake).", ""]
    for t in tallies.values():
        hints = _hints(t.unit)
        out += [f"## {t.unit.number} {t.unit.title} (`{t.unit.slug}`)", ""]
        if t.not_graded:
            out += ["Not graded: " + ", ".join(f"{n} {status}"
                                              for status, n in sorted(t.not_graded.items()))
                    + ".", ""]
        out += ["### Scores", ""] + _distribution(t) + [""]
        out += ["### Checks", "", "| check | passed | of |", "|---|---|---|"]
        for cid, title in t.check_titles.items():
            out.append(f"| {title} | {_pct(t.check_passed[cid], t.check_ran[cid])} | "
                       f"{t.check_ran[cid]} |")
        out += ["", "### Known mistakes", "", "| mistake | students | hint |", "|---|---|---|"]
        for mid, n in _ranked_mistakes(t):
            hint = hints.get(mid, "").replace("|", "\\|").replace("\n", " ")
            out.append(f"| `{mid}` | {n} | {hint} |")
        matched = t.failures - sum(t.unmatched.values())
        out += ["", "### Failures no banked mistake explains", "",
                f"{sum(t.unmatched.values())} of {t.failures} failed checks "
                f"({_pct(sum(t.unmatched.values()), t.failures)}) matched no banked mistake; "
                f"{matched} did" + (f"; {t.not_implemented} more were not implemented yet "
                                    "(left out)" if t.not_implemented else "") + "."]
        if t.unmatched:
            out += ["", "Most common first differences among them:", ""]
            for key, n in sorted(t.unmatched.items(), key=lambda kv: (-kv[1], kv[0]))[:5]:
                example = t.unmatched_example[key].replace("\n", " ")
                out.append(f"- {n}× ({len(t.unmatched_students[key])} student(s)): {example}")
        out.append("")
    return "\n".join(out)


def mistakes_csv(tallies: dict[str, UnitTally]) -> str:
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=MISTAKE_FIELDS)
    writer.writeheader()
    for t in tallies.values():
        hints = _hints(t.unit)
        for mid, n in _ranked_mistakes(t):
            writer.writerow({"unit": t.unit.slug, "mistake": mid, "students": n,
                             "share_of_graded": f"{n / t.graded:.3f}" if t.graded else "",
                             "checks": " ".join(sorted(t.mistake_checks.get(mid, ()))),
                             "hint": hints.get(mid, "")})
        for key, _count in sorted(t.unmatched.items(), key=lambda kv: (-kv[1], kv[0])):
            students = len(t.unmatched_students[key])
            writer.writerow({"unit": t.unit.slug, "mistake": UNMATCHED, "students": students,
                             "share_of_graded": f"{students / t.graded:.3f}" if t.graded else "",
                             "checks": "", "hint": t.unmatched_example[key]})
    return table.getvalue()


def top_mistakes(tallies: dict[str, UnitTally], n: int = 5) -> list[str]:
    """The ``n`` most common banked mistakes of the class, in words, for the terminal."""
    found = [(count, t.unit.slug, mid) for t in tallies.values()
             for mid, count in _ranked_mistakes(t) if count]
    hints = {t.unit.slug: _hints(t.unit) for t in tallies.values()}
    return [f"{slug}: {count} student(s) — {mid}: {hints[slug].get(mid, '')}"
            for count, slug, mid in sorted(found, key=lambda x: (-x[0], x[1], x[2]))[:n]]
