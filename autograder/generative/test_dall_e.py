"""Hidden checks for unit 5.15 `dall-e` (Ramesh et al., 2021).

Every check compares the learner's code with the master on seeded inputs and, on a mismatch,
looks the output up in the mistake bank below.

- ``gumbel_softmax``: logits with scale 2 and Gumbel noise (drawn here from a seeded
  generator) of shapes (K,), (1, K), (4, 10), (3, 2, 7), with K = 2 and K = 1 among them;
  τ in {0.3, 0.5, 1, 2.5, 10} (τ = 1 is never alone, so a missing τ is seen), float32 and
  float64; small τ (0.01, 0.05) where a hand-written softmax overflows; the straight-through
  ``hard=True`` on the same inputs; gradients w.r.t. logits and noise, soft and hard. Every
  tensor argument must come back unchanged.
- ``sample_gumbel``: the values for seeded generators on shapes (), (1,), (7,), (3, 5), (2, 1,
  4) (the same draw as the master); a statistical check on 200,000 values: mean within 5
  standard errors of Euler's γ (SE = π/√(6N)), variance within 5 SE of π²/6 (SE from the
  Gumbel's fourth moment, √((μ₄ − σ⁴)/N) with μ₄ = 27/5·σ⁴... i.e. excess kurtosis 12/5), and
  the Gumbel-max frequencies of argmax(ℓ + g) over 40,000 rows of 5 categories within 5 SE of
  softmax(ℓ). A correct sampler fails each with probability below 1e-5.
- ``text_image_mask``: exact comparison (a bool tensor) for (T, I) in (3, 4), (1, 1), (0, 5),
  (4, 0), (5, 16), (2, 9), (7, 3).

The master was compared, in ``tests/test_oracle_dall_e.py``, with
``torch.nn.functional.gumbel_softmax`` given the same noise through a patched sampler (soft and
hard, values and gradients), with the Gumbel CDF and the Gumbel-max frequencies, and its mask
with one written by explicit loops over the text and image blocks.
"""

import math

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Device, Forbid, Gen, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "dall-e"

FORBIDDEN = [
    Forbid(calls=("torch.nn.functional.gumbel_softmax",)),
]

EULER_GAMMA = 0.5772156649015329

