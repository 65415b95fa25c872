"""The pages of the course website, as MyST text generated from the catalogue and the lectures.

Every page is derived, never written by hand: a unit's page is its lecture (a MyST notebook,
executed when the site is built) with the unit's catalogue facts set in after its title; a unit
whose lecture is not in the build (planned, a draft, or left out with ``--units``) gets a short
page that says so and shows only what the catalogue knows. Paths mirror ``lectures/`` so that the
lectures' own relative links (``../01-deep-neural-networks/03-lenet.md``) resolve on the site.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from course import paths
from course.catalogue import CONSTRAINTS, PARTS, Unit, units

HOME = "index.md"
SYLLABUS = "syllabus.md"
OVERVIEW_SLUG = "constraints"  # lecture 0.1: the seven constraints and the course map
_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def escape(text: str) -> str:
    """Text that MyST shows as written (no emphasis, links or code from stray characters)."""
    return _SPECIAL.sub(r"\\\1", text)


def page_path(unit: Unit) -> str:
    """The unit's page in the site's source tree, relative (``lectures/02-…/06-layer-norm.md``)."""
    return f"lectures/{unit.part.folder}/{unit.stem}.md"


def download_path(unit: Unit) -> str:
    """Where the unit's exercise notebook sits in the source tree, for the download link."""
    return f"downloads/{unit.part.folder}/{unit.exercise_path.name}"


def has_download(unit: Unit) -> bool:
    return not unit.lecture_only and unit.status == "ready" and unit.exercise_path.exists()


def _relative(target: str, page: str) -> str:
    depth = page.count("/")
    return "../" * depth + target


def unit_facts(unit: Unit, page: str) -> str:
    """The catalogue's facts about a unit, as a MyST admonition: status, papers (full
    citations), constraints, the exercise to download and the commands to check it."""
    lines = [f"```{{admonition}} Unit {unit.number} · {unit.slug} · {unit.status}",
             ":class: course-unit", ""]
    if unit.papers:
        label = "Paper" if len(unit.papers) == 1 else "Papers"
        lines.append(f"**{label}:**")
        lines.append("")
        for p in unit.papers:
            venue = f" {escape(p.venue)}." if p.venue else ""
            lines.append(f"- {escape(p.authors)} ({p.year}). *{escape(p.title)}*.{venue} <{p.url}>")
        lines.append("")
    pushed = ", ".join(CONSTRAINTS[c] for c in unit.constraints) or "none (an overview)"
    lines += [f"**Constraints pushed:** {pushed}", "", f"**Status:** {unit.status}", ""]
    if has_download(unit):
        name = unit.exercise_path.name
        lines += [f"**Exercise:** {{download}}`{name} <{_relative(download_path(unit), page)}>`"
                  f" · `course start {unit.slug}` · `course check {unit.slug}`", ""]
    elif unit.lecture_only:
        lines += ["**Exercise:** none; this unit is a lecture only.", ""]
    lines.append("```")
    return "\n".join(lines) + "\n"


def exercise_section(unit: Unit, page: str) -> str:
    """How to do and check the unit's exercise (appended to a ready unit's page)."""
    if not has_download(unit):
        return ""
    workspace = f"{unit.part.folder}/{unit.exercise_path.name}"
    commands = _commented([
        (f"course start {unit.slug}", f"copies it to work/{workspace} (never overwrites)"),
        ("jupyter lab", "fill in every # YOUR CODE HERE, run the check cells"),
        (f"course check {unit.slug}", "the full hidden checks, your code isolated")])
    return (
        "\n## The exercise\n\n"
        f"Download {{download}}`{unit.exercise_path.name} <{_relative(download_path(unit), page)}>`"
        ", or, in a checkout of the course, copy it into your workspace and grade it there:\n\n"
        "```bash\n" + "\n".join(commands) + "\n```\n"
    )


def _commented(lines: list[tuple[str, str]]) -> list[str]:
    """Shell commands with their comments aligned in one column."""
    width = max(len(command) for command, _ in lines) + 2
    return [f"{command.ljust(width)}# {comment}" for command, comment in lines]


