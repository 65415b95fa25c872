"""Hidden checks for unit 4.8 `rlhf` (Ziegler et al., 2019).

Every check compares the learner's code with the master on seeded inputs and, on a mismatch,
looks the output up in the mistake bank below.

- ``preference_loss``: rewards (B,) with B = 1, 2, 5, 7, 32 and a (3, 4) batch, drawn with
  scale 2, float32 and float64; large reward gaps (|r_c − r_r| from 50 to 10^4, both signs),
  where a naive ``log(sigmoid(d))`` is −inf in both dtypes; gradients w.r.t. both inputs on
  ordinary and on large gaps (where the naive form gives NaN).
- ``kl_penalized_reward``: log-probabilities in [−4, 0) (what a log-softmax gives), rewards
  with scale 2, shapes (B, T) with batch 1, one token, odd sizes; β in {0, 0.05, 0.1, 0.3, 1.5,
  2} (β = 1 is avoided where a missing β would go unseen); no mask, ``mask=None``, bool masks
  (right-padded answers of different lengths, a row of padding only, random masks) and float
  masks of 0. and 1. in the inputs' dtype; gradients w.r.t. reward, logprobs and
  ref_logprobs through a mask. Every tensor argument must come back unchanged (the probe
  checks that).

The master was compared, in ``tests/test_oracle_rlhf.py``, with ``torch.nn.BCEWithLogitsLoss``
(targets 1) and with a Bradley–Terry likelihood written from ``torch.distributions.Bernoulli``,
and its penalty with the log-ratio of whole sequences computed by
``torch.distributions.Categorical`` over random autoregressive tables.
"""

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import LOGISTIC_LOSS_ATEN, LOGISTIC_LOSS_CALLS, Call, Forbid, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "rlhf"

FORBIDDEN = [
    # each of these is the preference loss with targets 1
    Forbid(calls=LOGISTIC_LOSS_CALLS, aten=LOGISTIC_LOSS_ATEN),
]

