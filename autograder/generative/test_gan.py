"""Hidden checks for unit 5.1 `gan` (Goodfellow et al., 2014).

Every check compares the learner's code with the master on seeded inputs and, on a mismatch,
looks the output up in the mistake bank below.

- ``discriminator_loss``: logits drawn with scale 3 around small offsets, float32 and float64;
  real and fake batches of equal and of different sizes (1 and 6, 5 and 9, 13 and 2, ...),
  batch 1, odd sizes, (B, 1) logits as a discriminator network returns them; confident logits
  (|ℓ| from 50 to 10^4, both signs, both batches), where ``log(sigmoid(ℓ))`` and
  ``log(1 − sigmoid(ℓ))`` are −inf in both dtypes; gradients w.r.t. both inputs on ordinary
  and on confident logits (where the naive form gives NaN), and on logits exactly 0 (where a
  softplus written with clamp and abs has a wrong, one-sided derivative).
- ``generator_loss``: the same kinds of logits, through the default (non-saturating), an
  explicit ``saturating=False``, and ``saturating=True`` given by keyword and by position;
  forward and gradients, ordinary and confident logits.

Every tensor argument must come back unchanged (the probe checks that). The master was
compared, in ``tests/test_oracle_gan.py``, with ``torch.nn.BCEWithLogitsLoss`` (targets 1
and 0) and with ``log(1 − sigmoid)`` evaluated in float64 where it is finite.
"""

import math

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "gan"

FORBIDDEN = [
    # each of these is one of the two losses with targets 1 / 0
    Forbid(
        calls=(
            "torch.nn.functional.binary_cross_entropy_with_logits",
            "torch.binary_cross_entropy_with_logits",
            "torch.nn.BCEWithLogitsLoss",
            "torch.nn.functional.binary_cross_entropy",
            "torch.nn.BCELoss",
        ),
        aten=("binary_cross_entropy_with_logits", "binary_cross_entropy"),
    ),
]

