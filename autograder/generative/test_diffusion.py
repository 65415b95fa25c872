"""Hidden checks for unit 5.7 `diffusion` (Sohl-Dickstein et al., 2015).

Every check compares the learner's code with the master on seeded inputs and, on a mismatch,
looks the output up in the mistake bank below.

- ``q_posterior``: a short, noisy schedule (T = 10, β in [0.02, 0.35], so that every step
  matters and ᾱ_{t−1} differs visibly from ᾱ_t) in float64; data shaped (6, 2), (5, 3), (4,)
  and (3, 2, 3, 3) in float32 and float64, every batch holding the steps 0 and T − 1; t = 0
  alone (mean = x0, variance 0); the paper's linear schedule (T = 1000, β from 1e-4 to 0.02,
  float64) at t = 0, 1, 2, 500, 999 with float32 and float64 data, where computing the
  schedule in float32 loses digits; batch 1, T = 2 and T = 1, and a schedule in the data's
  own dtype; gradients of both outputs w.r.t. x0 and x_t. Every tensor argument must come
  back unchanged (the probe checks that).
- ``normal_kl``: means with scale 2 and log-variances with scale 1.5 (variances from about
  0.01 to 100), shapes (7,), (4, 3), (1, 1), (2, 3, 5), float32 and float64; broadcasting of
  (B, 1), (D,) and 0-dim log-variances and means against (B, D); equal distributions (KL 0);
  gradients w.r.t. all four inputs.

No randomness is involved, so no statistical check is needed. The master was compared, in
``tests/test_oracle_diffusion.py``, with ``torch.distributions.kl_divergence`` of two
``Normal``s, and its posterior with gaussian conditioning on the joint covariance of
(x_{t−1}, x_t) given x0, computed step by step in Python floats.
"""

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "diffusion"

FORBIDDEN = [
    Forbid(calls=(
        "torch.distributions.kl.kl_divergence",
        "torch.distributions.kl._kl_normal_normal",
        "torch.distributions.normal.Normal",
        "torch.distributions.Normal",
        "torch.distributions.kl_divergence",
    )),
]

