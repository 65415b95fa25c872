"""Hidden checks for unit 6.1 `data-parallel` (Li et al., 2020).

The grader really starts the processes: every check on ``allreduce_gradients_`` and on
training is a :class:`~course.grading.spec.Group` probe, whose driver runs in 2 (or 3)
processes at once, the ranks of a gloo process group on 127.0.0.1 with a 10 s timeout
(:mod:`course.grading.drivers.data_parallel`). In isolated grading each rank is an isolated
child of its own, confined like every other; the reference and the banked mistakes run in
ranks forked from the grader's process. Everything is float64 on the CPU (gloo).

- ``shard_batch``: the shards of numbered rows (a tensor, and a tuple of an (N, 3) and an
  (N, 1) tensor), N/W in (12/3, 8/2, 6/1, 10/5, 7/7), compared exactly; W not dividing N
  (10 rows on 4 ranks, 7 on 2) must raise ValueError.
- ``allreduce_gradients_``: a module of parameters of shapes (3,), (2, 4), (5, 1, 2) with
  rank-specific gradients, on 2 and on 3 ranks, once with the middle gradient None and
  ``group=dist.group.WORLD`` passed: every rank's gradients must equal the reference's mean,
  and the parameters stay unchanged. The number of all_reduce calls is free (one per
  parameter, or one on a flattened buffer).
- Training in the grader's loop (the learner's ``shard_batch`` and ``allreduce_gradients_``,
  the grader's MLP 5 → 7 → 3, mean squared error and SGD, lr 0.1, 4 steps on 24 rows and 2
  ranks, 3 steps on 30 rows and 3 ranks), and in the learner's ``train_data_parallel`` (2
  ranks; 4 steps on 24 rows, and 3 on 16): each rank's parameters equal the reference's, and
  equal those of full-batch SGD in one process to 1e-10; the returned losses are the rank's
  shard losses.

A collective that one rank makes and another does not (a rank that skips the reduce) ends, at
the latest, when the group's timeout passes, with a message naming the rank and the call,
never a hang. No randomness is involved, so no statistical check is needed. The master was
compared, in ``tests/test_oracle_data_parallel.py``, with ``DistributedDataParallel`` on the
same ranks and with single-process training.
"""

from course.grading.dsl import Call, Forbid, Group, Mistake, check

UNIT = "data-parallel"

FORBIDDEN = [Forbid(calls=("torch.nn.parallel.DistributedDataParallel",))]

MISTAKES = [
    Mistake(
        "sum-not-mean",
        "Your gradients match the *sum* over the ranks, W times the mean: all_reduce adds the "
        "ranks' tensors (its default operation is SUM), so divide each gradient by the world "
        "size W = dist.get_world_size(group) afterwards. Without it every step is W times "
        "too large.",
        {"        p.grad /= world_size  # ḡ = (1/W) Σ_r g_r\n": ""},
    ),
    Mistake(
        "no-all-reduce",
        "Your gradients match each rank dividing its *own* gradient by W, with no all_reduce: "
        "the ranks never exchange anything, so each keeps a different gradient and the copies "
        "of the model drift apart. Call dist.all_reduce(p.grad, group=group) first; it "
        "replaces p.grad on every rank by the sum over the ranks.",
        {"        dist.all_reduce(p.grad, group=group)  # Σ_r g_r, on every rank\n": ""},
    ),
    Mistake(
        "rank-zero-only",
        "Only rank 0 of your group calls all_reduce, and the other ranks never join it: a "
        "collective finishes only when every rank of the group has called it, so rank 0 waits "
        "until the group gives up. Every rank makes the same all_reduce calls; the result "
        "lands on all of them.",
        {"        dist.all_reduce(p.grad, group=group)  # Σ_r g_r, on every rank\n":
         "        if dist.get_rank(group) == 0:\n"
         "            dist.all_reduce(p.grad, group=group)\n"},
    ),
    Mistake(
        "overlapping-shards",
        "Your shards overlap: rank r's shard starts at row r instead of row r·B (B = N / W), "
        "so neighbouring ranks share B − 1 rows and most rows are never used. Rank r takes "
        "rows r·B … (r + 1)·B − 1.",
        {"shard = tuple(t[rank * b:(rank + 1) * b] for t in tensors)":
         "shard = tuple(t[rank:rank + b] for t in tensors)"},
    ),
    Mistake(
        "strided-shards",
        "Your shards take every W-th row (rank r: rows r, r + W, r + 2W, …). That partition "
        "would also train correctly, but this exercise fixes contiguous blocks, so that every "
        "rank's rows (and its losses) can be checked: rank r takes rows r·B … (r + 1)·B − 1, "
        "B = N / W.",
        {"shard = tuple(t[rank * b:(rank + 1) * b] for t in tensors)":
         "shard = tuple(t[rank::world_size] for t in tensors)"},
    ),
    Mistake(
        "uneven-not-refused",
        "Your shard_batch does not raise ValueError when W does not divide N (it returns "
        "shards of N // W rows and drops the rest, or shards of different sizes). Equal "
        "shards are what makes the mean of the shard gradients the full-batch gradient: "
        "refuse the batch with ValueError.",
        {"    if n % world_size != 0:\n        raise ValueError(f\"world_size {world_size} does "
         "not divide the batch of {n} rows\")\n": ""},
    ),
    Mistake(
        "reduce-before-backward",
        "Your loop does not average the gradients between loss.backward() and the optimizer "
        "step (here: it averages them before backward has computed them, so the reduce sees "
        "the previous step's gradients, or none): each rank then steps with its own, "
        "unaveraged gradient. The order is backward, allreduce_gradients_, then the step.",
        {"        loss.backward()  # g_r = ∇L_r\n        allreduce_gradients_(model, group)  # ḡ, "
         "the same on every rank\n":
         "        allreduce_gradients_(model, group)\n        loss.backward()\n"},
    ),
    Mistake(
        "no-zero-grad",
        "Your loop never clears the gradients, so backward adds each step's gradient to all "
        "the earlier ones. Call model.zero_grad() at the start of every step.",
        {"        model.zero_grad()\n": ""},
    ),
    Mistake(
        "whole-batch-on-every-rank",
        "Your parameters are right but the losses are the whole batch's: every rank computes "
        "on the full batch, so the ranks repeat one another's work and nothing is gained. Each "
        "rank takes its own shard, x_r, y_r = shard_batch(batch, rank, world_size), and the "
        "average of the shard gradients is the full-batch gradient.",
        {"        x_r, y_r = shard_batch(batch, rank, world_size)\n":
         "        x_r, y_r = batch\n"},
    ),
]

