"""Hidden checks for unit 5.8 `ddpm` (Ho, Jain & Abbeel, 2020).

The deterministic parts (schedule, forward sampling, loss, one reverse step, the whole sampler
with a seeded generator) are compared with the master solution, driven by a fixed, smooth,
time-dependent stand-in ε-model (``ToyEpsModel``), on several shapes, steps, float32 and
float64. A mismatch is looked up in the mistake bank below.

The statistical check drives the learner's sampler with the exact ε-predictor of gaussian data
(``GaussianOptimalEps``) over a realistic 100-step schedule (ᾱ_T ≈ 2e-5) and tests the mean
and variance of 8,000 sampled coordinates. With gaussian data and this model the sampler is a
linear-gaussian chain, so the exact mean m* and variance v* of a correct T-step sampler are
computed here in closed form (they differ from the data's by the discretisation of the chain
only). The samples are i.i.d. N(m*, v*), so the sample mean has standard error sqrt(v*/N) and
the sample variance sqrt(2/(N − 1))·v*; each must lie within 5 standard errors (a correct
sampler fails with probability below 1e-6 per statistic).
"""

import math

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, CheckFailure, Fixture, Forbid, Gen, Mistake, Tolerance, check
from course.grading.dsl import dtype_word as _dt

UNIT = "ddpm"

FORBIDDEN = [
    Forbid(
        calls=("torch.nn.functional.mse_loss", "torch.nn.MSELoss"),
        aten=("mse_loss",),
        within=("ddpm_loss",),
    ),
]

MODEL_T_NOT_LONG = Mistake(
    "model-t-not-long",
    "The stand-in model refused its step argument: call the network as model(x_t, t_batch) "
    "with t_batch = torch.full((B,), t, dtype=torch.long, device=x_t.device), a LongTensor "
    "of shape (B,), never the Python int t itself.",
    {"eps = model(x_t, t_batch)": "eps = model(x_t, t)"},
)