MISTAKES = [
    # -- preference_loss
    Mistake(
        "sigmoid-without-log",
        "Your loss matches −mean(σ(r_c − r_r)): the log is missing. The reward model maximises "
        "the log-likelihood of the labels under Bradley–Terry, so the loss is "
        "−mean(log σ(r_c − r_r)); without the log the gradient vanishes exactly where the model "
        "is most wrong.",
        {"return -F.logsigmoid(d).mean()": "return -torch.sigmoid(d).mean()"},
    ),
    Mistake(
        "naive-log-sigmoid",
        "Your loss is right on ordinary rewards but infinite (or its gradient NaN) when the "
        "gap r_c − r_r is large and negative: torch.log(torch.sigmoid(d)) underflows, σ(d) "
        "becomes 0 and its log −inf. Use the stable F.logsigmoid(d) (or −F.softplus(−d)), "
        "which is ≈ d there.",
        {"return -F.logsigmoid(d).mean()": "return -torch.log(torch.sigmoid(d)).mean()"},
    ),
    Mistake(
        "chosen-rejected-swapped",
        "Your loss matches −mean(log σ(r_r − r_c)): chosen and rejected are swapped, so "
        "minimising it teaches the reward model to prefer the rejected answers. The difference "
        "is r_chosen − r_rejected.",
        {"d = r_chosen - r_rejected": "d = r_rejected - r_chosen"},
    ),
    Mistake(
        "loss-summed",
        "Your loss matches the sum over the comparisons instead of their mean. Return "
        "−mean(log σ(r_c − r_r)), so that the loss (and the learning rate) does not depend "
        "on the batch size.",
        {"return -F.logsigmoid(d).mean()": "return -F.logsigmoid(d).sum()"},
    ),
    Mistake(
        "loss-sign",
        "Your loss is the log-likelihood itself, mean(log σ(r_c − r_r)), which is negative: "
        "minimising it would make the labels less likely. The loss is its negative.",
        {"return -F.logsigmoid(d).mean()": "return F.logsigmoid(d).mean()"},
    ),
    # -- kl_penalized_reward
    Mistake(
        "kl-sign-reversed",
        "Your penalty has the opposite sign: you use log ρ − log π. The penalty is "
        "β · (log π(y) − log ρ(y)), the log-ratio of the policy to the reference whose mean "
        "under π is KL(π ‖ ρ): logprobs minus ref_logprobs.",
        {"log_ratio = logprobs - ref_logprobs": "log_ratio = ref_logprobs - logprobs"},
    ),
    Mistake(
        "padding-counted",
        "Your values are right without a mask but wrong with one: the padding tokens are "
        "counted in the sum. Only positions where the mask is True / 1 belong to the answer; "
        "set the log-ratio to 0 elsewhere before summing.",
        {"        log_ratio = torch.where(mask != 0, log_ratio, torch.zeros_like(log_ratio))\n":
         "        pass\n"},
    ),
    Mistake(
        "mask-inverted",
        "Your values count the positions where the mask is 0 and drop those where it is 1: "
        "the mask is read the wrong way round. True / 1 marks a real token of the answer "
        "(like an attention_mask), not a position to drop.",
        {"torch.where(mask != 0, log_ratio": "torch.where(mask == 0, log_ratio"},
    ),
    Mistake(
        "kl-mean-over-tokens",
        "Your penalty averages the log-ratio over the tokens instead of summing it. The "
        "sequence's log-ratio log π(y|x) − log ρ(y|x) is the sum over its tokens (the "
        "probability of a sequence is the product of its tokens' probabilities).",
        {"    kl = log_ratio.sum(dim=-1)": "    kl = log_ratio.mean(dim=-1)"},
    ),
    Mistake(
        "beta-missing",
        "Your values match reward − Σ_t (log π − log ρ): the KL coefficient β is not applied. "
        "Multiply the summed log-ratio by beta.",
        {"return reward - beta * kl": "return reward - kl"},
    ),
    Mistake(
        "kl-not-summed",
        "Your output has shape (B, T): the per-token penalties were subtracted from the "
        "reward without summing them over the tokens. Return one value per answer, "
        "reward − β · Σ_t mask · (logprobs − ref_logprobs), shape (B,).",
        {"    kl = log_ratio.sum(dim=-1)": "    kl = log_ratio\n    reward = reward[:, None]"},
    ),
    Mistake(
        "kl-summed-over-batch",
        "Your penalty is the same for every answer: the log-ratio was summed over the whole "
        "batch (all tokens of all answers, e.g. log_ratio[mask].sum() or .sum() without a "
        "dim). Sum over the tokens of each answer only, dim=-1.",
        {"    kl = log_ratio.sum(dim=-1)": "    kl = log_ratio.sum()"},
    ),
    Mistake(
        "kl-absolute",
        "Your penalty matches β · Σ_t |log π − log ρ|. A single token's log-ratio can be "
        "negative (the policy gave the token less probability than the reference did); only "
        "its mean under π, the KL, is ≥ 0. Use the signed log-ratio.",
        {"log_ratio = logprobs - ref_logprobs": "log_ratio = (logprobs - ref_logprobs).abs()"},
    ),
    Mistake(
        "logprobs-in-place",
        "Your kl_penalized_reward changes logprobs in place (sub_ or -=): the values are right "
        "but the caller's log-probabilities are destroyed, and autograd refuses it on a tensor "
        "that requires grad. Compute logprobs − ref_logprobs into a new tensor.",
        {"log_ratio = logprobs - ref_logprobs": "log_ratio = logprobs.sub_(ref_logprobs)"},
    ),
]


# -- inputs -------------------------------------------------------------------------------


def _rewards(grader, shape, dtype):
    return grader.randn(*shape, dtype=dtype, scale=2.0), grader.randn(*shape, dtype=dtype,
                                                                      scale=2.0)


