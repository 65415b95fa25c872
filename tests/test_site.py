"""The course website (``course site``): its pages, an offline self-contained build, the
execution cache that makes rebuilds incremental, and ``--check`` naming stale pages.

The builds here cover a few units (``SITE_UNITS``); the browser tests are in
``test_site_browser.py``.
"""

from __future__ import annotations

import re
import shutil

import jupytext
import pytest
from click.testing import CliRunner

from course import catalogue
from course.catalogue import CONSTRAINTS, Paper, Unit
from course.cli import main
from course.site import pages
from tests.conftest import lecture_units
from tests.site_helpers import SITE_UNITS, require_site_tools, small_site

OVERVIEW = catalogue.find("constraints")
LAYER_NORM = catalogue.find("layer-norm")


# -- pages, without building ----------------------------------------------------------------
@pytest.mark.parametrize("unit", lecture_units(), ids=lambda u: u.slug)
def test_a_unit_page_executes_exactly_its_lecture(unit):
    """The page adds markdown only: its code cells and kernel are the lecture's, so the site
    shows what the lecture computes (and finds its cached execution by the same hash)."""
    page = jupytext.reads(pages.lecture_page(unit), fmt="md:myst")
    lecture = jupytext.read(unit.lecture_path)
    code = [(c.source, c.metadata) for c in page.cells if c.cell_type == "code"]
    assert code == [(c.source, c.metadata) for c in lecture.cells if c.cell_type == "code"]
    assert page.metadata["kernelspec"] == lecture.metadata["kernelspec"]
    text = pages.lecture_page(unit)
    assert f"Unit {unit.number} · {unit.slug} · ready" in text
    for paper in unit.papers:
        assert paper.url in text and str(paper.year) in text
    for c in unit.constraints:
        assert CONSTRAINTS[c] in text
    if not unit.lecture_only:
        assert f"course check {unit.slug}" in text and pages.download_path(unit) in text


def test_a_planned_unit_gets_a_short_page_that_says_so():
    unit = Unit(number="5.99", slug="not-written-yet", title="A paper nobody wrote up",
                papers=(Paper("A. Author", 2031, "Future work", "https://example.org/x"),),
                constraints=("data",))
    assert unit.status == "planned"
    text = pages.unit_page(unit, selected=True)
    assert "**planned**" in text and "not written yet" in text
    assert "{code-cell}" not in text and "{download}" not in text
    assert "https://example.org/x" in text and "Data" in text


def test_a_unit_left_out_of_a_partial_build_says_how_to_read_it():
    text = pages.unit_page(LAYER_NORM, selected=False)
    assert "{code-cell}" not in text
    assert "course site --units" in text and "06-layer-norm.md" in text


def test_the_home_page_has_the_constraints_map_start_and_syllabus():
    home = pages.home_page(catalogue.units())
    rows = [line for line in home.splitlines() if line.startswith("| **")]
    assert [re.match(r"\| \*\*(.+?)\*\*", r).group(1) for r in rows] == list(CONSTRAINTS.values())
    assert "```{course-map}" in home and "course start layer-norm" in home
    for unit in catalogue.units():
        assert f"({pages.page_path(unit)})" in home  # linked from the syllabus
        assert pages.page_path(unit)[:-3] in home    # in the sidebar's tables of contents
    syllabus = pages.syllabus_page(catalogue.units())
    assert syllabus.count("](lectures/") == len(catalogue.units())


def test_the_site_command_says_what_to_install_without_its_tools(monkeypatch, tmp_path):
    monkeypatch.setattr("course.site.missing_tools", lambda: ["myst-nb", "furo"])
    result = CliRunner().invoke(main, ["site", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert 'pip install -e ".[site]"' in result.output and "myst-nb" in result.output
    assert not (tmp_path / "out").exists()


def test_the_site_is_never_written_over_a_folder_that_is_not_one(tmp_path):
    require_site_tools()
    from course.site.build import SiteError, build_site

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SiteError, match="not empty"):
        build_site(tmp_path, [OVERVIEW], cache=tmp_path / "cache")
    assert (tmp_path / "notes.txt").read_text() == "mine"


# -- a small build --------------------------------------------------------------------------
EXTERNAL = re.compile(r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)=\"((?:[a-z]+:)?//"
                      r"[^\"]*)\"", re.IGNORECASE)


