"""Hidden checks for unit 4.10 `instructgpt` (Ouyang et al., 2022).

Every check compares the learner's code with the master on seeded inputs and, on a mismatch,
looks the output up in the mistake bank below.

- ``ranking_loss``: rewards (B, K) drawn with scale 2, B from 1 to 7 and K from 2 to 9 (B = 1,
  K = 2, odd sizes, square B = K), float32 and float64; K = 2 on its own (the pairwise loss
  −mean log σ(r_0 − r_1)); rankings whose rewards are in the wrong order by gaps of 50 to 10^4
  (where a naive ``log(sigmoid(d))`` is −inf in both dtypes) and mixed gaps; gradients w.r.t.
  the rewards on ordinary and on large gaps. The first case of every check has B > 1 and
  K > 2, where the banked mistakes all give different values.
- ``ppo_ptx_objective``: a 0-dim rl_objective with pretrain_logprobs of shapes (N, T) and (N,)
  (log-probabilities in [−6, 0)), γ in {0.3, 2.5, 27.8, 0} (γ = 1, where a forgotten γ goes
  unseen, is avoided); a (B,) rl_objective with B = 5, 1, 3 (the result keeps its shape);
  gradients w.r.t. both tensors. Every tensor argument must come back unchanged (the probe
  checks that).

The master was compared, in ``tests/test_oracle_instructgpt.py``, with an explicit double loop
over the pairs with ``F.logsigmoid`` (and, for K = 2, with ``-F.logsigmoid(r0 - r1).mean()``
and ``nn.BCEWithLogitsLoss`` with targets 1), with the Bradley–Terry likelihood of the
implied pairs computed from ``torch.distributions.Bernoulli``, and its gradient with the
closed form σ(r_j − r_i)/(B·C(K, 2)) per pair; ``ppo_ptx_objective`` with a loop.
"""

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import LOGISTIC_LOSS_ATEN, LOGISTIC_LOSS_CALLS, Call, Forbid, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "instructgpt"

FORBIDDEN = [
    # each of these computes -log sigma(d) for a pair (targets 1): the loss in disguise
    Forbid(calls=LOGISTIC_LOSS_CALLS, aten=LOGISTIC_LOSS_ATEN),
]

_PAIRS = "i, j = torch.triu_indices(K, K, offset=1, device=rewards.device)"
_DIFF = "d = rewards[:, i] - rewards[:, j]"
_LOSS = "return -F.logsigmoid(d).mean()"
_PTX = "return rl_objective + gamma * pretrain_term"