MISTAKES = [
    Mistake(
        "schedule-float32",
        "Your schedule matches torch.linspace in the default dtype (float32). Build it in "
        "float64 (dtype=torch.float64): ᾱ_t is a product of hundreds of factors.",
        {"torch.linspace(beta_start, beta_end, T, dtype=torch.float64)":
         "torch.linspace(beta_start, beta_end, T)"},
    ),
    Mistake(
        "q-sample-no-sqrt",
        "Your x_t matches ᾱ_t·x0 + (1 − ᾱ_t)·ε. The coefficients are square roots: "
        "x_t = sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·ε, so that x_t keeps unit variance.",
        {"torch.sqrt(abar) * x0 + torch.sqrt(1 - abar) * noise":
         "abar * x0 + (1 - abar) * noise"},
    ),
    Mistake(
        "q-sample-dtype",
        "Your x_t comes back in the schedule's dtype (float64) for float32 data. Cast the "
        "gathered ᾱ_t to x0's dtype (and device) before combining it with x0.",
        {".to(device=x0.device, dtype=x0.dtype)": ".to(device=x0.device)"},
    ),
    Mistake(
        "loss-sum",
        "Your loss matches the sum of the squared errors. L_simple is their mean over every "
        "element: use .mean(), so the loss does not grow with the batch or the data size.",
        {"((eps - noise) ** 2).mean()": "((eps - noise) ** 2).sum()"},
    ),
    Mistake(
        "loss-target-x0",
        "Your loss matches the error between the model's output and x0. The DDPM network "
        "predicts the noise: the target is ε, the noise that built x_t.",
        {"((eps - noise) ** 2)": "((eps - x0) ** 2)"},
    ),
    Mistake(
        "loss-model-on-x0",
        "Your loss matches calling the model on the clean x0. Noise it first with "
        "q_sample and call model(x_t, t).",
        {"eps = model(x_t, t)\n": "eps = model(x0, t)\n"},
    ),
    Mistake(
        "alpha-bar-for-alpha",
        "Your step matches dividing the mean by sqrt(ᾱ_t). The reverse step undoes one "
        "step only: divide by sqrt(α_t) = sqrt(1 − β_t); ᾱ_t appears only in "
        "β_t / sqrt(1 − ᾱ_t).",
        {"/ torch.sqrt(alpha_t)": "/ torch.sqrt(abar_t)"},
    ),
    Mistake(
        "eps-coef-no-sqrt",
        "Your step matches the noise coefficient β_t / (1 − ᾱ_t). It is "
        "β_t / sqrt(1 − ᾱ_t): the square root of 1 − ᾱ_t.",
        {"beta_t / torch.sqrt(1 - abar_t) * eps": "beta_t / (1 - abar_t) * eps"},
    ),
    Mistake(
        "mean-sign",
        "Your step matches x_t + β_t/sqrt(1 − ᾱ_t)·ε. The predicted noise is removed: "
        "mean = (x_t − β_t/sqrt(1 − ᾱ_t)·ε) / sqrt(α_t).",
        {"(x_t - beta_t / torch.sqrt(1 - abar_t) * eps)":
         "(x_t + beta_t / torch.sqrt(1 - abar_t) * eps)"},
    ),
    Mistake(
        "noise-at-t0",
        "Your step at t = 0 matches mean + σ_0·z. The last step returns the mean itself: no "
        "noise is added at t = 0.",
        {"    if t == 0:\n        return mean\n": ""},
    ),
    Mistake(
        "sigma-is-beta",
        "Your step matches mean + β_t·z. β_t (or β̃_t) is the variance σ_t²: the noise is "
        "scaled by its square root, σ_t = sqrt(β_t).",
        {"torch.sqrt(var) * noise": "var * noise"},
    ),
    Mistake(
        "t-off-by-one",
        "Your step matches reading β, α and ᾱ at index t − 1 (the paper's 1-based t). Here t "
        "is 0-indexed: use betas[t], alphas[t] and alphas_cumprod[t], and ᾱ_{t−1} only in β̃.",
        {"beta_t = betas[t]\n    alpha_t = alphas[t]\n    abar_t = alphas_cumprod[t]\n":
         "beta_t = betas[t - 1]\n    alpha_t = alphas[t - 1]\n    "
         "abar_t = alphas_cumprod[t - 1]\n"},
    ),
    Mistake(
        "model-t-plus-one",
        "Your step matches calling the model with t + 1 (the paper's 1-based step). Pass the "
        "0-indexed t itself, as in training: torch.full((B,), t, dtype=torch.long).",
        {"torch.full((x_t.shape[0],), t, dtype": "torch.full((x_t.shape[0],), t + 1, dtype"},
    ),
    MODEL_T_NOT_LONG,
    Mistake(
        "beta-tilde-numerator",
        "With variance='beta_tilde' your step matches σ_t² = β_t: the ratio became 1. It is "
        "β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t): ᾱ of the PREVIOUS step in the numerator.",
        {"(1 - abar_prev) / (1 - abar_t) * beta_t": "(1 - abar_t) / (1 - abar_t) * beta_t"},
    ),
    Mistake(
        "sampler-skips-t0",
        "Your samples match stopping after t = 1, returning x_1. Run the last step t = 0 too "
        "(without noise): t goes T−1, …, 1, 0.",
        {"for t in reversed(range(betas.shape[0])):":
         "for t in reversed(range(1, betas.shape[0])):"},
    ),
    Mistake(
        "sampler-ascending",
        "Your samples match running the steps t = 0, 1, …, T−1. Sampling goes backwards, "
        "from t = T−1 down to 0.",
        {"for t in reversed(range(betas.shape[0])):": "for t in range(betas.shape[0]):"},
    ),
    Mistake(
        "sampler-ignores-generator",
        "Your samples match drawing from the global random generator. Pass "
        "generator=generator to every torch.randn, so a seeded run can be reproduced.",
        {"x = torch.randn(shape, generator=generator)": "x = torch.randn(shape)",
         "noise = torch.randn(shape, generator=generator)\n": "noise = torch.randn(shape)\n"},
    ),
    Mistake(
        "randn-in-betas-dtype",
        "Your float64 samples match drawing the noise directly in float64. A generator gives "
        "different numbers per dtype: draw torch.randn(shape, generator=generator) in the "
        "default dtype, then cast with .to(device=betas.device, dtype=betas.dtype).",
        {"torch.randn(shape, generator=generator).to(device=betas.device, dtype=betas.dtype)":
         "torch.randn(shape, generator=generator, dtype=betas.dtype).to(device=betas.device)",
         "noise = torch.randn(shape, generator=generator)\n":
         "noise = torch.randn(shape, generator=generator, dtype=betas.dtype)\n"},
    ),
]

TOY = Fixture("ToyEpsModel", {"a": 0.7, "b": 0.3, "scale": 10.0})


def _betas(grader, T: int, dtype=torch.float64) -> torch.Tensor:
    """A short, noisy schedule (increasing, in [0.02, 0.35]) so that every step matters."""
    return (0.02 + 0.33 * grader.rand(T)).sort().values.to(dtype)


