"""Helpers shared by the website tests: one small site built once per test run (all xdist
workers wait for the first), a headless Chromium, an artifact folder, stopping by PID."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from course import catalogue
from tests.conftest import ROOT

# Two fast lectures: 0.1 draws the course map (figures, math, a lecture only) and 2.6 has an
# exercise to download (figures, math).
SITE_UNITS = ("constraints", "layer-norm")
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def require_site_tools() -> None:
    from course.site import missing_tools

    if missing_tools():
        pytest.skip(f"the site extra is not installed ({', '.join(missing_tools())})")


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every xdist worker of this run sees (the run's own base temp otherwise)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def small_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    """(site, execution cache, build result or None when another worker built it)."""
    require_site_tools()
    from course.site.build import build_site

    root = shared_root(tmp_path_factory) / "course-site"
    out, cache, done = root / "site", root / "cache", root / "built"
    result = None
    with locked(root / "lock"):
        if not done.exists():
            units = [catalogue.find(slug) for slug in SITE_UNITS]
            result = build_site(out, units, cache=cache)
            done.write_text(",".join(result.executed))
    return out, cache, result


def artifacts_folder() -> Path:
    """``$COURSE_ARTIFACTS`` or ``tests-artifacts/`` (git-ignored): screenshots of the tests,
    named at the end of the run's output."""
    return Path(os.environ.get("COURSE_ARTIFACTS") or ROOT / "tests-artifacts").resolve()


def artifacts_dir() -> Path:
    path = artifacts_folder()
    path.mkdir(parents=True, exist_ok=True)
    return path


def browser_unavailable() -> str | None:
    """Why no headless Chromium can be driven here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the test extra)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"no {path}: apt-get install {package} (.ci/run installs it where it can)"
    return None


def stop(proc: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM the process group of ``proc``, SIGKILL it after ``grace`` seconds."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace)


@contextmanager
def chromium(window: str = "1280,2000") -> Iterator[object]:
    """A headless Chromium under selenium, the driver given by path (nothing downloaded),
    stopped by PID within a bounded time."""
    reason = browser_unavailable()
    if reason:
        pytest.skip(reason)
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager never fetches a browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                f"--window-size={window}", "--disable-gpu", "--no-first-run"):
        options.add_argument(arg)
    # chromedriver leads its own process group, which the browser it starts joins
    service = Service(str(CHROMEDRIVER), popen_kw={"start_new_session": True})
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(120)
    try:
        yield driver
    finally:
        proc = service.process
        try:
            driver.quit()
        finally:
            if proc is not None:
                _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM what is left of the process group ``proc`` leads (a browser that outlived its
    driver), SIGKILL after a few seconds; ``proc`` itself is reaped."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            proc.poll()
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