def _logprobs(grader, b, t, dtype):
    """(logprobs, ref_logprobs) in [-4, 0), like log-softmax values of sampled tokens."""
    return -4 * grader.rand(b, t, dtype=dtype), -4 * grader.rand(b, t, dtype=dtype)


def _right_padded(lengths, t):
    """Bool mask (B, T): True on the first lengths[b] positions of row b."""
    return torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]


def _large_gaps(grader, b, dtype):
    """Rewards whose differences are ±50 to ±10^4 (half of each sign), plus small ones."""
    gap = 10 ** (1.7 + 2.3 * grader.rand(b, dtype=torch.float64))
    sign = torch.where(torch.arange(b) % 2 == 0, -1.0, 1.0).double()
    r_rejected = grader.randn(b, dtype=torch.float64)
    r_chosen = r_rejected + sign * gap
    return r_chosen.to(dtype), r_rejected.to(dtype)


# -- preference_loss ----------------------------------------------------------------------

PREF_SHAPES = [(8,), (1,), (7,), (2,), (32,), (5,), (3, 4)]


@check(points=2, public=True, task="preference_loss")
def test_preference_loss(grader):
    """preference_loss(r_chosen, r_rejected) = −mean(log σ(r_c − r_r)), a 0-dim tensor"""
    for shape in PREF_SHAPES:
        for dtype in DTYPES:
            rc, rr = _rewards(grader, shape, dtype)
            grader.compare(Call("preference_loss", (rc, rr)),
                           case=f"preference_loss(r_chosen{list(shape)}, r_rejected), "
                           f"{_dt(dtype)}")


@check(points=2, public=True, task="preference_loss")
def test_preference_loss_large_gaps(grader):
    """preference_loss stays finite (and exact) for reward gaps of 50 to 10^4, either sign"""
    for b in (6, 1, 9):
        for dtype in DTYPES:
            rc, rr = _large_gaps(grader, b, dtype)
            grader.compare(Call("preference_loss", (rc, rr)),
                           case=f"preference_loss with gaps |r_c − r_r| in [50, 10^4] "
                           f"(B = {b}), {_dt(dtype)}")


@check(points=1, task="preference_loss")
def test_preference_loss_gradients(grader):
    """gradients of preference_loss w.r.t. r_chosen and r_rejected, small and large gaps"""
    for shape in [(6,), (1,), (3, 5)]:
        for dtype in DTYPES:
            rc, rr = _rewards(grader, shape, dtype)
            grader.compare(Call("preference_loss", (rc, rr), grad=(0, 1)),
                           case=f"d/dr_chosen, d/dr_rejected of preference_loss on "
                           f"{list(shape)}, {_dt(dtype)}")
    for dtype in DTYPES:
        rc, rr = _large_gaps(grader, 8, dtype)
        grader.compare(Call("preference_loss", (rc, rr), grad=(0, 1)),
                       case=f"gradients of preference_loss with gaps in [50, 10^4], "
                       f"{_dt(dtype)}")


# -- kl_penalized_reward ------------------------------------------------------------------

KL_SHAPES = [((4, 8), 0.1), ((1, 1), 0.3), ((3, 7), 1.5), ((1, 13), 0.05), ((5, 1), 2.0),
             ((2, 6), 0.1)]


@check(points=2, public=True, task="kl_penalized_reward")
def test_kl_penalized_reward_unmasked(grader):
    """kl_penalized_reward without a mask: reward − β·Σ_t (logprobs − ref_logprobs), (B,)"""
    for (b, t), beta in KL_SHAPES:
        for dtype in DTYPES:
            reward = grader.randn(b, dtype=dtype, scale=2.0)
            lp, ref = _logprobs(grader, b, t, dtype)
            grader.compare(Call("kl_penalized_reward", (reward, lp, ref, beta)),
                           case=f"kl_penalized_reward(reward[{b}], logprobs[{b}, {t}], "
                           f"ref_logprobs, beta={beta}), {_dt(dtype)}")
    reward = grader.randn(3, dtype=torch.float64)
    lp, ref = _logprobs(grader, 3, 5, torch.float64)
    grader.compare(Call("kl_penalized_reward", (reward, lp, ref, 0.2), {"mask": None}),
                   case="kl_penalized_reward(..., beta=0.2, mask=None) on [3, 5], float64")
    grader.compare(Call("kl_penalized_reward", (reward, lp, ref, 0.0)),
                   case="kl_penalized_reward(..., beta=0.0) on [3, 5] (the reward itself)")