MISTAKES = [
    # -- q_posterior
    Mistake(
        "abar-t-for-abar-prev",
        "Your posterior matches using ᾱ_t where ᾱ_{t−1} belongs. The previous step's "
        "product appears in three places: sqrt(ᾱ_{t−1}) in the coefficient of x0, and "
        "(1 − ᾱ_{t−1}) in the coefficient of x_t and in the variance β̃_t = "
        "(1 − ᾱ_{t−1})/(1 − ᾱ_t)·β_t.",
        {"abar_t, abar_prev = alphas_cumprod[t], alphas_cumprod_prev[t]":
         "abar_t, abar_prev = alphas_cumprod[t], alphas_cumprod[t]"},
    ),
    Mistake(
        "coefficients-swapped",
        "Your mean matches the two coefficients swapped. x0 is weighted by "
        "sqrt(ᾱ_{t−1})·β_t/(1 − ᾱ_t) and x_t by sqrt(α_t)·(1 − ᾱ_{t−1})/(1 − ᾱ_t): at large "
        "t the mean leans on x0, at small t on x_t (at t = 0 it is x0 itself).",
        {"mean = per_sample(coef_x0) * x0 + per_sample(coef_xt) * x_t":
         "mean = per_sample(coef_xt) * x0 + per_sample(coef_x0) * x_t"},
    ),
    Mistake(
        "abar-prev-wraps",
        "Your posterior is right for t ≥ 1 but wrong at t = 0, where it matches taking "
        "ᾱ_{t−1} = ᾱ_{T−1}: indexing alphas_cumprod[t − 1] at t = 0 wraps around to the last "
        "step. Before the first step nothing is noised: ᾱ_{−1} = 1 (prepend a 1), so at "
        "t = 0 the mean is x0 and the variance 0.",
        {"torch.cat([alphas_cumprod.new_ones(1), alphas_cumprod[:-1]])":
         "alphas_cumprod.roll(1)"},
    ),
    Mistake(
        "t-off-by-one",
        "Your posterior matches reading β, α and ᾱ at index t − 1 (the paper's 1-based "
        "steps). Here t is 0-indexed: betas[t] is the step's own β_t, and only the "
        "cumulative product of the previous step, ᾱ_{t−1}, is read one step back.",
        {"t = t.to(betas.device)\n": "t = t.to(betas.device) - 1\n"},
    ),
    Mistake(
        "alpha-without-sqrt",
        "Your mean matches weighting x_t by α_t·(1 − ᾱ_{t−1})/(1 − ᾱ_t). The forward step "
        "scales x_{t−1} by sqrt(α_t), so the coefficient of x_t is "
        "sqrt(α_t)·(1 − ᾱ_{t−1})/(1 − ᾱ_t).",
        {"torch.sqrt(alpha_t) * (1 - abar_prev)": "alpha_t * (1 - abar_prev)"},
    ),
    Mistake(
        "abar-prev-without-sqrt",
        "Your mean matches weighting x0 by ᾱ_{t−1}·β_t/(1 − ᾱ_t). The signal in x_{t−1} is "
        "sqrt(ᾱ_{t−1})·x0, so the coefficient of x0 is sqrt(ᾱ_{t−1})·β_t/(1 − ᾱ_t).",
        {"torch.sqrt(abar_prev) * beta_t": "abar_prev * beta_t"},
    ),
    # Before variance-is-beta, and the paper-schedule check runs float64 first: on that
    # schedule the two differ from the reference by little (β̃_t ≈ β_t), so each must be met
    # first where the other is invisible.
    Mistake(
        "schedule-in-float32",
        "Your posterior matches computing the schedule in float32 (betas cast to the data's "
        "dtype first). With the paper's β_0 = 1e-4, 1 − ᾱ_0 = 1 − 0.9999 keeps only about "
        "three digits in float32, and the coefficients at small t are off by about 1e-4 "
        "relative. Compute α, ᾱ and the coefficients in betas' dtype (float64) and cast only "
        "the gathered coefficients to x0's dtype.",
        {"    alphas = 1.0 - betas\n":
         "    betas = betas.to(x0.dtype)\n    alphas = 1.0 - betas\n"},
    ),
    Mistake(
        "variance-is-beta",
        "Your mean is right but your variance matches β_t, the forward step's variance (one "
        "of DDPM's choices for the model's σ_t²). The posterior's variance is smaller: "
        "β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t)·β_t, which is 0 at t = 0.",
        {"var = (1 - abar_prev) / (1 - abar_t) * beta_t": "var = beta_t"},
    ),
    Mistake(
        "variance-not-broadcast",
        "Your variance has shape (B, 1, …, 1): one number per sample, not yet broadcast. "
        "Return it with x_t's full shape (B, …), e.g. multiplied by torch.ones_like(x_t).",
        {"variance = per_sample(var) * torch.ones_like(x_t)": "variance = per_sample(var)"},
    ),
    Mistake(
        "posterior-dtype-float64",
        "Your mean and variance come back in the schedule's dtype (float64) for float32 data. "
        "Cast the gathered coefficients to x0's dtype (and device) before combining them "
        "with the data.",
        {"c = c.to(device=x0.device, dtype=x0.dtype)": "c = c.to(device=x0.device)"},
    ),
    # -- normal_kl
    Mistake(
        "kl-arguments-swapped",
        "Your KL matches KL(N(mean2, exp(logvar2)) ‖ N(mean1, exp(logvar1))): the "
        "distributions are swapped. KL is not symmetric; the first gaussian is the one the "
        "expectation is under: ½(−1 + ℓ₂ − ℓ₁ + exp(ℓ₁ − ℓ₂) + (μ₁ − μ₂)²·exp(−ℓ₂)).",
        {"        + logvar2\n        - logvar1\n        + torch.exp(logvar1 - logvar2)\n"
         "        + (mean1 - mean2) ** 2 * torch.exp(-logvar2)\n":
         "        + logvar1\n        - logvar2\n        + torch.exp(logvar2 - logvar1)\n"
         "        + (mean2 - mean1) ** 2 * torch.exp(-logvar1)\n"},
    ),
    Mistake(
        "kl-missing-half",
        "Your KL matches twice the right value: the factor ½ in front is missing.",
        {"return 0.5 * (": "return ("},
    ),
    Mistake(
        "kl-logvar-as-log-std",
        "Your KL matches reading logvar as log σ (the log of the standard deviation). It is "
        "log σ² = ℓ: the variance ratio is exp(ℓ₁ − ℓ₂), the log ratio ℓ₂ − ℓ₁ inside the ½, "
        "and the mean term is divided by exp(ℓ₂).",
        {"        + logvar2\n        - logvar1\n        + torch.exp(logvar1 - logvar2)\n"
         "        + (mean1 - mean2) ** 2 * torch.exp(-logvar2)\n":
         "        + 2 * (logvar2 - logvar1)\n        + torch.exp(2 * (logvar1 - logvar2))\n"
         "        + (mean1 - mean2) ** 2 * torch.exp(-2 * logvar2)\n"},
    ),
    Mistake(
        "kl-divides-by-logvar",
        "Your KL matches dividing (μ₁ − μ₂)² by logvar2 itself. The mean term is divided by "
        "the variance σ₂² = exp(ℓ₂): multiply by exp(−logvar2).",
        {"(mean1 - mean2) ** 2 * torch.exp(-logvar2)": "(mean1 - mean2) ** 2 / logvar2"},
    ),
    Mistake(
        "kl-mean-term-unscaled",
        "Your KL matches adding (μ₁ − μ₂)² without dividing it by the second variance. The "
        "mean term is (μ₁ − μ₂)²/σ₂² = (μ₁ − μ₂)²·exp(−ℓ₂).",
        {"(mean1 - mean2) ** 2 * torch.exp(-logvar2)": "(mean1 - mean2) ** 2"},
    ),
]


