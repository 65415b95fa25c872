"""Hidden checks for unit 5.9 `improved-ddpm` (Nichol & Dhariwal, 2021).

Every check compares the learner's code with the master on fixed or seeded inputs and, on a
mismatch, looks the output up in the mistake bank below. No randomness is involved in the
functions themselves, so no statistical check is needed.

- ``cosine_beta_schedule``: T = 1, 2, 7, 10, 1000 and 4000 with the defaults (the last β is
  clipped to 0.999 for every T); other offsets s (0, 0.02) and smaller max_beta (0.3 with
  T = 10, 0.5 with T = 50, where several steps are clipped), by keyword and by position. The
  result must be float64 and on the CPU whatever device the code is graded on (the function
  takes no tensor whose device it could follow), within rtol 1e-12.
- ``learned_log_variance``: a short, noisy schedule (T = 10, β in [0.02, 0.35]) with v of
  shapes (6, 2), (5,), (3, 2, 3, 3), (1, 4) in float32 and float64, values in [−1, 1], every
  batch holding t = 0 and t = T − 1; the paper-size schedules (cosine and linear, T = 1000,
  float64) at t = 0, 1, 2, 500, 999, and the linear one passed in float32 with float64 v,
  where schedule arithmetic in float32 loses about three digits of β̃ near t = 1 (a learner
  who skips the float64 cast fails there; it is not in the bank, since the engine diagnoses
  against the float64 run of a mistake, in which it is invisible); v = ±1
  exactly (the two ends log β̃_t and log β_t), v outside [−1, 1] (extrapolation), T = 2,
  batch 1, and the gradient w.r.t. v.
- ``respace``: sorted lists on the noisy schedule (T = 12) including K = 1 at the first and
  the last step; the paper-size cosine and linear schedules (T = 1000) kept at 100 evenly
  spaced steps that include 0 and 999 (as guided-diffusion's "100" spacing does) and at
  range(0, 1000, 10); and every input type the docstring promises: a descending list (as
  diffusers orders its timesteps), a tuple, a set, a range, a 1-D LongTensor; a float32
  schedule; every step kept (β back).

The master is compared with diffusers (its cosine schedule, its "learned_range" variance and
its respaced step arithmetic) and with a product-of-alphas loop in
``tests/test_oracle_improved_ddpm.py``.
"""

import math

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Mistake, Tolerance, check
from course.grading.dsl import dtype_word as _dt

UNIT = "improved-ddpm"

# diffusers' betas_for_alpha_bar and DDPMScheduler would do Tasks 1 and 3, but they are not
# forbidden: importing diffusers takes seconds that every grading process would pay (as for
# 5.13 sdxl), and it is not a course dependency; the oracle test compares the master with it.
# Forbidden instead: torch.lerp, the one-call shortcut for the interpolation of Task 2.
FORBIDDEN = [
    Forbid(calls=("torch.lerp",), aten=("lerp",), within=("learned_log_variance",)),
]