MISTAKES = [
    # -- gumbel_softmax (the hard-sample mistakes first: at small τ a mistaken soft sample is
    # one-hot too, and the first match in this list is the diagnosis)
    Mistake(
        "hard-argmax-of-logits",
        "Your hard sample is the one-hot vector of argmax(ℓ), the same category whatever the "
        "noise. The straight-through sample is one_hot(argmax y) with y = "
        "softmax((ℓ + g)/τ), i.e. argmax(ℓ + g): the Gumbel-max sample.",
        {"index = y.argmax(dim=-1, keepdim=True)": "index = logits.argmax(dim=-1, keepdim=True)"},
    ),
    Mistake(
        "hard-argmin",
        "Your hard sample puts its 1 on the least likely category. Take the argmax of y.",
        {"index = y.argmax(dim=-1, keepdim=True)": "index = y.argmin(dim=-1, keepdim=True)"},
    ),
    Mistake(
        "tau-multiplied",
        "Your sample matches softmax((ℓ + g)·τ): the temperature multiplies the scores. It "
        "divides them, y = softmax((ℓ + g)/τ), so that a small τ sharpens y towards one-hot.",
        {"(logits + gumbel_noise) / tau": "(logits + gumbel_noise) * tau"},
    ),
    Mistake(
        "noise-not-tempered",
        "Your sample matches softmax(ℓ/τ + g): only the logits were divided by τ. The noise "
        "is added first and the sum divided, softmax((ℓ + g)/τ); otherwise the argmax is no "
        "longer a sample from softmax(ℓ) once τ ≠ 1.",
        {"(logits + gumbel_noise) / tau": "(logits / tau + gumbel_noise)"},
    ),
    Mistake(
        "noise-subtracted",
        "Your sample matches softmax((ℓ − g)/τ): the Gumbel noise is subtracted. The "
        "Gumbel-max trick adds it, argmax(ℓ + g); with g = −log(−log U) the sign matters "
        "(the Gumbel distribution is not symmetric).",
        {"(logits + gumbel_noise) / tau": "(logits - gumbel_noise) / tau"},
    ),
    Mistake(
        "tau-ignored",
        "Your sample matches softmax(ℓ + g), whatever τ: the temperature is not applied. "
        "Divide the noisy logits by tau.",
        {"(logits + gumbel_noise) / tau": "(logits + gumbel_noise)"},
    ),
    Mistake(
        "softmax-first-dim",
        "Your sample is normalised over the first dimension instead of the categories. The "
        "categories are on the last dimension: softmax(..., dim=-1).",
        {"/ tau, dim=-1)": "/ tau, dim=0)"},
    ),
    Mistake(
        "naive-softmax",
        "Your sample is right for moderate τ but NaN (or inf) for small τ: exp of scores "
        "(ℓ + g)/τ in the thousands overflows. Subtract the row's maximum before exp, or "
        "use torch.softmax.",
        {"y = torch.softmax((logits + gumbel_noise) / tau, dim=-1)":
         "s = ((logits + gumbel_noise) / tau).exp()\n    y = s / s.sum(-1, keepdim=True)"},
    ),
    Mistake(
        "logits-in-place",
        "Your gumbel_softmax changes logits in place (add_ or +=): the values are right but "
        "the caller's logits are destroyed, and autograd refuses it on a leaf that requires "
        "grad. Compute logits + gumbel_noise into a new tensor.",
        {"(logits + gumbel_noise) / tau": "logits.add_(gumbel_noise) / tau"},
    ),
    Mistake(
        "hard-no-gradient",
        "Your hard sample has the right values but no gradient (or a zero one): you returned "
        "the one-hot vector itself. The straight-through estimator returns "
        "one_hot − y.detach() + y, whose value is the one-hot vector and whose gradient is "
        "that of the soft y.",
        {"return y_hard - y.detach() + y": "return y_hard"},
    ),
    Mistake(
        "hard-detach-swapped",
        "Your hard sample has the right values but the gradient of −y: the detach is on the "
        "wrong term. Write one_hot − y.detach() + y (the soft y keeps its gradient, the one "
        "subtracted is detached).",
        {"return y_hard - y.detach() + y": "return y_hard - y + y.detach()"},
    ),
    # -- sample_gumbel
    Mistake(
        "gumbel-single-log",
        "Your noise matches −log(U): that is exponential noise, not Gumbel. The Gumbel "
        "inverse CDF has two logarithms, g = −log(−log(U + 1e-20) + 1e-20).",
        {"g = -torch.log(-torch.log(u + 1e-20) + 1e-20)": "g = -torch.log(u + 1e-20)"},
    ),
    Mistake(
        "gumbel-sign",
        "Your noise matches log(−log U), the negative of a Gumbel variable (mean −0.577 "
        "instead of +0.577). The outer logarithm carries a minus: g = −log(−log U).",
        {"g = -torch.log(-torch.log(u + 1e-20) + 1e-20)":
         "g = torch.log(-torch.log(u + 1e-20) + 1e-20)"},
    ),
    Mistake(
        "gumbel-ignores-generator",
        "Your noise matches drawing U from the global random generator. Pass "
        "generator=generator to torch.rand, so a seeded run can be reproduced.",
        {"u = torch.rand(shape, generator=generator)": "u = torch.rand(shape)"},
    ),
    Mistake(
        "gumbel-gaussian",
        "Your noise matches torch.randn, standard normal noise. The Gumbel-max trick needs "
        "Gumbel noise, −log(−log U) of uniform U = torch.rand(shape, generator=generator).",
        {"g = -torch.log(-torch.log(u + 1e-20) + 1e-20)":
         "g = torch.randn(shape, generator=generator)"},
    ),
    # -- text_image_mask
    Mistake(
        "mask-diagonal-excluded",
        "Your mask is the strict lower triangle (j < i): a token cannot attend to itself, and "
        "the first token attends to nothing (its softmax is NaN). Causal means j ≤ i.",
        {"mask = pos[None, :] <= pos[:, None]": "mask = pos[None, :] < pos[:, None]"},
    ),
    Mistake(
        "mask-transposed",
        "Your mask is the upper triangle: every query attends to the future. mask[i, j] is "
        "True when key j ≤ query i (rows are queries, columns keys).",
        {"mask = pos[None, :] <= pos[:, None]": "mask = pos[None, :] >= pos[:, None]"},
    ),
    Mistake(
        "mask-text-bidirectional",
        "Your mask lets caption tokens see later caption tokens (a bidirectional text block). "
        "DALL·E models the caption autoregressively too: the mask is causal over the whole "
        "concatenation, text included.",
        {"mask = pos[None, :] <= pos[:, None]":
         "mask = (pos[None, :] <= pos[:, None]) | ((pos[:, None] < text_len) & "
         "(pos[None, :] < text_len))"},
    ),
    Mistake(
        "mask-image-blind-to-text",
        "Your image tokens do not attend to the caption (the mask is block-diagonal). The "
        "image is generated from the text: every image token sees every caption token.",
        {"mask = pos[None, :] <= pos[:, None]":
         "mask = (pos[None, :] <= pos[:, None]) & ((pos[:, None] < text_len) == "
         "(pos[None, :] < text_len))"},
    ),
    Mistake(
        "mask-additive-float",
        "Your mask is a float tensor (an additive mask of 0 and −inf, or 0./1.). Return the "
        "boolean mask, True where attention is allowed, dtype torch.bool.",
        {"    return mask\n    # END SOLUTION":
         "    return torch.zeros(L, L, device=device).masked_fill(~mask, float('-inf'))\n"
         "    # END SOLUTION"},
    ),
]


