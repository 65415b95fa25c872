"""Unit 6.1 `data-parallel`: the master against independent implementations.

- ``shard_batch`` equals ``torch.chunk(batch, W)[rank]`` (for W dividing N), for a tensor and
  for a tuple.
- ``allreduce_gradients_`` on 2 and 3 forked ranks leaves every rank with the mean of the
  ranks' gradients as computed here in one process.
- ``train_data_parallel`` on 2 forked ranks ends at the parameters of
  ``torch.nn.parallel.DistributedDataParallel`` trained with ``torch.optim.SGD`` on the same
  ranks, shards and model (run by the same driver), and at those of full-batch SGD in one
  process; both ranks end bitwise equal.
- The grader's group machinery: a rank that skips the reduce ends in words, within the
  group's timeout, naming the rank and the call.
"""

from __future__ import annotations

import time

import pytest
import torch

from course import catalogue
from course.grading.checks import reference
from course.grading.drivers import data_parallel as drivers
from course.grading.encode import decode
from course.grading.failures import Failure
from course.grading.ranks import run_forked
from course.grading.spec import Call, Group

NS = reference(catalogue.find("data-parallel")).namespace
CPU = torch.device("cpu")
SIZES = (5, 7, 3)


@pytest.mark.parametrize("n,world_size", [(12, 3), (8, 2), (6, 1), (10, 5)])
def test_shard_batch_is_chunk(n, world_size):
    x = torch.randn(n, 4, dtype=torch.float64)
    y = torch.arange(n)
    for rank in range(world_size):
        shard = NS["shard_batch"]
        assert torch.equal(shard(x, rank, world_size), torch.chunk(x, world_size)[rank])
        xs, ys = shard((x, y), rank, world_size)
        assert torch.equal(xs, x.chunk(world_size)[rank])
        assert torch.equal(ys, y.chunk(world_size)[rank])


@pytest.mark.parametrize("world_size", [2, 3])
def test_allreduce_gives_the_mean(world_size):
    shapes = [(3,), (2, 4), (5, 1, 2)]
    got = run_forked(Group(Call("@data_parallel.reduce", (shapes, 7)), world_size=world_size),
                     NS, CPU, [])
    assert got["ok"], got.get("error")
    mean = [sum(drivers._rank_gradient(s, 7, r, i) for r in range(world_size)) / world_size
            for i, s in enumerate(shapes)]
    for rank_out in decode(got["out"]):
        for have, want in zip(rank_out["gradients"], mean):
            torch.testing.assert_close(have, want, rtol=1e-14, atol=1e-15)


def _ddp_train_data_parallel(rank, world_size, model, batch, loss_fn, steps, lr):
    """``train_data_parallel`` written with the library: DistributedDataParallel over the
    rank's contiguous shard and torch.optim.SGD (run by the grader's own driver and ranks)."""
    from torch.nn.parallel import DistributedDataParallel

    ddp = DistributedDataParallel(model)
    x, y = batch
    b = x.shape[0] // world_size
    xs, ys = x[rank * b:(rank + 1) * b], y[rank * b:(rank + 1) * b]
    opt = torch.optim.SGD(ddp.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(ddp(xs), ys)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("steps,n,seed", [(4, 24, 3), (6, 16, 11)])
def test_training_equals_ddp_and_one_process(steps, n, seed):
    lr = 0.1
    master = run_forked(Group(Call("@data_parallel.learner_loop", (n, SIZES, steps, lr, seed))),
                        NS, CPU, [])
    assert master["ok"], master.get("error")
    master_ranks = decode(master["out"])
    ddp = run_forked(Group(Call("@data_parallel.learner_loop", (n, SIZES, steps, lr, seed))),
                     {"train_data_parallel": _ddp_train_data_parallel}, CPU, [])
    assert ddp["ok"], ddp.get("error")
    ddp_ranks = decode(ddp["out"])
    one = drivers.single_process(NS, n, SIZES, steps, lr, seed)
    for ours, theirs in zip(master_ranks, ddp_ranks):
        for name, value in one["parameters"].items():
            torch.testing.assert_close(ours["parameters"][name], theirs["parameters"][name],
                                       rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(ours["parameters"][name], value, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(ours["losses"], theirs["losses"], rtol=1e-12, atol=1e-14)
    for name in one["parameters"]:
        assert torch.equal(master_ranks[0]["parameters"][name],
                           master_ranks[1]["parameters"][name])
    # the mean of the two shard losses is the full-batch loss of the same step
    mean_loss = (master_ranks[0]["losses"] + master_ranks[1]["losses"]) / 2
    torch.testing.assert_close(mean_loss, one["losses"], rtol=1e-12, atol=1e-14)


def test_a_rank_that_skips_the_reduce_is_reported_not_hung():
    source = ("import torch.distributed as dist\n"
              "def allreduce_gradients_(model, group=None):\n"
              "    if dist.get_rank(group) == 0:\n"
              "        for p in model.parameters():\n"
              "            dist.all_reduce(p.grad, group=group)\n")
    ns: dict = {}
    exec(compile(source, "<skipping>", "exec"), ns)
    started = time.monotonic()
    got = run_forked(Group(Call("@data_parallel.reduce", ([(3,)], 1), {"timeout_s": 5.0}),
                           timeout=30), ns, CPU, [])
    took = time.monotonic() - started
    assert not got["ok"]
    assert got["error"]["type"] == Failure.COLLECTIVE.value, got["error"]
    message = got["error"]["message"]
    assert message.startswith("on rank 0 of the 2 processes: its all_reduce call number 1"), message
    assert "rank 1 finished without error" in message
    assert took < 30, took