MISTAKES = [
    # -- cosine_beta_schedule
    Mistake(
        "schedule-float32",
        "Your schedule comes back in float32 (torch.arange(T + 1) holds integers, and t / T "
        "then gives the default float32). Build the clock in float64 from the start: "
        "torch.arange(T + 1, dtype=torch.float64).",
        {"t = torch.arange(T + 1, dtype=torch.float64)": "t = torch.arange(T + 1)"},
    ),
    Mistake(
        "schedule-t-points",
        "Your schedule has T − 1 entries: ᾱ(t) was evaluated at the T points t = 0, …, T − 1. "
        "The T variances need the T + 1 points t = 0, …, T, so that β_{T−1} = "
        "1 − ᾱ(T)/ᾱ(T − 1) reaches the end of the clock.",
        {"t = torch.arange(T + 1, dtype=torch.float64)":
         "t = torch.arange(T, dtype=torch.float64)"},
    ),
    Mistake(
        "schedule-no-offset",
        "Your schedule matches f(t) = cos²((t/T)·π/2), without the offset s. The paper shifts "
        "the clock: f(t) = cos²(((t/T) + s)/(1 + s)·π/2), which keeps the first variances "
        "from being vanishingly small.",
        {"torch.cos((t / T + s) / (1 + s) * math.pi / 2)": "torch.cos(t / T * math.pi / 2)"},
    ),
    Mistake(
        "schedule-cos-not-squared",
        "Your schedule matches f(t) = cos(((t/T) + s)/(1 + s)·π/2). The paper's f is the "
        "SQUARED cosine, f(t) = cos²(…): ᾱ is a signal variance, sqrt(ᾱ) the cosine itself.",
        {"f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2":
         "f = torch.cos((t / T + s) / (1 + s) * math.pi / 2)"},
    ),
    Mistake(
        "schedule-ratio-shifted",
        "Your schedule matches β_t = 1 − ᾱ(t)/ᾱ(t − 1) with ᾱ(−1) = 1, so that β_0 = 0 and "
        "every other variance is one step late. With 0-indexed steps, β_t = 1 − ᾱ(t + 1)/ᾱ(t) "
        "for t = 0, …, T − 1: the ratio of the NEXT point of the clock to the current one.",
        {"betas = 1 - alphas_cumprod[1:] / alphas_cumprod[:-1]":
         "betas = 1 - alphas_cumprod[:-1] / torch.cat([alphas_cumprod.new_ones(1), "
         "alphas_cumprod[:-2]])"},
    ),
    Mistake(
        "schedule-no-clip",
        "Your schedule is right except where it should be clipped: its last variance is 1 "
        "(ᾱ(T) is 0), or it exceeds max_beta. Clip every β_t at max_beta: "
        "β_t = min(1 − ᾱ(t + 1)/ᾱ(t), max_beta), e.g. with .clamp(max=max_beta).",
        {"return betas.clamp(max=max_beta)": "return betas"},
    ),
    # -- learned_log_variance
    Mistake(
        "interpolate-variances",
        "Your log-variance matches log(frac·β_t + (1 − frac)·β̃_t): you interpolated the "
        "variances and then took the log. The paper interpolates the LOG-variances: "
        "log σ² = frac·log β_t + (1 − frac)·log β̃_t (a geometric, not arithmetic, mean).",
        {"return frac * max_log + (1 - frac) * min_log":
         "return torch.log(frac * torch.exp(max_log) + (1 - frac) * torch.exp(min_log))"},
    ),
    Mistake(
        "frac-is-v",
        "Your log-variance matches frac = v. The network's output lives in [−1, 1]; map it "
        "to [0, 1] first: frac = (v + 1)/2 (v = −1 gives β̃_t, v = 1 gives β_t).",
        {"frac = (v + 1) / 2": "frac = v"},
    ),
    Mistake(
        "frac-ends-swapped",
        "Your log-variance matches frac·log β̃_t + (1 − frac)·log β_t: the two ends are "
        "swapped. frac = (v + 1)/2 weights the LARGE variance: log σ² = frac·log β_t + "
        "(1 − frac)·log β̃_t, so v = 1 gives β_t and v = −1 gives β̃_t.",
        {"return frac * max_log + (1 - frac) * min_log":
         "return frac * min_log + (1 - frac) * max_log"},
    ),
    Mistake(
        "beta-tilde-0-not-replaced",
        "Your log-variance is −∞ (or NaN) at t = 0: β̃_0 = 0 because ᾱ_{−1} = 1. Use the "
        "clipped posterior log-variance: replace log β̃_0 by log β̃_1 (e.g. build the table "
        "from [β̃_1, β̃_1, β̃_2, …, β̃_{T−1}] before taking the log).",
        {"torch.log(torch.cat([beta_tilde[1:2], beta_tilde[1:]]))": "torch.log(beta_tilde)"},
    ),
    Mistake(
        "beta-tilde-numerator",
        "Your log-variance matches β̃_t = β_t: the ratio in the posterior variance became 1. "
        "It is β̃_t = β_t·(1 − ᾱ_{t−1})/(1 − ᾱ_t), with ᾱ of the PREVIOUS step in the "
        "numerator (ᾱ_{−1} = 1).",
        {"betas64 * (1 - alphas_cumprod_prev) / (1 - alphas_cumprod)":
         "betas64 * (1 - alphas_cumprod) / (1 - alphas_cumprod)"},
    ),
    Mistake(
        "log-variance-dtype",
        "Your log-variance comes back in the schedule's dtype (float64) for float32 v. Cast "
        "the gathered log β_t and log β̃_t to v's dtype (and device) before combining them "
        "with v.",
        {".to(device=v.device, dtype=v.dtype)": ".to(device=v.device)"},
        count=2,
    ),
    # -- respace
    Mistake(
        "respace-keeps-betas",
        "Your respaced variances match the original β at the kept steps, β_{s_i}. Skipping "
        "steps merges the noise of every skipped step: β'_i = 1 − ᾱ_{s_i}/ᾱ_{s_{i−1}}, from "
        "the cumulative products ᾱ, not from β.",
        {"return 1 - kept / prev": "return betas[idx]"},
    ),
    Mistake(
        "respace-sums-betas",
        "Your respaced variances match the SUM of the original β over each merged interval. "
        "Variances of successive forward steps do not add (each step also shrinks the "
        "signal): β'_i = 1 − ᾱ_{s_i}/ᾱ_{s_{i−1}} = 1 − ∏(1 − β_j) over the merged steps.",
        {"return 1 - kept / prev":
         "c = torch.cumsum(betas, dim=0)[idx]\n    return c - torch.cat([c.new_zeros(1), c[:-1]])"},
    ),
    Mistake(
        "respace-returns-alphas",
        "Your respaced values match α'_i = ᾱ_{s_i}/ᾱ_{s_{i−1}}: the new chain's α, not its β. "
        "Return β'_i = 1 − ᾱ_{s_i}/ᾱ_{s_{i−1}}.",
        {"return 1 - kept / prev": "return kept / prev"},
    ),
    Mistake(
        "respace-prev-wraps",
        "Your respaced variances are right except the first, which matches "
        "1 − ᾱ_{s_0}/ᾱ_{s_{K−1}} (indexing the previous kept step at i − 1 = −1 wraps to the "
        "last one). Before the first kept step nothing is noised: ᾱ_{s_{−1}} = 1, so "
        "β'_0 = 1 − ᾱ_{s_0}.",
        {"torch.cat([kept.new_ones(1), kept[:-1]])": "kept.roll(1)"},
    ),
    Mistake(
        "respace-abar-off-by-one",
        "Your respaced variances match reading ᾱ at s_i − 1 (the paper's 1-based steps). "
        "Steps are 0-indexed: ᾱ_{s_i} = ∏_{j ≤ s_i}(1 − β_j) is alphas_cumprod[s_i], so the "
        "kept step's own β is included.",
        {"kept = alphas_cumprod[idx]": "kept = alphas_cumprod[idx - 1]"},
    ),
    Mistake(
        "respace-unsorted",
        "Your respaced variances are right for increasing steps but not for these: they match "
        "using use_timesteps in the order given. The chain runs forward in time: sort the "
        "steps first (s_0 < s_1 < … < s_{K−1}); a set or a descending list is allowed.",
        {"steps = sorted(int(s) for s in use_timesteps)":
         "steps = [int(s) for s in use_timesteps]"},
    ),
]

