# %% [markdown]
# # 6.1 Data-parallel training — exercise
#
# When one process cannot get through the data fast enough, run $W$ copies of the model, the
# **ranks** $r = 0, \dots, W-1$ of a process group, and give each a different part of every
# batch. Each rank computes the gradient of the loss on its own shard; the ranks then **average
# their gradients** with one collective operation, `all_reduce`, so that every rank holds the
# same averaged gradient and takes the same optimizer step. The copies never drift apart, and
# the training is *exactly* single-process training on the full batch, only faster (Li et al.,
# 2020, describe how PyTorch's `DistributedDataParallel` does this at scale).
#
# You write the three pieces with `torch.distributed` yourself: splitting a batch into shards,
# averaging the gradients, and the training loop that uses both. The grader really starts two
# processes (gloo backend, on 127.0.0.1) and runs your functions in each; after a few SGD
# steps both ranks must hold the parameters that training on the full batch in one process
# gives.
#
# Not allowed: `torch.nn.parallel.DistributedDataParallel`, which would do the task for you.
# Everything runs on the CPU (gloo is a CPU backend).

# %%
import torch
import torch.distributed as dist

# %% [markdown]
# ## Task 1 — `shard_batch`
#
# A batch of $N$ rows is cut into $W$ contiguous shards of $B = N / W$ rows: rank $r$ takes
# rows $rB, \dots, (r+1)B - 1$. When the loss is a mean over rows, the mean of the $W$ shard
# losses is the full-batch loss, and so the mean of the shard gradients is the full-batch
# gradient:
#
# $$L = \frac1N\sum_{i=1}^{N}\ell_i = \frac1W\sum_{r=0}^{W-1}\underbrace{\frac1B\sum_{i \in
#   \text{shard } r}\ell_i}_{L_r}, \qquad \nabla L = \frac1W \sum_{r} \nabla L_r .$$
#
# That identity needs equal shards, so $W$ must divide $N$. The batch is either one tensor or a
# tuple of tensors that share their first dimension (inputs and targets); every tensor is cut
# the same way.

# %%
def shard_batch(batch, rank, world_size):
    """Rank ``rank``'s contiguous share of a batch split into ``world_size`` equal shards.

    Args:
        batch: a tensor of shape (N, …), or a tuple (or list) of tensors that all have N
            rows (first dimension), e.g. ``(x, y)``.
        rank: int, 0 ≤ rank < world_size, the shard to return.
        world_size: int ≥ 1, the number of shards W; it must divide N.

    Returns:
        Rows rank·B … (rank + 1)·B − 1 of the batch, B = N / W: a tensor of shape
        (B, …) for a tensor batch, a tuple of such tensors (in the batch's order) for a tuple
        or list. Dtypes and devices are the batch's; a view (slice) of the batch is fine.

    Requirements the checks enforce:

    - Contiguous blocks in rank order (rank 0 the first B rows), not every W-th row: the
      checks compare each rank's rows exactly.
    - The W shards partition the batch: together they hold every row exactly once.
    - When W does not divide N, raise ``ValueError`` (equal shards are what makes the mean of
      the shard gradients the full-batch gradient).
    - The batch is not changed.
    """
    # BEGIN SOLUTION
    tensors = batch if isinstance(batch, (tuple, list)) else (batch,)
    n = tensors[0].shape[0]
    if n % world_size != 0:
        raise ValueError(f"world_size {world_size} does not divide the batch of {n} rows")
    b = n // world_size  # B = N / W rows per rank
    shard = tuple(t[rank * b:(rank + 1) * b] for t in tensors)
    return shard if isinstance(batch, (tuple, list)) else shard[0]
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `allreduce_gradients_`
#
# After `loss.backward()` rank $r$ holds $g_r = \nabla L_r$ in every parameter's `.grad`.
# `dist.all_reduce(t)` replaces the tensor `t` on every rank, in place, by the sum of the
# ranks' tensors, $\sum_r t_r$ (its default operation is `ReduceOp.SUM`). Dividing by $W$ then
# gives every rank the same average
#
# $$\bar g = \frac1W \sum_{r=0}^{W-1} g_r .$$
#
# Every rank must make the same `all_reduce` calls, on the same parameters, in the same order:
# a collective completes only when all ranks of the group have called it.