# -- inputs -------------------------------------------------------------------------------


def _noise(grader, shape, dtype):
    """Gumbel noise drawn from the grader's generator (independent of the learner's code)."""
    u = grader.rand(*shape, dtype=torch.float64)
    return (-torch.log(-torch.log(u + 1e-20) + 1e-20)).to(dtype)


def _inputs(grader, shape, dtype):
    return grader.randn(*shape, dtype=dtype, scale=2.0), _noise(grader, shape, dtype)


SOFT_CASES = [((4, 10), 0.5), ((7,), 2.5), ((1, 6), 0.3), ((3, 2, 7), 1.0), ((5, 2), 10.0),
              ((2, 1), 0.5), ((6, 4), 2.5)]


# -- gumbel_softmax -----------------------------------------------------------------------


@check(points=2, public=True, task="gumbel_softmax")
def test_gumbel_softmax_soft(grader):
    """gumbel_softmax(logits, τ, g) = softmax((logits + g)/τ) over the last dimension"""
    for shape, tau in SOFT_CASES:
        for dtype in DTYPES:
            logits, g = _inputs(grader, shape, dtype)
            grader.compare(Call("gumbel_softmax", (logits, tau, g)),
                           case=f"gumbel_softmax(logits{list(shape)}, tau={tau}, noise), "
                           f"{_dt(dtype)}")


@check(points=1, task="gumbel_softmax")
def test_gumbel_softmax_small_tau(grader):
    """gumbel_softmax stays finite and exact at τ = 0.01 and 0.05 (scores in the thousands)"""
    for shape, tau in [((4, 8), 0.01), ((1, 5), 0.05), ((3, 2, 6), 0.01)]:
        for dtype in DTYPES[::-1]:  # float64 first: there too exp overflows at these scores
            logits, g = _inputs(grader, shape, dtype)
            logits = logits * 4  # scores (ℓ + g)/τ up to a few thousand
            for hard in (False, True):
                grader.compare(Call("gumbel_softmax", (logits, tau, g), {"hard": hard}),
                               case=f"gumbel_softmax(logits{list(shape)}, tau={tau}, noise, "
                               f"hard={hard}), {_dt(dtype)}")


@check(points=2, public=True, task="gumbel_softmax")
def test_gumbel_softmax_hard(grader):
    """gumbel_softmax(..., hard=True) is one_hot(argmax y) − y.detach() + y, values and
    gradients"""
    for shape, tau in SOFT_CASES:
        for dtype in DTYPES:
            logits, g = _inputs(grader, shape, dtype)
            grader.compare(Call("gumbel_softmax", (logits, tau, g, True), grad=(0, 2)),
                           case=f"gumbel_softmax(logits{list(shape)}, tau={tau}, noise, "
                           f"hard=True), {_dt(dtype)}")


@check(points=2, task="gumbel_softmax")
def test_gumbel_softmax_gradients(grader):
    """gradients of gumbel_softmax w.r.t. logits and noise, soft and straight-through"""
    for shape, tau in [((4, 6), 0.5), ((1, 3), 2.5), ((2, 3, 5), 1.0), ((5,), 0.3)]:
        for dtype in DTYPES:
            logits, g = _inputs(grader, shape, dtype)
            for hard in (False, True):
                grader.compare(Call("gumbel_softmax", (logits, tau, g), {"hard": hard},
                                    grad=(0, 2)),
                               case=f"d/dlogits, d/dnoise of gumbel_softmax(logits"
                               f"{list(shape)}, tau={tau}, hard={hard}), {_dt(dtype)}")


@check(points=1, task="gumbel_softmax")
def test_gumbel_softmax_one_category(grader):
    """with K = 1 the sample is 1 (soft and hard); with K = 2 it is a sigmoid of the gap"""
    for dtype in DTYPES:
        for shape in [(3, 1), (1,), (4, 2)]:
            logits, g = _inputs(grader, shape, dtype)
            for hard in (False, True):
                grader.compare(Call("gumbel_softmax", (logits, 0.7, g), {"hard": hard},
                                    grad=(0,)),
                               case=f"gumbel_softmax(logits{list(shape)}, tau=0.7, noise, "
                               f"hard={hard}), {_dt(dtype)}")


