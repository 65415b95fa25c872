"""Group probes: one driver call in several processes, the ranks of a process group (unit 6.1).

Proven here, at both isolation levels where the runner is concerned:

- the isolated runner starts every rank as an isolated child (confined: the learner's code in
  a rank may not start a process), the ranks meet on 127.0.0.1 and the outcome lists their
  outputs in rank order;
- a rank that hangs costs the group its timeout, and a message, never a hang; every rank's
  process is gone afterwards, and the driver is not run again; a group past what is left of the
  budget spends the budget;
- a rank that raises is named, with what the other ranks did;
- the forked ranks of trusted code (and of the notebook's kernel) leave no process behind;
- :func:`course.grading.ranks.combine` words every combination.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest
import torch

from course.grading.encode import decode
from course.grading.failures import Failure
from course.grading.ranks import combine, run_forked
from course.grading.spec import Call, Group
from course.isolation import forkserver, sandbox
from course.isolation.runner import IsolatedRunner, Limits

GOOD = """
import torch
import torch.distributed as dist

def ping():
    return 1

def allreduce_gradients_(model, group=None):
    w = dist.get_world_size(group)
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, group=group)
            p.grad /= w
"""

HANGS_ON_RANK_1 = GOOD.replace("    w = dist.get_world_size(group)\n",
                               "    w = dist.get_world_size(group)\n"
                               "    while dist.get_rank(group) == 1:\n        pass\n")

RAISES_ON_RANK_1 = GOOD.replace("    w = dist.get_world_size(group)\n",
                                "    w = dist.get_world_size(group)\n"
                                "    if dist.get_rank(group) == 1:\n"
                                "        raise KeyError('rank one')\n")

FORKS = GOOD.replace("    w = dist.get_world_size(group)\n",
                     "    w = dist.get_world_size(group)\n    import os\n    os.fork()\n")

SHAPES = [(3,), (2, 2)]


def _group(world_size=2, timeout=30.0, timeout_s=4.0):
    return Group(Call("@data_parallel.reduce", (SHAPES, 5), {"timeout_s": timeout_s}),
                 world_size=world_size, timeout=timeout)


def _runner(source: str, **limits) -> IsolatedRunner:
    return IsolatedRunner([(1, source)], "cpu", [], replace(Limits(), **limits))


def _ranks_left(runner: IsolatedRunner | None = None) -> list[int]:
    """Processes below the fork server (ranks, or what they started), but for ``runner``'s own
    child while it is open."""
    server = forkserver.server_pid()
    if not server:
        return []
    own = sandbox.host_pid(server, runner.proc.pid) if runner and runner.proc else None
    return [p for p in sandbox.descendants(server) if p != own]


@pytest.mark.parametrize("world_size", [2, 3])
def test_isolated_ranks_average_and_report_in_rank_order(isolation_level, world_size):
    with _runner(GOOD) as runner:
        got = runner.run(_group(world_size))
        assert got["ok"], got.get("error")
        outs = decode(got["out"])
        assert len(outs) == world_size
        first = outs[0]["gradients"]
        for out in outs[1:]:  # the mean, the same on every rank
            assert all(torch.equal(a, b) for a, b in zip(first, out["gradients"]))
        assert runner.isolation == ("bubblewrap" if isolation_level == "bwrap" else "process")
    assert _ranks_left() == []


def test_a_hanging_rank_costs_its_timeout_and_leaves_nothing(isolation_level):
    with _runner(HANGS_ON_RANK_1, budget_seconds=120) as runner:
        started = time.monotonic()
        got = runner.run(_group(timeout=8.0, timeout_s=3.0))
        took = time.monotonic() - started
        assert not got["ok"]
        message = got["error"]["message"]
        # rank 1, the cause, is killed at the group's timeout; rank 0 gave up waiting, in words
        assert message.startswith("on rank 1 of the 2 processes: it did not finish within the "
                                  "time limit of 8 s"), message
        assert "rank 0: its all_reduce call number 1" in message, message
        assert took < 60, took
        assert _ranks_left(runner) == []
        assert runner.run(Call("ping"))["out"] == 1  # the runner's own child lives on
        again = runner.run(_group(timeout=8.0, timeout_s=3.0))
        assert again["error"]["type"] == Failure.TIMED_OUT_BEFORE.value, again


def test_a_group_past_the_budget_spends_it(isolation_level):
    with _runner(HANGS_ON_RANK_1, budget_seconds=6) as runner:
        runner.load()
        got = runner.run(_group(timeout=30.0, timeout_s=20.0))
        assert got["error"]["type"] == Failure.BUDGET.value, got
        assert runner.budget_spent
        assert runner.run(_group())["error"]["type"] == Failure.BUDGET.value
    assert _ranks_left() == []


def test_a_raising_rank_is_named(isolation_level):
    with _runner(RAISES_ON_RANK_1) as runner:
        got = runner.run(_group(timeout_s=5.0))
    assert not got["ok"]
    assert got["error"]["type"] == "KeyError"
    assert got["error"]["message"].startswith("on rank 1 of the 2 processes: 'rank one'")
    assert "rank 0: its all_reduce call number 1" in got["error"]["message"]


def test_an_isolated_rank_may_not_start_a_process(isolation_level):
    with _runner(FORKS) as runner:
        got = runner.run(_group(timeout_s=5.0))
    assert not got["ok"]
    assert got["error"]["type"] == "PermissionError", got["error"]
    assert "starting a process" in got["error"]["message"]


def _namespace(source: str) -> dict:
    ns: dict = {}
    exec(compile(source, "<test>", "exec"), ns)
    return ns


def _children() -> list[int]:
    return sandbox.descendants(os.getpid())


def test_forked_ranks_leave_no_process():
    before = set(_children())
    ok = run_forked(_group(), _namespace(GOOD), torch.device("cpu"), [])
    assert ok["ok"], ok.get("error")
    hung = run_forked(_group(timeout=5.0, timeout_s=2.0), _namespace(HANGS_ON_RANK_1),
                      torch.device("cpu"), [])
    assert not hung["ok"] and "did not finish within the time limit of 5 s" in (
        hung["error"]["message"])
    assert set(_children()) - before == set()


def test_combine_words_every_case():
    group = _group(world_size=3)
    fine = [{"ok": True, "out": i, "forbidden": [], "output": ""} for i in range(3)]
    assert decode(combine(group, fine, ["", "", ""])["out"]) == [0, 1, 2]
    raised = dict(fine[1], ok=False, error={"type": "ValueError", "message": "bad",
                                           "where": "cell 1"})
    crashed: list[dict | None] = [fine[0], raised, None]
    got = combine(group, crashed, ["", "", "the process running your code was killed"])
    assert got["error"]["type"] == "ValueError" and got["error"]["where"] == "cell 1"
    assert got["error"]["message"] == (
        "on rank 1 of the 3 processes: bad (meanwhile rank 0 finished without error; rank 2: "
        "the process running your code was killed)")
    forbidden = [dict(fine[0], forbidden=["torch.nn.parallel.DistributedDataParallel"]),
                 fine[1], fine[2]]
    assert combine(group, forbidden, ["", "", ""])["forbidden"] == [
        "torch.nn.parallel.DistributedDataParallel"]


def test_what_forked_ranks_print_comes_back_per_rank(capfd):
    noisy = GOOD.replace("    w = dist.get_world_size(group)\n",
                         "    w = dist.get_world_size(group)\n"
                         "    print('hello from', dist.get_rank(group))\n")
    got = run_forked(_group(), _namespace(noisy), torch.device("cpu"), [])
    assert got["ok"], got.get("error")
    assert got["output"] == "[rank 0] hello from 0\n[rank 1] hello from 1\n"
    assert "hello" not in capfd.readouterr().out  # nothing reached the parent's streams


def test_a_rank_whose_rank_0_never_opens_the_group_gives_up_in_words_at_the_timeout():
    """Ranks other than 0 poll for rank 0's store (torch's own retry waits about a second after
    a refusal); when rank 0 fails before joining they report a collective failure, which
    :func:`combine` ranks below rank 0's own, within the group's timeout."""
    from course.grading.drivers.data_parallel import joined
    from course.grading.probes import CollectiveMismatch
    from course.grading.ranks import init_method

    address = init_method()  # free, and nobody listens
    started = time.monotonic()
    with pytest.raises(CollectiveMismatch, match="rank 0 did not open the process group"):
        with joined(1, 2, address, timeout_s=0.3):
            pass
    assert time.monotonic() - started < 5