# %%
def allreduce_gradients_(model, group=None):
    """Average every parameter's gradient across the ranks of ``group``, in place.

    Args:
        model: a ``torch.nn.Module`` whose parameters hold this rank's gradients in
            ``.grad`` (after ``loss.backward()``); the same module, with parameters in the same
            order, on every rank.
        group: the process group to average over (``None``: the default group, every rank).

    Returns:
        None. Afterwards every parameter's ``.grad`` holds ḡ = (1/W) Σ_r g_r, the mean over
        the W ranks of ``group`` (W = ``dist.get_world_size(group)``), identical on every rank.

    Requirements the checks enforce:

    - Use ``torch.distributed.all_reduce`` (with its default sum, then divide by W; the gloo
      backend has no ``ReduceOp.AVG``), in place on each ``p.grad``, for the parameters in
      ``model.parameters()`` order. Parameters whose ``.grad`` is None are skipped (on every
      rank alike); the parameters' values are not changed.
    - Every rank makes the same calls: no rank may skip a reduce (the others would wait on it
      until the group's timeout).
    - Pass ``group`` on to ``all_reduce`` and ``get_world_size``.
    - Work on whatever dtype the gradients have (the checks use float64).

    Forbidden: ``torch.nn.parallel.DistributedDataParallel``.
    """
    # BEGIN SOLUTION
    world_size = dist.get_world_size(group)
    for p in model.parameters():
        if p.grad is None:
            continue
        dist.all_reduce(p.grad, group=group)  # Σ_r g_r, on every rank
        p.grad /= world_size  # ḡ = (1/W) Σ_r g_r
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `train_data_parallel`
#
# One step of data-parallel SGD on rank $r$, with the same model on every rank:
#
# 1. take the rank's shard $(x_r, y_r)$ of the batch;
# 2. clear the gradients, compute $L_r = \text{loss\_fn}(\text{model}(x_r), y_r)$ and
#    back-propagate: $g_r = \nabla L_r$;
# 3. average the gradients across the ranks: $\bar g$;
# 4. step: $\theta \leftarrow \theta - \eta\,\bar g$.
#
# Every rank starts from the same parameters and takes the same step, so the copies stay
# equal, and the steps are those of full-batch SGD.

# %%
def train_data_parallel(rank, world_size, model, batch, loss_fn, steps, lr, group=None):
    """``steps`` steps of data-parallel SGD on this rank; the process group is already set up.

    Args:
        rank: int, this process's rank in ``group`` (0 ≤ rank < world_size).
        world_size: int, the number of ranks W.
        model: a ``torch.nn.Module``, with the same parameters on every rank; trained in place.
        batch: a tuple ``(x, y)`` of tensors with N rows each, the same on every rank; W
            divides N.
        loss_fn: ``loss_fn(prediction, target) -> scalar tensor``, a mean over the rows;
            call it exactly once per step, on this rank's shard: ``loss_fn(model(x_r), y_r)``.
        steps: int ≥ 0, the number of SGD steps.
        lr: float, the learning rate η.
        group: the process group (``None``: the default group).

    Returns:
        A list of ``steps`` Python floats: this rank's shard loss L_r at each step, computed
        before that step's update.

    Requirements the checks enforce:

    - Each step, in this order: ``shard_batch(batch, rank, world_size)``; clear the
      gradients (the module's ``zero_grad``); ``loss = loss_fn(model(x_r), y_r)``;
      ``loss.backward()``; ``allreduce_gradients_(model, group)`` (only after the backward
      pass has finished); then plain SGD, p ← p − lr · p.grad for every parameter with a
      gradient, under ``torch.no_grad()``.
    - After the last step the parameters on every rank equal those of ``steps`` steps of SGD
      on the whole batch in one process (checked to rounding, in float64).

    Forbidden: ``torch.nn.parallel.DistributedDataParallel``.
    """
    # BEGIN SOLUTION
    losses = []
    for _ in range(steps):
        x_r, y_r = shard_batch(batch, rank, world_size)
        model.zero_grad()
        loss = loss_fn(model(x_r), y_r)  # L_r
        loss.backward()  # g_r = ∇L_r
        allreduce_gradients_(model, group)  # ḡ, the same on every rank
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= lr * p.grad  # θ ← θ − η ḡ
        losses.append(loss.item())
    return losses
    # END SOLUTION
