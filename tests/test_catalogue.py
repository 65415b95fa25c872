"""The catalogue covers the whole syllabus, with citations, constraints and honest statuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from course.catalogue import CONSTRAINTS, PARTS, SYLLABUS_FILES, find, load_units, units

SYLLABUS = Path(__file__).resolve().parents[2] / "shared" / "SYLLABUS.md"


def test_every_unit_is_unique_and_well_formed():
    all_units = units()
    assert len({u.slug for u in all_units}) == len(all_units)
    assert len({u.number for u in all_units}) == len(all_units)
    for u in all_units:
        assert u.part in PARTS
        assert set(u.constraints) <= set(CONSTRAINTS)
        if not u.lecture_only:
            assert u.papers, f"{u.slug} cites no paper"
            assert u.constraints, f"{u.slug} names no constraint"
        for p in u.papers:
            assert p.authors and p.title and 1940 < p.year < 2030
            assert p.url.startswith("https://")


@pytest.mark.skipif(not SYLLABUS.exists(), reason="shared/SYLLABUS.md is not beside this clone")
def test_catalogue_matches_syllabus():
    text = SYLLABUS.read_text(encoding="utf-8")
    listed = re.findall(r"\*\*(\d+\.\d+) `([a-z0-9-]+)`", text)
    assert len(listed) > 40
    assert [(u.number, u.slug) for u in units()] == listed


def test_status_follows_files():
    for u in units():
        files = [u.lecture_path] if u.lecture_only else [
            u.lecture_path, u.solution_path, u.checks_path, u.exercise_path]
        assert (u.status == "ready") == (all(f.exists() for f in files) and not u.draft), u.slug


def test_entries_are_data_one_file_per_part_in_order(tmp_path):
    files = sorted(SYLLABUS_FILES.glob("*.toml"))
    assert [f.stem for f in files] == [p.folder for p in PARTS]
    loaded = units()
    for path in files:
        part = int(path.stem[:2])
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        mine = load_units(tmp_path)
        assert mine and {u.part.number for u in mine} == {part}, path.name
        (tmp_path / path.name).unlink()
    numbers = [tuple(map(int, u.number.split("."))) for u in loaded]
    assert numbers == sorted(numbers)
    # an entry with an unknown constraint is refused when the files are read
    (tmp_path / "09-bad.toml").write_text(
        '[[unit]]\nnumber = "9.1"\nslug = "x"\ntitle = "X"\nconstraints = ["magic"]\n',
        encoding="utf-8")
    with pytest.raises(ValueError, match="unknown constraints"):
        load_units(tmp_path)


def test_find_by_slug_module_and_number():
    assert find("layer-norm") is find("layer_norm") is find("2.6")
    with pytest.raises(KeyError):
        find("nope")


def test_pilot_units_are_ready():
    for slug in ("layer-norm", "lstm", "transformer", "ddpm"):
        assert find(slug).status == "ready", slug
