"""A student's first hour: what JupyterLab and the terminal show around the exercise.

- lectures open as runnable notebooks (jupytext) by default, from the file browser and from the
  exercise's link: JupyterLab's own settings service says so;
- opening, running and saving a lecture (or a generated exercise) leaves its file as committed;
- the terminal report wraps, never crops, at any width from 60 columns, piped or not;
- "got" and "expected" never print the same number;
- a case label names its dtype, and no two cases of a check read the same;
- ``check("task")`` says which checks passed, never "All public checks passed" for one task;
- ``course check`` reports the time the learner waited beside the time spent grading;
- a learner's install carries no instructor tools.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from rich.console import Console

from course import catalogue
from course.build import KERNELSPEC, LANGUAGE_INFO
from course.grading.checks import load_checks, master_source
from course.grading.compare import Tolerance, compare_tensor, fmt_pair
from course.grading.engine import grade_submission
from course.grading.grader import case_label
from course.grading.spec import Call, Make
from course.report import print_result, verdict
from tests.conftest import ROOT, gradable_units, lecture_units

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

LAYER_NORM = catalogue.find("layer-norm")


# -- 1. lectures open as notebooks -------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab_server(tmp_path):
    """JupyterLab on 127.0.0.1 with a token and a clean user configuration, stopped by PID."""
    port, token = _free_port(), "first-hour-token"
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start: "
                                       + proc.stderr.read().decode()[-2000:]) from None
                time.sleep(0.5)
        yield base, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.mark.slow
def test_lectures_open_as_notebooks_by_default(lab_server):
    """After ``course start``, JupyterLab's settings service gives markdown (and MyST) files
    the jupytext notebook as their default viewer: a double-click in the file browser and the
    exercise's "Lecture" link both open a runnable notebook."""
    proc = subprocess.run([sys.executable, "-m", "course.cli", "start", "layer-norm"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    base, token = lab_server
    url = f"{base}/lab/api/settings/@jupyterlab/docmanager-extension:plugin?token={token}"
    settings = json.loads(urllib.request.urlopen(url, timeout=30).read())
    # the frontend's composite: the user's settings over the schema's defaults (with overrides)
    default = settings["schema"]["properties"]["defaultViewers"]["default"]
    viewers = {**default, **settings["settings"].get("defaultViewers", {})}
    assert viewers.get("markdown") == "Jupytext Notebook", viewers
    assert viewers.get("myst") == "Jupytext Notebook", viewers
    exts = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"],
                          capture_output=True, text=True, timeout=120)
    assert "jupyterlab-jupytext" in exts.stdout + exts.stderr  # the factory's provider


# -- 2. opening and saving leaves files as committed -------------------------------------------
def _lab_round_trip(path: Path, tmp_path: Path, kernel_language_info: dict | None) -> str:
    """What JupyterLab does to a file: GET it through the server's (jupytext) contents
    manager, let the kernel set its kernelspec and language info, PUT it back."""
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
    from jupytext import build_async_jupytext_contents_manager_class

    root = tmp_path / "lab-root"
    root.mkdir(parents=True)
    shutil.copy(ROOT / "jupytext.toml", root / "jupytext.toml")
    shutil.copy(path, root / path.name)
    manager = build_async_jupytext_contents_manager_class(AsyncLargeFileManager)(
        root_dir=str(root))

    async def open_and_save() -> None:
        model = await manager.get(path.name, content=True, type="notebook")
        nb = model["content"]
        nb["metadata"]["kernelspec"] = dict(KERNELSPEC)
        if kernel_language_info is not None:
            nb["metadata"]["language_info"] = kernel_language_info
        await manager.save({"type": "notebook", "format": "json", "content": nb}, path.name)

    asyncio.run(open_and_save())
    return (root / path.name).read_text(encoding="utf-8")


KERNEL_LANGUAGE_INFO = {**LANGUAGE_INFO, "version": "3.11.7"}


@pytest.mark.parametrize("unit", lecture_units(), ids=lambda u: u.slug)
def test_saving_a_lecture_in_jupyterlab_leaves_it_unchanged(unit, tmp_path):
    committed = unit.lecture_path.read_text(encoding="utf-8")
    assert _lab_round_trip(unit.lecture_path, tmp_path, KERNEL_LANGUAGE_INFO) == committed


@pytest.mark.parametrize("unit", gradable_units(), ids=lambda u: u.slug)
def test_saving_a_generated_exercise_in_jupyterlab_leaves_it_unchanged(unit, tmp_path):
    """Opened and saved, the notebook is byte for byte the same; once a kernel has run, the
    only addition is the Python version the kernel reports (language_info.version)."""
    committed = unit.exercise_path.read_text(encoding="utf-8")
    assert _lab_round_trip(unit.exercise_path, tmp_path / "open", None) == committed
    ran = json.loads(_lab_round_trip(unit.exercise_path, tmp_path / "ran", KERNEL_LANGUAGE_INFO))
    before = json.loads(committed)
    assert ran["metadata"]["language_info"].pop("version") == "3.11.7"
    assert ran == before


# -- 3. the terminal report wraps ----------------------------------------------------------------
@pytest.fixture(scope="module")
def mistake_result(tmp_path_factory):
    mistake = next(m for m in load_checks(LAYER_NORM).mistakes if m.id == "eps-outside-sqrt")
    path = tmp_path_factory.mktemp("mistake") / "layer_norm.py"
    path.write_text(mistake.apply(master_source(LAYER_NORM)), encoding="utf-8")
    result = grade_submission(LAYER_NORM, path, device="cpu", isolation="none")
    assert any(c.mistake == mistake.id for c in result.checks)
    return result


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"\s+", text) if w]