@check(points=2, public=True, task="kl_penalized_reward")
def test_kl_penalized_reward_bool_mask(grader):
    """kl_penalized_reward with a bool mask: padding positions (False) do not count"""
    cases = [
        ((4, 8), [8, 5, 1, 3], 0.1),  # answers of different lengths, right-padded
        ((3, 7), [0, 7, 2], 0.3),  # a row of padding only
        ((1, 1), [1], 1.5),
        ((1, 6), [4], 0.05),
    ]
    for (b, t), lengths, beta in cases:
        for dtype in DTYPES:
            reward = grader.randn(b, dtype=dtype, scale=2.0)
            lp, ref = _logprobs(grader, b, t, dtype)
            mask = _right_padded(lengths, t)
            grader.compare(Call("kl_penalized_reward", (reward, lp, ref, beta, mask)),
                           case=f"kl_penalized_reward on [{b}, {t}], beta={beta}, bool mask "
                           f"of lengths {lengths}, {_dt(dtype)}")
    for dtype in DTYPES:
        reward = grader.randn(5, dtype=dtype, scale=2.0)
        lp, ref = _logprobs(grader, 5, 9, dtype)
        mask = grader.rand(5, 9) < 0.6
        grader.compare(Call("kl_penalized_reward", (reward, lp, ref, 0.3), {"mask": mask}),
                       case=f"kl_penalized_reward on [5, 9], beta=0.3, random bool mask=, "
                       f"{_dt(dtype)}")


@check(points=1, task="kl_penalized_reward")
def test_kl_penalized_reward_float_mask(grader):
    """kl_penalized_reward with a float mask of 0. and 1. in the inputs' dtype"""
    for (b, t), lengths, beta in [((4, 6), [6, 2, 0, 5], 0.1), ((2, 9), [3, 9], 2.0),
                                  ((1, 3), [2], 0.3)]:
        for dtype in DTYPES:
            reward = grader.randn(b, dtype=dtype, scale=2.0)
            lp, ref = _logprobs(grader, b, t, dtype)
            mask = _right_padded(lengths, t).to(dtype)
            grader.compare(Call("kl_penalized_reward", (reward, lp, ref, beta, mask)),
                           case=f"kl_penalized_reward on [{b}, {t}], beta={beta}, "
                           f"{_dt(dtype)} mask of lengths {lengths}")


@check(points=1, task="kl_penalized_reward")
def test_kl_penalized_reward_gradients(grader):
    """gradients of kl_penalized_reward w.r.t. reward, logprobs and ref_logprobs"""
    for (b, t), lengths, as_float, beta in [((3, 5), [5, 2, 0], False, 0.3),
                                            ((2, 4), [1, 4], True, 1.5),
                                            ((1, 7), [7], False, 0.1)]:
        for dtype in DTYPES:
            reward = grader.randn(b, dtype=dtype, scale=2.0)
            lp, ref = _logprobs(grader, b, t, dtype)
            mask = _right_padded(lengths, t)
            mask = mask.to(dtype) if as_float else mask
            kind = _dt(dtype) if as_float else "bool"
            grader.compare(Call("kl_penalized_reward", (reward, lp, ref, beta, mask),
                                grad=(0, 1, 2)),
                           case=f"d/dreward, d/dlogprobs, d/dref_logprobs on [{b}, {t}], "
                           f"beta={beta}, {kind} mask of lengths {lengths}, {_dt(dtype)}")
