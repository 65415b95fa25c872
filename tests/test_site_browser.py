"""The course in a real browser (headless Chromium under selenium, Debian's chromium and
chromium-driver; skipped with the reason where they cannot be installed).

- The website, served on 127.0.0.1 and opened from ``file://``: every page loads its images,
  no link inside the site is broken, math is typeset by the MathJax the site ships, the search
  box finds a unit by a word of its lecture; a screenshot of a lecture page is saved.
- The student's journey in JupyterLab: ``course start layer-norm`` into a temporary workspace,
  Run All, every check cell says in words that it failed (no traceback, no stderr), the
  solution typed into the cells through JupyterLab's own API, every check passes, save, and
  ``course check layer-norm`` in a terminal gives full marks for what the browser saved. A
  lecture opens as a notebook (jupytext) and runs to the end with its claim holding.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jupytext
import pytest

from course import catalogue
from course.build import SOLUTION_TAG, master_notebook
from course.markers import BEGIN, END, has_solution
from course.site import pages
from tests.conftest import ROOT
from tests.site_helpers import artifacts_dir, chromium, small_site, stop, wait_for

LAYER_NORM = catalogue.find("layer-norm")
OVERVIEW = catalogue.find("constraints")
SEARCH_WORD = "Cooijmans"  # a name the layer-norm lecture cites, and no other built page

# -- the website ------------------------------------------------------------------------------
PAGE_READY = """
const done = arguments[arguments.length - 1];
const typeset = window.MathJax && MathJax.startup ? MathJax.startup.promise : Promise.resolve();
const images = [...document.images].map(img => img.complete ? null :
    new Promise(r => { img.onload = r; img.onerror = r; }));
Promise.all([typeset, ...images]).then(() => done(true), () => done(false));
"""
PAGE_FACTS = """
const outside = [];
const walker = document.createTreeWalker(document.querySelector('article') || document.body,
                                         NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const el = walker.currentNode.parentElement;
  if (!el.closest('pre, code, script, style, mjx-container')) outside.push(walker.currentNode.data);
}
return {
  images: [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth]),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  math: document.querySelectorAll('.math').length,
  typeset: document.querySelectorAll('.math mjx-container').length,
  text: outside.join(''),
  shown: (document.querySelector('article') || document.body).innerText,
};
"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def served_site(tmp_path_factory):
    """The small site, served by Python's http.server on 127.0.0.1 in a thread."""
    out, _, _ = small_site(tmp_path_factory)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield out, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _open(driver, url: str) -> dict:
    driver.get(url)
    wait_for(lambda: driver.execute_script("return document.readyState") == "complete", 30,
             f"{url} to load")
    assert driver.execute_async_script(PAGE_READY), f"{url}: math or images never finished"
    return driver.execute_script(PAGE_FACTS)


def _target_exists(out: Path, base: str, href: str) -> bool:
    """Whether a link inside the site names a file of the site (and, with a fragment, an
    element of that page)."""
    parts = urllib.parse.urlsplit(href)
    path = urllib.parse.unquote(parts.path)
    if base.startswith("http"):
        rel = path.lstrip("/")
    else:
        rel = os.path.relpath(path, str(out))
    target = out / rel
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return False
    if parts.fragment and target.suffix == ".html":
        return f'id="{parts.fragment}"' in target.read_text("utf-8")
    return True


def _check_pages(driver, out: Path, base: str, urls: list[str]) -> dict[str, dict]:
    facts, broken, unloaded, raw = {}, [], [], []
    for url in urls:
        page = _open(driver, url)
        facts[url] = page
        unloaded += [(url, src) for src, width in page["images"] if not width]
        for href in page["links"]:
            if href.startswith(base) and not _target_exists(out, base, href):
                broken.append((url, href))
        if "$$" in page["text"] or page["typeset"] < page["math"]:
            raw.append((url, page["math"], page["typeset"]))
    assert not unloaded, f"images that did not load: {unloaded[:5]}"
    assert not broken, f"broken links inside the site: {broken[:5]}"
    assert not raw, f"math left untypeset (page, math, typeset): {raw[:5]}"
    return facts