MISTAKES = [
    # -- ranking_loss
    Mistake(
        "pairs-worst-first",
        "Your loss matches −mean log σ(r_j − r_i) over pairs i < j: the differences are taken "
        "worse answer first. The columns are ordered best first, so column i beats column j "
        "when i < j, and the Bradley–Terry term is log σ(r_i − r_j).",
        {_DIFF: "d = rewards[:, j] - rewards[:, i]"},
    ),
    Mistake(
        "adjacent-pairs-only",
        "Your loss matches averaging only the K − 1 neighbouring pairs (i, i + 1). A ranking "
        "of K answers implies all K(K − 1)/2 comparisons i < j (0 beats 2, 0 beats 3, ...); "
        "InstructGPT's loss uses every one of them.",
        {_PAIRS: "i = torch.arange(K - 1, device=rewards.device)\n    j = i + 1"},
    ),
    Mistake(
        "diagonal-included",
        "Your loss matches averaging over the pairs i ≤ j, the diagonal i = j included "
        "(torch.triu_indices with offset=0): each such term is log σ(0) = −log 2 and only "
        "dilutes the loss. Take the pairs i < j (offset=1).",
        {"torch.triu_indices(K, K, offset=1,": "torch.triu_indices(K, K, offset=0,"},
    ),
    Mistake(
        "divided-by-k-squared",
        "Your loss matches the sum over the pairs i < j divided by B·K² instead of by the "
        "number of pairs, B·K(K − 1)/2. Average over the K(K − 1)/2 comparisons of a row.",
        {_LOSS: "return -F.logsigmoid(d).sum() / (rewards.shape[0] * K * K)"},
    ),
    Mistake(
        "summed-over-everything",
        "Your loss matches the sum of −log σ(r_i − r_j) over all rows and pairs: the mean is "
        "missing. Divide by B·K(K − 1)/2 (take the mean), so the loss does not grow with the "
        "batch size or K.",
        {_LOSS: "return -F.logsigmoid(d).sum()"},
    ),
    Mistake(
        "pairs-summed-per-row",
        "Your loss matches summing over the pairs of each ranking and averaging over the "
        "rows only: the 1/C(K, 2) factor is missing. InstructGPT averages over the K(K − 1)/2 "
        "comparisons too (otherwise larger K means a larger loss and larger steps).",
        {_LOSS: "return -F.logsigmoid(d).sum(dim=1).mean()"},
    ),
    Mistake(
        "sigmoid-without-log",
        "Your loss matches −mean σ(r_i − r_j): the log is missing. The reward model maximises "
        "the log-likelihood of the comparisons under Bradley–Terry, −mean log σ(r_i − r_j); "
        "without the log the gradient vanishes exactly where the model is most wrong.",
        {_LOSS: "return -torch.sigmoid(d).mean()"},
    ),
    Mistake(
        "naive-log-sigmoid",
        "Your loss is right on ordinary rewards but infinite (or its gradient NaN) when a "
        "worse answer scores far higher: torch.log(torch.sigmoid(d)) underflows, σ(d) becomes "
        "0 and its log −inf. Use the stable F.logsigmoid(d) (or −F.softplus(−d)).",
        {_LOSS: "return -torch.log(torch.sigmoid(d)).mean()"},
    ),
    Mistake(
        "rewards-centred-in-place",
        "Your ranking_loss changes rewards in place (rewards -= ..., sub_): the loss is "
        "right, since only differences matter, but the caller's rewards are corrupted and "
        "autograd refuses it on a tensor that requires grad. Work on new tensors.",
        {_DIFF: "rewards -= rewards.mean(dim=1, keepdim=True)  # centre for stability\n"
                "    d = rewards[:, i] - rewards[:, j]"},
    ),
    Mistake(
        "loss-cast-to-float32",
        "Your loss is float32 for float64 rewards: a .float() (or a float32 constant tensor) "
        "lost the dtype. Return the loss in rewards' dtype.",
        {_DIFF: "d = (rewards[:, i] - rewards[:, j]).float()"},
    ),
    # -- ppo_ptx_objective
    Mistake(
        "gamma-sign-reversed",
        "Your objective matches rl_objective − γ·mean(pretrain_logprobs). PPO-ptx *adds* "
        "γ·E[log π(x)] over pre-training data to the objective it maximises, rewarding the "
        "policy for keeping that text likely.",
        {_PTX: "return rl_objective - gamma * pretrain_term"},
    ),
    Mistake(
        "pretrain-logprobs-summed",
        "Your objective matches rl_objective + γ·sum(pretrain_logprobs): the log-probabilities "
        "are summed, not averaged, so the term grows with the batch of pre-training text. "
        "Use their mean over all elements.",
        {"pretrain_term = pretrain_logprobs.mean()": "pretrain_term = pretrain_logprobs.sum()"},
    ),
    Mistake(
        "gamma-ignored",
        "Your objective matches rl_objective + mean(pretrain_logprobs): γ was not applied. "
        "Multiply the pre-training term by gamma (InstructGPT used γ = 27.8).",
        {_PTX: "return rl_objective + pretrain_term"},
    ),
    Mistake(
        "objective-negated",
        "Your value matches −(rl_objective + γ·mean(pretrain_logprobs)), a loss to minimise. "
        "Return the objective itself; negating it is the optimiser's business.",
        {_PTX: "return -(rl_objective + gamma * pretrain_term)"},
    ),
    Mistake(
        "rl-objective-averaged",
        "Your result is 0-dim for a (B,) rl_objective: rl_objective was averaged too. Only the "
        "pre-training log-probabilities are averaged; the single number γ·mean(...) is added "
        "to every entry, and the result keeps rl_objective's shape.",
        {_PTX: "return rl_objective.mean() + gamma * pretrain_term"},
    ),
    Mistake(
        "mean-over-last-dim-only",
        "Your pre-training term has one value per sequence: the log-probabilities were "
        "averaged over the last dimension only. Average over all elements of "
        "pretrain_logprobs, so the term is a single number.",
        {"pretrain_term = pretrain_logprobs.mean()":
         "pretrain_term = pretrain_logprobs.mean(dim=-1)"},
    ),
    Mistake(
        "objective-in-place",
        "Your ppo_ptx_objective adds the pre-training term to rl_objective in place (+=, "
        "add_): the value is right but the caller's tensor is changed, and autograd refuses it "
        "on a tensor that requires grad. Return a new tensor.",
        {_PTX: "return rl_objective.add_(gamma * pretrain_term)"},
    ),
]

SHAPES = [(5, 4), (1, 2), (3, 3), (7, 5), (1, 9), (4, 2), (2, 9), (6, 6), (1, 7)]


def _rewards(grader, b, k, dtype):
    return grader.randn(b, k, dtype=dtype, scale=2.0)


def _wrong_order(grader, b, k, dtype):
    """Rewards increasing along each ranking by gaps of 50 to 10^4: every pair is badly wrong."""
    gaps = 50 + (1e4 - 50) * grader.rand(b, k, dtype=torch.float64)
    return (gaps.cumsum(dim=1) - gaps.sum(dim=1, keepdim=True) / 2).to(dtype)


# -- ranking_loss -----------------------------------------------------------------------------

@check(points=2, public=True, task="ranking_loss")
def test_ranking_loss(grader):
    """ranking_loss(rewards (B, K)) over B = 1..7, K = 2..9: −mean over rows and pairs i < j"""
    for b, k in SHAPES:
        for dtype in DTYPES:
            grader.compare(Call("ranking_loss", (_rewards(grader, b, k, dtype),)),
                           case=f"ranking_loss(rewards[{b}, {k}]), {_dt(dtype)}")


