"""Unit 4.9 `ppo`: the master against implementations written independently from the published
equations (no RL library is installed: no gym, stable-baselines or torchrl).

- ``gae`` equals the GAE paper's definition as a sum, A_t = Σ_l (γλ)^l δ_{t+l}, cut at the end of
  the episode, evaluated element by element with Python floats (not a backward recursion);
  with γ = λ = 1 its returns equal the Monte Carlo return to the episode's end (plus V_T where
  the rollout cut the episode off), and with λ = 0 its advantages are the TD errors;
- ``ppo_clip_loss`` equals L^CLIP written by cases on the sign of A (A ≥ 0: min(ρ, 1 + ε)·A,
  A < 0: max(ρ, 1 − ε)·A, with torch.where), and its gradient w.r.t. logp_new equals the
  closed form −ρA/n on the samples where the unclipped term is active and 0 elsewhere;
- ``ppo_loss`` equals the paper's Eq. 9 negated, computed from those pieces.
"""

from __future__ import annotations

import pytest
import torch

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("ppo")).namespace


def gae_by_sums(rewards, values, dones, gamma, lam):
    """A_t = Σ_{l ≥ 0} (γλ)^l δ_{t+l} over the rest of the episode, element by element."""
    T = rewards.shape[0]
    r = rewards.reshape(T, -1).tolist()
    v = values.reshape(T + 1, -1).tolist()
    d = dones.reshape(T, -1).to(torch.float64).tolist()
    B = len(r[0])
    adv = [[0.0] * B for _ in range(T)]
    for b in range(B):
        deltas = [r[t][b] + gamma * (1 - d[t][b]) * v[t + 1][b] - v[t][b] for t in range(T)]
        for t in range(T):
            total, weight = 0.0, 1.0
            for k in range(t, T):
                total += weight * deltas[k]
                if d[k][b]:
                    break  # the episode ended at step k
                weight *= gamma * lam
            adv[t][b] = total
    a = torch.tensor(adv, dtype=torch.float64).reshape(rewards.shape)
    return a, a + values[:-1].double()


def _rollout(shape, seed, p=0.3, as_bool=False):
    g = torch.Generator().manual_seed(seed)
    T, *rest = shape
    rewards = torch.randn(shape, generator=g, dtype=torch.float64)
    values = torch.randn((T + 1, *rest), generator=g, dtype=torch.float64)
    dones = torch.rand(shape, generator=g) < p
    return rewards, values, dones if as_bool else dones.double()


@pytest.mark.parametrize("shape", [(1,), (9,), (12, 3), (7, 2, 3), (20, 1)])
@pytest.mark.parametrize(("gamma", "lam"), [(0.99, 0.95), (0.9, 0.0), (1.0, 1.0), (0.5, 0.7)])
@pytest.mark.parametrize("as_bool", [False, True])
def test_gae_equals_the_sum_definition(shape, gamma, lam, as_bool):
    rewards, values, dones = _rollout(shape, seed=len(shape) * 100 + shape[0], as_bool=as_bool)
    adv, ret = NS["gae"](rewards, values, dones, gamma, lam)
    want_adv, want_ret = gae_by_sums(rewards, values, dones, gamma, lam)
    assert adv.dtype == ret.dtype == torch.float64
    torch.testing.assert_close(adv, want_adv, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ret, want_ret, rtol=1e-12, atol=1e-12)


def test_gae_limits_td_error_and_monte_carlo():
    rewards, values, dones = _rollout((15, 4), seed=5)
    adv0, _ = NS["gae"](rewards, values, dones, 0.9, 0.0)
    keep = 1 - dones
    torch.testing.assert_close(adv0, rewards + 0.9 * keep * values[1:] - values[:-1])
    _, ret1 = NS["gae"](rewards, values, dones, 1.0, 1.0)
    mc = torch.empty_like(rewards)
    for b in range(4):
        future = values[-1, b]  # the bootstrap, for an episode the rollout cut off
        for t in reversed(range(15)):
            future = rewards[t, b] + (0.0 if dones[t, b] else future)
            mc[t, b] = future
    torch.testing.assert_close(ret1, mc, rtol=1e-12, atol=1e-12)


def test_gae_keeps_float32():
    rewards, values, dones = _rollout((6, 2), seed=1)
    adv, ret = NS["gae"](rewards.float(), values.float(), dones.float())
    assert adv.dtype == ret.dtype == torch.float32
    want, _ = gae_by_sums(rewards.float(), values.float(), dones, 0.99, 0.95)
    torch.testing.assert_close(adv.double(), want, rtol=1e-5, atol=1e-5)


def clip_by_cases(logp_new, logp_old, adv, eps):
    ratio = torch.exp(logp_new - logp_old)
    per_sample = torch.where(adv >= 0, torch.clamp(ratio, max=1 + eps) * adv,
                             torch.clamp(ratio, min=1 - eps) * adv)
    return -per_sample.mean()


def _logps(n, seed, spread):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(n, generator=g, dtype=torch.float64) * 2 - 0.05
    new = old + torch.randn(n, generator=g, dtype=torch.float64) * spread
    adv = torch.randn(n, generator=g, dtype=torch.float64) * 1.5
    return new, old, adv


@pytest.mark.parametrize("eps", [0.1, 0.2, 0.3])
@pytest.mark.parametrize("spread", [0.05, 0.3, 1.0])
def test_clip_loss_equals_the_case_form_and_its_gradient(eps, spread):
    new, old, adv = _logps(200, seed=int(eps * 100 + spread * 10), spread=spread)
    new = new.requires_grad_(True)
    loss = NS["ppo_clip_loss"](new, old, adv, eps)
    torch.testing.assert_close(loss, clip_by_cases(new, old, adv, eps), rtol=1e-12, atol=1e-12)
    (grad,) = torch.autograd.grad(loss, new)
    ratio = torch.exp(new.detach() - old)
    active = torch.where(adv >= 0, ratio < 1 + eps, ratio > 1 - eps)
    torch.testing.assert_close(grad, torch.where(active, -ratio * adv / len(adv), 0.0),
                               rtol=1e-12, atol=1e-15)


def test_ppo_loss_is_eq9_negated():
    new, old, adv = _logps(50, seed=3, spread=0.4)
    g = torch.Generator().manual_seed(4)
    values, returns = torch.randn(2, 50, generator=g, dtype=torch.float64)
    entropy = torch.rand(50, generator=g, dtype=torch.float64)
    for c1, c2, eps in [(0.5, 0.01, 0.2), (1.0, 0.1, 0.1)]:
        got = NS["ppo_loss"](new, old, adv, values, returns, entropy, eps, c1, c2)
        objective = (-clip_by_cases(new, old, adv, eps) - c1 * ((values - returns) ** 2).mean()
                     + c2 * entropy.mean())
        torch.testing.assert_close(got, -objective, rtol=1e-12, atol=1e-12)
