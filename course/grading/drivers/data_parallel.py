"""Drivers for unit 6.1 `data-parallel`.

The group drivers (:func:`reduce`, :func:`train`, :func:`learner_loop`) are the ranks of a
:class:`~course.grading.spec.Group` probe: each joins a gloo process group on 127.0.0.1 with
a timeout (:func:`joined`), runs the learner's functions in a loop the grader owns, reports
what it saw and leaves the group. While a rank is in the group, ``torch.distributed.all_reduce``
is wrapped to count the rank's calls, and a call that the other ranks never match (one rank
skips a reduce, or reduces other tensors) becomes a :class:`CollectiveMismatch` in words
instead of a hang: the group's timeout bounds every wait.

Everything runs on the CPU, in float64, whatever the graded device: gloo is a CPU backend, so
a probe here carries seeds and sizes, never tensors. The grader's model is a two-layer MLP
(:func:`mlp`) built from a seed, the same on every rank; its data come from a seed too.
:func:`single_process` trains the same model on the full batch in one process, the result the
ranks must reproduce. Drivers return plain data, never verdicts.
"""

from __future__ import annotations

import contextlib
import datetime
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import torch
import torch.distributed as dist
from torch import nn

from course.grading.probes import CollectiveMismatch, ProbeError, lookup

DTYPE = torch.float64


def mlp(sizes: tuple[int, int, int], seed: int) -> nn.Module:
    """Linear(d_in, h) → tanh → Linear(h, d_out) in float64, initialised from ``seed``."""
    d_in, hidden, d_out = sizes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(),
                             nn.Linear(hidden, d_out)).to(DTYPE)


def regression_batch(n: int, sizes: tuple[int, int, int], seed: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)``: n inputs (n, d_in) and noisy targets (n, d_out) of a random linear map."""
    d_in, _, d_out = sizes
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(n, d_in, generator=g, dtype=DTYPE)
    w = torch.randn(d_in, d_out, generator=g, dtype=DTYPE)
    y = torch.tanh(x @ w) + 0.1 * torch.randn(n, d_out, generator=g, dtype=DTYPE)
    return x, y


def mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mean squared error over every element (the mean over the batch, as the loss the
    shards' mean must reproduce)."""
    return ((prediction - target) ** 2).mean()


