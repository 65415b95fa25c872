"""Unit 4.8 `rlhf`: the master against independent implementations.

- ``preference_loss``: equals ``torch.nn.BCEWithLogitsLoss`` of the reward differences with
  targets 1, and the negative mean log-likelihood of the labels under
  ``torch.distributions.Bernoulli(logits=r_c − r_r)``; stays finite and equal to the
  difference itself (≈ −d) for huge negative gaps.
- ``kl_penalized_reward``: on random autoregressive tables (a policy and a reference), with
  sequences of different lengths sampled and right-padded, the masked sum of per-token
  log-ratios equals the log-ratio of whole sequences computed token by token with
  ``torch.distributions.Categorical`` in a Python loop over each sequence's real tokens.
"""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Bernoulli, Categorical

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("rlhf")).namespace
preference_loss, kl_penalized_reward = NS["preference_loss"], NS["kl_penalized_reward"]


@pytest.mark.parametrize(("b", "dtype"), [(1, torch.float32), (7, torch.float64),
                                          (64, torch.float32)])
def test_preference_loss_is_bce_with_logits(b, dtype):
    g = torch.Generator().manual_seed(b)
    rc = (3 * torch.randn(b, generator=g, dtype=torch.float64)).to(dtype)
    rr = (3 * torch.randn(b, generator=g, dtype=torch.float64)).to(dtype)
    ours = preference_loss(rc, rr)
    bce = torch.nn.BCEWithLogitsLoss()(rc - rr, torch.ones(b, dtype=dtype))
    nll = -Bernoulli(logits=rc - rr).log_prob(torch.ones(b, dtype=dtype)).mean()
    assert ours.shape == () and ours.dtype == dtype
    torch.testing.assert_close(ours, bce)
    torch.testing.assert_close(ours, nll)


def test_preference_loss_large_gaps():
    rc = torch.tensor([-5000.0, 3000.0], requires_grad=True)
    rr = torch.tensor([0.0, 0.0])
    loss = preference_loss(rc, rr)
    torch.testing.assert_close(loss, torch.tensor(2500.0))
    loss.backward()
    torch.testing.assert_close(rc.grad, torch.tensor([-0.5, 0.0]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kl_penalized_reward_matches_sequence_log_ratio(seed):
    g = torch.Generator().manual_seed(seed)
    vocab, b, t, beta = 6, 5, 9, 0.37
    pol = torch.randn(vocab, vocab, generator=g, dtype=torch.float64)  # logits[prev, next]
    ref = torch.randn(vocab, vocab, generator=g, dtype=torch.float64)
    lengths = torch.randint(0, t + 1, (b,), generator=g)
    tokens = torch.randint(0, vocab, (b, t), generator=g)
    prev = torch.cat([torch.zeros(b, 1, dtype=torch.long), tokens[:, :-1]], 1)
    lp = Categorical(logits=pol[prev]).log_prob(tokens)
    rlp = Categorical(logits=ref[prev]).log_prob(tokens)
    mask = torch.arange(t)[None] < lengths[:, None]
    lp = torch.where(mask, lp, torch.full_like(lp, -3.0))  # padding holds arbitrary values
    reward = torch.randn(b, generator=g, dtype=torch.float64)
    expected = []
    for i in range(b):
        log_ratio, last = 0.0, 0
        for j in range(int(lengths[i])):
            y = int(tokens[i, j])
            log_ratio += float(Categorical(logits=pol[last]).log_prob(torch.tensor(y))
                               - Categorical(logits=ref[last]).log_prob(torch.tensor(y)))
            last = y
        expected.append(float(reward[i]) - beta * log_ratio)
    expected = torch.tensor(expected, dtype=torch.float64)
    torch.testing.assert_close(kl_penalized_reward(reward, lp, rlp, beta, mask), expected)
    torch.testing.assert_close(kl_penalized_reward(reward, lp, rlp, beta, mask.double()),
                               expected)
    full = reward - beta * (lp - rlp).sum(-1)
    torch.testing.assert_close(kl_penalized_reward(reward, lp, rlp, beta), full)
