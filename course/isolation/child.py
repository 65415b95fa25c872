"""The isolated child process in which learner code runs.

It is forked from a fork server that has already imported torch (so torch is imported once
per grading run), then: starts its own session (so the grader can kill it and everything it
spawned), applies resource limits, moves into a fresh temporary directory, scrubs the
environment to what Python and torch need, refuses new processes and threads
(:mod:`course.isolation.confine`), hides the course's
``solutions`` and ``autograder`` packages, captures output with a cap, turns TF32 off, and
serves requests from the grader: ``load`` (execute the learner's cells) and ``probe``.

Replies are plain data in :mod:`course.grading.wire`'s reply format, which the grader reads
without unpickling anything.
"""

from __future__ import annotations

import importlib.abc
import io
import os
import resource
import signal
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from course.grading import wire
from course.grading.failures import Failure, error
from course.grading.forbidden import Forbid
from course.grading.probes import execute
from course.grading.submission import execute_cells
from course.isolation.confine import confine
from course.isolation.integrity import Snapshot
from course.isolation.lifetime import die_with_parent

BLOCKED_PACKAGES = ("solutions", "autograder")
# The environment learner code sees: what Python, torch and CUDA need, nothing of the grader's
# (no COURSE_* settings, tokens, or paths to gradebooks and output folders).
KEPT_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH",
                    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CUDA_VISIBLE_DEVICES",
                    "CUDA_HOME", "CUBLAS_WORKSPACE_CONFIG", "NVIDIA_VISIBLE_DEVICES",
                    "PYTHONHASHSEED")


def scrub_environment(workdir: str, environ=os.environ) -> None:
    """Keep only :data:`KEPT_ENVIRONMENT`; HOME and TMPDIR point into the child's own folder."""
    kept = {k: environ[k] for k in KEPT_ENVIRONMENT if k in environ}
    environ.clear()
    environ.update(kept, HOME=workdir, TMPDIR=workdir)


@dataclass(frozen=True)
class ChildConfig:
    device: str
    rules: tuple[Forbid, ...]
    memory_bytes: int
    output_chars: int
    hidden_paths: tuple[str, ...]
    threads: int = 1


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in BLOCKED_PACKAGES:
            raise ImportError(
                f"`{fullname}` cannot be imported while your code is graded "
                "(references and hidden checks are not available to submissions)"
            )
        return None


class CappedWriter(io.TextIOBase):
    """A text stream that keeps the first ``cap`` characters and counts the rest."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        s = str(s)
        room = self.cap - self.kept
        if room > 0:
            self.parts.append(s[:room])
            self.kept += min(room, len(s))
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def take(self) -> str:
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n[… {self.dropped:,} more characters of output were dropped]"
        self.parts, self.kept, self.dropped = [], 0, 0
        return text


def _limit_memory(extra: int) -> None:
    if extra <= 0:
        return
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[0])
        current = pages * os.sysconf("SC_PAGE_SIZE")
        limit = current + extra
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError):  # not Linux, or limit refused: keep going without it
        pass


def _prepare(config: ChildConfig) -> CappedWriter:
    die_with_parent()  # the fork server's death ends this process too
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    workdir = tempfile.mkdtemp(prefix="course-grade-")
    os.chdir(workdir)
    scrub_environment(workdir)
    hidden = {str(Path(p).resolve()) for p in config.hidden_paths}
    sys.path[:] = [p for p in sys.path if p and str(Path(p).resolve()) not in hidden]
    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED_PACKAGES:
            del sys.modules[name]
    sys.meta_path.insert(0, _Blocker())
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    writer = CappedWriter(config.output_chars)
    sys.stdout = sys.stderr = writer
    warnings.simplefilter("default")
    torch.set_num_threads(config.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if config.device == "cpu":
        _limit_memory(config.memory_bytes)
    return writer


def _start_cuda(device: torch.device) -> None:
    """Create the CUDA context now, before :func:`confine` and before learner code: its
    libraries and driver threads start here, and the first check does not pay for them. A
    failure is left for the probes to report (each then says what CUDA answered)."""
    try:
        torch.zeros(1, device=device).add_(1)
        torch.cuda.synchronize(device)
    except Exception:  # reported by the first probe that touches the device
        pass


def serve(conn, config: ChildConfig) -> None:
    """Child entry point: answer ``load`` and ``probe`` requests until the pipe closes."""
    writer = _prepare(config)
    device = torch.device(config.device)
    if device.type == "cuda":
        _start_cuda(device)
    rules = list(config.rules)
    confine()  # no processes or Python threads from here on (before the snapshot sees _thread)
    # Everything the loop needs is bound to locals now, before learner code exists.
    snapshot = Snapshot()
    run_probe, run_cells, to_bytes, from_bytes, error_record = (
        execute, execute_cells, wire.to_bytes, wire.request_from_bytes, error)
    recv, send = conn.recv_bytes, conn.send_bytes
    ns: dict = {}
    while True:
        try:
            request = from_bytes(recv())
        except (EOFError, OSError):
            break
        kind = request[0]
        tampered = snapshot.changes()
        if kind == "load":
            ns, problems = run_cells(request[1], "_course_submission")
            names = sorted(k for k in ns if k[:1] != "_")
            reply = {"ok": True, "problems": problems, "names": names}
        elif kind == "probe" and not tampered:
            reply = run_probe(request[1], ns, device, rules)
        else:
            reply = {"ok": False,
                     "error": error_record(Failure.PROTOCOL, f"unknown request {kind!r}")}
        tampered = tampered or snapshot.changes()
        if tampered and kind == "probe":
            reply = {"ok": False, "error": error_record(Failure.TAMPERED, (
                "your code modified the grader's own code in its process ("
                + ", ".join(tampered) + "); nothing it returns can be trusted"))}
        reply["output"] = writer.take()
        try:
            data = to_bytes(reply)
        except Exception as exc:  # an unserialisable reply is itself a finding
            data = to_bytes(
                {"ok": False, "output": "", "error": error_record(Failure.ENCODE, str(exc))}
            )
        try:
            send(data)
        except (BrokenPipeError, OSError):
            break
    os._exit(0)