@pytest.mark.slow
def test_a_small_site_is_complete_and_self_contained(tmp_path_factory):
    out, _, result = small_site(tmp_path_factory)
    if result is not None:  # this worker built it: every chosen lecture was executed
        assert sorted(result.executed) == sorted(
            pages.page_path(catalogue.find(s)) for s in SITE_UNITS)
        assert result.lectures == len(SITE_UNITS)
    for rel in ("index.html", "syllabus.html", "search.html", "searchindex.js",
                "_static/mathjax/tex-chtml-full.js", "_images/course-map.png"):
        assert (out / rel).is_file(), rel
    for unit in catalogue.units():
        assert (out / pages.page_path(unit).replace(".md", ".html")).is_file(), unit.slug
    html_files = list(out.rglob("*.html"))
    external = {m for f in html_files for m in EXTERNAL.findall(f.read_text("utf-8"))}
    assert not external, f"the site loads resources from the network: {sorted(external)[:5]}"
    for f in out.rglob("*.css"):
        assert not re.search(r"url\((['\"]?)(https?:)?//", f.read_text("utf-8")), f
    lecture = (out / "lectures/02-optimization-and-regularization/06-layer-norm.html").read_text(
        "utf-8")
    assert "_static/mathjax/tex-chtml-full.js" in lecture
    overview = (out / "lectures/00-overview/01-constraints.html").read_text("utf-8")
    assert "Claim holds:" in overview  # the executed claim cell's output
    downloads = list(out.glob("_downloads/*/06-layer-norm.ipynb"))
    assert downloads and downloads[0].read_bytes() == LAYER_NORM.exercise_path.read_bytes()
    assert re.search(r'href="[^"]*_downloads/[0-9a-f]+/06-layer-norm\.ipynb"', lecture)
    home = (out / "index.html").read_text("utf-8")
    assert "course-map.png" in home and "Compute efficiency" in home


@pytest.mark.slow
def test_rebuilds_execute_only_changed_lectures_and_check_names_stale_pages(
        tmp_path, tmp_path_factory, monkeypatch):
    """Against a copy of the small site's execution cache: a build of a cached lecture runs
    nothing; ``--check`` passes, then names the page whose lecture changed; a change to
    markdown only runs nothing; a change to a code cell runs that lecture alone."""
    from course.site.build import build_site, check_site

    _, shared_cache, _ = small_site(tmp_path_factory)
    cache = tmp_path / "cache"
    shutil.copytree(shared_cache / "jupyter", cache / "jupyter")
    out = tmp_path / "site"
    chosen = [OVERVIEW]
    page = pages.page_path(OVERVIEW)

    first = build_site(out, chosen, cache=cache)
    assert first.executed == [] and first.lectures == 1
    assert check_site(out, chosen) == []
    runner = CliRunner()
    assert runner.invoke(main, ["site", str(out), "--check", "--units", "constraints"]
                         ).exit_code == 0
    whole = check_site(out)  # the whole course: every other lecture is missing from this site
    assert len(whole) == len([u for u in catalogue.units() if pages.in_full(u)]) - 1

    copy = tmp_path / "lectures" / OVERVIEW.lecture_path.name
    copy.parent.mkdir()
    text = OVERVIEW.lecture_path.read_text(encoding="utf-8")
    copy.write_text(text.replace("This course follows deep learning",
                                 "This course traces deep learning", 1), encoding="utf-8")
    real = Unit.lecture_path

    def lecture_path(unit):
        return copy if unit.slug == OVERVIEW.slug else real.fget(unit)

    monkeypatch.setattr(Unit, "lecture_path", property(lecture_path))
    assert check_site(out, chosen) == [f"{page}: changed since the build"]
    stale = runner.invoke(main, ["site", str(out), "--check", "--units", "constraints"])
    assert stale.exit_code == 1 and page in stale.output

    markdown_only = build_site(out, chosen, cache=cache)
    assert markdown_only.executed == [] and check_site(out, chosen) == []
    built = (out / page.replace(".md", ".html")).read_text("utf-8")
    assert "This course traces deep learning" in built

    code = text.replace("SEED = 0\n", "SEED = 0  # the seed of every run below\n", 1)
    assert code != text
    copy.write_text(code, encoding="utf-8")
    assert check_site(out, chosen) == [f"{page}: changed since the build"]
    rerun = build_site(out, chosen, cache=cache)
    assert rerun.executed == [page]
    assert check_site(out, chosen) == []
    assert (out / "_images" / "course-map.png").is_file()


def test_check_fails_for_a_folder_with_no_site(tmp_path):
    require_site_tools()
    from course.site.build import check_site

    assert check_site(tmp_path) == [f"{tmp_path}: no site built here (no .course-site.json)"]
    result = CliRunner().invoke(main, ["site", str(tmp_path), "--check"])
    assert result.exit_code == 1
