"""The fork server that isolated children are forked from (torch imported once per run).

Kept free of torch imports so that the command line can start the server first and let it
import torch while the grader's own process is importing torch too.
"""

from __future__ import annotations

import multiprocessing

PRELOAD = ["torch", "course.isolation.child", "course.grading.fixtures", "course.isolation.zygote"]


# added by prestart(many=True): warm-ups that pay off only over many submissions
MANY = ["course.isolation.warm"]
_preload = list(PRELOAD)

_UNSET = "<no server started yet>"
# the interpreter the running server was started with (None: this Python, no sandbox)
_server_executable: str | None = _UNSET


def context():
    """The forkserver context; inside a bubblewrap sandbox when :mod:`course.isolation.sandbox` says
    this machine has one. A server started for another sandbox (the hidden paths changed
    since) is stopped first, so the next child comes from a server that hides them."""
    global _server_executable
    from multiprocessing import forkserver

    from course.isolation import sandbox

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_preload)
    executable = sandbox.python_wrapper() if sandbox.level() == "bubblewrap" else None
    running = getattr(forkserver._forkserver, "_forkserver_pid", None) is not None
    # a server started for the other isolation level (or other hidden paths) is stopped, also
    # when the one running has no sandbox (``None``) and this one needs one
    if running and _server_executable != _UNSET and executable != _server_executable:
        forkserver._forkserver._stop()
    _server_executable = executable
    if executable:
        ctx.set_executable(executable)
    return ctx


def server_pid() -> int | None:
    """PID of the Python fork server process (inside the sandbox wrapper, if any)."""
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    if pid is None:
        return None
    from course.isolation.sandbox import descendants

    candidates = [pid, *descendants(pid)]
    for candidate in candidates:
        try:
            cmdline = open(f"/proc/{candidate}/cmdline", "rb").read()
        except OSError:
            continue
        program = cmdline.split(b"\0", 1)[0]
        if b"multiprocessing.forkserver" in cmdline and not program.endswith(b"bwrap"):
            return candidate
    return pid


def prestart(many: bool = False) -> None:
    """Start the fork server now (it warms up in the background). ``many``: it will serve
    many submissions, so it also pays first-use costs (:mod:`course.isolation.warm`) once
    instead of every child paying them."""
    global _preload
    if many:
        _preload = PRELOAD + MANY
    context()
    from multiprocessing import forkserver

    forkserver.ensure_running()
