"""Hidden checks for unit 4.11 `helpful-harmless` (Bai et al., 2022).

Every check compares the learner's code with the master on seeded inputs and, on a mismatch,
looks the output up in the mistake bank below.

- ``per_token_kl``: log-probabilities drawn in [-4, 0) (what a log-softmax gives), shapes
  (B, T) with batch 1, one token, odd sizes; float32 and float64; no mask, bool masks
  (right-padded answers of different lengths, a row of padding only, random masks) and float
  masks of 0. and 1. in the inputs' dtype; gradients w.r.t. both inputs through a mask. Inputs
  must come back unchanged (the probe checks that for every tensor argument).
- ``best_of_n``: rewards (n, B) with n = 1, B = 1, square (n = B, where the wrong axis gives
  the right shape), odd sizes, float32 and float64; exact comparison of the int64 indices;
  integer-valued rewards with many ties (the first index wins, as ``torch.argmax``).
- ``best_of_n_kl``: n = 1 (0 exactly), 2, 3, 4, 7, 10, 64, 1000 compared as floats; n = 0 and
  negative n must raise ValueError (a grader-owned driver reports the exception's class).

The master was compared, in ``tests/test_oracle_helpful_harmless.py``, with
``torch.distributions`` (the expectation of the per-token estimate under the policy equals
``kl_divergence`` of two Categoricals) and with an exact enumeration of best-of-n over small
discrete distributions with distinct rewards (the formula is the limit of many small atoms
and an upper bound otherwise).
"""

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "helpful-harmless"

FORBIDDEN = [
    # the exact KL between whole distributions: not the estimate asked for, and a shortcut
    Forbid(
        calls=(
            "torch.nn.functional.kl_div",
            "torch.kl_div",
            "torch.distributions.kl.kl_divergence",
            "torch.distributions.kl_divergence",
        ),
        aten=("kl_div",),
    ),
]