SIZES = (5, 7, 3)  # the grader's MLP: 5 inputs, 7 hidden units, 3 outputs
LR = 0.1


def _shard_case(n, world_size, widths):
    kind = "a tensor" if not widths else f"a tuple of {len(widths)} tensors"
    return f"shard_batch of {kind} with {n} rows, world_size={world_size}"


@check(points=2, public=True, task="shard_batch")
def test_shards(grader):
    """each rank's shard_batch is its contiguous block of N/W rows, for a tensor and a tuple"""
    for widths in ((), (3, 1)):
        for n, world_size in ((12, 3), (8, 2), (6, 1), (10, 5), (7, 7)):
            grader.compare(Call("@data_parallel.shards", (n, world_size, widths)), exact=True,
                           case=_shard_case(n, world_size, widths))


@check(points=1, task="shard_batch")
def test_uneven(grader):
    """shard_batch raises ValueError when world_size does not divide the batch"""
    for n, world_size in ((10, 4), (7, 2)):
        probe = Call("@data_parallel.shard_raises", (n, world_size))
        said = grader.learner(probe).out
        if said != "raised ValueError":
            mistake = grader.banked_mistake(probe, lambda o, said=said: o.out == said)
            grader.fail(f"shard_batch(a batch of {n} rows, 0, world_size={world_size}) {said}; "
                        "it should raise ValueError", mistake=mistake)
        grader.cases.append(f"{n} rows on {world_size} ranks")


def _reduce_case(world_size, no_grad, explicit):
    extra = ", the 2nd gradient None" if no_grad else ""
    extra += ", group=dist.group.WORLD" if explicit else ""
    return f"allreduce_gradients_ on {world_size} processes{extra}"


@check(points=3, public=True, task="allreduce_gradients_")
def test_allreduce(grader):
    """allreduce_gradients_ in real processes leaves every rank's gradients equal to their mean"""
    shapes = [(3,), (2, 4), (5, 1, 2)]
    for world_size, no_grad, explicit in ((2, (), False), (3, (), False), (2, (1,), True)):
        probe = Group(Call("@data_parallel.reduce", (shapes, grader.seed(), no_grad, explicit)),
                      world_size=world_size)
        got = grader.compare(probe, case=_reduce_case(world_size, no_grad, explicit)).out
        grader.require(all(o["returned"] == "NoneType" for o in got),
                       "allreduce_gradients_ should return None (it works in place)")


def _same_as_one_process(grader, got, steps, n, seed, case):
    want = grader.reference(
        Call("@data_parallel.single_process", (n, SIZES, steps, LR, seed))).out["parameters"]
    for rank, outcome in enumerate(got):
        for name, value in want.items():
            have = outcome["parameters"][name]
            gap = float((have - value).abs().max())
            grader.require(gap <= 1e-10, (
                f"in {case}: after training, rank {rank}'s parameter {name} differs from "
                f"full-batch SGD in one process by up to {gap:.3g}"))


@check(points=3, task="allreduce_gradients_")
def test_training(grader):
    """SGD with your shard_batch and allreduce_gradients_ on 2, 3 processes equals full-batch SGD"""
    for n, steps, world_size in ((24, 4, 2), (30, 3, 3)):
        seed = grader.seed()
        case = f"{steps} SGD steps on {n} rows, {world_size} processes, the grader's loop"
        probe = Group(Call("@data_parallel.train", (n, SIZES, steps, LR, seed)),
                      world_size=world_size)
        got = grader.compare(probe, case=case).out
        _same_as_one_process(grader, got, steps, n, seed, case)


@check(points=3, public=True, task="train_data_parallel")
def test_train_data_parallel(grader):
    """train_data_parallel returns the shard losses and ends where full-batch SGD ends"""
    for n, steps in ((24, 4), (16, 3)):
        seed = grader.seed()
        case = f"train_data_parallel, {steps} steps on {n} rows, 2 processes"
        probe = Group(Call("@data_parallel.learner_loop", (n, SIZES, steps, LR, seed)))
        got = grader.compare(probe, case=case).out
        _same_as_one_process(grader, got, steps, n, seed, case)