MISTAKES = [
    # -- discriminator_loss
    Mistake(
        "d-labels-swapped",
        "Your discriminator loss matches mean(softplus(real)) + mean(softplus(−fake)): the "
        "labels are swapped, so minimising it teaches D to call the fakes real. Real data get "
        "label 1, −log D(x) = softplus(−ℓ(x)); fakes get label 0, −log(1 − D(G(z))) = "
        "softplus(ℓ(G(z))).",
        {"F.softplus(-real_logits).mean()": "F.softplus(real_logits).mean()",
         "F.softplus(fake_logits).mean()  # -E_z[log(1 - D(G(z)))]":
         "F.softplus(-fake_logits).mean()  # -E_z[log(1 - D(G(z)))]"},
    ),
    Mistake(
        "d-sigmoid-then-log",
        "Your discriminator loss is right on ordinary logits but infinite (or its gradient "
        "NaN) on confident ones: σ(ℓ) rounds to exactly 0 or 1 (1 − σ(ℓ) is already 0 for "
        "ℓ above about 17 in float32, 37 in float64), so torch.log(torch.sigmoid(ℓ)) or "
        "torch.log(1 − torch.sigmoid(ℓ)) is log(0) = −inf. Use the stable forms "
        "−log σ(ℓ) = F.softplus(−ℓ) and "
        "−log(1 − σ(ℓ)) = F.softplus(ℓ).",
        {"F.softplus(-real_logits).mean()": "-torch.log(torch.sigmoid(real_logits)).mean()",
         "F.softplus(fake_logits).mean()  # -E_z[log(1 - D(G(z)))]":
         "-torch.log(1 - torch.sigmoid(fake_logits)).mean()  # -E_z[log(1 - D(G(z)))]"},
    ),
    Mistake(
        "kinked-softplus",
        "Your losses are right in value, but their gradient is wrong where a logit is exactly "
        "0: softplus written as clamp(ℓ, min=0) + log1p(exp(−|ℓ|)) (or with relu/abs) has "
        "corners at 0, and autograd takes one-sided derivatives there (1 and 0) that do not "
        "add up to the true σ(0) = ½. Use F.softplus or F.logsigmoid, or a form with no "
        "corner, e.g. torch.where(ℓ > 0, ℓ + log1p(exp(−ℓ)), log1p(exp(ℓ))).",
        {"import torch.nn.functional as F\n":
         "import torch.nn.functional as F\n\n\ndef _kinked(a):\n"
         "    return a.clamp(min=0) + torch.log1p(torch.exp(-a.abs()))\n",
         "F.softplus(-real_logits).mean()": "_kinked(-real_logits).mean()",
         "F.softplus(fake_logits).mean()  # -E_z[log(1 - D(G(z)))]":
         "_kinked(fake_logits).mean()  # -E_z[log(1 - D(G(z)))]",
         "return -F.softplus(fake_logits).mean()": "return -_kinked(fake_logits).mean()",
         "return F.softplus(-fake_logits).mean()": "return _kinked(-fake_logits).mean()"},
    ),
    Mistake(
        "d-loss-summed",
        "Your discriminator loss matches the sums over the batches instead of their means. "
        "Each expectation of V(D, G) is a batch mean: mean(softplus(−real)) + "
        "mean(softplus(fake)), so that the loss does not grow with the batch size.",
        {"F.softplus(-real_logits).mean()": "F.softplus(-real_logits).sum()",
         "F.softplus(fake_logits).mean()  # -E_z[log(1 - D(G(z)))]":
         "F.softplus(fake_logits).sum()  # -E_z[log(1 - D(G(z)))]"},
    ),
    Mistake(
        "d-fake-term-missing",
        "Your discriminator loss matches mean(softplus(−real)) alone: the fake term is "
        "missing, so D is never taught to reject the generator's samples. Add "
        "mean(softplus(fake_logits)) = −mean log(1 − D(G(z))).",
        {"return real_term + fake_term": "return real_term"},
    ),
    Mistake(
        "d-joint-mean",
        "Your discriminator loss matches one mean over all B_r + B_f terms together (e.g. "
        "torch.cat of the two batches, then .mean()). That halves the loss, and when the "
        "batches differ in size it weighs the larger one more. Take each batch's mean "
        "separately and add them: mean(softplus(−real)) + mean(softplus(fake)).",
        {"return real_term + fake_term":
         "return torch.cat([F.softplus(-real_logits).flatten(), "
         "F.softplus(fake_logits).flatten()]).mean()"},
    ),
    Mistake(
        "d-terms-averaged",
        "Your discriminator loss matches (mean(softplus(−real)) + mean(softplus(fake))) / 2: "
        "the two terms are averaged instead of added. V(D, G) is the sum of the two "
        "expectations; return their sum.",
        {"return real_term + fake_term": "return (real_term + fake_term) / 2"},
    ),
    # -- generator_loss
    Mistake(
        "g-saturating-swapped",
        "Your generator loss has the two branches swapped: saturating=False must give the "
        "non-saturating mean(softplus(−fake)) = −mean log D(G(z)), and saturating=True the "
        "minimax loss −mean(softplus(fake)) = mean log(1 − D(G(z))).",
        {"    if saturating:\n": "    if not saturating:\n"},
    ),
    Mistake(
        "g-sigmoid-then-log",
        "Your generator loss is right on ordinary logits but infinite (or its gradient NaN) "
        "on confident ones: torch.log(torch.sigmoid(ℓ)) or torch.log(1 − torch.sigmoid(ℓ)) "
        "underflows to log(0) = −inf. Use the stable forms: −log σ(ℓ) = F.softplus(−ℓ) and "
        "log(1 − σ(ℓ)) = −F.softplus(ℓ).",
        {"return -F.softplus(fake_logits).mean()":
         "return torch.log(1 - torch.sigmoid(fake_logits)).mean()",
         "return F.softplus(-fake_logits).mean()":
         "return -torch.log(torch.sigmoid(fake_logits)).mean()"},
    ),
    Mistake(
        "g-saturating-sign",
        "With saturating=True your loss matches +mean(softplus(fake)) = −mean log(1 − "
        "D(G(z))): the sign is flipped, so minimising it makes the fakes easier to reject. "
        "The generator minimises mean log(1 − D(G(z))) = −mean(softplus(fake_logits)).",
        {"return -F.softplus(fake_logits).mean()": "return F.softplus(fake_logits).mean()"},
    ),
    Mistake(
        "g-non-saturating-sign",
        "Your non-saturating loss matches −mean(softplus(−fake)) = mean log D(G(z)): the "
        "sign is flipped, so minimising it makes D(G(z)) smaller. The generator maximises "
        "log D(G(z)), i.e. minimises mean(softplus(−fake_logits)).",
        {"return F.softplus(-fake_logits).mean()": "return -F.softplus(-fake_logits).mean()"},
    ),
    Mistake(
        "g-loss-summed",
        "Your generator loss matches the sum over the batch instead of the mean (in one "
        "branch or both). Return the batch mean, so that the loss and its gradient do not "
        "grow with the batch size.",
        {"return -F.softplus(fake_logits).mean()": "return -F.softplus(fake_logits).sum()",
         "return F.softplus(-fake_logits).mean()": "return F.softplus(-fake_logits).sum()"},
    ),
    Mistake(
        "g-dtype-lost",
        "Your generator loss comes back in float32 for float64 logits: the logits were cast "
        "(.float(), or a float32 constant tensor) on the way. Keep the input's dtype.",
        {"return F.softplus(-fake_logits).mean()":
         "return F.softplus(-fake_logits.float()).mean()"},
    ),
]


