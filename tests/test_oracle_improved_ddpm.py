"""Unit 5.9 `improved-ddpm`: the master against independent implementations.

- ``cosine_beta_schedule``: equals ``diffusers.DDPMScheduler(num_train_timesteps=T,
  beta_schedule="squaredcos_cap_v2").betas`` (diffusers evaluates the same cos² in Python
  floats and stores float32, so the comparison is to float32 rounding), and a loop in Python
  floats over f(0), …, f(T) to 1e-12 (with s and max_beta other than the defaults too).
- ``respace``: (a) a loop that multiplies the alphas step by step in Python floats (no
  ``cumprod``); (b) diffusers' own step arithmetic: a scheduler on the full schedule told to
  sample only at the kept steps (``set_timesteps(timesteps=...)``, descending) takes the
  variance of a step from s_i to s_{i−1} as 1 − ᾱ_{s_i}/ᾱ_{s_{i−1}}; a second, plain K-step
  scheduler built from the respaced betas (``trained_betas``) must take the very same
  reverse steps, means and noise, with the same seeded generator, for both of diffusers'
  fixed variances (its tables rebuilt in float64, since its float32 loses every digit near
  the end of the cosine schedule; its own float32 variances are compared to 1e-3 too). This
  is the claim of respacing: the short chain IS the skipping sampler.
- ``learned_log_variance``: diffusers' ``variance_type="learned_range"``, through its public
  ``step`` (the standard deviation it applies to the noise, read off two runs that differ only
  in the generator's seed) and through ``_get_variance``, for every t ≥ 1. They differ at
  t = 0, where diffusers clamps β̃_0 = 0 to 1e-20 (log ≈ −46) instead of using the clipped
  log β̃_1 of the paper's code; diffusers never applies that variance (its step adds no noise
  at t = 0), and the test asserts the two differ there and that ours uses log β̃_1.

All diffusers objects are built from configs; nothing is downloaded.
"""

from __future__ import annotations

import math

import pytest
import torch

from course import catalogue
from course.grading.checks import reference

diffusers = pytest.importorskip("diffusers")

NS = reference(catalogue.find("improved-ddpm")).namespace
cosine_beta_schedule = NS["cosine_beta_schedule"]
learned_log_variance = NS["learned_log_variance"]
respace = NS["respace"]


def _scheduler(**config):
    return diffusers.DDPMScheduler(clip_sample=False, **config)


def _loop_cosine(T: int, s: float, max_beta: float) -> list[float]:
    f = [math.cos((k / T + s) / (1 + s) * math.pi / 2) ** 2 for k in range(T + 1)]
    return [min(1 - (f[k + 1] / f[0]) / (f[k] / f[0]), max_beta) for k in range(T)]


@pytest.mark.parametrize("T", [1, 2, 10, 1000, 4000])
def test_cosine_schedule_is_diffusers_squaredcos_cap_v2(T):
    ours = cosine_beta_schedule(T)
    theirs = _scheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2").betas
    assert ours.dtype == torch.float64 and ours.shape == (T,)
    torch.testing.assert_close(ours.float(), theirs, rtol=1e-6, atol=0.0)
    assert float(ours[-1]) == 0.999  # the clip is what diffusers calls "cap"


@pytest.mark.parametrize(("T", "s", "max_beta"), [(1000, 0.008, 0.999), (50, 0.0, 0.999),
                                                  (20, 0.05, 0.3)])
def test_cosine_schedule_is_a_python_loop(T, s, max_beta):
    want = torch.tensor(_loop_cosine(T, s, max_beta), dtype=torch.float64)
    torch.testing.assert_close(cosine_beta_schedule(T, s, max_beta), want, rtol=1e-12,
                               atol=1e-15)


def _loop_respace(betas: list[float], kept: list[int]) -> list[float]:
    out, abar_prev = [], 1.0
    for s in kept:
        abar = 1.0
        for j in range(s + 1):
            abar *= 1.0 - betas[j]
        out.append(1.0 - abar / abar_prev)
        abar_prev = abar
    return out


SPACINGS = {
    "every 10th": list(range(0, 1000, 10)),
    "100 evenly, 0 … 999": [round(i * 999 / 99) for i in range(100)],
    "25 evenly from 7": [7 + round(i * 992 / 24) for i in range(25)],
}


