"""The OS-level sandbox (bubblewrap), where this machine has one; and the labelled fallback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from course.grading.spec import Call
from course.isolation import forkserver, sandbox
from course.isolation.runner import IsolatedRunner

SANDBOXED = sandbox.level() == "bubblewrap"
needs_sandbox = pytest.mark.skipif(
    not SANDBOXED, reason=f"no sandbox: {sandbox.unavailable_reason()}"
)

SNOOP = f'''
import os, socket
ROOT = {str(sandbox.paths.ROOT)!r}
CACHE = {str(sandbox.paths.reference_cache())!r}
def snoop(x):
    out = {{}}
    out["solutions"] = sorted(os.listdir(os.path.join(ROOT, "solutions")))
    out["autograder"] = sorted(os.listdir(os.path.join(ROOT, "autograder")))
    out["cache"] = sorted(os.listdir(CACHE)) if os.path.isdir(CACHE) else []
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
    sandbox.hidden_paths()  # creates the reference cache's folder, as the server's start does
    sentinel = sandbox.paths.reference_cache() / "sentinel.bin"
    sentinel.write_bytes(b"a cached reference result")
    try:
        with IsolatedRunner([(1, SNOOP)], "cpu", []) as runner:
            assert runner.isolation == "bubblewrap"
            seen = _items(runner.run(Call("snoop", (torch.ones(1),))))
    finally:
        sentinel.unlink()
    assert seen["solutions"]["items"] == [] and seen["autograder"]["items"] == []
    assert seen["cache"]["items"] == []  # reference results are hidden like the solutions
    assert seen["network"] != "connected"
    assert seen["write"] != "wrote" and not (sandbox.paths.ROOT / "course" / "pwned.txt").exists()
    assert seen["uid"] == 65534
    assert seen["processes"] < 10  # its own process tree, not the machine's


def test_learner_code_cannot_start_processes_or_threads():
    """Daemons, forks, subprocesses, threads and ctypes' libc are refused in the child, in
    words, and nothing is left running under the fork server."""
    attempts = {
        "daemon": "daemon(x)",
        "subprocess": "__import__('subprocess').run(['true'])",
        "fork_exec": "__import__('_posixsubprocess').fork_exec()",
        "thread": "__import__('_thread').start_new_thread(print, ())",
        "ctypes": "__import__('ctypes').CDLL(None).fork()",
    }
    code = SNOOP + "".join(f"\ndef try_{name}(x):\n    {call}\n    return x\n"
                           for name, call in attempts.items())
    with IsolatedRunner([(1, code)], "cpu", []) as runner:
        for name in attempts:
            reply = runner.run(Call(f"try_{name}", (torch.ones(1),)))
            assert not reply["ok"], name
            assert reply["error"]["type"] == "PermissionError", (name, reply["error"])
            assert "not allowed while your code is graded" in reply["error"]["message"]
        server = forkserver.server_pid()
        assert len(sandbox.descendants(server)) <= 1  # the child itself, nothing it started


def test_reaper_kills_a_process_tree():
    """What escapes anyway (defence in depth) is killed before the next submission."""
    import subprocess

    proc = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"],
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(sandbox.descendants(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sandbox.descendants(proc.pid)) >= 2
        assert sandbox.reap_descendants(proc.pid) >= 2
        time.sleep(0.2)
        assert [p for p in sandbox.descendants(proc.pid)
                if Path(f"/proc/{p}/stat").read_text().split()[2] != "Z"] == []
    finally:
        proc.kill()
        proc.wait()


def test_fallback_is_labelled(monkeypatch):
    monkeypatch.setenv("COURSE_SANDBOX", "none")
    assert sandbox.level() == "process"
    runner = IsolatedRunner([(1, "x = 1")], "cpu", [])
    assert runner.isolation == "process"
    monkeypatch.setenv("COURSE_SANDBOX", "sometimes")
    with pytest.raises(sandbox.SandboxUnavailable):
        sandbox.level()
