"""No new processes or Python threads from learner code in the isolated child.

Forbidden-call detection watches the child's own thread; work done in a forked process or a
raw thread escapes it, and processes can outlive their grade or read files by path. Nothing
an exercise asks for needs either, so the child refuses both before learner code exists:

- processes: an audit hook (``sys.addaudithook``; a hook cannot be removed once added)
  refuses ``os.fork``, ``os.forkpty``, ``os.system``, ``os.exec*``, ``os.spawn*``,
  ``os.posix_spawn*`` and ``subprocess.Popen`` with a ``PermissionError`` that says why;
- threads and the audit-free process door: ``_thread.start_new_thread`` and its aliases
  (``threading`` holds one) and ``_posixsubprocess.fork_exec`` are replaced by a function
  that raises the same way (torch's own C++ worker threads are not affected);
- ``ctypes`` cannot load libraries or look up C functions (libc's ``fork`` would pass both).

What is left is surgery on the child's own objects (digging the original functions out with
``gc``), the class of attack the threat model lists as not prevented.

Only the isolated child calls :func:`confine`: the hook is permanent, so the notebook's kernel
must never install it.
"""

from __future__ import annotations

import sys

REFUSED_EVENTS = frozenset({
    "os.fork", "os.forkpty", "os.system", "os.exec", "os.spawn", "os.posix_spawn",
    "subprocess.Popen", "pty.spawn",
    # C functions reached through ctypes (libc's fork, pthread_create) would pass both nets
    "ctypes.dlopen", "ctypes.dlsym",
})
MESSAGE = ("{what} is not allowed while your code is graded: the exercise needs no other "
           "processes or threads, and work done there cannot be checked")


def _refuse_thread(*args, **kwargs):
    raise PermissionError(MESSAGE.format(what="starting a thread"))


def _refuse_process(*args, **kwargs):
    raise PermissionError(MESSAGE.format(what="starting a process"))


def _audit(event: str, args: tuple) -> None:
    if event in REFUSED_EVENTS:
        raise PermissionError(MESSAGE.format(what=f"starting a process ({event})"))


def confine() -> None:
    """Refuse new processes and Python threads in this process from now on."""
    import _posixsubprocess
    import _thread
    import subprocess
    import threading

    sys.addaudithook(_audit)
    for owner, name in ((_thread, "start_new_thread"), (_thread, "start_new"),
                        (_thread, "start_joinable_thread"), (threading, "_start_new_thread"),
                        (threading, "_start_joinable_thread")):
        if hasattr(owner, name):
            setattr(owner, name, _refuse_thread)
    for spawner in (_posixsubprocess, getattr(subprocess, "_posixsubprocess", None)):
        if spawner is not None and hasattr(spawner, "fork_exec"):
            spawner.fork_exec = _refuse_process  # type: ignore[union-attr]