def _abar(betas: torch.Tensor) -> torch.Tensor:
    return torch.cumprod(1 - betas.double(), dim=0)


def _model_contract(run):
    """Run ``run()``; when the stand-in model refused its t argument, name that mistake."""
    try:
        return run()
    except CheckFailure as exc:
        text = str(exc)
        if exc.mistake is None and ("with t a LongTensor" in text
                                    or "t must have shape (B,)" in text):
            head, sep, tail = text.partition("\n(Passed before this")
            raise CheckFailure(
                f"{head}\nHint: {MODEL_T_NOT_LONG.hint}{sep}{tail}", MODEL_T_NOT_LONG.id
            ) from None
        raise


def _compare(grader, probe, case, **kwargs):
    """grader.compare, naming the model-call mistake when the stand-in model refuses t."""
    return _model_contract(lambda: grader.compare(probe, case=case, **kwargs))


# -- Task 1 ---------------------------------------------------------------------------------


@check(points=1, public=True, task="linear_beta_schedule")
def test_schedule(grader):
    """linear_beta_schedule is the float64 linspace from beta_start to beta_end"""
    tight = Tolerance(rtol=1e-12, atol=1e-16)
    for T in (1, 2, 10, 1000):
        _compare(grader, Call("linear_beta_schedule", (T,)), f"linear_beta_schedule({T})",
                 tol=tight)
    _compare(grader, Call("linear_beta_schedule", (20,), {"beta_start": 1e-3, "beta_end": 0.2}),
             "linear_beta_schedule(20, beta_start=1e-3, beta_end=0.2)", tol=tight)
    _compare(grader, Call("linear_beta_schedule", (7, 0.05, 0.3)),
             "linear_beta_schedule(7, 0.05, 0.3)", tol=tight)


# -- Task 2 ---------------------------------------------------------------------------------

Q_SHAPES = [(4, 3), (6, 2), (5,), (2, 3, 4, 4)]


@check(points=2, public=True, task="q_sample")
def test_q_sample(grader):
    """q_sample gives sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·ε per sample, for float32 and float64 data"""
    T = 12
    abar = _abar(_betas(grader, T))
    for shape in Q_SHAPES:
        for dtype in DTYPES:
            x0 = grader.randn(*shape, dtype=dtype) + 0.5
            noise = grader.randn(*shape, dtype=dtype)
            t = grader.randint(0, T, (shape[0],))
            t[0] = T - 1
            t[-1] = 0
            _compare(grader, Call("q_sample", (x0, t, abar, noise)),
                     f"q_sample(x0{list(shape)} {_dt(dtype)}, t={t.tolist()}, "
                     "float64 alphas_cumprod)")


@check(points=1, task="q_sample")
def test_q_sample_edges(grader):
    """q_sample with batch 1, one feature, and a schedule in the data's dtype"""
    T = 5
    for dtype in DTYPES:
        abar = _abar(_betas(grader, T)).to(dtype)
        for shape in [(1, 1), (1,), (3, 1, 2)]:
            x0 = grader.randn(*shape, dtype=dtype)
            noise = grader.randn(*shape, dtype=dtype)
            t = grader.randint(0, T, (shape[0],))
            _compare(grader, Call("q_sample", (x0, t, abar, noise), grad=(0, 3)),
                     f"q_sample(x0{list(shape)} {_dt(dtype)}, t={t.tolist()}) and its "
                     "gradients")


# -- Task 3 ---------------------------------------------------------------------------------


@check(points=2, public=True, task="ddpm_loss")
def test_loss(grader):
    """ddpm_loss is the mean squared error between ε and model(x_t, t)"""
    T = 10
    abar = _abar(_betas(grader, T))
    for shape in [(8, 2), (4, 3, 5), (1, 1), (6,)]:
        for dtype in DTYPES:
            x0 = grader.randn(*shape, dtype=dtype, scale=2.0) + 1.0
            noise = grader.randn(*shape, dtype=dtype)
            t = grader.randint(0, T, (shape[0],))
            _compare(grader, Call("ddpm_loss", (TOY, x0, t, noise, abar)),
                     f"ddpm_loss(toy model, x0{list(shape)} {_dt(dtype)}, t={t.tolist()})")


