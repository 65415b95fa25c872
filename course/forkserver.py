"""The fork server that isolated children are forked from (torch imported once per run).

Kept free of torch imports so that the command line can start the server first and let it
import torch while the grader's own process is importing torch too.
"""

from __future__ import annotations

import multiprocessing

PRELOAD = ["torch", "course.grading.child", "course.grading.fixtures"]


def context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def prestart() -> None:
    """Start the fork server now (it warms up in the background)."""
    context()
    from multiprocessing import forkserver

    forkserver.ensure_running()