@pytest.mark.slow
def test_every_page_of_the_served_site_works_in_chromium(served_site):
    out, base = served_site
    unit_pages = [f"{base}/{pages.page_path(u)[:-3]}.html" for u in catalogue.units()]
    with chromium() as driver:
        facts = _check_pages(driver, out, base,
                             [f"{base}/index.html", f"{base}/syllabus.html", *unit_pages])
        home = facts[f"{base}/index.html"]
        assert any(src.endswith("course-map.png") for src, _ in home["images"])
        lecture = f"{base}/{pages.page_path(LAYER_NORM)[:-3]}.html"
        assert facts[lecture]["typeset"] > 10 and facts[lecture]["images"]
        assert any("_downloads/" in h and h.endswith("06-layer-norm.ipynb")
                   for h in facts[lecture]["links"])

        driver.get(lecture)
        driver.execute_async_script(PAGE_READY)
        shot = artifacts_dir() / "site-layer-norm.png"
        driver.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
        assert shot.stat().st_size > 10_000

        assert SEARCH_WORD in LAYER_NORM.lecture_path.read_text(encoding="utf-8")
        driver.get(f"{base}/search.html?q={SEARCH_WORD}")
        found = wait_for(lambda: [a.get_attribute("href") for a in
                                  driver.find_elements("css selector", "#search-results li a")],
                         30, f"search results for {SEARCH_WORD!r}")
        assert any(h.split("#")[0].split("?")[0] == lecture for h in found), found


@pytest.mark.slow
def test_the_site_works_from_file_urls(served_site):
    out, _ = served_site
    base = out.resolve().as_uri()
    urls = [f"{base}/index.html", f"{base}/{pages.page_path(OVERVIEW)[:-3]}.html"]
    with chromium() as driver:
        facts = _check_pages(driver, out.resolve(), base, urls)
        overview = facts[urls[1]]
        assert overview["typeset"] > 10 and len(overview["images"]) >= 2
        assert "Claim holds:" in overview["shown"]  # the claim cell's output


