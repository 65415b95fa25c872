"""The grader signals only its own live children, by the machine's pid, at both isolation levels.

Under bubblewrap the fork server lives in a PID namespace of its own, and the pid that
multiprocessing reports for a child (``proc.pid``) is the sandbox's number for it, which on
the machine names some unrelated process. The grader once killed ``proc.pid`` (and its process
group) on every close: in CI, where pids wrap around, that SIGKILLed other tests' processes.
Proven here:

- closing a runner signals exactly its child's machine pid, and nothing when the child is
  already gone;
- closing one runner leaves another runner's child (sharing the fork server) alive;
- a process that exits with a runner still open signals no pid but its child's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from course.grading.spec import Call
from course.isolation import forkserver, runner, sandbox
from course.isolation.runner import IsolatedRunner

SOURCE = "def f(x):\n    return x + 1\n"


class _Recorder:
    def __init__(self, monkeypatch):
        self.sent: list[tuple[str, int, int]] = []
        real_kill, real_killpg = os.kill, os.killpg

        def kill(pid, sig):
            self.sent.append(("kill", pid, sig))
            return real_kill(pid, sig)

        def killpg(pid, sig):
            self.sent.append(("killpg", pid, sig))
            return real_killpg(pid, sig)

        monkeypatch.setattr(runner.os, "kill", kill)
        monkeypatch.setattr(runner.os, "killpg", killpg)


def test_close_signals_the_childs_machine_pid(isolation_level, monkeypatch):
    r = IsolatedRunner([(1, SOURCE)], "cpu", [])
    r.load()
    child = sandbox.host_pid(forkserver.server_pid(), r.proc.pid)
    assert child is not None and sandbox.inner_pid(child) == r.proc.pid
    if isolation_level == "bwrap":
        assert child != r.proc.pid  # the sandbox numbers its processes itself
    recorder = _Recorder(monkeypatch)
    r.close()
    assert {pid for _, pid, _ in recorder.sent} <= {child}, recorder.sent
    assert sandbox.descendants(forkserver.server_pid()) == []


def test_close_signals_nothing_once_the_child_is_gone(isolation_level, monkeypatch):
    r = IsolatedRunner([(1, SOURCE)], "cpu", [])
    r.load()
    child = sandbox.host_pid(forkserver.server_pid(), r.proc.pid)
    os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while r.proc.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    recorder = _Recorder(monkeypatch)
    r.close()
    assert recorder.sent == []


def test_closing_one_runner_spares_another(isolation_level):
    first = IsolatedRunner([(1, SOURCE)], "cpu", [])
    second = IsolatedRunner([(1, SOURCE)], "cpu", [])
    try:
        assert first.run(Call("f", (1,)))["ok"]
        assert second.run(Call("f", (2,)))["ok"]
        second.close()
        again = first.run(Call("f", (3,)))
        assert again["ok"], again.get("error")  # its child was not reaped with the second's
    finally:
        first.close()
        second.close()


EXITS_WITH_A_RUNNER_OPEN = textwrap.dedent("""
    import atexit, os
    seen = {"sent": [], "child": None}
    # registered first, so it runs last: after the grader's and multiprocessing's exit handlers
    atexit.register(lambda: print("SIGNALLED", sorted(set(seen["sent"])), "CHILD",
                                  seen["child"], flush=True))
    from course.isolation import forkserver, sandbox
    from course.isolation.runner import IsolatedRunner

    r = IsolatedRunner([(1, "x = 1")], "cpu", [])
    r.load()
    seen["child"] = sandbox.host_pid(forkserver.server_pid(), r.proc.pid)
    real = os.kill
    os.kill = lambda pid, sig: (seen["sent"].append(pid), real(pid, sig))[1]
""")


def test_exit_with_a_runner_open_signals_only_its_child(isolation_level):
    env = {**os.environ, "COURSE_SANDBOX": isolation_level}
    done = subprocess.run([sys.executable, "-c", EXITS_WITH_A_RUNNER_OPEN], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    line = next(t for t in done.stdout.splitlines() if t.startswith("SIGNALLED"))
    signalled, child = line.split(" CHILD ")
    pids = eval(signalled.removeprefix("SIGNALLED "))  # a list of ints the script printed
    assert set(pids) <= {int(child)}, line
