"""The unit catalogue: every paper of the syllabus, where its files live, and its status.

A unit is *ready* when its four sources exist (lecture, master solution, hidden checks with a
mistake bank) and its generated exercise notebook is committed; a lecture-only unit is ready
when its lecture exists. Everything else is *planned*. The entries themselves are data, one
file per part: ``course/syllabus/<NN>-<part>.toml``, a ``[[unit]]`` table per unit (with its
``[[unit.papers]]``), in syllabus order.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from course import paths

# A master that still holds this text is a draft: ``course new`` wrote it, nobody finished it.
SCAFFOLD_MARK = "COURSE-SCAFFOLD"

CONSTRAINTS: dict[str, str] = {
    "data": "Data",
    "parameters": "Parameters",
    "optimization": "Optimization & regularization",
    "architecture": "Architecture",
    "compute": "Compute",
    "efficiency": "Compute efficiency",
    "energy": "Energy",
}


@dataclass(frozen=True)
class Part:
    number: int
    name: str  # "optimization-and-regularization"
    package: str  # bare name for solutions/ and autograder/: "optimization"
    title: str

    @property
    def folder(self) -> str:
        return f"{self.number:02d}-{self.name}"


PARTS: tuple[Part, ...] = (
    Part(0, "overview", "overview", "Overview"),
    Part(1, "deep-neural-networks", "deep_networks", "Deep neural networks"),
    Part(2, "optimization-and-regularization", "optimization", "Optimization and regularization"),
    Part(3, "sequence-modeling", "sequence", "Sequence modeling"),
    Part(4, "transformers", "transformers", "Transformers"),
    Part(5, "generative-models", "generative", "Generative models"),
    Part(6, "compute", "compute", "Compute"),
)
PART_BY_NUMBER = {p.number: p for p in PARTS}


@dataclass(frozen=True)
class Paper:
    authors: str
    year: int
    title: str
    url: str
    venue: str = ""

    def citation(self) -> str:
        venue = f" {self.venue}." if self.venue else ""
        return f"{self.authors} ({self.year}). {self.title}.{venue} {self.url}"


@dataclass(frozen=True)
class Unit:
    number: str  # "2.6"
    slug: str  # "layer-norm"
    title: str
    papers: tuple[Paper, ...]
    constraints: tuple[str, ...]
    lecture_only: bool = False
    summary: str = ""
    tags: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        unknown = set(self.constraints) - set(CONSTRAINTS)
        if unknown:
            raise ValueError(f"unit {self.slug}: unknown constraints {sorted(unknown)}")

    # -- identity -------------------------------------------------------------------------
    @property
    def part(self) -> Part:
        return PART_BY_NUMBER[int(self.number.split(".")[0])]

    @property
    def index(self) -> int:
        return int(self.number.split(".")[1])

    @property
    def module(self) -> str:
        """Python module name of the slug: ``layer-norm`` -> ``layer_norm``."""
        return self.slug.replace("-", "_")

    @property
    def year(self) -> int:
        return min((p.year for p in self.papers), default=0)

    @property
    def stem(self) -> str:
        return f"{self.index:02d}-{self.slug}"

    # -- files ----------------------------------------------------------------------------
    @property
    def lecture_path(self) -> Path:
        return paths.LECTURES / self.part.folder / f"{self.stem}.md"

    @property
    def solution_path(self) -> Path:
        return paths.SOLUTIONS / self.part.package / f"{self.module}.py"

    @property
    def exercise_path(self) -> Path:
        return paths.EXERCISES / self.part.folder / f"{self.stem}.ipynb"

    @property
    def checks_path(self) -> Path:
        return paths.AUTOGRADER / self.part.package / f"test_{self.module}.py"

    @property
    def gradable(self) -> bool:
        """True when the unit has an exercise to grade (sources present, not a draft)."""
        return (
            not self.lecture_only
            and self.solution_path.exists()
            and self.checks_path.exists()
            and not self.draft
        )

    @property
    def draft(self) -> bool:
        """True while the master still carries ``course new``'s scaffold mark."""
        return self.solution_path.exists() and SCAFFOLD_MARK in self.solution_path.read_text(
            encoding="utf-8")

    @property
    def status(self) -> str:
        """``ready``, ``draft`` (scaffolded by ``course new``, not yet written) or
        ``planned``."""
        if self.lecture_only:
            return "ready" if self.lecture_path.exists() else "planned"
        if self.draft:
            return "draft"
        needed = (self.lecture_path, self.solution_path, self.checks_path, self.exercise_path)
        return "ready" if all(p.exists() for p in needed) else "planned"


SYLLABUS_FILES = Path(__file__).resolve().parent / "syllabus"


def load_units(folder: Path = SYLLABUS_FILES) -> tuple[Unit, ...]:
    """Every ``[[unit]]`` of the part files in ``folder``, parts in order."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    found = []
    for path in sorted(folder.glob("*.toml")):
        for entry in tomllib.loads(path.read_text(encoding="utf-8")).get("unit", []):
            entry = dict(entry)
            papers = tuple(Paper(**paper) for paper in entry.pop("papers", []))
            found.append(Unit(papers=papers, constraints=tuple(entry.pop("constraints", ())),
                              tags=tuple(entry.pop("tags", ())), **entry))
    return tuple(found)


@cache
def units() -> tuple[Unit, ...]:
    return load_units()


def find(name: str) -> Unit:
    """Look a unit up by slug (``layer-norm``), module name (``layer_norm``) or number."""
    key = name.strip().lower()
    for u in units():
        if key in (u.slug, u.module, u.number):
            return u
    raise KeyError(name)


def gradable_units() -> list[Unit]:
    return [u for u in units() if u.gradable]
