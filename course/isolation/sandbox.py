"""An OS-level sandbox for learner code, where the machine allows one (bubblewrap).

When ``bwrap`` works here, the fork server that isolated children come from is started inside
a bubblewrap sandbox, so every child is too:

- the file system is read-only, with a fresh ``/tmp``; the course's ``solutions/`` and
  ``autograder/`` folders, the reference cache (:func:`course.paths.reference_cache`) and any
  path in ``$COURSE_SANDBOX_HIDE`` (e.g. an nbgrader gradebook) are replaced by empty folders;
- no network (a new, empty network namespace), its own PID, IPC and UTS namespaces, so learner
  code sees only its own processes;
- a new user namespace with no capabilities, as uid/gid 65534 inside;
- everything dies with the grader (``--die-with-parent``), and the grader kills every process a
  submission left behind before the next one starts (see :func:`reap_descendants`).

``$COURSE_SANDBOX``: ``auto`` (default: bubblewrap if it works, else process isolation),
``bwrap`` (require it), ``none`` (process isolation only). Without a sandbox learner code still
runs in a separate process with limits, and every report says which isolation graded it.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from course import paths

MODES = ("auto", "bwrap", "none")


class SandboxUnavailable(RuntimeError):
    pass


def requested_mode() -> str:
    mode = os.environ.get("COURSE_SANDBOX", "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise SandboxUnavailable(f"COURSE_SANDBOX={mode!r}: use one of {', '.join(MODES)}")
    return mode


def hidden_paths() -> list[Path]:
    """What the sandbox replaces by empty folders. The reference cache is created first if
    need be: a folder made after the sandbox started would show through."""
    extra = [Path(p) for p in os.environ.get("COURSE_SANDBOX_HIDE", "").split(os.pathsep) if p]
    cache = paths.reference_cache()
    if cache is not None:
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError:  # a read-only course: nothing is written there, nothing to hide
            pass
    found = [paths.SOLUTIONS, paths.AUTOGRADER, paths.ROOT / ".git", *extra]
    return found + ([cache] if cache is not None else [])


def bwrap_arguments() -> list[str]:
    args = [
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        "--unshare-user", "--uid", "65534", "--gid", "65534",
        "--die-with-parent", "--new-session",
    ]
    # a fresh /tmp hides the machine's, but the course (its package, and the ROOT holding
    # solutions/ and autograder/, which COURSE_ROOT may put elsewhere) and its Python may live
    # there (CI)
    package = Path(paths.__file__).resolve().parent  # the package alone: not its checkout
    needed = {paths.ROOT, package, Path(sys.prefix), Path(sys.base_prefix),
              Path(sys.executable).parent}
    for path in sorted(p.resolve() for p in needed):
        if path.is_relative_to("/tmp"):
            args += ["--ro-bind", str(path), str(path)]
    for device in sorted(Path("/dev").glob("nvidia*")):  # CUDA needs its device nodes
        args += ["--dev-bind", str(device), str(device)]
    for hidden in hidden_paths():
        if hidden.exists():
            kind = "--tmpfs" if hidden.is_dir() else "--ro-bind"
            args += [kind, str(hidden)] if kind == "--tmpfs" else [kind, "/dev/null", str(hidden)]
    return args


@functools.cache
def _probe() -> str:
    """'' when bubblewrap works here, else the reason it does not."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap (bwrap) is not installed"
    try:
        proc = subprocess.run([exe, *bwrap_arguments(), sys.executable, "-c", "pass"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap failed to start: {exc}"
    if proc.returncode != 0:
        return f"bubblewrap does not work here: {proc.stderr.strip()[:200]}"
    return ""


def level() -> str:
    """The isolation this machine gives learner code: ``bubblewrap`` or ``process``."""
    mode = requested_mode()
    if mode == "none":
        return "process"
    reason = _probe()
    if reason and mode == "bwrap":
        raise SandboxUnavailable(f"COURSE_SANDBOX=bwrap but {reason}")
    return "process" if reason else "bubblewrap"


def unavailable_reason() -> str:
    return _probe() if requested_mode() != "none" else "disabled by COURSE_SANDBOX=none"


_WRAPPERS: dict[tuple[str, ...], str] = {}


def python_wrapper() -> str:
    """An executable that runs this Python inside the sandbox (used as the fork server's
    interpreter). One per distinct sandbox (the hidden paths are read now, so a path added to
    ``$COURSE_SANDBOX_HIDE`` later gets a new wrapper, and :mod:`course.isolation.forkserver` a new
    server)."""
    args = tuple([shutil.which("bwrap") or "bwrap", *bwrap_arguments(), sys.executable])
    if args not in _WRAPPERS:
        folder = Path(tempfile.mkdtemp(prefix="course-sandbox-"))
        script = folder / "python"
        command = " ".join(shlex.quote(a) for a in args)
        script.write_text(f'#!/bin/sh\nexec {command} "$@"\n', encoding="utf-8")
        script.chmod(0o700)
        _WRAPPERS[args] = str(script)
    return _WRAPPERS[args]


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def descendants(pid: int, spare: Callable[[int], bool] | None = None) -> list[int]:
    """Every process below ``pid``; with ``spare``, without the subtrees of its children for
    which ``spare(child)`` holds."""
    tree, found, todo = _children(), [], [pid]
    while todo:
        parent = todo.pop()
        for child in tree.get(parent, []):
            if spare is not None and parent == pid and spare(child):
                continue
            found.append(child)
            todo.append(child)
    return found


def inner_pid(pid: int) -> int | None:
    """``pid`` as its own, innermost PID namespace numbers it (the last field of ``NSpid``):
    under bubblewrap the fork server and its children live in a namespace of their own, and the
    pid multiprocessing reports for a child is that number, not the machine's. None when the
    process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return pid  # a kernel without NSpid (before 4.1): one namespace


def host_pid(server_pid: int | None, child: int) -> int | None:
    """The machine's pid of the fork server's child that the server knows as ``child`` (its
    own namespace's number), or None when no such process lives. Signal that pid, never
    ``child`` itself: under a PID namespace ``child`` names some unrelated process here."""
    if not server_pid or not Path("/proc").exists():
        return None
    for pid in _children().get(server_pid, []):
        if inner_pid(pid) == child:
            return pid
    return None


def reap_descendants(server_pid: int | None, spare: frozenset[int] = frozenset()) -> int:
    """Kill every process below the fork server (what submissions left behind: the fork
    server is a child subreaper, so orphans re-parent to it), except the server's children
    whose pids as the server knows them (:func:`inner_pid`) are in ``spare``, and everything
    below them. Returns how many were killed."""
    if not server_pid or not Path("/proc").exists():
        return 0
    killed = 0
    for pid in descendants(server_pid, lambda child: bool(spare) and inner_pid(child) in spare):
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except (ProcessLookupError, PermissionError):
            pass
    return killed