@check(points=1, task="ddpm_loss")
def test_loss_gradients(grader):
    """ddpm_loss is differentiable: gradients w.r.t. x0 and the noise"""
    T = 10
    abar = _abar(_betas(grader, T))
    for shape in [(5, 3), (2, 2, 3)]:
        for dtype in DTYPES:
            x0 = grader.randn(*shape, dtype=dtype) + 0.5
            noise = grader.randn(*shape, dtype=dtype)
            t = grader.randint(0, T, (shape[0],))
            _compare(grader, Call("ddpm_loss", (TOY, x0, t, noise, abar), grad=(1, 3)),
                     f"d ddpm_loss / d(x0, noise), x0{list(shape)} {_dt(dtype)}")


# -- Task 4 ---------------------------------------------------------------------------------


def _step_case(shape, dtype, t, T, variance):
    return f"p_sample_step(toy model, x_t{list(shape)} {_dt(dtype)}, t={t}, T={T}, {variance!r})"


@check(points=2, public=True, task="p_sample_step")
def test_step(grader):
    """p_sample_step with σ² = β_t at several steps t ≥ 1"""
    T = 10
    for dtype in DTYPES:
        betas = _betas(grader, T, dtype)
        for shape in [(4, 2), (3, 2, 3)]:
            for t in (T - 1, 5, 1):
                x = grader.randn(*shape, dtype=dtype)
                z = grader.randn(*shape, dtype=dtype)
                _compare(grader, Call("p_sample_step", (TOY, x, t, betas, z)),
                         _step_case(shape, dtype, t, T, "beta"))


@check(points=1, public=True, task="p_sample_step")
def test_step_last(grader):
    """p_sample_step at t = 0 returns the mean, without noise"""
    T = 6
    for dtype in DTYPES:
        betas = _betas(grader, T, dtype)
        for variance in ("beta", "beta_tilde"):
            x = grader.randn(5, 2, dtype=dtype)
            z = grader.randn(5, 2, dtype=dtype)
            _compare(grader, Call("p_sample_step", (TOY, x, 0, betas, z, variance)),
                     _step_case((5, 2), dtype, 0, T, variance))


@check(points=2, public=True, task="p_sample_step")
def test_step_beta_tilde(grader):
    """p_sample_step with σ² = β̃_t = β_t(1 − ᾱ_{t−1})/(1 − ᾱ_t)"""
    T = 10
    for dtype in DTYPES:
        betas = _betas(grader, T, dtype)
        for t in (T - 1, 4, 1):
            x = grader.randn(4, 3, dtype=dtype)
            z = grader.randn(4, 3, dtype=dtype)
            _compare(grader,
                     Call("p_sample_step", (TOY, x, t, betas, z), {"variance": "beta_tilde"}),
                     _step_case((4, 3), dtype, t, T, "beta_tilde"))


@check(points=1, task="p_sample_step")
def test_step_edges(grader):
    """p_sample_step with batch 1, 1-D samples, T = 1 and T = 2, and the paper's schedule"""
    for dtype in DTYPES:
        for T, t, shape, variance in [(1, 0, (3, 2), "beta"), (2, 1, (1, 1), "beta"),
                                      (2, 1, (1, 1), "beta_tilde"), (4, 2, (6,), "beta_tilde"),
                                      (4, 3, (1, 2, 2, 2), "beta")]:
            betas = _betas(grader, T, dtype)
            x = grader.randn(*shape, dtype=dtype)
            z = grader.randn(*shape, dtype=dtype)
            _compare(grader, Call("p_sample_step", (TOY, x, t, betas, z, variance)),
                     _step_case(shape, dtype, t, T, variance))
        betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64).to(dtype)
        for t in (999, 500, 1):
            x = grader.randn(3, 2, dtype=dtype)
            z = grader.randn(3, 2, dtype=dtype)
            _compare(grader, Call("p_sample_step", (TOY, x, t, betas, z, "beta_tilde")),
                     _step_case((3, 2), dtype, t, 1000, "beta_tilde") + " (paper's schedule)")


# -- Task 5 ---------------------------------------------------------------------------------


def _sample_case(shape, dtype, T, variance, seed):
    return (f"ddpm_sample(toy model, {shape}, T={T} {_dt(dtype)}, Generator(seed={seed}), "
            f"{variance!r})")


@check(points=2, public=True, task="ddpm_sample")
def test_sample(grader):
    """ddpm_sample reproduces the reference's samples with the same seeded generator"""
    T = 10
    for dtype in DTYPES:
        betas = _betas(grader, T, dtype)
        for shape in [(8, 2), (3, 8)]:
            seed = grader.seed()
            _compare(grader, Call("ddpm_sample", (TOY, shape, betas, Gen(seed))),
                     _sample_case(shape, dtype, T, "beta", seed))


