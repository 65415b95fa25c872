"""Unit 4.13 `moe-transformer`: the master against independent implementations.

- ``switch_route`` equals ``transformers``' ``SwitchTransformersTop1Router`` (built from a
  ``SwitchTransformersConfig``, never from pretrained weights) whose classifier is the identity,
  so that its router logits are ours: the same expert choice (argmax, first index on ties), the
  same tokens kept (the router's one-hot dispatch mask: a cumulative count per expert in
  position order, at most ``expert_capacity``, here given C = ceil(c·N/E)), and our gate equals
  its top-1 probability times the mask. (The library keeps the probability of a dropped token
  and zeroes its dispatch mask instead; the exercise folds both into gate = 0.) The router
  works in float32 (its ``router_dtype``), so the comparison runs in float32.
- ``load_balancing_loss`` equals ``transformers``' ``load_balancing_loss_func`` (which writes
  it as mean(f·P)·E², the same number as E·Σ f·P), with expert indices that are not the argmax.
- ``switch_route`` and ``MoEFeedForward`` equal a per-token Python loop written from the
  definitions (a dict of counts per expert, one token at a time), and the gradient of
  ``load_balancing_loss`` is E·f_i/N in closed form.
"""

from __future__ import annotations

import math

import pytest
import torch

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("moe-transformer")).namespace
switch_route = NS["switch_route"]
load_balancing_loss = NS["load_balancing_loss"]
MoEFeedForward = NS["MoEFeedForward"]

# (N, E, capacity factor)
CASES = [(8, 4, 1.0), (7, 2, 1.0), (13, 5, 1.25), (16, 3, 0.75), (1, 3, 1.0), (5, 1, 0.5),
         (12, 5, 2.0), (30, 6, 1.0), (6, 3, 3.0), (64, 8, 1.25)]


def _logits(n, e, seed, dtype=torch.float64, ties=False):
    g = torch.Generator().manual_seed(seed)
    if ties:
        return torch.randint(-1, 2, (n, e), generator=g).to(dtype)
    return (torch.randn(n, e, generator=g, dtype=torch.float64)
            + 1.5 * torch.randn(e, generator=g, dtype=torch.float64)).to(dtype)


def _loop_route(logits, c):
    """One token at a time: argmax by hand (first maximum), a dict of counts per expert."""
    n, e = logits.shape
    capacity = math.ceil(c * n / e)
    taken: dict[int, int] = {}
    experts, gates, kept = [], [], []
    for row in logits.tolist():
        best = 0
        for i in range(1, e):
            if row[i] > row[best]:
                best = i
        z = sum(math.exp(v - row[best]) for v in row)
        taken[best] = taken.get(best, 0) + 1
        ok = taken[best] <= capacity
        experts.append(best)
        kept.append(ok)
        gates.append(1.0 / z if ok else 0.0)
    return experts, gates, kept


@pytest.mark.parametrize(("n", "e", "c"), CASES)
@pytest.mark.parametrize("ties", [False, True], ids=["random", "ties"])
def test_route_equals_python_loop(n, e, c, ties):
    logits = _logits(n, e, seed=n * 7 + e, ties=ties)
    expert, gate, kept = switch_route(logits, c)
    want_e, want_g, want_k = _loop_route(logits, c)
    assert expert.dtype == torch.int64 and kept.dtype == torch.bool and gate.dtype == logits.dtype
    assert expert.tolist() == want_e
    assert kept.tolist() == want_k
    torch.testing.assert_close(gate, torch.tensor(want_g, dtype=torch.float64), rtol=1e-12,
                               atol=1e-14)


transformers = pytest.importorskip("transformers")


def _hf_router(e, capacity):
    from transformers.models.switch_transformers.modeling_switch_transformers import (
        SwitchTransformersTop1Router,
    )

    config = transformers.SwitchTransformersConfig(
        num_experts=e, d_model=e, expert_capacity=capacity, router_bias=False,
        router_jitter_noise=0.0, router_dtype="float32")
    router = SwitchTransformersTop1Router(config).eval()
    with torch.no_grad():
        router.classifier.weight.copy_(torch.eye(e))
    return router