@pytest.mark.parametrize("spacing", sorted(SPACINGS))
@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_respace_is_a_product_of_alphas_loop(spacing, schedule):
    betas = (cosine_beta_schedule(1000) if schedule == "cosine"
             else torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64))
    kept = SPACINGS[spacing]
    want = torch.tensor(_loop_respace(betas.tolist(), kept), dtype=torch.float64)
    for steps in (kept, kept[::-1], set(kept), torch.tensor(kept)):
        torch.testing.assert_close(respace(betas, steps), want, rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(respace(betas, range(1000)), betas, rtol=1e-10, atol=1e-13)


def _in_float64(sched, betas: torch.Tensor):
    """The scheduler with its float32 tables rebuilt in float64 from the same betas, the
    way its __init__ builds them (α = 1 − β, ᾱ = cumprod): its step arithmetic, unchanged,
    then runs in float64. Near the end of the cosine schedule ᾱ_t ≈ 1e-9, and in float32
    the x0 estimate (x − sqrt(1 − ᾱ)·ε)/sqrt(ᾱ) and the short chain's ᾱ' lose every digit."""
    sched.betas = betas.clone()
    sched.alphas = 1.0 - sched.betas
    sched.alphas_cumprod = torch.cumprod(sched.alphas, dim=0)
    sched.one = torch.tensor(1.0, dtype=torch.float64)
    return sched


@pytest.mark.parametrize("spacing", sorted(SPACINGS))
def test_respace_is_diffusers_skipping_sampler(spacing):
    betas = cosine_beta_schedule(1000)
    kept = SPACINGS[spacing]
    new = respace(betas, kept)
    for variance_type in ("fixed_large", "fixed_small"):
        full = _in_float64(_scheduler(num_train_timesteps=1000, trained_betas=betas.tolist(),
                                      variance_type=variance_type), betas)
        full.set_timesteps(timesteps=kept[::-1])
        short = _in_float64(_scheduler(num_train_timesteps=len(kept), trained_betas=new.tolist(),
                                       variance_type=variance_type), new)
        g = torch.Generator().manual_seed(len(kept))
        for i in reversed(range(len(kept))):
            t = kept[i]
            if variance_type == "fixed_large":  # diffusers' β of the step s_i → s_{i−1}
                torch.testing.assert_close(full._get_variance(t), new[i], rtol=1e-9,
                                           atol=1e-12)
            x = torch.randn(8, 3, generator=g, dtype=torch.float64)
            eps = torch.randn(8, 3, generator=g, dtype=torch.float64)
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
            a = full.step(eps, t, x, generator=torch.Generator().manual_seed(seed)).prev_sample
            b = short.step(eps, i, x, generator=torch.Generator().manual_seed(seed)).prev_sample
            if i == 0 and t > 0:
                # diffusers adds noise whenever the ORIGINAL step is > 0, so its last step from
                # s_0 = 7 is noised where the short chain's t = 0 is not: the two differ by
                # exactly that noise, sqrt(σ²)·z (with ᾱ_{s_{−1}} = 1 in both)
                z = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed),
                                dtype=torch.float64)
                b = b + full._get_variance(t).sqrt() * z
            torch.testing.assert_close(b, a, rtol=1e-7, atol=1e-8)
        # and as diffusers ships it, in float32, on the steps where float32 is meaningful
        plain = _scheduler(num_train_timesteps=1000, trained_betas=betas.tolist(),
                           variance_type="fixed_large")
        plain.set_timesteps(timesteps=kept[::-1])
        for i, t in enumerate(kept):
            if float(new[i]) < 0.5:
                torch.testing.assert_close(plain._get_variance(t).double(), new[i],
                                           rtol=1e-3, atol=1e-7)


def _noise_scale(sched, v, t: int, seeds=(1, 2)) -> torch.Tensor:
    """σ that diffusers' public step applies at step t, from two runs with other seeds."""
    x = torch.linspace(-1, 1, v.numel()).reshape(v.shape)
    out = torch.cat([torch.zeros_like(v), v], dim=1)
    prev = [sched.step(out, t, x, generator=torch.Generator().manual_seed(s)).prev_sample
            for s in seeds]
    z = [torch.randn(v.shape, generator=torch.Generator().manual_seed(s)) for s in seeds]
    return (prev[0] - prev[1]).double() / (z[0] - z[1]).double()


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_learned_log_variance_is_diffusers_learned_range(schedule):
    T = 1000
    betas = (cosine_beta_schedule(T) if schedule == "cosine"
             else torch.linspace(1e-4, 0.02, T, dtype=torch.float64))
    sched = _scheduler(num_train_timesteps=T, trained_betas=betas.tolist(),
                       variance_type="learned_range")
    g = torch.Generator().manual_seed(0)
    for t in (1, 2, 3, 10, 250, 500, 900, 998, 999):
        v = 2 * torch.rand(4, 3, generator=g) - 1
        ours = learned_log_variance(v, betas, torch.full((4,), t))
        assert ours.dtype == torch.float32 and ours.shape == (4, 3)
        theirs = sched._get_variance(t, predicted_variance=v)
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
        sigma = _noise_scale(sched, v, t)
        torch.testing.assert_close(ours.double(), torch.log(sigma**2), rtol=0, atol=2e-3)
        ours64 = learned_log_variance(v.double(), betas, torch.full((4,), t))
        torch.testing.assert_close(ours64.float(), ours)


def test_learned_log_variance_at_t0_is_clipped_where_diffusers_clamps():
    betas = cosine_beta_schedule(1000)
    v = torch.tensor([[-1.0, -0.5, 0.0, 0.5, 1.0]], dtype=torch.float64)
    ours0 = learned_log_variance(v, betas, torch.tensor([0]))
    # the clipped posterior log-variance: log β̃_0 := log β̃_1, so v = −1 gives log β̃_1
    abar = torch.cumprod(1 - betas, dim=0)
    beta_tilde_1 = betas[1] * (1 - abar[0]) / (1 - abar[1])
    torch.testing.assert_close(ours0[0, 0], torch.log(beta_tilde_1))
    torch.testing.assert_close(ours0[0, -1], torch.log(betas[0]))
    theirs0 = _scheduler(num_train_timesteps=1000, trained_betas=betas.tolist(),
                         variance_type="learned_range")._get_variance(0, v.float())
    # diffusers: log(1e-20) ≈ −46 at v = −1, far below log β̃_1 ≈ −10.8; equal at v = 1
    assert float(theirs0[0, 0]) < -40 < float(ours0[0, 0])
    # (diffusers forms β_0 = 1 − ᾱ_0 in float32: about 3 digits of β_0 ≈ 4e-5 survive)
    torch.testing.assert_close(theirs0[0, -1].double(), ours0[0, -1], rtol=0, atol=2e-3)