class _Counter:
    """Counts this rank's ``all_reduce`` calls and steps, and words a call that fails."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.calls = 0
        self.step = 0  # 0: outside any step (the reduce check has no steps)

    def begin_step(self) -> None:
        self.step += 1

    def wrap(self, original):
        def all_reduce(tensor, *args, **kwargs):
            self.calls += 1
            try:
                return original(tensor, *args, **kwargs)
            except (RuntimeError, dist.DistError) as exc:
                if "AVG" in str(exc) or "ReduceOp" in str(exc):
                    raise  # the learner's own argument error, as gloo words it
                where = f" in step {self.step}" if self.step else ""
                raise CollectiveMismatch(
                    f"its all_reduce call number {self.calls}{where} was never matched by the "
                    "other ranks. Every rank must call all_reduce on the same tensors, in the "
                    "same order, the same number of times: a rank that skips a reduce (or "
                    "reduces other tensors) leaves the others waiting until it leaves the "
                    f"group or the group's timeout ({self.timeout_s:g} s) passes") from None
        return all_reduce


def _await_store(init_method: str, timeout_s: float) -> bool:
    """Wait until rank 0's store at ``tcp://host:port`` accepts connections, polling every
    2 ms; whether it did within ``timeout_s``. A rank that asks before rank 0 listens is
    refused, and torch retries only after a backoff of about a second: most of a group probe's
    time, where ranks start in any order."""
    where = urlsplit(init_method)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection((where.hostname, where.port), timeout=timeout_s).close()
            return True
        except OSError:
            time.sleep(0.002)
    return False


@contextlib.contextmanager
def joined(rank: int, world_size: int, init_method: str, timeout_s: float) -> Iterator[_Counter]:
    """This process as rank ``rank`` of a gloo group, for the block; ``all_reduce`` counted."""
    if dist.is_initialized():  # pragma: no cover - a rank is a fresh process
        raise ProbeError("a process group is already initialised in this process")
    if rank > 0 and init_method.startswith("tcp://") and not _await_store(init_method, timeout_s):
        raise CollectiveMismatch(  # (the consequence of rank 0's failure, reported first)
            f"rank 0 did not open the process group within the group's timeout ({timeout_s:g} "
            "s): it failed, or was still busy, before joining")
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=timeout_s))
    counter = _Counter(timeout_s)
    original = dist.all_reduce
    dist.all_reduce = counter.wrap(original)
    try:
        yield counter
    finally:
        dist.all_reduce = original
        dist.destroy_process_group()


class _Parameters(nn.Module):
    """A module holding one parameter per shape (for the reduce check)."""

    def __init__(self, values: list[torch.Tensor]) -> None:
        super().__init__()
        self.items = nn.ParameterList([nn.Parameter(v.clone()) for v in values])


def _rank_gradient(shape: tuple[int, ...], seed: int, rank: int, index: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1000 + rank * 100 + index)
    return torch.randn(shape, generator=g, dtype=DTYPE)


def reduce(ns: dict, shapes: list[tuple[int, ...]], seed: int, no_grad: tuple[int, ...] = (),
           explicit_group: bool = False, *, rank: int, world_size: int, init_method: str,
           timeout_s: float = 10.0) -> dict[str, Any]:
    """One call of the learner's ``allreduce_gradients_`` on a module whose parameters have
    ``shapes`` (the same values on every rank) and rank-specific gradients (None for the
    parameter indices in ``no_grad``); ``group=dist.group.WORLD`` is passed when
    ``explicit_group``. Reports the gradients and parameters after the call and the type of
    what the call returned (not the number of all_reduce calls, which is free: one per
    parameter, or one on a flattened buffer, as ``DistributedDataParallel``'s buckets do)."""
    allreduce = lookup(ns, "allreduce_gradients_")
    g = torch.Generator().manual_seed(seed)
    values = [torch.randn(shape, generator=g, dtype=DTYPE) for shape in shapes]
    model = _Parameters(values)
    for i, p in enumerate(model.items):
        p.grad = None if i in no_grad else _rank_gradient(tuple(shapes[i]), seed, rank, i)
    with joined(rank, world_size, init_method, timeout_s):
        returned = (allreduce(model, group=dist.group.WORLD) if explicit_group
                    else allreduce(model))
    return {"gradients": [None if p.grad is None else p.grad.detach().clone()
                          for p in model.items],
            "parameters": [p.detach().clone() for p in model.items],
            "returned": type(returned).__name__}


def _sgd_(model: nn.Module, lr: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.sub_(lr * p.grad)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def train(ns: dict, n: int, sizes: tuple[int, int, int], steps: int, lr: float, seed: int, *,
          rank: int, world_size: int, init_method: str, timeout_s: float = 10.0
          ) -> dict[str, Any]:
    """``steps`` steps of SGD in the grader's loop: the learner's ``shard_batch`` gives this
    rank its share of the batch, the grader computes the mean squared error on it and
    back-propagates, the learner's ``allreduce_gradients_`` averages the gradients, the grader
    steps. Reports the parameters after the last step, the rank's losses and its shard's
    number of rows."""
    shard_batch = lookup(ns, "shard_batch")
    allreduce = lookup(ns, "allreduce_gradients_")
    model = mlp(sizes, seed)
    batch = regression_batch(n, sizes, seed)
    losses = []
    rows = -1
    with joined(rank, world_size, init_method, timeout_s) as counter, torch.enable_grad():
        for _ in range(steps):
            counter.begin_step()
            shard = shard_batch(batch, rank, world_size)
            if not (isinstance(shard, (tuple, list)) and len(shard) == 2
                    and all(isinstance(t, torch.Tensor) for t in shard)):
                raise ProbeError("shard_batch((x, y), rank, world_size) should return a tuple "
                                 "(x_shard, y_shard) of tensors")
            x, y = shard
            rows = int(x.shape[0])
            model.zero_grad(set_to_none=True)
            loss = mse(model(x), y)
            loss.backward()
            allreduce(model)
            _sgd_(model, lr)
            losses.append(loss.item())
    return {"parameters": _state(model), "losses": torch.tensor(losses, dtype=DTYPE),
            "shard rows": rows}


def learner_loop(ns: dict, n: int, sizes: tuple[int, int, int], steps: int, lr: float,
                 seed: int, *, rank: int, world_size: int, init_method: str,
                 timeout_s: float = 10.0) -> dict[str, Any]:
    """The learner's own ``train_data_parallel(rank, world_size, model, batch, loss_fn,
    steps, lr)`` on the grader's model, batch and mean squared error. Reports the parameters
    after it and what it returned (the rank's losses). Each call of the loss function begins
    a step, for the words of a reduce that finds no partner."""
    train_data_parallel = lookup(ns, "train_data_parallel")
    model = mlp(sizes, seed)
    batch = regression_batch(n, sizes, seed)
    with joined(rank, world_size, init_method, timeout_s) as counter, torch.enable_grad():
        def loss_fn(prediction, target):
            counter.begin_step()
            return mse(prediction, target)

        returned = train_data_parallel(rank, world_size, model, batch, loss_fn, steps, lr)
    losses: Any = returned
    if isinstance(returned, (list, tuple)) and all(isinstance(v, (int, float)) or (
            isinstance(v, torch.Tensor) and v.numel() == 1) for v in returned):
        losses = torch.tensor([float(v) for v in returned], dtype=DTYPE)
    return {"parameters": _state(model), "losses": losses}


def single_process(ns: dict, n: int, sizes: tuple[int, int, int], steps: int, lr: float,
                   seed: int) -> dict[str, Any]:
    """What the ranks must reproduce: ``steps`` steps of SGD on the whole batch in this one
    process (no learner code). Reports the parameters and the full-batch losses."""
    model = mlp(sizes, seed)
    x, y = regression_batch(n, sizes, seed)
    losses = []
    with torch.enable_grad():
        for _ in range(steps):
            model.zero_grad(set_to_none=True)
            loss = mse(model(x), y)
            loss.backward()
            _sgd_(model, lr)
            losses.append(loss.item())
    return {"parameters": _state(model), "losses": torch.tensor(losses, dtype=DTYPE)}


def shards(ns: dict, n: int, world_size: int, widths: tuple[int, ...] = ()) -> list[Any]:
    """Every rank's ``shard_batch(batch, rank, world_size)`` of a batch whose rows are numbered:
    a tensor ``arange(n)`` when ``widths`` is empty, else a tuple of tensors of shape (n, w)
    whose row i holds i (so a shard says which rows it took)."""
    shard_batch = lookup(ns, "shard_batch")
    rows = torch.arange(n, dtype=DTYPE)
    batch: Any = rows if not widths else tuple(
        rows[:, None].expand(n, w).clone() for w in widths)
    return [shard_batch(batch, rank, world_size) for rank in range(world_size)]


def shard_raises(ns: dict, n: int, world_size: int) -> str:
    """What ``shard_batch(arange(n), 0, world_size)`` does when world_size does not divide n:
    ``"raised <ExceptionName>"``, or ``"returned …"``."""
    shard_batch = lookup(ns, "shard_batch")
    try:
        out = shard_batch(torch.arange(n, dtype=DTYPE), 0, world_size)
    except Exception as exc:  # the name is what the check reads
        return f"raised {type(exc).__name__}"
    shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    return f"returned {shape}"
