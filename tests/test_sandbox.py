"""The OS-level sandbox (bubblewrap), where this machine has one; and the labelled fallback."""

from __future__ import annotations

import time

import pytest
import torch

from course import forkserver, sandbox
from course.grading.runner import IsolatedRunner
from course.grading.spec import Call

SANDBOXED = sandbox.level() == "bubblewrap"
needs_sandbox = pytest.mark.skipif(
    not SANDBOXED, reason=f"no sandbox: {sandbox.unavailable_reason()}"
)

SNOOP = f'''
import os, socket
ROOT = {str(sandbox.paths.ROOT)!r}
def snoop(x):
    out = {{}}
    out["solutions"] = sorted(os.listdir(os.path.join(ROOT, "solutions")))
    out["autograder"] = sorted(os.listdir(os.path.join(ROOT, "autograder")))
    try:
        socket.create_connection(("127.0.0.1", 22), timeout=1)
        out["network"] = "connected"
    except OSError as exc:
        out["network"] = type(exc).__name__
    try:
        with open(os.path.join(ROOT, "course", "pwned.txt"), "w") as f:
            f.write("x")
        out["write"] = "wrote"
    except OSError as exc:
        out["write"] = type(exc).__name__
    out["uid"] = os.getuid()
    out["processes"] = len([p for p in os.listdir("/proc") if p.isdigit()])
    return out

def daemon(x):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            import time
            while True:
                time.sleep(0.05)
        os._exit(0)
    return x
'''


def _items(payload):
    assert payload["ok"], payload
    return payload["out"]["items"]


@needs_sandbox
def test_sandbox_hides_references_network_and_writes():
    with IsolatedRunner([(1, SNOOP)], "cpu", []) as runner:
        assert runner.isolation == "bubblewrap"
        seen = _items(runner.run(Call("snoop", (torch.ones(1),))))
    assert seen["solutions"]["items"] == [] and seen["autograder"]["items"] == []
    assert seen["network"] != "connected"
    assert seen["write"] != "wrote" and not (sandbox.paths.ROOT / "course" / "pwned.txt").exists()
    assert seen["uid"] == 65534
    assert seen["processes"] < 10  # its own process tree, not the machine's


def test_processes_left_behind_are_killed():
    with IsolatedRunner([(1, SNOOP)], "cpu", []) as runner:
        assert runner.run(Call("daemon", (torch.ones(1),)))["ok"]
        server = forkserver.server_pid()
        time.sleep(0.2)
        assert len(sandbox.descendants(server)) >= 2  # the child and the escaped daemon
    time.sleep(0.2)
    assert sandbox.descendants(server) == []


def test_fallback_is_labelled(monkeypatch):
    monkeypatch.setenv("COURSE_SANDBOX", "none")
    assert sandbox.level() == "process"
    runner = IsolatedRunner([(1, "x = 1")], "cpu", [])
    assert runner.isolation == "process"
    monkeypatch.setenv("COURSE_SANDBOX", "sometimes")
    with pytest.raises(sandbox.SandboxUnavailable):
        sandbox.level()