def _betas(grader, T: int, dtype=torch.float64) -> torch.Tensor:
    """A short, noisy schedule (increasing, in [0.02, 0.35]) so that every step matters."""
    return (0.02 + 0.33 * grader.rand(T)).sort().values.to(dtype)


def _paper_betas() -> torch.Tensor:
    return torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)


def _data(grader, shape, dtype):
    x0 = grader.randn(*shape, dtype=dtype, scale=1.5) + 0.5
    x_t = grader.randn(*shape, dtype=dtype)
    return x0, x_t


def _post_case(shape, dtype, t, T, what="float64 betas"):
    return f"q_posterior(x0, x_t {list(shape)} {_dt(dtype)}, t={t.tolist()}, T={T} {what})"


# -- Task 1 ---------------------------------------------------------------------------------


@check(points=2, public=True, task="q_posterior")
def test_posterior(grader):
    """q_posterior gives the posterior's mean and variance β̃_t per sample, each at its own t"""
    T = 10
    betas = _betas(grader, T)
    for shape in [(6, 2), (5, 3), (4,), (3, 2, 3, 3)]:
        for dtype in DTYPES:
            x0, x_t = _data(grader, shape, dtype)
            t = grader.randint(0, T, (shape[0],))
            t[0], t[-1] = 0, T - 1
            grader.compare(Call("q_posterior", (x0, x_t, t, betas)),
                           case=_post_case(shape, dtype, t, T))


@check(points=1, public=True, task="q_posterior")
def test_posterior_first_step(grader):
    """at t = 0 (ᾱ_{−1} = 1) the posterior's mean is x0 and its variance 0"""
    T = 6
    betas = _betas(grader, T)
    for dtype in DTYPES:
        x0, x_t = _data(grader, (5, 2), dtype)
        t = torch.zeros(5, dtype=torch.long)
        out = grader.compare(Call("q_posterior", (x0, x_t, t, betas)),
                             case=_post_case((5, 2), dtype, t, T)).out
        mean, variance = out
        grader.require(torch.allclose(mean.double().cpu(), x0.double(), atol=1e-5),
                       "at t = 0 the posterior's mean must be x0")
        grader.require(float(variance.abs().max()) <= 1e-8,
                       "at t = 0 the posterior's variance must be 0")