@pytest.mark.parametrize("width", [60, 80, 140])
@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_report_wraps_and_never_crops(mistake_result, width, terminal):
    buffer = io.StringIO()
    # soft_wrap=True is what cropped panels before; the report must wrap whatever the console
    console = Console(file=buffer, width=width, force_terminal=terminal, color_system=None,
                      soft_wrap=True, highlight=False)
    print_result(mistake_result, console, waited=7.25)
    shown = buffer.getvalue()
    lines = shown.splitlines()
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    flat = re.sub(r"[│┃╭╮╰╯─┏┓┗┛━┌┐└┘├┤┬┴┼]", " ", shown)
    flat_words = set(_words(flat))
    failing = [c for c in mistake_result.checks if c.status != "passed"]
    assert failing
    for c in mistake_result.checks:
        missing = [w for w in _words(c.title) if w not in flat_words]
        assert not missing, (c.title, missing)
    for c in failing:
        # folded long words are the only words that may span lines: compare without spaces
        assert re.sub(r"\s", "", c.output) in re.sub(r"\s", "", flat)
    assert "7.2 s you waited" in re.sub(r"\s+", " ", flat)


# -- 4. got and expected never print the same -------------------------------------------------
def test_got_and_expected_never_print_the_same():
    assert f"{-1.8953412:.6g}" == f"{-1.8953401:.6g}"  # what the report used to print for both
    a, b = fmt_pair(-1.8953412, -1.8953401)
    assert a != b and (a, b) == ("-1.895341", "-1.89534")  # the fewest digits that differ
    assert fmt_pair(0.1, 0.1 + 2**-55)[0] != fmt_pair(0.1, 0.1 + 2**-55)[1]
    got = torch.tensor([[-1.8953412, 2.0]], dtype=torch.float64)
    want = torch.tensor([[-1.8953401, 2.0]], dtype=torch.float64)
    rec = lambda t: {"__kind__": "tensor", "data": t, "device": "cpu"}  # noqa: E731
    diff = compare_tensor(rec(got), rec(want), rec(want), "output", Tolerance(), "cpu")
    assert diff is not None
    printed = re.search(r"got (\S+), expected (\S+)", diff.message)
    assert printed and printed.group(1) != printed.group(2), diff.message
    assert "off by 1.1e-06" in diff.message


# -- 5. case labels ------------------------------------------------------------------------------
def test_case_labels_name_the_dtype():
    x32 = torch.zeros(4, 8)
    assert case_label("x[4, 8] with weight, bias", Call("layer_norm", (x32,))) == (
        "x[4, 8] with weight, bias, float32")
    assert case_label("on float64 inputs", Call("layer_norm", (x32,))) == "on float64 inputs"
    module = Make("LayerNorm", (4,), dtype=torch.float64)
    assert case_label("LayerNorm(4)", Call(module, (x32.double(),))) == "LayerNorm(4), float64"


# -- 6. per-task verdicts ------------------------------------------------------------------------
def test_a_task_check_never_says_the_whole_exercise_passed(mistake_result):
    public = [c for c in mistake_result.checks if c.public]
    backward = [c for c in public if c.id == "backward"]
    from dataclasses import replace

    one_task = replace(mistake_result, checks=backward)
    said = verdict(one_task, ("layer_norm_backward",), public_total=len(public))
    assert said == (f"All 1 public checks of `layer_norm_backward` passed. The exercise has "
                    f"{len(public)} public checks in all; `check()` runs every one.")
    assert "All public checks passed" not in said
    whole = replace(mistake_result, checks=public)
    assert verdict(whole) == (f"{sum(c.status == 'passed' for c in public)} of {len(public)} "
                              "public checks passed.")


# -- 8. the time the learner waited --------------------------------------------------------------
@pytest.mark.slow
def test_course_check_reports_the_time_waited():
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "course.cli", "check", "gelu", "--reference"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200"})
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = re.search(r"grading took ([\d.]+) s of the ([\d.]+) s you waited", proc.stdout)
    assert found, proc.stdout
    grading, waited = map(float, found.groups())
    assert grading < waited <= elapsed + 0.5


# -- 9. a learner's install --------------------------------------------------------------------
INSTRUCTOR_TOOLS = ("nbgrader", "otter-grader")


def test_a_learners_install_carries_no_instructor_tools():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=\[ ;]", dep)[0].lower() for dep in project["dependencies"]]
    assert not set(names) & set(INSTRUCTOR_TOOLS), names
    assert "jupyterlab" in names  # what a learner opens lectures and exercises in
    extras = project["optional-dependencies"]
    assert {re.split(r"[<>=]", d)[0] for d in extras["instructor"]} == set(INSTRUCTOR_TOOLS)
    # the test install includes the instructor tools (and the library oracles), the learner's not
    [own] = [d for d in extras["test"] if d.startswith("course[")]
    assert "instructor" in own.removeprefix("course[").removesuffix("]").split(",")
    assert not set(extras.get("oracles", [])) & set(project["dependencies"])
    readme = (ROOT / "README.md").read_text()
    commands = re.search(r"```bash\n(.*?)\n```", readme, re.S).group(1).splitlines()
    assert commands[0] == "pip install -e . && course check layer-norm --reference"
    assert "[" not in commands[0]  # the learner's command installs no extra
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci, "the CI script runs exactly the README's test command"