@check(points=2, task="ddpm_sample")
def test_sample_more(grader):
    """ddpm_sample with σ² = β̃_t, T = 1, 2 and 20, batch 1 and 4-D samples"""
    for dtype in DTYPES:
        for T, shape, variance in [(20, (4, 4), "beta_tilde"), (20, (2, 3, 4), "beta"),
                                   (1, (3, 2), "beta"), (2, (1, 1), "beta"),
                                   (2, (1, 1), "beta_tilde"), (5, (2, 1, 3, 3), "beta_tilde")]:
            betas = _betas(grader, T, dtype)
            seed = grader.seed()
            _compare(grader, Call("ddpm_sample", (TOY, shape, betas),
                                  {"generator": Gen(seed), "variance": variance}),
                     _sample_case(shape, dtype, T, variance, seed))


def _chain_moments(betas: torch.Tensor, mean: float, std: float, variance: str):
    """Exact mean and variance of a correct T-step sampler driven by GaussianOptimalEps.

    ε(x) = sqrt(1 − ᾱ_t)(x − sqrt(ᾱ_t)μ)/(ᾱ_t s² + 1 − ᾱ_t) is affine in x, so each step is
    x ← A_t x + B_t + σ_t z and the moments follow the recursion m ← A m + B, v ← A² v + σ².
    """
    betas = betas.double()
    alphas = 1 - betas
    abar = torch.cumprod(alphas, dim=0)
    m, v = 0.0, 1.0
    for t in range(len(betas) - 1, -1, -1):
        k = float(betas[t] / (abar[t] * std**2 + 1 - abar[t]))
        a = float(torch.sqrt(alphas[t]))
        m = ((1 - k) * m + k * math.sqrt(float(abar[t])) * mean) / a
        v = (1 - k) ** 2 * v / a**2
        if t > 0:
            prev = float(abar[t - 1])
            sig2 = float(betas[t]) * (1.0 if variance == "beta" else
                                      (1 - prev) / (1 - float(abar[t])))
            v += sig2
    return m, v


@check(points=2, task="ddpm_sample")
def test_sample_statistics(grader):
    """with the exact ε-model of gaussian data, the samples have the right mean and variance"""
    T, n, d = 100, 4000, 2
    mu, s = 1.5, 0.8
    for dtype, variance in [(torch.float32, "beta"), (torch.float64, "beta_tilde")]:
        betas = torch.linspace(1e-3, 0.2, T, dtype=torch.float64)  # ᾱ_T ≈ 2e-5
        model = Fixture("GaussianOptimalEps", {"mean": mu, "std": s, "alphas_cumprod":
                                               _abar(betas)})
        seed = grader.seed()
        case = (f"ddpm_sample(exact ε-model of N({mu}, {s}²), ({n}, {d}), T={T} "
                f"{_dt(dtype)}, Generator(seed={seed}), {variance!r})")
        probe = Call("ddpm_sample", (model, (n, d), betas.to(dtype)),
                     {"generator": Gen(seed), "variance": variance})
        got = _model_contract(lambda probe=probe, case=case: grader.learner(probe, case))
        out = got.out
        grader.require(
            isinstance(out, torch.Tensor) and tuple(out.shape) == (n, d),
            f"{case}: expected a tensor of shape ({n}, {d})",
        )
        x = out.double().flatten()

        grader.require(bool(torch.isfinite(x).all()), f"{case}: the samples hold NaN or inf")
        m_star, v_star = _chain_moments(betas, mu, s, variance)
        N = x.numel()
        se_mean, se_var = math.sqrt(v_star / N), v_star * math.sqrt(2 / (N - 1))
        m_hat, v_hat = float(x.mean()), float(x.var())
        grader.require(
            abs(m_hat - m_star) <= 5 * se_mean,
            f"{case}: the {N} sampled coordinates have mean {m_hat:.4f}; the data's mean is "
            f"{mu} and a correct {T}-step sampler gives {m_star:.4f} ± {5 * se_mean:.4f} "
            "(5 standard errors)",
        )
        grader.require(
            abs(v_hat - v_star) <= 5 * se_var,
            f"{case}: the {N} sampled coordinates have variance {v_hat:.4f}; the data's is "
            f"{s**2:.4f} and a correct {T}-step sampler gives {v_star:.4f} ± "
            f"{5 * se_var:.4f} (5 standard errors)",
        )
        grader.cases.append(f"{case}: mean {m_hat:.3f}, variance {v_hat:.3f}")
