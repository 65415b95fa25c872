"""Running a :class:`~course.grading.spec.Group` probe: one driver call in several processes,
the ranks of a ``torch.distributed`` process group (unit 6.1 `data-parallel`).

Two ways to get the processes, one way to read what they did:

- :func:`run_forked` forks the ranks from the current process, which already holds the
  implementation's namespace: for trusted code (the reference, banked mistakes) in the
  grader, and for the learner's code in the notebook's kernel (the in-kernel ``check()``).
- The isolated runner (:meth:`course.isolation.runner.IsolatedRunner.run`) starts each rank
  as one more isolated child, confined like every other, from the same fork server (so inside
  the same sandbox: its private network namespace has a loopback the ranks meet on); the child
  itself may start no process.

Either way each rank runs :func:`rank_call`'s probe and replies with an ordinary payload, and
:func:`combine` turns the replies into the group's payload: ``out`` the list of the ranks'
outputs, or the failure of the rank(s) that failed, each named.
"""

from __future__ import annotations

import io
import os
import select
import signal
import socket
import sys
import time
from dataclasses import replace
from typing import Any

import torch

from course.grading import encode as enc
from course.grading import wire
from course.grading.failures import Failure, error
from course.grading.forbidden import Forbid
from course.grading.spec import Call, Group

MAX_REPLY_BYTES = 64 * 1024 * 1024
OUTPUT_CHARS = 20_000  # of each forked rank's printed output


def init_method() -> str:
    """``tcp://127.0.0.1:PORT`` with a port that was free a moment ago (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


def rank_call(group: Group, rank: int, address: str) -> Call:
    """The call rank ``rank`` runs: the group's, with rank, world_size and init_method added."""
    kwargs = {**group.call.kwargs, "rank": rank, "world_size": group.world_size,
              "init_method": address}
    return replace(group.call, kwargs=kwargs)


def combine(group: Group, replies: list[dict | None], problems: list[str]) -> dict:
    """The group's payload from its ranks' replies (``None`` where a rank gave none, with the
    reason in words in ``problems``). All ranks succeeded: ``out`` is the list of their outputs.
    Otherwise the error of the failing rank most likely to be the cause (see
    :func:`_consequence`), its message naming it and adding, for every other rank, whether it
    finished or how it failed; the kind of that failure is kept, so a learner's exception
    still reads "your code raised …"."""
    forbidden = sorted({name for r in replies if r for name in r.get("forbidden") or []})
    output = "".join(f"[rank {i}] {r['output']}" for i, r in enumerate(replies)
                     if r and r.get("output"))
    failures: list[tuple[int, dict]] = []
    for rank, (reply, problem) in enumerate(zip(replies, problems)):
        if reply is None:
            failures.append((rank, error(Failure.CRASH, problem)))
        elif not reply.get("ok"):
            failures.append((rank, dict(reply.get("error") or {})))
    payload: dict[str, Any] = {"forbidden": forbidden, "output": output,
                               "elapsed": max((r.get("elapsed", 0.0) for r in replies if r),
                                              default=0.0)}
    if not failures:
        payload.update(ok=True, out={"__kind__": "list",
                                     "items": [r["out"] for r in replies if r]})
        return payload
    first_rank, first = min(failures, key=lambda f: (_consequence(f[1]), f[0]))
    others = []
    for rank in range(group.world_size):
        if rank == first_rank:
            continue
        failed = dict(failures).get(rank)
        if failed is None:
            others.append(f"rank {rank} finished without error")
        else:
            kind = Failure.of(failed)
            said = failed.get("message", "") if kind else (
                f"raised {failed.get('type')}: {failed.get('message')}")
            others.append(f"rank {rank}: {said}")
    message = (f"on rank {first_rank} of the {group.world_size} processes: "
               f"{first.get('message', '')}")
    if others:
        message += f" (meanwhile {'; '.join(others)})"
    payload.update(ok=False, error={**first, "message": message})
    return payload


def _consequence(err: dict) -> int:
    """How likely a rank's failure is only the consequence of another's, for choosing the one
    to report: the learner's own exception first, then the grader's findings, then a rank
    that died or hung, last a collective left unmatched (a rank waiting on another)."""
    kind = Failure.of(err)
    if kind is None:
        return 0
    return {Failure.CRASH: 2, Failure.COLLECTIVE: 3}.get(kind, 1)


def run_forked(group: Group, ns: dict, device: torch.device, rules: list[Forbid],
               deep: bool = True) -> dict:
    """Run ``group`` in processes forked from this one (each inherits ``ns``); every rank is
    killed when the group's timeout passes, and nothing outlives the call."""
    from course.grading.probes import execute

    address = init_method()
    children: list[tuple[int, int]] = []  # (pid, read end of its pipe)
    for rank in range(group.world_size):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the rank: run, reply, leave without running the parent's exit code
            code = 0
            try:
                os.close(read)
                os.setpgid(0, 0)  # the grader kills the rank and whatever it started
                # OpenMP's worker threads do not survive fork: a parallel region in the child
                # of a process that ran one waits for them forever; one thread needs none
                torch.set_num_threads(1)
                # what the rank prints comes back with its reply (a forked notebook kernel's
                # own streams would write to sockets that belong to the parent)
                sys.stdout = sys.stderr = captured = io.StringIO()
                payload = execute(rank_call(group, rank, address), ns, device, rules, deep)
                text = captured.getvalue()
                payload["output"] = text[:OUTPUT_CHARS] + (
                    f"\n[… {len(text) - OUTPUT_CHARS:,} more characters of output were "
                    "dropped]" if len(text) > OUTPUT_CHARS else "")
                reply = wire.to_bytes(payload)
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(reply)
            except BaseException:  # the parent reports the missing reply
                code = 1
            os._exit(code)
        os.close(write)
        children.append((pid, read))
    deadline = time.monotonic() + group.timeout
    replies: list[dict | None] = []
    problems: list[str] = []
    for _pid, read in children:
        data, problem = _read_until(read, deadline, group.timeout)
        replies.append(None)
        problems.append(problem)
        if data is not None:
            try:
                replies[-1] = enc.validate(wire.from_bytes(data))
            except Exception as exc:
                problems[-1] = f"its reply could not be read ({exc})"
    for pid, read in children:
        os.close(read)
        for kill in (lambda p=pid: os.killpg(p, signal.SIGKILL),
                     lambda p=pid: os.kill(p, signal.SIGKILL)):
            try:
                kill()
            except OSError:
                pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return combine(group, replies, problems)


def _read_until(fd: int, deadline: float, limit: float) -> tuple[bytes | None, str]:
    """Everything written to ``fd`` until its writer closes it, or (None, why) at the deadline."""
    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, f"it did not finish within the time limit of {limit:g} s"
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            return None, "it returned more than 64 MiB of data"
    if not chunks:
        return None, "the process running it ended without a reply"
    return b"".join(chunks), ""