# -- inputs -------------------------------------------------------------------------------


def _logits(grader, shape, dtype, offset=0.0):
    """Ordinary logits: scale 3 around ``offset``, drawn in float64 then cast."""
    return (offset + grader.randn(*shape, dtype=torch.float64, scale=3.0)).to(dtype)


def _confident(grader, n, dtype, sign=None, low=50.0):
    """Logits with |ℓ| from ``low`` to 10^4 (log-uniform); alternating signs unless ``sign``.

    With low = 800 a naive log(sigmoid) is −inf at the same entries in float32 and float64
    (exp(−800) underflows in both), so its NaN gradients can be recognised as that mistake.
    """
    lo = math.log10(low)
    size = 10 ** (lo + (4 - lo) * grader.rand(n, dtype=torch.float64))
    if sign is None:
        signs = torch.where(torch.arange(n) % 2 == 0, -1.0, 1.0).double()
    else:
        signs = torch.full((n,), float(sign), dtype=torch.float64)
    return (signs * size).to(dtype)


def _with_zeros(grader, n, dtype):
    """Ordinary logits with every other entry exactly 0 (the first among them)."""
    logits = _logits(grader, (n,), torch.float64)
    return torch.where(torch.arange(n) % 2 == 0, 0.0, logits).to(dtype)


# (real shape, fake shape): equal, different, batch 1, odd, (B, 1) network outputs
# The first case of each check has batches of different sizes: there "one mean over both
# batches" and "the two means averaged" differ (with equal sizes they coincide).
D_SHAPES = [((5,), (9,)), ((8,), (8,)), ((1,), (1,)), ((7,), (7,)), ((1,), (6,)),
            ((13,), (2,)), ((4, 1), (4, 1)), ((3, 1), (11, 1)), ((2, 3), (2, 3))]


# -- discriminator_loss -------------------------------------------------------------------


@check(points=2, public=True, task="discriminator_loss")
def test_discriminator_loss(grader):
    """discriminator_loss = mean(softplus(−real)) + mean(softplus(fake)), a 0-dim tensor"""
    for rs, fs in D_SHAPES:
        for dtype in DTYPES:
            real = _logits(grader, rs, dtype, offset=1.0)
            fake = _logits(grader, fs, dtype, offset=-0.5)
            grader.compare(Call("discriminator_loss", (real, fake)),
                           case=f"discriminator_loss(real_logits{list(rs)}, "
                           f"fake_logits{list(fs)}), {_dt(dtype)}")


@check(points=2, public=True, task="discriminator_loss")
def test_discriminator_loss_confident(grader):
    """discriminator_loss stays finite (and exact) for logits of ±50 to ±10^4"""
    for nr, nf in [(7, 3), (6, 6), (1, 1)]:
        for dtype in DTYPES:
            real, fake = _confident(grader, nr, dtype), _confident(grader, nf, dtype)
            grader.compare(Call("discriminator_loss", (real, fake)),
                           case=f"discriminator_loss on confident logits |ℓ| in [50, 10^4] "
                           f"of both signs, real [{nr}], fake [{nf}], {_dt(dtype)}")
    for dtype in DTYPES:  # a confidently wrong D: real logits negative, fake positive
        real, fake = _confident(grader, 5, dtype, -1), _confident(grader, 3, dtype, +1)
        grader.compare(Call("discriminator_loss", (real, fake)),
                       case=f"discriminator_loss, confidently wrong D (real ℓ ≤ −50, fake "
                       f"ℓ ≥ 50), {_dt(dtype)}")