@check(points=2, task="q_posterior")
def test_posterior_paper_schedule(grader):
    """q_posterior with the paper's linear schedule (T = 1000, β from 1e-4), float32 and float64"""
    betas = _paper_betas()
    t = torch.tensor([0, 1, 2, 10, 500, 999])
    for dtype in (torch.float64, torch.float32):  # float64 first: see MISTAKES' order
        x0, x_t = _data(grader, (6, 3), dtype)
        grader.compare(Call("q_posterior", (x0, x_t, t, betas)),
                       case=_post_case((6, 3), dtype, t, 1000, "linear float64 betas"))


@check(points=1, task="q_posterior")
def test_posterior_edges(grader):
    """q_posterior with batch 1, T = 2 and T = 1, and a schedule in the data's dtype"""
    for dtype in DTYPES:
        cases = [(5, (1, 3), [0]), (5, (1,), [3]), (2, (3, 1, 2), [1, 0, 1]), (1, (2, 2), [0, 0])]
        for T, shape, steps in cases:
            betas = _betas(grader, T, dtype)
            x0, x_t = _data(grader, shape, dtype)
            t = torch.tensor(steps)
            grader.compare(Call("q_posterior", (x0, x_t, t, betas)),
                           case=_post_case(shape, dtype, t, T, f"{_dt(dtype)} betas"))


@check(points=1, task="q_posterior")
def test_posterior_gradients(grader):
    """the posterior's mean is differentiable w.r.t. x0 and x_t"""
    T = 8
    betas = _betas(grader, T)
    for dtype in DTYPES:
        for shape in [(5, 3), (2, 2, 3)]:
            x0, x_t = _data(grader, shape, dtype)
            t = grader.randint(0, T, (shape[0],))
            t[0] = 0
            grader.compare(Call("q_posterior", (x0, x_t, t, betas), grad=(0, 1)),
                           case="gradients of " + _post_case(shape, dtype, t, T))


# -- Task 2 ---------------------------------------------------------------------------------


def _gaussians(grader, shapes, dtype):
    """mean1, logvar1, mean2, logvar2 with the given shapes."""
    scales = (2.0, 1.5, 2.0, 1.5)
    return tuple(grader.randn(*s, dtype=dtype, scale=c) for s, c in zip(shapes, scales))


def _kl_case(shapes, dtype):
    names = ("mean1", "logvar1", "mean2", "logvar2")
    args = ", ".join(f"{n}{list(s)}" for n, s in zip(names, shapes))
    return f"normal_kl({args}) {_dt(dtype)}"


@check(points=2, public=True, task="normal_kl")
def test_kl(grader):
    """normal_kl is the elementwise KL between two gaussians given by means and log-variances"""
    for shape in [(7,), (4, 3), (1, 1), (2, 3, 5)]:
        for dtype in DTYPES:
            shapes = (shape,) * 4
            grader.compare(Call("normal_kl", _gaussians(grader, shapes, dtype)),
                           case=_kl_case(shapes, dtype))


@check(points=1, task="normal_kl")
def test_kl_broadcast(grader):
    """normal_kl broadcasts its arguments, and is 0 between equal gaussians"""
    for dtype in DTYPES:
        for shapes in [((5, 3), (5, 1), (5, 3), (5, 3)), ((4, 3), (4, 3), (1, 3), (3,)),
                       ((6, 2), (), (6, 2), ()), ((2, 1), (2, 4), (4,), (2, 1))]:
            grader.compare(Call("normal_kl", _gaussians(grader, shapes, dtype)),
                           case=_kl_case(shapes, dtype))
        mean, logvar = _gaussians(grader, ((3, 4), (3, 4)), dtype)
        out = grader.compare(Call("normal_kl", (mean, logvar, mean, logvar)),
                             case=f"normal_kl(m, l, m, l) with m, l [3, 4] {_dt(dtype)}").out
        grader.require(float(out.abs().max()) <= 1e-5, "KL(p ‖ p) must be 0")


@check(points=1, task="normal_kl")
def test_kl_gradients(grader):
    """normal_kl is differentiable w.r.t. both means and both log-variances"""
    for dtype in DTYPES:
        for shapes in [((4, 3),) * 4, ((3, 2), (3, 1), (3, 2), (2,))]:
            grader.compare(Call("normal_kl", _gaussians(grader, shapes, dtype),
                                grad=(0, 1, 2, 3)),
                           case="gradients of " + _kl_case(shapes, dtype))


