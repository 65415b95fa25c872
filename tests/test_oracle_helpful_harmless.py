"""Unit 4.11 `helpful-harmless`: the master against independent implementations.

- ``per_token_kl``: its expectation under the policy, computed by enumerating every token of
  the vocabulary with ``torch.distributions.Categorical.log_prob``, equals
  ``torch.distributions.kl_divergence`` of the two Categoricals; a Monte Carlo mean over
  tokens sampled from the policy agrees within five standard errors; masked positions are 0.
- ``best_of_n``: equals a plain Python loop that keeps the first strictly larger reward, on
  random and tie-laden rewards.
- ``best_of_n_kl``: equals a numerical integral of n u^(n−1) log(n u^(n−1)) over [0, 1]; it is
  the limit of the exact KL of best-of-n over a discrete uniform policy with K atoms of
  distinct rewards (enumerated: atom of rank k is chosen with probability
  (k/K)^n − ((k−1)/K)^n) as K grows, and an upper bound on it for every discrete policy
  (Beirami et al., 2024); best-of-n sampling with ``best_of_n`` reproduces the enumerated
  probabilities.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical, kl_divergence

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("helpful-harmless")).namespace
per_token_kl, best_of_n, best_of_n_kl = (NS[k] for k in ("per_token_kl", "best_of_n",
                                                          "best_of_n_kl"))


@pytest.mark.parametrize(("batch", "vocab", "seed"), [(3, 5, 0), (1, 11, 1), (6, 2, 2)])
def test_expected_per_token_kl_equals_categorical_kl(batch, vocab, seed):
    g = torch.Generator().manual_seed(seed)
    policy = Categorical(logits=torch.randn(batch, vocab, generator=g, dtype=torch.float64))
    ref = Categorical(logits=torch.randn(batch, vocab, generator=g, dtype=torch.float64))
    tokens = torch.arange(vocab)[:, None].expand(vocab, batch)  # every token, every row
    k = per_token_kl(policy.log_prob(tokens).T, ref.log_prob(tokens).T)  # (batch, vocab)
    expected = (policy.probs * k).sum(-1)
    torch.testing.assert_close(expected, kl_divergence(policy, ref), rtol=1e-12, atol=1e-12)


def test_monte_carlo_per_token_kl_and_mask():
    g = torch.Generator().manual_seed(3)
    policy = Categorical(logits=2 * torch.randn(4, 7, generator=g, dtype=torch.float64))
    ref = Categorical(logits=torch.randn(4, 7, generator=g, dtype=torch.float64))
    torch.manual_seed(4)
    y = policy.sample((20000,))  # (N, 4)
    k = per_token_kl(policy.log_prob(y).T, ref.log_prob(y).T)  # (4, N)
    se = k.std(-1) / math.sqrt(k.shape[-1])
    assert bool(((k.mean(-1) - kl_divergence(policy, ref)).abs() < 5 * se).all())
    assert bool((k < 0).any())  # single estimates can be negative
    mask = torch.rand(k.shape, generator=g) < 0.5
    for m in (mask, mask.double()):
        km = per_token_kl(policy.log_prob(y).T, ref.log_prob(y).T, m)
        assert km.shape == k.shape and km.dtype == k.dtype
        assert bool((km[~mask] == 0).all()) and torch.equal(km[mask], k[mask])


def _loop_best(rewards: torch.Tensor) -> torch.Tensor:
    n, b = rewards.shape
    best = []
    for j in range(b):
        i_best = 0
        for i in range(1, n):
            if rewards[i, j] > rewards[i_best, j]:
                i_best = i
        best.append(i_best)
    return torch.tensor(best, dtype=torch.int64)


@pytest.mark.parametrize("ties", [False, True])
def test_best_of_n_equals_a_loop(ties):
    g = torch.Generator().manual_seed(5)
    for n, b in [(1, 1), (3, 8), (10, 2), (7, 7)]:
        r = (torch.randint(0, 3, (n, b), generator=g).double() if ties
             else torch.randn(n, b, generator=g))
        got = best_of_n(r)
        assert got.dtype == torch.int64 and got.shape == (b,)
        assert torch.equal(got, _loop_best(r))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 16, 100, 1000])
def test_formula_equals_the_integral(n):
    # midpoint rule on u in (0, 1) in float64; the integrand n u^(n-1) log(n u^(n-1))
    m = 2_000_000
    u = (torch.arange(m, dtype=torch.float64) + 0.5) / m
    log_density = math.log(n) + (n - 1) * torch.log(u)
    integral = float((log_density.exp() * log_density).mean())
    assert best_of_n_kl(n) == pytest.approx(integral, abs=2e-4)
    assert isinstance(best_of_n_kl(n), float)


def _best_of_n_probs(p: torch.Tensor, n: int) -> torch.Tensor:
    """Exact best-of-n probabilities of atoms listed in increasing reward order."""
    cdf = torch.cumsum(p, 0).clamp(max=1.0)
    below = torch.cat([torch.zeros(1, dtype=p.dtype), cdf[:-1]])
    return cdf**n - below**n


def _kl(q: torch.Tensor, p: torch.Tensor) -> float:
    keep = q > 0
    return float((q[keep] * (q[keep] / p[keep]).log()).sum())


@pytest.mark.parametrize("n", [2, 4, 16, 64])
def test_formula_is_the_many_atom_limit_and_an_upper_bound(n):
    formula = best_of_n_kl(n)
    for atoms in (10, 100, 100_000):
        p = torch.full((atoms,), 1 / atoms, dtype=torch.float64)
        exact = _kl(_best_of_n_probs(p, n), p)
        assert exact <= formula + 1e-12
    assert exact == pytest.approx(formula, abs=2e-3)  # 100,000 atoms
    g = torch.Generator().manual_seed(n)
    for _ in range(20):  # random discrete policies: always below the formula
        p = torch.softmax(3 * torch.randn(12, generator=g, dtype=torch.float64), 0)
        assert _kl(_best_of_n_probs(p, n), p) <= formula + 1e-12


def test_best_of_n_sampling_matches_the_enumeration():
    g = torch.Generator().manual_seed(11)
    p = torch.softmax(torch.randn(6, generator=g, dtype=torch.float64), 0)
    reward = torch.arange(6, dtype=torch.float64)  # atom k has reward k: distinct
    n, draws = 4, 200_000
    torch.manual_seed(12)
    samples = Categorical(probs=p).sample((n, draws))  # (n, draws)
    chosen = samples.gather(0, best_of_n(reward[samples])[None, :])[0]
    freq = torch.bincount(chosen, minlength=6).double() / draws
    want = _best_of_n_probs(p, n)
    assert float((freq - want).abs().max()) < 5 * math.sqrt(0.25 / draws)
