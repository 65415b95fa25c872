"""Where learner code runs: an isolated child process, or (for the notebook's in-kernel
``check()`` and for benchmarks) the current process.

Both runners answer the same two questions, ``load()`` and ``run(probe)``, with the same
plain-data payloads, so the grader cannot tell them apart except by ``isolation``.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing.util  # noqa: F401  (its exit handler is registered before ours)
import os
import signal
import sys
import time
import weakref
from dataclasses import dataclass, replace

from course import paths
from course.grading import encode as enc
from course.grading import wire
from course.grading.failures import Failure, error
from course.grading.forbidden import Forbid
from course.grading.spec import Group, Probe
from course.isolation import forkserver, sandbox
from course.isolation.child import ChildConfig, serve
from course.isolation.inprocess import InProcessRunner, LoadResult

__all__ = ["InProcessRunner", "IsolatedRunner", "Limits", "LoadResult"]

MAX_REPLY_BYTES = 256 * 1024 * 1024
# This process's runners with a live child. Each reaps what its own submission left below the
# fork server, never another runner's child; and they are closed at exit before
# multiprocessing's own exit handler would terminate their children by ``proc.pid``, which
# under bubblewrap is a pid of the sandbox's namespace (see ``_kill``).
_OPEN: weakref.WeakSet[IsolatedRunner] = weakref.WeakSet()


def _close_open_runners() -> None:
    for runner in list(_OPEN):
        runner.close()


atexit.register(_close_open_runners)  # after multiprocessing.util's handler: runs before it


@dataclass(frozen=True)
class Limits:
    """Resource limits for learner code. Times in seconds, memory in bytes, output in chars."""

    load_seconds: float = 60.0
    probe_seconds: float = 30.0
    memory_bytes: int = 4 * 1024**3
    output_chars: int = 20_000
    # all the time one submission's code may take (its load and every probe): once spent, the
    # remaining checks are not run and score zero, so a hanging submission costs one budget
    budget_seconds: float = 60.0

    @classmethod
    def from_env(cls) -> Limits:
        def num(name: str, default: float) -> float:
            value = os.environ.get(name)
            return float(value) if value else default

        return cls(
            load_seconds=num("COURSE_LOAD_TIMEOUT", cls.load_seconds),
            probe_seconds=num("COURSE_PROBE_TIMEOUT", cls.probe_seconds),
            memory_bytes=int(num("COURSE_MEMORY_MB", cls.memory_bytes / 2**20) * 2**20),
            output_chars=int(num("COURSE_OUTPUT_CHARS", cls.output_chars)),
            budget_seconds=num("COURSE_BUDGET", cls.budget_seconds),
        )


@contextlib.contextmanager
def _main_module_hidden():
    """Keep multiprocessing from re-running the caller's ``__main__`` (a script, a notebook,
    stdin) in the child: the child needs nothing from it."""
    main = sys.modules.get("__main__")
    keys = ("__file__", "__spec__")
    saved = {k: main.__dict__.pop(k) for k in keys if main and k in main.__dict__}
    try:
        if main is not None and "__spec__" in saved:
            main.__spec__ = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)


class IsolatedRunner:
    """Learner code in a child forked from a torch-preloaded fork server.

    A probe that times out or kills the child costs that probe only: the next probe starts a
    fresh child and loads the cells again. A load that dies or times out is final.
    """

    def __init__(
        self,
        cells: list[tuple[int, str]],
        device: str,
        rules: list[Forbid],
        limits: Limits | None = None,
    ) -> None:
        self.cells = cells
        self.device = device
        self.rules = tuple(rules)
        self.limits = limits or Limits()
        self.proc = None
        self.conn = None
        self.load_result: LoadResult | None = None
        self.isolation = sandbox.level()
        self.used = 0.0  # seconds of the budget spent by the learner's code so far
        self.current_check = ""  # the title of the check being run (set by the engine)
        self.spent_during = ""  # the check that was running when the budget ran out
        self.timed_out: dict[str, tuple[str, float]] = {}  # function -> (check, limit) it hung in
        self.hit_time_limit = False  # the last exchange ran out of time

    @property
    def remaining(self) -> float:
        return self.limits.budget_seconds - self.used

    @property
    def budget_spent(self) -> bool:
        return bool(self.spent_during)

    def budget_message(self) -> str:
        """Why a check was not run, as its feedback: "Not run: your code used up …"."""
        return (f"Not run: your code used up its time budget of "
                f"{self.limits.budget_seconds:g} s; the check that was running when it ran "
                f"out was “{self.spent_during}”.")

    def budget_note(self, not_run: list[str]) -> str:
        """The report's note naming the checks the budget left unrun."""
        return (f"Your code used up its time budget of {self.limits.budget_seconds:g} s "
                f"during “{self.spent_during}”; {len(not_run)} check(s) after it were not "
                f"run: {'; '.join(not_run)}.")

    def _timed(self, request, limit: float) -> tuple[dict | None, str, bool]:
        """An exchange bounded by ``limit`` and by what is left of the budget; the budget is
        charged with its wall time. Returns (payload, problem, ran out of budget)."""
        timeout = max(0.05, min(limit, self.remaining))
        started = time.monotonic()
        payload, problem = self._exchange(request, timeout)
        self.used += time.monotonic() - started
        out_of_budget = payload is None and self.hit_time_limit and timeout < limit
        if out_of_budget and not self.spent_during:
            self.spent_during = self.current_check or "loading your code"
        return payload, problem, out_of_budget

    # -- process management -------------------------------------------------------------------
    def _start(self) -> None:
        ctx = forkserver.context()
        parent, child = ctx.Pipe(duplex=True)
        config = ChildConfig(
            device=self.device,
            rules=self.rules,
            memory_bytes=self.limits.memory_bytes,
            output_chars=self.limits.output_chars,
            hidden_paths=(str(paths.ROOT), str(paths.SOLUTIONS), str(paths.AUTOGRADER)),
        )
        proc = ctx.Process(target=serve, args=(child, config), daemon=True)
        cwd = os.getcwd()
        try:  # the child starts in the parent's folder, which the sandbox may not show
            os.chdir("/")
            with _main_module_hidden():
                proc.start()
        finally:
            os.chdir(cwd)
        child.close()
        self.proc, self.conn = proc, parent
        _OPEN.add(self)

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if proc is None:
            return
        # Signal the child by the machine's pid of the live process, found below the fork
        # server. ``proc.pid`` is the server's number for it: under bubblewrap that is a pid
        # of the sandbox's own namespace, which here names some unrelated process; and once
        # the child is gone its pid is free, and after the kernel's pids wrap around (32768
        # on many machines) belongs to another process. A blind SIGKILL would kill either.
        server = forkserver.server_pid()
        target = sandbox.host_pid(server, proc.pid) if proc.pid is not None else None
        if target is not None and proc.is_alive():
            for kill in (os.killpg, os.kill):
                try:
                    kill(target, signal.SIGKILL)
                except (ProcessLookupError, PermissionError, OSError):
                    pass
        proc.join(timeout=5)
        _OPEN.discard(self)
        # what this submission left behind, sparing the children of other open runners (the
        # ranks of a group, a caller's second runner) that share the fork server
        others = frozenset(r.proc.pid for r in list(_OPEN) if r.proc is not None and r.proc.pid)
        sandbox.reap_descendants(server, spare=others)

    def close(self) -> None:
        self._kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _exchange(self, request, timeout: float) -> tuple[dict | None, str]:
        """Send a request, wait for the reply. Returns (payload, problem-in-words); a reply
        that did not come within ``timeout`` also sets ``self.hit_time_limit``."""
        problem = self._send(request)
        if problem:
            return None, problem
        return self._receive(time.monotonic() + timeout, timeout)

    def _send(self, request) -> str:
        """Send a request to the child: "" when sent, else why not, in words."""
        self.hit_time_limit = False
        assert self.conn is not None and self.proc is not None
        try:
            self.conn.send_bytes(wire.request_to_bytes(request))
        except (BrokenPipeError, OSError):
            return self._death_reason()
        return ""

    def _receive(self, deadline: float, timeout: float) -> tuple[dict | None, str]:
        """The reply to the request sent last, if it comes before ``deadline`` (a time limit of
        ``timeout`` seconds, as the learner is told)."""
        assert self.conn is not None and self.proc is not None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 and not self._ready_now():
                self._kill()
                self.hit_time_limit = True
                return None, f"it did not finish within the time limit of {timeout:g} s"
            try:
                ready = self.conn.poll(min(max(remaining, 0.0), 0.5))
            except (EOFError, OSError):
                return None, self._death_reason()
            if ready:
                break
            if not self.proc.is_alive() and not self.conn.poll(0):
                return None, self._death_reason()
        try:
            data = self.conn.recv_bytes(MAX_REPLY_BYTES)
        except (EOFError, OSError) as exc:
            if isinstance(exc, OSError) and "too long" in str(exc).lower():
                self._kill()
                return None, "it returned more than 256 MiB of data"
            return None, self._death_reason()
        try:
            payload = enc.validate(wire.from_bytes(data))
        except Exception as exc:
            self._kill()
            return None, f"its reply could not be read as plain data ({exc})"
        if not isinstance(payload, dict):
            self._kill()
            return None, "its reply was not a result record"
        return payload, ""

    def _ready_now(self) -> bool:
        """A reply is waiting (one that came in time, read after another rank's deadline)."""
        try:
            return self.conn is not None and self.conn.poll(0)
        except (EOFError, OSError):
            return False

    def _death_reason(self) -> str:
        proc = self.proc
        code = None
        if proc is not None:
            proc.join(timeout=5)
            code = proc.exitcode
        self._kill()
        if code is None:
            return "the process running your code stopped answering"
        if code < 0:
            known = -code in signal.Signals._value2member_map_
            name = signal.Signals(-code).name if known else code
            hint = " (out of memory?)" if name == "SIGKILL" else ""
            return f"the process running your code was killed by {name}{hint}"
        return f"your code ended the process running it (exit status {code})"

    # -- the runner interface -------------------------------------------------------------------
    def load(self) -> LoadResult:
        if self.load_result is not None and self.proc is not None:
            return self.load_result
        if self.load_result is not None and self.load_result.fatal:
            return self.load_result
        if self.budget_spent:
            self.load_result = LoadResult(False, fatal=self.budget_message())
            return self.load_result
        self._start()
        payload, problem, out = self._timed(("load", self.cells), self.limits.load_seconds)
        if out:
            result = LoadResult(False, fatal=(
                f"Running your code failed: it did not finish loading within what is left of "
                f"its time budget of {self.limits.budget_seconds:g} s."))
        elif payload is None:
            result = LoadResult(False, fatal=f"Running your code failed: {problem}.")
        else:
            result = LoadResult(True, list(payload.get("problems", [])), payload.get("output", ""))
        if self.load_result is None or result.fatal:
            self.load_result = result
        return self.load_result

    def run(self, probe: Probe, timeout: float | None = None) -> dict:
        if self.budget_spent:
            return {"ok": False, "error": error(Failure.BUDGET, self.budget_message())}
        if isinstance(probe, Group):
            return self._run_group(probe)
        return self._run_one(probe, timeout)

    def _refusal(self, name: str) -> dict | None:
        """Why ``name`` is not run (it hung before, or the code cannot be loaded), as a
        payload; None when it can run (the code is then loaded)."""
        hung = self.timed_out.get(name)
        if hung is not None:
            return {"ok": False, "error": error(Failure.TIMED_OUT_BEFORE, (
                f"not run: `{name}` did not finish within the time limit of {hung[1]:g} s "
                f"in “{hung[0]}”, so it is not run again"))}
        loaded = self.load()
        if loaded.fatal:
            return {"ok": False, "error": error(Failure.FATAL, loaded.fatal)}
        return None

    def _run_one(self, probe: Probe, timeout: float | None) -> dict:
        refused = self._refusal(probe.name)
        if refused:
            return refused
        limit = timeout or self.limits.probe_seconds
        payload, problem, out = self._timed(("probe", probe), limit)
        if out:
            return {"ok": False, "error": error(Failure.BUDGET, (
                f"your code used up its time budget of {self.limits.budget_seconds:g} s while "
                "this check ran; the checks after it are not run"))}
        if payload is None:
            if self.hit_time_limit:
                self.timed_out[probe.name] = (self.current_check or "an earlier check", limit)
            return {"ok": False, "error": error(Failure.CRASH,
                                                f"While running this check, {problem}.")}
        return payload

    def _run_group(self, group: Group) -> dict:
        """The ranks of ``group``, each in an isolated child of its own (confined like this
        runner's, from the same fork server and so in the same sandbox), started and loaded
        for this probe and closed after it. The wall time, loads included, is charged to this
        submission's budget; a rank that hangs past the group's timeout kills the group and,
        as for a single probe, the driver is not run again."""
        from course.grading import ranks

        refused = self._refusal(group.name)
        if refused:
            return refused
        limit = max(0.05, min(group.timeout, self.remaining))
        started = time.monotonic()
        deadline = started + limit
        budget = replace(self.limits, budget_seconds=limit, load_seconds=limit)
        members = [IsolatedRunner(self.cells, self.device, list(self.rules), budget)
                   for _ in range(group.world_size)]
        replies: list[dict | None] = []
        problems: list[str] = []
        hit_limit = False
        try:
            for member in members:  # every rank executes the cells in its own child first
                member.load()
            address = ranks.init_method()
            sent = [member._send(("probe", ranks.rank_call(group, rank, address)))
                    if member.proc is not None else member.load().fatal
                    for rank, member in enumerate(members)]
            for member, problem in zip(members, sent):
                if problem:
                    replies.append(None)
                    problems.append(problem)
                    continue
                payload, problem = member._receive(deadline, limit)
                hit_limit = hit_limit or member.hit_time_limit
                replies.append(payload)
                problems.append(problem)
        finally:
            for member in members:
                member.close()
            self.used += time.monotonic() - started
        if hit_limit:
            if limit < group.timeout and not self.spent_during:
                self.spent_during = self.current_check or "an earlier check"
                return {"ok": False, "error": error(Failure.BUDGET, (
                    f"your code used up its time budget of {self.limits.budget_seconds:g} s "
                    "while this check ran; the checks after it are not run"))}
            self.timed_out[group.name] = (self.current_check or "an earlier check", limit)
        return ranks.combine(group, replies, problems)