@check(points=1, task="discriminator_loss")
def test_discriminator_loss_gradients(grader):
    """gradients of discriminator_loss w.r.t. real_logits and fake_logits"""
    for rs, fs in [((2,), (7,)), ((6,), (6,)), ((1,), (1,)), ((5, 1), (3, 1))]:
        for dtype in DTYPES:
            real = _logits(grader, rs, dtype, offset=1.0)
            fake = _logits(grader, fs, dtype, offset=-1.0)
            grader.compare(Call("discriminator_loss", (real, fake), grad=(0, 1)),
                           case=f"d/dreal_logits, d/dfake_logits of discriminator_loss, real "
                           f"{list(rs)}, fake {list(fs)}, {_dt(dtype)}")
    for dtype in DTYPES:  # logits exactly 0, where max(ℓ, 0) and |ℓ| have their corners
        real, fake = _with_zeros(grader, 6, dtype), _with_zeros(grader, 5, dtype)
        grader.compare(Call("discriminator_loss", (real, fake), grad=(0, 1)),
                       case="gradients of discriminator_loss on logits some of which are "
                       f"exactly 0, real [6], fake [5], {_dt(dtype)}")
    for low in (800.0, 50.0):
        for dtype in DTYPES:
            real = _confident(grader, 8, dtype, low=low)
            fake = _confident(grader, 5, dtype, low=low)
            grader.compare(Call("discriminator_loss", (real, fake), grad=(0, 1)),
                           case=f"gradients of discriminator_loss on confident logits |ℓ| in "
                           f"[{low:g}, 10^4], real [8], fake [5], {_dt(dtype)}")


# -- generator_loss -----------------------------------------------------------------------

G_SHAPES = [(8,), (1,), (7,), (32,), (5, 1), (3, 4)]


def _g_call(fake, branch, grad=()):
    """The generator_loss call for one way of choosing the branch."""
    if branch == "default":
        return Call("generator_loss", (fake,), grad=grad)
    if branch == "positional":
        return Call("generator_loss", (fake, True), grad=grad)
    return Call("generator_loss", (fake,), {"saturating": branch}, grad=grad)


def _g_case(shape, branch, dtype, what="generator_loss"):
    arg = {"default": "", "positional": ", True"}.get(branch, f", saturating={branch}")
    return f"{what}(fake_logits{list(shape)}{arg}), {_dt(dtype)}"


@check(points=2, public=True, task="generator_loss")
def test_generator_loss_non_saturating(grader):
    """generator_loss(fake) = mean(softplus(−fake)), the default and saturating=False"""
    for shape in G_SHAPES:
        for dtype in DTYPES:
            for branch in ("default", False):
                fake = _logits(grader, shape, dtype, offset=-1.0)
                grader.compare(_g_call(fake, branch), case=_g_case(shape, branch, dtype))


@check(points=2, public=True, task="generator_loss")
def test_generator_loss_saturating(grader):
    """generator_loss(fake, saturating=True) = −mean(softplus(fake)) = mean log(1 − D)"""
    for shape in G_SHAPES:
        for dtype in DTYPES:
            for branch in (True, "positional"):
                fake = _logits(grader, shape, dtype, offset=-1.0)
                grader.compare(_g_call(fake, branch), case=_g_case(shape, branch, dtype))


@check(points=1, task="generator_loss")
def test_generator_loss_confident(grader):
    """generator_loss stays finite (and exact) for logits of ±50 to ±10^4, both branches"""
    for n in (6, 1, 9):
        for dtype in DTYPES:
            for branch in (False, True):
                fake = _confident(grader, n, dtype)
                grader.compare(_g_call(fake, branch),
                               case=_g_case((n,), branch, dtype) + " on confident logits "
                               "|ℓ| in [50, 10^4] of both signs")
    for dtype in DTYPES:
        for sign in (-1, +1):
            for branch in (False, True):
                fake = _confident(grader, 4, dtype, sign)
                grader.compare(_g_call(fake, branch),
                               case=_g_case((4,), branch, dtype) + f" on logits all "
                               f"{'≤ −50' if sign < 0 else '≥ 50'}")


@check(points=1, task="generator_loss")
def test_generator_loss_gradients(grader):
    """gradients of generator_loss w.r.t. fake_logits, both branches, ordinary and confident"""
    for shape in [(6,), (1,), (4, 1)]:
        for dtype in DTYPES:
            for branch in (False, True):
                fake = _logits(grader, shape, dtype, offset=-1.0)
                grader.compare(_g_call(fake, branch, grad=(0,)),
                               case=_g_case(shape, branch, dtype, "d/dfake_logits of "
                                            "generator_loss"))
    for dtype in DTYPES:
        for branch in (False, True):
            fake = _with_zeros(grader, 5, dtype)
            grader.compare(_g_call(fake, branch, grad=(0,)),
                           case=_g_case((5,), branch, dtype, "d/dfake_logits of "
                                        "generator_loss") + " on logits some exactly 0")
    for low in (800.0, 50.0):
        for dtype in DTYPES:
            for branch in (False, True):
                fake = _confident(grader, 8, dtype, low=low)
                grader.compare(_g_call(fake, branch, grad=(0,)),
                               case=_g_case((8,), branch, dtype, "d/dfake_logits of "
                                            "generator_loss") + f" on confident logits |ℓ| in "
                               f"[{low:g}, 10^4]")