def _split_front_matter(text: str) -> tuple[str, str]:
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end != -1:
            return text[: end + 5], text[end + 5:]
    return "", text


def lecture_page(unit: Unit) -> str:
    """The unit's page: its lecture, the facts after the title, the exercise at the end.

    Only markdown is added, never a code cell, so the executed lecture is the lecture itself
    (and its cached execution is found by the hash of its code cells)."""
    page = page_path(unit)
    front, body = _split_front_matter(unit.lecture_path.read_text(encoding="utf-8"))
    title = re.search(r"^# .*$", body, flags=re.MULTILINE)
    facts = "\n" + unit_facts(unit, page)
    if title:
        body = body[: title.end()] + "\n" + facts + body[title.end():]
    else:
        body = f"# {unit.number} {escape(unit.title)}\n{facts}\n{body}"
    return front + body.rstrip("\n") + "\n" + exercise_section(unit, page)


def short_page(unit: Unit, reason: str) -> str:
    """A page for a unit whose lecture is not in this build: what the catalogue says, and why."""
    page = page_path(unit)
    summary = f"\n{escape(unit.summary)}\n" if unit.summary else ""
    return f"# {unit.number} {escape(unit.title)}\n\n{unit_facts(unit, page)}\n{reason}\n{summary}"


def not_built_reason(unit: Unit) -> str:
    lecture = unit.lecture_path.relative_to(paths.ROOT).as_posix()
    if unit.status == "planned":
        return ("This unit is **planned**: its lecture and exercise are not written yet. The "
                "facts above are all the course has on it so far.")
    if unit.status == "draft":
        return (f"This unit is a **draft** (scaffolded by `course new`, not yet written): its "
                f"lecture, `{lecture}`, will appear here once the unit is ready.")
    return (f"This build of the site leaves this lecture out (it was built for some units "
            f"only, with `course site --units`). Build the whole course with `course site OUT` "
            f"to read it here, or open `{lecture}` in JupyterLab.")


def in_full(unit: Unit) -> bool:
    """True when the unit's page can carry its executed lecture (the unit is ready)."""
    return unit.status == "ready" and unit.lecture_path.exists()


def unit_page(unit: Unit, selected: bool) -> str:
    if selected and in_full(unit):
        return lecture_page(unit)
    return short_page(unit, not_built_reason(unit))


def _unit_link(unit: Unit, page: str) -> str:
    return f"[{unit.number} {escape(unit.title)}]({_relative(page_path(unit), page)})"