# -- the student's journey in JupyterLab ------------------------------------------------------
NOTEBOOK = "window.courseNotebook"  # the panel docmanager:open returned
WAIT_KERNEL = f"""
const done = arguments[arguments.length - 1];
const panel = {NOTEBOOK};
panel.sessionContext.ready.then(() => done(true), e => done(String(e)));
"""
RUN_ALL = f"""
const done = arguments[arguments.length - 1];
window.jupyterapp.shell.activateById({NOTEBOOK}.id);
window.jupyterapp.commands.execute('notebook:run-all-cells').then(() => done(true),
                                                                 e => done(String(e)));
"""
# Idle, and every code cell has run (execution count set, no cell still queued).
FINISHED = f"""
const panel = {NOTEBOOK};
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
const cells = panel.content.widgets.filter(c => c.model.type === 'code');
return !!kernel && kernel.status === 'idle' &&
       cells.every(c => c.model.executionCount !== null) &&
       ![...panel.content.node.querySelectorAll('.jp-InputPrompt')].some(
           p => p.textContent.includes('*'));
"""
CELLS = f"""
const panel = {NOTEBOOK};
return panel.content.widgets.map((c, i) => ({{
  index: i, type: c.model.type, tags: c.model.getMetadata('tags') || [],
  source: c.model.sharedModel.getSource(),
  output: (c.node.querySelector('.jp-OutputArea') || {{textContent: ''}}).textContent,
  errors: c.node.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').length,
}}));
"""
SET_SOURCE = f"""
const cell = {NOTEBOOK}.content.widgets[arguments[0]];
cell.model.sharedModel.setSource(arguments[1]);
return cell.model.sharedModel.getSource();
"""
SAVE = f"""
const done = arguments[arguments.length - 1];
const panel = {NOTEBOOK};
panel.context.save().then(() => done(!panel.context.model.dirty), e => done(String(e)));
"""
OPEN = """
const done = arguments[arguments.length - 1];
window.jupyterapp.commands.execute('docmanager:open',
    {path: arguments[0], factory: arguments[1]}).then(widget => {
  window.courseNotebook = widget;
  window.jupyterapp.shell.activateById(widget.id);
  return widget.context.ready.then(() => widget.revealed).then(() => done(true));
}).catch(e => done(String(e)));
"""


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on 127.0.0.1 with a random token, serving a temporary workspace (never the
    repository's work/), its app exposed to the page; stopped by PID, bounded in time."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    home = tmp_path / "home"
    settings = home / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell rendered (no windowing), so that the DOM holds every output
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    token = secrets.token_hex(16)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HOME": str(home), "COURSE_WORKSPACE": str(workspace),
           "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    log = open(tmp_path / "lab.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={workspace}",
         "--LabApp.expose_app_in_browser=True"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError("JupyterLab exited: "
                                     + (tmp_path / "lab.log").read_text(errors="replace")[-2000:])
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                return True
            except OSError:
                return False

        wait_for(up, 180, "JupyterLab to start", interval=0.5)
        yield {"base": base, "token": token, "workspace": workspace, "env": env}
    finally:
        stop(proc, grace=15)
        log.close()


def _open_notebook(driver, lab, path: str, factory: str | None = None) -> None:
    driver.get(f"{lab['base']}/lab?token={lab['token']}")
    wait_for(lambda: driver.execute_script(
        "return !!(window.jupyterapp && window.jupyterapp.shell)"), 180, "JupyterLab's app")
    wait_for(lambda: driver.execute_script(
        "return window.jupyterapp.commands.hasCommand('docmanager:open')"), 60,
        "JupyterLab's document manager")
    assert driver.execute_async_script(OPEN, path, factory or "Notebook") is True
    wait_for(lambda: driver.execute_script(
        f"const w = {NOTEBOOK}; return !!(w && w.content && w.content.widgets && "
        f"w.context.path === arguments[0] && w.content.widgets.length)", path),
        60, f"{path} to open as a notebook")
    assert driver.execute_async_script(WAIT_KERNEL) is True


def _run_all(driver, timeout: float = 240) -> list[dict]:
    assert driver.execute_async_script(RUN_ALL) is True
    wait_for(lambda: driver.execute_script(FINISHED), timeout, "Run All to finish", interval=0.5)
    return driver.execute_script(CELLS)


def _check_cells(cells: list[dict]) -> list[dict]:
    return [c for c in cells if c["type"] == "code" and "course-check" in c["tags"]
            and c["source"].startswith("check(")]


def _solutions() -> list[str]:
    """The reference code of each solution cell, in order: the master's cells that hold a
    solution region, with the marker lines taken out."""
    return ["\n".join(line for line in cell.source.splitlines()
                      if not (BEGIN.match(line) or END.match(line)))
            for cell in master_notebook(LAYER_NORM).cells
            if cell.cell_type == "code" and has_solution(cell.source)]


PASSED = re.compile(r"(\d+) of (?:the )?(\d+) public checks")
ALL_PASSED = re.compile(r"All (?:\d+ )?public checks (?:of `\w+` )?passed")


@pytest.mark.slow
def test_the_student_journey_in_jupyterlab(lab, tmp_path):
    repo_copy = ROOT / "work" / LAYER_NORM.part.folder / LAYER_NORM.exercise_path.name
    repo_copy_before = repo_copy.stat().st_mtime_ns if repo_copy.exists() else None
    started = subprocess.run([sys.executable, "-m", "course.cli", "start", "layer-norm"],
                             env=lab["env"], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stdout + started.stderr
    rel = f"{LAYER_NORM.part.folder}/{LAYER_NORM.exercise_path.name}"
    saved = lab["workspace"] / rel
    assert saved.read_bytes() == LAYER_NORM.exercise_path.read_bytes()
    repo_copy_after = repo_copy.stat().st_mtime_ns if repo_copy.exists() else None
    assert repo_copy_after == repo_copy_before  # the repository's work/ is never touched

    with chromium() as driver:
        _open_notebook(driver, lab, rel)
        cells = _run_all(driver)
        checks = _check_cells(cells)
        assert len(checks) == 4  # one per task and the final check()
        for c in checks:
            counts = PASSED.search(c["output"])
            assert counts and counts.group(1) == "0", (c["source"], c["output"][:300])
            assert "not implemented yet" in c["output"], c["output"][:300]
        assert not [c["source"][:60] for c in cells if c["errors"]], "a traceback or stderr box"
        driver.save_screenshot(str(artifacts_dir() / "lab-layer-norm-stub.png"))

        slots = [c for c in cells if SOLUTION_TAG in c["tags"]]
        solutions = _solutions()
        assert len(slots) == len(solutions) == 3
        for slot, code in zip(slots, solutions):
            assert "# YOUR CODE HERE" in slot["source"]
            assert driver.execute_script(SET_SOURCE, slot["index"], code) == code
        cells = _run_all(driver)
        for c in _check_cells(cells):
            counts = PASSED.search(c["output"])
            if counts:
                assert counts.group(1) == counts.group(2), c["output"][:300]
            else:
                assert ALL_PASSED.search(c["output"]), c["output"][:300]
            assert "✓" in c["output"] and "✗" not in c["output"], c["output"][:300]
            assert "not implemented" not in c["output"], c["output"][:300]
        assert not [c["source"][:60] for c in cells if c["errors"]], "a traceback or stderr box"
        shot = artifacts_dir() / "lab-layer-norm-solved.png"
        driver.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
        assert driver.execute_async_script(SAVE) is True

    on_disk = json.loads(saved.read_text(encoding="utf-8"))
    written = ["".join(c["source"]) for c in on_disk["cells"]
               if SOLUTION_TAG in c["metadata"].get("tags", [])]
    assert written == solutions  # what the browser typed is what was saved
    results = tmp_path / "results.json"
    graded = subprocess.run(
        [sys.executable, "-m", "course.cli", "check", "layer-norm", "--json", str(results)],
        env=lab["env"], capture_output=True, text=True, timeout=300)
    assert graded.returncode == 0, graded.stdout[-2000:] + graded.stderr[-2000:]
    report = json.loads(results.read_text())
    assert report["score"] == sum(t["max_score"] for t in report["tests"]) > 0


@pytest.mark.slow
def test_a_lecture_opens_as_a_notebook_and_runs_to_its_claim(lab):
    """Lecture 0.1, opened through jupytext's notebook view in JupyterLab, runs to the end and
    its claim cell prints its claim without an error box."""
    folder = lab["workspace"] / "lectures" / OVERVIEW.part.folder
    folder.mkdir(parents=True)
    (lab["workspace"] / "jupytext.toml").write_bytes((ROOT / "jupytext.toml").read_bytes())
    (folder / OVERVIEW.lecture_path.name).write_bytes(OVERVIEW.lecture_path.read_bytes())
    rel = f"lectures/{OVERVIEW.part.folder}/{OVERVIEW.lecture_path.name}"
    expected = [c.source for c in jupytext.read(OVERVIEW.lecture_path).cells
                if c.cell_type == "code"]
    with chromium() as driver:
        _open_notebook(driver, lab, rel, factory="Jupytext Notebook")
        cells = _run_all(driver, timeout=180)
        assert [c["source"] for c in cells if c["type"] == "code"] == expected
        claims = [c for c in cells if "claim" in c["tags"]]
        assert len(claims) == 1
        assert "Claim holds:" in claims[0]["output"], claims[0]["output"][:500]
        assert not [c["source"][:60] for c in cells if c["errors"]], "a traceback or stderr box"