MISTAKES = [
    # -- per_token_kl
    Mistake(
        "kl-sign-reversed",
        "Your values have the opposite sign: log π₀(y) − log π(y). The penalty is the KL of "
        "the policy from the reference, KL(π ‖ π₀) = E_π[log π − log π₀]: logprobs minus "
        "ref_logprobs.",
        {"log_ratio = logprobs - ref_logprobs": "log_ratio = ref_logprobs - logprobs"},
    ),
    Mistake(
        "mask-ignored",
        "Your values are right where the mask is 1 but not zero where it is 0: the mask was "
        "ignored. Padding tokens are not part of the answer; set the estimate to 0 there.",
        {"return torch.where(mask != 0, log_ratio, torch.zeros_like(log_ratio))":
         "return log_ratio"},
    ),
    Mistake(
        "mask-inverted",
        "Your values are kept where the mask is 0 and zeroed where it is 1: the mask is read "
        "the wrong way round. Here True / 1 marks a real answer token (as an attention_mask "
        "does), not a position to drop (as PyTorch's key_padding_mask does).",
        {"torch.where(mask != 0, log_ratio": "torch.where(mask == 0, log_ratio"},
    ),
    Mistake(
        "summed-per-sequence",
        "Your output has one value per sequence: the per-token estimates were summed over "
        "the tokens. Return the (B, T) per-token values; summing them is the caller's job.",
        {
            "        return log_ratio\n": "        return log_ratio.sum(dim=-1)\n",
            "return torch.where(mask != 0, log_ratio, torch.zeros_like(log_ratio))":
            "return torch.where(mask != 0, log_ratio, torch.zeros_like(log_ratio)).sum(dim=-1)",
        },
    ),
    Mistake(
        "k3-estimator",
        "Your values match the 'k3' estimator (ρ − 1) − log ρ with ρ = π₀(y)/π(y), which is "
        "never negative. It has the same mean under π, but the estimate asked for (and used "
        "as RLHF's per-token penalty) is the plain log-ratio log π(y) − log π₀(y).",
        {"log_ratio = logprobs - ref_logprobs":
         "log_ratio = torch.expm1(ref_logprobs - logprobs) - (ref_logprobs - logprobs)"},
    ),
    Mistake(
        "probability-weighted",
        "Your values match π(y)·(log π(y) − log π₀(y)), a term of the exact KL sum over the "
        "whole vocabulary. These tokens were sampled from π, so the sampling already does "
        "the weighting: the per-token estimate is log π(y) − log π₀(y) alone.",
        {"log_ratio = logprobs - ref_logprobs":
         "log_ratio = logprobs.exp() * (logprobs - ref_logprobs)"},
    ),
    Mistake(
        "masked-in-place",
        "Your per_token_kl changes logprobs in place (sub_, masked_fill_ or an indexed "
        "assignment): the values are right but the caller's log-probabilities are destroyed, "
        "and autograd refuses it on a tensor that requires grad. Build a new tensor (e.g. "
        "with torch.where).",
        {"return torch.where(mask != 0, log_ratio, torch.zeros_like(log_ratio))":
         "logprobs.sub_(ref_logprobs)\n    return logprobs.masked_fill_(mask == 0, 0.0)"},
    ),
    # -- best_of_n
    Mistake(
        "argmin",
        "Your indices pick the lowest reward (argmin). Best-of-n keeps the sample with the "
        "highest reward: argmax.",
        {"torch.argmax(rewards, dim=0)": "torch.argmin(rewards, dim=0)"},
    ),
    Mistake(
        "argmax-wrong-axis",
        "Your indices are taken along the prompts (dim 1). rewards is (n, B): the n "
        "candidates are along dim 0, and there is one index per prompt.",
        {"torch.argmax(rewards, dim=0)": "torch.argmax(rewards, dim=-1)"},
    ),
    Mistake(
        "argmax-flattened",
        "Your output is a single index into the flattened rewards (argmax without dim). "
        "Take the argmax over the candidates, dim 0, to get one index per prompt, shape (B,).",
        {"torch.argmax(rewards, dim=0)": "torch.argmax(rewards)"},
    ),
    Mistake(
        "ties-last-index",
        "Your indices differ only where several samples share the best reward: you return the "
        "last of them. Return the first (lowest) index among equal maxima, as torch.argmax "
        "does (a loop must replace the best only on a strictly larger reward).",
        {"torch.argmax(rewards, dim=0)":
         "rewards.shape[0] - 1 - torch.argmax(rewards.flip(0), dim=0)"},
    ),
    Mistake(
        "max-values",
        "Your output holds the best rewards themselves (a float tensor), not their indices. "
        "Return the int64 index of the best sample for each prompt.",
        {"torch.argmax(rewards, dim=0)": "torch.max(rewards, dim=0).values"},
    ),
    Mistake(
        "keepdim",
        "Your indices have shape (1, B) (keepdim=True). Return a (B,) tensor.",
        {"torch.argmax(rewards, dim=0)": "torch.argmax(rewards, dim=0, keepdim=True)"},
    ),
    # -- best_of_n_kl
    Mistake(
        "log-n-alone",
        "Your value matches log n alone: the −(n − 1)/n term is missing (or became 0 through "
        "integer division, (n - 1) // n). The KL is log n − (n − 1)/n, with a true division.",
        {"return math.log(n) - (n - 1) / n": "return math.log(n)"},
    ),
    Mistake(
        "log-n-minus-one",
        "Your value matches log n − 1, the large-n approximation: it is −1 at n = 1, where the "
        "best of one sample is the sample itself and the KL is 0. Subtract (n − 1)/n.",
        {"return math.log(n) - (n - 1) / n": "return math.log(n) - 1"},
    ),
    Mistake(
        "log-base-2",
        "Your value matches log₂ n − (n − 1)/n: the logarithm is in base 2. KL divergences "
        "here are in nats: use the natural logarithm, math.log.",
        {"return math.log(n) - (n - 1) / n": "return math.log2(n) - (n - 1) / n"},
    ),
    Mistake(
        "kl-as-tensor",
        "Your best_of_n_kl returns a tensor. It takes a Python int and should return a Python "
        "float (math.log, or float(...) of your result).",
        {"return math.log(n) - (n - 1) / n":
         "return torch.log(torch.tensor(n)) - (n - 1) / n"},
    ),
]


def _logprobs(grader, b, t, dtype):
    """(logprobs, ref_logprobs) in [-4, 0), like log-softmax values of sampled tokens."""
    return (-4 * grader.rand(b, t, dtype=dtype), -4 * grader.rand(b, t, dtype=dtype))


def _right_padded(lengths, t):
    """Bool mask (B, T): True on the first lengths[b] positions of row b."""
    return torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]


SHAPES = [(4, 8), (1, 1), (3, 7), (1, 13), (5, 1), (2, 6)]


# -- per_token_kl -----------------------------------------------------------------------------

@check(points=2, public=True, task="per_token_kl")
def test_per_token_kl_unmasked(grader):
    """per_token_kl(logprobs, ref_logprobs) without a mask: logprobs − ref_logprobs, (B, T)"""
    for b, t in SHAPES:
        for dtype in DTYPES:
            lp, ref = _logprobs(grader, b, t, dtype)
            grader.compare(Call("per_token_kl", (lp, ref)),
                           case=f"per_token_kl(logprobs[{b}, {t}], ref_logprobs), {_dt(dtype)}")
    lp, ref = _logprobs(grader, 3, 5, torch.float64)
    grader.compare(Call("per_token_kl", (lp, ref), {"mask": None}),
                   case="per_token_kl(logprobs[3, 5], ref_logprobs, mask=None), float64")