# -- sample_gumbel ------------------------------------------------------------------------


@check(points=1, public=True, task="sample_gumbel")
def test_sample_gumbel_values(grader):
    """sample_gumbel(shape, generator) = −log(−log(U + 1e-20) + 1e-20), U = torch.rand"""
    for shape in [(3, 5), (), (1,), (7,), (2, 1, 4)]:
        seed = grader.seed()
        grader.compare(Call("sample_gumbel", (shape, Gen(seed)), {"device": Device()}),
                       case=f"sample_gumbel({shape}, Generator(seed={seed}), device=...)")
    seed = grader.seed()
    grader.compare(Call("sample_gumbel", ((4, 3),), {"generator": Gen(seed),
                                                     "device": Device()}),
                   case=f"sample_gumbel((4, 3), generator=Generator(seed={seed}), device=...)")


@check(points=2, task="sample_gumbel")
def test_sample_gumbel_statistics(grader):
    """sample_gumbel's values have the Gumbel mean γ and variance π²/6, and argmax(ℓ + g)
    samples softmax(ℓ)"""
    n = 200_000
    seed = grader.seed()
    case = f"sample_gumbel(({n},), Generator(seed={seed}))"
    probe = Call("sample_gumbel", ((n,), Gen(seed)))
    out = grader.learner(probe, case).out
    grader.require(isinstance(out, torch.Tensor) and tuple(out.shape) == (n,),
                   f"{case}: expected a tensor of shape ({n},)")
    x = out.double()
    grader.require(bool(torch.isfinite(x).all()), f"{case}: the noise holds NaN or inf")
    var = math.pi**2 / 6
    se_mean = math.sqrt(var / n)
    se_var = math.sqrt((27 / 5 - 1) * var**2 / n)  # Gumbel: kurtosis 27/5
    m_hat, v_hat = float(x.mean()), float(x.var())

    def stats_fail(message):
        mistake = grader.banked_mistake(  # the mistake with the learner's statistics
            probe, lambda o: abs(float(o.out.double().mean()) - m_hat) <= se_mean
            and abs(float(o.out.double().var()) - v_hat) <= se_var)
        grader.fail(message, mistake=mistake, case=case)

    if abs(m_hat - EULER_GAMMA) > 5 * se_mean:
        stats_fail(f"{case}: the mean of the noise is {m_hat:.4f}; a standard Gumbel has "
                   f"mean γ = {EULER_GAMMA:.4f} (± {5 * se_mean:.4f}, 5 standard errors)")
    if abs(v_hat - var) > 5 * se_var:
        stats_fail(f"{case}: the variance of the noise is {v_hat:.4f}; a standard Gumbel has "
                   f"variance π²/6 = {var:.4f} (± {5 * se_var:.4f}, 5 standard errors)")
    rows, k = 40_000, 5
    logits = torch.tensor([1.0, -0.5, 0.0, 2.0, -2.0], dtype=torch.float64)
    seed = grader.seed()
    case = (f"argmax(ℓ + sample_gumbel(({rows}, {k}), Generator(seed={seed}))), "
            f"ℓ = {logits.tolist()}")
    g = grader.learner(Call("sample_gumbel", ((rows, k), Gen(seed))), case).out
    grader.require(isinstance(g, torch.Tensor) and tuple(g.shape) == (rows, k),
                   f"{case}: expected a tensor of shape ({rows}, {k})")
    freq = torch.bincount((logits + g.double()).argmax(-1), minlength=k).double() / rows
    p = torch.softmax(logits, -1)
    se = (p * (1 - p) / rows).sqrt()
    worst = int(((freq - p).abs() / se).argmax())
    grader.require(bool(((freq - p).abs() <= 5 * se).all()),
                   f"{case}: category {worst} wins {float(freq[worst]):.4f} of the rows; the "
                   f"Gumbel-max trick gives softmax(ℓ) = {float(p[worst]):.4f} (± "
                   f"{5 * float(se[worst]):.4f}, 5 standard errors)")
    grader.cases.append(f"{case}: mean {m_hat:.4f}, variance {v_hat:.4f}")


# -- text_image_mask ----------------------------------------------------------------------

MASK_CASES = [(3, 4), (1, 1), (0, 5), (4, 0), (5, 16), (2, 9), (7, 3)]


@check(points=2, public=True, task="text_image_mask")
def test_text_image_mask(grader):
    """text_image_mask(T, I) is the (T + I, T + I) bool mask, True where key j ≤ query i"""
    for text_len, image_len in MASK_CASES:
        grader.compare(Call("text_image_mask", (text_len, image_len), {"device": Device()}),
                       case=f"text_image_mask({text_len}, {image_len})", exact=True)