@pytest.mark.parametrize(("n", "e", "c"), CASES)
@pytest.mark.parametrize("ties", [False, True], ids=["random", "ties"])
def test_route_equals_switch_transformers_router(n, e, c, ties):
    logits = _logits(n, e, seed=n * 11 + e, dtype=torch.float32, ties=ties)
    capacity = math.ceil(c * n / e)
    with torch.no_grad():
        mask, top_prob, hf_logits = _hf_router(e, capacity)(logits[None])
    mask, top_prob = mask[0], top_prob[0, :, 0]
    torch.testing.assert_close(hf_logits[0], logits, rtol=0, atol=0)
    expert, gate, kept = switch_route(logits, c)
    assert kept.tolist() == (mask.sum(-1) > 0).tolist()
    assert expert[kept].tolist() == mask.argmax(-1)[kept].tolist()
    assert expert.tolist() == hf_logits[0].argmax(-1).tolist()
    torch.testing.assert_close(gate, top_prob * kept, rtol=1e-6, atol=1e-7)
    # every expert's buffer holds at most C tokens
    assert int(mask.sum(0).max()) <= capacity


@pytest.mark.parametrize(("n", "e"), [(8, 4), (1, 3), (9, 1), (12, 5), (5, 7), (64, 8)])
def test_loss_equals_switch_transformers_loss(n, e):
    from transformers.models.switch_transformers.modeling_switch_transformers import (
        load_balancing_loss_func,
    )

    g = torch.Generator().manual_seed(n + 100 * e)
    probs = torch.softmax(torch.randn(n, e, generator=g, dtype=torch.float64), dim=1)
    expert = torch.randint(0, e, (n,), generator=g)
    ours = load_balancing_loss(probs, expert)
    theirs = load_balancing_loss_func(probs[None], expert[None])
    assert ours.shape == () and ours.dtype == torch.float64
    torch.testing.assert_close(ours, theirs.to(torch.float64), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("n", "e"), [(8, 4), (1, 3), (12, 5), (5, 7)])
def test_loss_gradient_flows_through_P_only(n, e):
    g = torch.Generator().manual_seed(n * e)
    probs = torch.softmax(torch.randn(n, e, generator=g, dtype=torch.float64), dim=1)
    probs.requires_grad_(True)
    expert = torch.randint(0, e, (n,), generator=g)
    load_balancing_loss(probs, expert).backward()
    f = torch.bincount(expert, minlength=e).double() / n
    torch.testing.assert_close(probs.grad, (e * f / n).expand(n, e), rtol=1e-12, atol=1e-14)


def test_moe_equals_python_loop():
    torch.manual_seed(0)
    dim, hidden, e = 5, 7, 3
    moe = MoEFeedForward(dim, hidden, e, capacity_factor=1.0).double()
    with torch.no_grad():
        moe.router.weight.add_(torch.randn(e, dim, dtype=torch.float64))
    x = torch.randn(2, 9, dim, dtype=torch.float64) + 1.0
    y, aux = moe(x)
    tokens = x.reshape(-1, dim)
    logits = moe.router(tokens).detach()
    experts, gates, kept = _loop_route(logits, 1.0)
    assert not all(kept)  # the case does drop tokens
    with torch.no_grad():
        want = torch.stack([
            gates[n] * moe.experts[experts[n]](tokens[n]) if kept[n] else torch.zeros(dim,
                                                                                    dtype=x.dtype)
            for n in range(len(experts))
        ]).reshape(x.shape)
    torch.testing.assert_close(y, want, rtol=1e-12, atol=1e-12)
    probs = torch.softmax(logits, dim=1)
    want_aux = e * sum(experts.count(i) / len(experts) * float(probs[:, i].mean())
                       for i in range(e))
    assert float(aux.detach()) == pytest.approx(want_aux, rel=1e-12)