def constraints_table() -> str:
    """The table of the seven constraints, as lecture 0.1 writes it (its one source); the
    catalogue's names where that lecture has no such table."""
    overview = next((u for u in units() if u.slug == OVERVIEW_SLUG), None)
    if overview is not None and overview.lecture_path.exists():
        text = overview.lecture_path.read_text(encoding="utf-8")
        section = re.search(r"^## The seven constraints\n(.*?)(?=^#)", text,
                            flags=re.MULTILINE | re.DOTALL)
        if section:
            table = [line for line in section.group(1).splitlines() if line.startswith("|")]
            if len(table) == len(CONSTRAINTS) + 2:
                return "\n".join(table) + "\n"
    return "".join(f"- **{label}**\n" for label in CONSTRAINTS.values())


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def home_page(all_units: Iterable[Unit], course_map: bool = True) -> str:
    """The home page: what the course is, the seven constraints, the course map, how to start,
    and the syllabus (one hidden table of contents per part, for the sidebar)."""
    all_units = list(all_units)
    ready = sum(u.status == "ready" for u in all_units)
    overview = next((u for u in all_units if u.slug == OVERVIEW_SLUG), None)
    overview_link = _unit_link(overview, HOME) if overview else "lecture 0.1"
    first = next((u for u in all_units if u.slug == "layer-norm"), None)
    start = first.slug if first else next((u.slug for u in all_units if has_download(u)), "UNIT")
    years = [u.year for u in all_units if u.papers]
    span = f", {min(years)}–{max(years)}" if years else ""
    out = [
        "# Deep learning, paper by paper",
        "",
        f"A graded course on the history of deep learning, one paper at a time{span}. "
        "Every paper of the reading list is a **unit**: an own-words lecture "
        "with a miniature reproduction of the paper's headline result, run on two CPU cores "
        "when this site was built, and an exercise whose hidden checks grade your code against "
        "a reference solution and explain the known mistakes they catch.",
        "",
        f"{_count(len(all_units), 'unit')} in {len({u.part.number for u in all_units})} parts; "
        f"{ready} ready. The [syllabus]({SYLLABUS}) lists them all; the search box finds any "
        "word of any lecture.",
        "",
        "## The seven constraints",
        "",
        "Every paper of the course let deep learning go further along one or more of seven "
        f"constraints ({overview_link} explains them):",
        "",
        constraints_table(),
        "## The course map",
        "",
    ]
    if course_map:
        out += ["```{course-map}", "```", ""]
    out += [
        f"Every unit with a paper, placed by year on the constraints it pushed; the figure is "
        f"the one {overview_link} draws from the catalogue.",
        "",
        "## How to start",
        "",
        "Read a lecture here, then do its exercise in JupyterLab and grade it on your machine. "
        "In a checkout of the course:",
        "",
        "```bash",
        *_commented([("pip install -e .", "torch, JupyterLab, jupytext and the grader"),
                     (f"course start {start}", "copies the exercise into work/ (git-ignored)"),
                     ("jupyter lab", "lectures open as notebooks; run the check cells"),
                     (f"course check {start}", "the full hidden checks, your code isolated"),
                     ("course progress", "your best score per unit")]),
        "```",
        "",
        "Each unit's page has its exercise notebook to download and the commands for it.",
        "",
        "## Syllabus",
        "",
    ]
    for part in PARTS:
        members = [u for u in all_units if u.part.number == part.number]
        if not members:
            continue
        out += [f"**{part.number} {part.title}:** "
                + "; ".join(_unit_link(u, HOME) for u in members) + ".", ""]
    out += ["```{toctree}", ":hidden:", "", "syllabus", "```", ""]
    for part in PARTS:
        members = [u for u in all_units if u.part.number == part.number]
        if members:
            out += ["```{toctree}", ":hidden:", f":caption: {part.number} {part.title}", ""]
            out += [page_path(u)[: -len(".md")] for u in members]
            out += ["```", ""]
    return "\n".join(out)


def syllabus_page(all_units: Iterable[Unit]) -> str:
    """Every unit in a table per part: number, title, year, constraints, status."""
    out = ["# Syllabus", "",
           "Every unit of the course, by part. A unit's page holds its executed lecture, its "
           "papers and its exercise.", ""]
    all_units = list(all_units)
    for part in PARTS:
        members = [u for u in all_units if u.part.number == part.number]
        if not members:
            continue
        out += [f"## {part.number} {part.title}", "",
                "| unit | year | constraints | status |", "|---|---|---|---|"]
        for u in members:
            year = str(u.year) if u.papers else "—"
            pushed = ", ".join(CONSTRAINTS[c] for c in u.constraints) or "—"
            out.append(f"| {_unit_link(u, SYLLABUS)} | {year} | {pushed} | {u.status} |")
        out.append("")
    return "\n".join(out)


def site_pages(selected: Iterable[Unit], all_units: Iterable[Unit] | None = None
               ) -> dict[str, str]:
    """Every page of the site's source tree: relative path -> MyST text."""
    all_units = list(units() if all_units is None else all_units)
    chosen = {u.slug for u in selected}
    pages = {HOME: home_page(all_units), SYLLABUS: syllabus_page(all_units)}
    for u in all_units:
        pages[page_path(u)] = unit_page(u, u.slug in chosen)
    return pages


def downloads(all_units: Iterable[Unit]) -> dict[str, Path]:
    """The exercise notebooks the units' pages offer: relative path -> source file."""
    return {download_path(u): u.exercise_path for u in all_units if has_download(u)}