def _noisy_betas(grader, T: int, dtype=torch.float64) -> torch.Tensor:
    """A short, noisy schedule (increasing, in [0.02, 0.35]) so that every step matters."""
    return (0.02 + 0.33 * grader.rand(T)).sort().values.to(dtype)


def _cosine_1000() -> torch.Tensor:
    """The paper's cosine schedule for T = 1000, written here from its definition."""
    f = [math.cos((k / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2 for k in range(1001)]
    return torch.tensor([min(1 - f[k + 1] / f[k], 0.999) for k in range(1000)],
                        dtype=torch.float64)


def _linear_1000() -> torch.Tensor:
    return torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)


# -- Task 1 ---------------------------------------------------------------------------------


# a schedule is float64 and computed from closed forms: compare it to float64 rounding
SCHEDULE_TOL = Tolerance(rtol=1e-12, atol=1e-15)


@check(points=2, public=True, task="cosine_beta_schedule")
def test_cosine_schedule(grader):
    """cosine_beta_schedule with the defaults: float64, clipped at 0.999, T = 1 … 4000"""
    for T in (1000, 10, 7, 2, 1, 4000):
        grader.compare(Call("cosine_beta_schedule", (T,)), case=f"cosine_beta_schedule({T})",
                       tol=SCHEDULE_TOL)


@check(points=1, task="cosine_beta_schedule")
def test_cosine_schedule_options(grader):
    """cosine_beta_schedule with other offsets s and a smaller max_beta"""
    cases = [
        ((50,), {"s": 0.0}), ((50,), {"s": 0.02}), ((10,), {"max_beta": 0.3}),
        ((50, 0.008, 0.5), {}), ((20, 0.05), {}), ((1000,), {"s": 0.02, "max_beta": 0.9}),
    ]
    for args, kwargs in cases:
        words = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        grader.compare(Call("cosine_beta_schedule", args, kwargs),
                       case=f"cosine_beta_schedule({words})", tol=SCHEDULE_TOL)


# -- Task 2 ---------------------------------------------------------------------------------


def _v(grader, shape, dtype, scale=1.0):
    """Interpolation outputs in [−scale, scale]."""
    return ((2 * grader.rand(*shape) - 1) * scale).to(dtype)


def _steps(grader, B: int, T: int) -> torch.Tensor:
    t = grader.randint(0, T, (B,))
    t[0] = 0
    t[-1] = T - 1 if B > 1 else t[-1]
    return t


def _lv_case(shape, dtype, t, schedule):
    return f"learned_log_variance(v{list(shape)} {_dt(dtype)}, {schedule}, t={t.tolist()})"


@check(points=2, public=True, task="learned_log_variance")
def test_learned_log_variance(grader):
    """learned_log_variance interpolates log β_t and the clipped log β̃_t with frac = (v+1)/2"""
    T = 10
    betas = _noisy_betas(grader, T)
    for shape in [(6, 2), (5,), (3, 2, 3, 3), (1, 4)]:
        for dtype in DTYPES:
            v = _v(grader, shape, dtype)
            t = _steps(grader, shape[0], T)
            if shape[0] == 1:
                t[0] = 0
            grader.compare(Call("learned_log_variance", (v, betas, t)),
                           _lv_case(shape, dtype, t, f"noisy float64 betas (T={T})"))


@check(points=1, task="learned_log_variance")
def test_learned_log_variance_paper_schedules(grader):
    """learned_log_variance on the cosine and linear schedules (T = 1000), float32 betas too"""
    t = torch.tensor([0, 1, 2, 500, 998, 999])
    for name, betas in [("cosine", _cosine_1000()), ("linear", _linear_1000())]:
        for dtype in DTYPES:
            v = _v(grader, (6, 3), dtype)
            grader.compare(Call("learned_log_variance", (v, betas, t)),
                           _lv_case((6, 3), dtype, t, f"{name} float64 betas (T=1000)"))
    v = _v(grader, (6, 3), torch.float64)
    grader.compare(Call("learned_log_variance", (v, _linear_1000().float(), t)),
                   _lv_case((6, 3), torch.float64, t, "linear FLOAT32 betas (T=1000)"))


@check(points=1, task="learned_log_variance")
def test_learned_log_variance_edges(grader):
    """learned_log_variance at v = ±1, outside [−1, 1], T = 2, batch 1, and its gradient"""
    for dtype in DTYPES:
        betas = _noisy_betas(grader, 6)
        t = torch.tensor([0, 1, 5, 0, 3])
        for value in (1.0, -1.0):
            v = torch.full((5, 2), value, dtype=dtype)
            grader.compare(Call("learned_log_variance", (v, betas, t)),
                           _lv_case((5, 2), dtype, t, f"noisy betas (T=6), v = {value:+g}"))
        v = _v(grader, (5, 3), dtype, scale=2.0)
        grader.compare(Call("learned_log_variance", (v, betas, t), grad=(0,)),
                       _lv_case((5, 3), dtype, t, "noisy betas (T=6), v in [−2, 2]")
                       + " and its gradient w.r.t. v")
        betas2 = _noisy_betas(grader, 2)
        for t2 in ([0], [1]):
            v = _v(grader, (1, 3), dtype)
            t2 = torch.tensor(t2)
            grader.compare(Call("learned_log_variance", (v, betas2, t2), grad=(0,)),
                           _lv_case((1, 3), dtype, t2, "noisy betas (T=2)"))


# -- Task 3 ---------------------------------------------------------------------------------


def _evenly(T: int, K: int) -> list[int]:
    """K steps from 0 to T − 1, evenly spaced and rounded (guided-diffusion's spacing)."""
    return [round(i * (T - 1) / (K - 1)) for i in range(K)]


def _rs_case(schedule, steps_words):
    return f"respace({schedule}, {steps_words})"


@check(points=2, public=True, task="respace")
def test_respace(grader):
    """respace gives β'_i = 1 − ᾱ_{s_i}/ᾱ_{s_{i−1}} for increasing lists of kept steps"""
    T = 12
    betas = _noisy_betas(grader, T)
    for steps in ([0, 3, 7, 11], [2, 5, 6], [1, 4, 8, 9, 10], [11], [0]):
        grader.compare(Call("respace", (betas, steps)),
                       _rs_case(f"noisy float64 betas (T={T})", steps))
    for name, big in [("cosine", _cosine_1000()), ("linear", _linear_1000())]:
        steps = _evenly(1000, 100)
        grader.compare(Call("respace", (big, steps)),
                       _rs_case(f"{name} betas (T=1000)", "100 evenly spaced steps 0 … 999"))
        steps = list(range(0, 1000, 10))
        grader.compare(Call("respace", (big, steps)),
                       _rs_case(f"{name} betas (T=1000)", "[0, 10, …, 990]"))


@check(points=1, task="respace")
def test_respace_inputs(grader):
    """respace accepts any order and type the docstring allows; float32; every step kept"""
    T = 12
    betas = _noisy_betas(grader, T)
    schedule = f"noisy float64 betas (T={T})"
    descending = [11, 8, 4, 3, 1]
    grader.compare(Call("respace", (betas, descending)), _rs_case(schedule, descending))
    grader.compare(Call("respace", (betas, (9, 2, 5))), _rs_case(schedule, (9, 2, 5)))
    grader.compare(Call("respace", (betas, {10, 0, 6, 7})), _rs_case(schedule, "{10, 0, 6, 7}"))
    grader.compare(Call("respace", (betas, range(1, 12, 3))),
                   _rs_case(schedule, "range(1, 12, 3)"))
    steps = torch.tensor([7, 2, 11, 5])
    grader.compare(Call("respace", (betas, steps)),
                   _rs_case(schedule, "torch.tensor([7, 2, 11, 5])"))
    for dtype in DTYPES:
        b = _noisy_betas(grader, T, dtype)
        grader.compare(Call("respace", (b, range(T))),
                       _rs_case(f"noisy {_dt(dtype)} betas (T={T})", f"range({T}): every step"))
        grader.compare(Call("respace", (b, [10, 3, 4, 0])),
                       _rs_case(f"noisy {_dt(dtype)} betas (T={T})", [10, 3, 4, 0]))
    big = _cosine_1000().float()
    grader.compare(Call("respace", (big, _evenly(1000, 50)[::-1])),
                   _rs_case("cosine float32 betas (T=1000)", "50 evenly spaced steps 999 … 0"))