@check(points=2, public=True, task="per_token_kl")
def test_per_token_kl_bool_mask(grader):
    """per_token_kl with a bool mask: the log-ratio where True, exactly 0 where False"""
    cases = [
        ((4, 8), [8, 5, 1, 3]),  # answers of different lengths, right-padded
        ((3, 7), [0, 7, 2]),  # a row of padding only
        ((1, 1), [1]),
        ((1, 6), [4]),
    ]
    for (b, t), lengths in cases:
        for dtype in DTYPES:
            lp, ref = _logprobs(grader, b, t, dtype)
            mask = _right_padded(lengths, t)
            grader.compare(Call("per_token_kl", (lp, ref, mask)),
                           case=f"per_token_kl on [{b}, {t}], bool mask of lengths {lengths}, "
                           f"{_dt(dtype)}")
    for dtype in DTYPES:
        lp, ref = _logprobs(grader, 5, 9, dtype)
        mask = grader.rand(5, 9) < 0.6
        grader.compare(Call("per_token_kl", (lp, ref), {"mask": mask}),
                       case=f"per_token_kl on [5, 9], random bool mask=, {_dt(dtype)}")


@check(points=1, task="per_token_kl")
def test_per_token_kl_float_mask(grader):
    """per_token_kl with a float mask of 0. and 1. (in the inputs' dtype), rows of any length"""
    for (b, t), lengths in [((4, 6), [6, 2, 0, 5]), ((2, 9), [3, 9]), ((1, 3), [2])]:
        for dtype in DTYPES:
            lp, ref = _logprobs(grader, b, t, dtype)
            mask = _right_padded(lengths, t).to(dtype)
            grader.compare(Call("per_token_kl", (lp, ref, mask)),
                           case=f"per_token_kl on [{b}, {t}], {_dt(dtype)} mask of lengths "
                           f"{lengths}")


@check(points=1, task="per_token_kl")
def test_per_token_kl_gradients(grader):
    """gradients of per_token_kl w.r.t. logprobs and ref_logprobs (+1, −1, 0 where masked)"""
    for (b, t), lengths, as_float in [((3, 5), [5, 2, 0], False), ((2, 4), [1, 4], True),
                                      ((1, 7), [7], False)]:
        for dtype in DTYPES:
            lp, ref = _logprobs(grader, b, t, dtype)
            mask = _right_padded(lengths, t)
            mask = mask.to(dtype) if as_float else mask
            kind = _dt(dtype) if as_float else "bool"
            grader.compare(Call("per_token_kl", (lp, ref, mask), grad=(0, 1)),
                           case=f"d/dlogprobs, d/dref_logprobs of per_token_kl on [{b}, {t}], "
                           f"{kind} mask of lengths {lengths}, {_dt(dtype)}")


# -- best_of_n --------------------------------------------------------------------------------

@check(points=2, public=True, task="best_of_n")
def test_best_of_n(grader):
    """best_of_n(rewards (n, B)): the int64 index of the largest reward of every column"""
    for n, b in [(4, 3), (1, 5), (6, 1), (5, 5), (1, 1), (16, 7), (3, 10)]:
        for dtype in DTYPES:
            rewards = grader.randn(n, b, dtype=dtype)
            grader.compare(Call("best_of_n", (rewards,)), exact=True,
                           case=f"best_of_n(rewards[{n}, {b}]), {_dt(dtype)}")


@check(points=1, task="best_of_n")
def test_best_of_n_ties(grader):
    """best_of_n on integer-valued rewards with ties: the first index among equal maxima"""
    for n, b in [(5, 8), (4, 4), (9, 3)]:
        for dtype in DTYPES:
            rewards = grader.randint(0, 3, (n, b)).to(dtype)
            grader.compare(Call("best_of_n", (rewards,)), exact=True,
                           case=f"best_of_n of integer rewards[{n}, {b}] in 0..2, {_dt(dtype)}")
    grader.compare(Call("best_of_n", (torch.zeros(3, 4, dtype=torch.float64),)), exact=True,
                   case="best_of_n of all-equal rewards[3, 4], float64")


# -- best_of_n_kl -----------------------------------------------------------------------------

@check(points=2, public=True, task="best_of_n_kl")
def test_best_of_n_kl(grader):
    """best_of_n_kl(n) = log n − (n − 1)/n as a Python float, n = 1 to 1000"""
    for n in (1, 2, 3, 4, 7, 10, 64, 1000):
        grader.compare(Call("best_of_n_kl", (n,)), case=f"best_of_n_kl({n})")


@check(points=1, task="best_of_n_kl")
def test_best_of_n_kl_rejects_n_below_one(grader):
    """best_of_n_kl(n) raises ValueError for n = 0 and negative n"""
    grader.compare(Call("@helpful_harmless.kl_errors", ([0, -1, -7],)), exact=True,
                   case="the exception raised by best_of_n_kl(0), (-1) and (-7)")
