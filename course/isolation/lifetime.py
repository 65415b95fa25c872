"""Processes that die with the one that started them (Linux), so nothing outlives the grader.

The grader starts a fork server (and, for ``course grade``, worker processes that start their
own); the fork server forks a child per submission. Each of them asks the kernel for SIGKILL
when its parent dies (``PR_SET_PDEATHSIG``): SIGKILL, SIGTERM, Ctrl-C or an outer ``timeout``
on the grader then takes the whole tree down within moments, at either isolation level, even
when learner code ignores every signal it can. (Under bubblewrap the sandbox's
``--die-with-parent`` and its PID namespace do the same once more.) Elsewhere this is a no-op.
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Ask for SIGKILL when the parent process dies; exit now if it already has. True when the
    request was accepted."""
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        accepted = libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    if accepted and os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)
    return accepted
