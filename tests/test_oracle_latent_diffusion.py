"""Unit 5.11 `latent-diffusion`: the master against independent implementations.

- ``CrossAttention``: equals ``diffusers``' ``Attention(query_dim, cross_attention_dim,
  heads, dim_head, bias=False, out_bias=True)`` with the weights copied (diffusers keeps the
  output projection as ``to_out[0]``, a dropout after it), self- and cross-attention, N ≠ M,
  one head and several, float32 and float64; with both of its processors, the default one
  (``F.scaled_dot_product_attention``) and the classic ``AttnProcessor`` (``baddbmm`` and a
  softmax over heads folded into the batch). Its state dict has the names diffusers uses.
- ``classifier_free_guidance``: equals the unconditional and conditional predictions mixed as
  (1 − s)·eps_uncond + s·eps_cond, and Ho & Salimans' (1 + w)·eps_cond − w·eps_uncond with
  w = s − 1.
- ``drop_condition``: a Python loop over the samples, one ``torch.rand`` draw at a time from
  the same generator, reproduces the master's output; over many draws the dropped fraction is
  p within 5 standard deviations.
"""

from __future__ import annotations

import math

import pytest
import torch

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("latent-diffusion")).namespace
CrossAttention = NS["CrossAttention"]
classifier_free_guidance = NS["classifier_free_guidance"]
drop_condition = NS["drop_condition"]


def _diffusers_twin(ours, query_dim, context_dim, heads, dim_head, processor):
    pytest.importorskip("diffusers")
    from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0

    theirs = Attention(query_dim, cross_attention_dim=context_dim, heads=heads,
                       dim_head=dim_head, bias=False, out_bias=True)
    theirs.set_processor(AttnProcessor() if processor == "classic" else AttnProcessor2_0())
    state = ours.state_dict()
    mapped = {"to_q.weight": state["to_q.weight"], "to_k.weight": state["to_k.weight"],
              "to_v.weight": state["to_v.weight"], "to_out.0.weight": state["to_out.weight"],
              "to_out.0.bias": state["to_out.bias"]}
    theirs.load_state_dict(mapped)  # strict: the same parameters, nothing more
    return theirs.eval()


@pytest.mark.parametrize("processor", ["sdpa", "classic"])
@pytest.mark.parametrize(("B", "N", "M", "query_dim", "context_dim", "heads", "dim_head"), [
    (2, 5, 3, 8, 6, 3, 4),
    (1, 7, 4, 12, 20, 1, 8),
    (3, 4, 9, 6, None, 2, 5),  # self-attention: context None
    (2, 1, 2, 16, 16, 4, 4),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cross_attention_is_diffusers_attention(B, N, M, query_dim, context_dim, heads, dim_head,
                                                 dtype, processor):
    torch.manual_seed(B * 100 + N * 10 + M)
    ours = CrossAttention(query_dim, context_dim, heads, dim_head)
    with torch.no_grad():  # larger weights than the default init: a peaked softmax
        for p in ours.parameters():
            p.mul_(3.0)
    ours = ours.to(dtype)
    theirs = _diffusers_twin(ours, query_dim, context_dim, heads, dim_head, processor).to(dtype)
    x = torch.randn(B, N, query_dim, dtype=dtype)
    if context_dim is None:
        got, want = ours(x), theirs(x)
    else:
        context = torch.randn(B, M, context_dim, dtype=dtype)
        got, want = ours(x, context), theirs(x, encoder_hidden_states=context)
    assert got.shape == (B, N, query_dim) and got.dtype == dtype
    torch.testing.assert_close(got, want)


def test_cross_attention_attends_to_the_context():
    """The output changes with the context and, per query, is invariant to the order of the
    context's tokens (attention is a weighted set operation over keys)."""
    torch.manual_seed(0)
    attn = CrossAttention(8, 5, heads=2, dim_head=4).double()
    x, c = torch.randn(2, 3, 8, dtype=torch.float64), torch.randn(2, 6, 5, dtype=torch.float64)
    out = attn(x, c)
    torch.testing.assert_close(attn(x, c[:, torch.randperm(6)]), out)
    assert not torch.allclose(attn(x, torch.randn_like(c)), out)


def test_guidance_equals_both_conventions():
    g = torch.Generator().manual_seed(1)
    eps_u, eps_c = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    for s in (0.0, 1.0, 3.0, 7.5):
        got = classifier_free_guidance(eps_u, eps_c, s)
        torch.testing.assert_close(got, (1 - s) * eps_u + s * eps_c)
        w = s - 1.0
        torch.testing.assert_close(got, (1 + w) * eps_c - w * eps_u)
    torch.testing.assert_close(classifier_free_guidance(eps_u, eps_c, 1.0), eps_c)
    torch.testing.assert_close(classifier_free_guidance(eps_u, eps_c, 0.0), eps_u)


@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 1.0])
def test_drop_condition_is_a_loop_of_single_draws(p):
    cond, null = torch.randn(9, 4), torch.randn(4)
    got = drop_condition(cond, null, p, generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    rows = []
    for i in range(len(cond)):  # torch.rand draws the same stream one number at a time
        u = torch.rand(1, generator=g).item()
        rows.append(null if u < p else cond[i])
    torch.testing.assert_close(got, torch.stack(rows), rtol=0, atol=0)


def test_drop_condition_drops_a_fraction_p():
    n, p = 20000, 0.15
    cond = torch.zeros(n, 1)
    got = drop_condition(cond, torch.ones(1), p, generator=torch.Generator().manual_seed(3))
    frac = got.mean().item()
    assert abs(frac - p) <= 5 * math.sqrt(p * (1 - p) / n)