@check(points=1, public=True, task="ranking_loss")
def test_ranking_loss_pairwise(grader):
    """ranking_loss with K = 2 is the pairwise loss −mean log σ(r_0 − r_1)"""
    for b in (6, 1, 3, 32):
        for dtype in DTYPES:
            grader.compare(Call("ranking_loss", (_rewards(grader, b, 2, dtype),)),
                           case=f"ranking_loss(rewards[{b}, 2]) (K = 2), {_dt(dtype)}")


@check(points=1, task="ranking_loss")
def test_ranking_loss_large_gaps(grader):
    """ranking_loss stays finite when worse answers score higher by 50 to 10^4"""
    for dtype in DTYPES:  # first: both orders, so that every banked mistake differs
        mixed = _rewards(grader, 4, 5, dtype) * 500  # gaps in the thousands
        grader.compare(Call("ranking_loss", (mixed,)),
                       case=f"ranking_loss of rewards[4, 5] with scale 1000, {_dt(dtype)}")
    for b, k in [(3, 4), (1, 2), (2, 9)]:
        for dtype in DTYPES:
            grader.compare(Call("ranking_loss", (_wrong_order(grader, b, k, dtype),)),
                           case=f"ranking_loss of rewards[{b}, {k}] in the wrong order by "
                           f"gaps of 50 to 10^4, {_dt(dtype)}")


@check(points=2, task="ranking_loss")
def test_ranking_loss_gradients(grader):
    """d ranking_loss / d rewards: each pair i < j pushes r_i up and r_j down"""
    for b, k in [(4, 3), (1, 2), (3, 6), (2, 9)]:
        for dtype in DTYPES:
            grader.compare(Call("ranking_loss", (_rewards(grader, b, k, dtype),), grad=(0,)),
                           case=f"d/drewards of ranking_loss(rewards[{b}, {k}]), {_dt(dtype)}")
    for dtype in DTYPES:
        grader.compare(Call("ranking_loss", (_wrong_order(grader, 3, 4, dtype),), grad=(0,)),
                       case=f"d/drewards of ranking_loss, rewards[3, 4] in the wrong order by "
                       f"gaps of 50 to 10^4, {_dt(dtype)}")


# -- ppo_ptx_objective ------------------------------------------------------------------------

def _logprobs(grader, shape, dtype):
    return -6 * grader.rand(*shape, dtype=dtype)


@check(points=2, public=True, task="ppo_ptx_objective")
def test_ppo_ptx_scalar(grader):
    """ppo_ptx_objective(0-dim rl_objective, pretrain_logprobs, γ) = rl + γ·mean(logprobs)"""
    cases = [((4, 8), 0.3), ((3, 7), 27.8), ((1, 1), 2.5), ((6,), 0.3), ((2, 5), 0.0)]
    for shape, gamma in cases:
        for dtype in DTYPES:
            rl = grader.randn(dtype=dtype, scale=2.0)
            lp = _logprobs(grader, shape, dtype)
            grader.compare(Call("ppo_ptx_objective", (rl, lp, gamma)),
                           case=f"ppo_ptx_objective(0-dim rl_objective, pretrain_logprobs"
                           f"{list(shape)}, gamma={gamma}), {_dt(dtype)}")


@check(points=1, task="ppo_ptx_objective")
def test_ppo_ptx_batched(grader):
    """ppo_ptx_objective with a (B,) rl_objective keeps its shape: rl_b + γ·mean(logprobs)"""
    for b, shape, gamma in [(5, (3, 4), 0.5), (1, (2, 6), 27.8), (3, (7,), 2.5)]:
        for dtype in DTYPES:
            rl = grader.randn(b, dtype=dtype, scale=2.0)
            lp = _logprobs(grader, shape, dtype)
            grader.compare(Call("ppo_ptx_objective", (rl, lp, gamma)),
                           case=f"ppo_ptx_objective(rl_objective[{b}], pretrain_logprobs"
                           f"{list(shape)}, gamma={gamma}), {_dt(dtype)}")


@check(points=1, task="ppo_ptx_objective")
def test_ppo_ptx_gradients(grader):
    """gradients of ppo_ptx_objective w.r.t. rl_objective and pretrain_logprobs"""
    for rl_shape, shape, gamma in [((), (4, 8), 0.3), ((4,), (3, 5), 27.8), ((), (5,), 2.5)]:
        for dtype in DTYPES:
            rl = grader.randn(*rl_shape, dtype=dtype, scale=2.0)
            lp = _logprobs(grader, shape, dtype)
            grader.compare(Call("ppo_ptx_objective", (rl, lp, gamma), grad=(0, 1)),
                           case=f"d/drl_objective, d/dpretrain_logprobs of ppo_ptx_objective"
                           f"(rl_objective{list(rl_shape)}, pretrain_logprobs{list(shape)}, "
                           f"gamma={gamma}), {_dt(dtype)}")
