"""Unit 6.1 `data-parallel`: the master against independent implementations.

- ``shard_batch`` equals ``torch.chunk(batch, W)[rank]`` (for W dividing N), for a tensor and
  for a tuple.
- ``allreduce_gradients_`` on 2 and 3 forked ranks leaves every rank with the mean of the
  ranks' gradients as computed here in one process.
- ``train_data_parallel`` on 2 forked ranks ends at the parameters of
  ``torch.nn.parallel.DistributedDataParallel`` trained with ``torch.optim.SGD`` on the same
  ranks, shards and model, and at those of full-batch SGD in one process; both ranks end
  bitwise equal.
- The grader's group machinery: a rank that skips the reduce ends in words, within the
  group's timeout, naming the rank and the call.
"""

from __future__ import annotations

import datetime
import os
import time

import pytest
import torch
import torch.distributed as dist

from course import catalogue
from course.grading import encode as enc
from course.grading.checks import reference
from course.grading.drivers import data_parallel as drivers
from course.grading.encode import decode
from course.grading.failures import Failure
from course.grading.ranks import init_method, run_forked
from course.grading.spec import Call, Group

NS = reference(catalogue.find("data-parallel")).namespace
CPU = torch.device("cpu")
SIZES = (5, 7, 3)


def _forked(world_size: int, work) -> list:
    """``work(rank)`` in ``world_size`` forked ranks of a gloo group; their return values."""
    address = init_method()
    pipes = []
    for rank in range(world_size):
        read, write = os.pipe()
        if os.fork() == 0:
            code = 1
            try:
                os.close(read)
                torch.set_num_threads(1)
                dist.init_process_group("gloo", init_method=address, rank=rank,
                                        world_size=world_size,
                                        timeout=datetime.timedelta(seconds=20))
                data = enc.to_bytes(enc.encode(work(rank)))
                dist.destroy_process_group()
                with os.fdopen(write, "wb") as f:
                    f.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        pipes.append(read)
    results = []
    for read in pipes:
        chunks = []
        while chunk := os.read(read, 1 << 20):
            chunks.append(chunk)
        os.close(read)
        results.append(decode(enc.from_bytes(b"".join(chunks))))
    for _ in pipes:
        os.wait()
    return results


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


def _ddp_rank(rank: int, steps: int, n: int, lr: float, seed: int) -> dict:
    from torch.nn.parallel import DistributedDataParallel

    model = drivers.mlp(SIZES, seed)
    ddp = DistributedDataParallel(model)
    x, y = drivers.regression_batch(n, SIZES, seed)
    b = n // 2
    xs, ys = x[rank * b:(rank + 1) * b], y[rank * b:(rank + 1) * b]
    opt = torch.optim.SGD(ddp.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = drivers.mse(ddp(xs), ys)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"parameters": {k: v.detach().clone() for k, v in model.named_parameters()},
            "losses": torch.tensor(losses, dtype=torch.float64)}


@pytest.mark.parametrize("steps,n,seed", [(4, 24, 3), (6, 16, 11)])
def test_training_equals_ddp_and_one_process(steps, n, seed):
    lr = 0.1
    master = run_forked(Group(Call("@data_parallel.learner_loop", (n, SIZES, steps, lr, seed))),
                        NS, CPU, [])
    assert master["ok"], master.get("error")
    master_ranks = decode(master["out"])
    ddp_ranks = _forked(2, lambda rank: _ddp_rank(rank, steps, n, lr, seed))
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
