"""Unit 4.6 `gpt-3`: the master against independent implementations.

- ``sample_next`` equals ``transformers``' generation warpers (``TemperatureLogitsWarper``,
  ``TopKLogitsWarper``, ``TopPLogitsWarper``, applied in that order, as ``generate`` does)
  followed by a softmax and ``torch.multinomial`` with the same seeded generator: the same
  tokens, row for row; temperature 0 is ``argmax``.
- ``CausalSelfAttention`` without a cache equals ``torch.nn.functional.
  scaled_dot_product_attention(is_causal=True)`` on the same projections; inside a GPT-2 built
  from ``transformers``' own modules (``GPT2Model``, weights copied into ``c_attn`` / ``c_proj``
  with their Conv1D weights transposed) it reproduces the library's hidden states, and fed
  piece by piece through the master's ``KVCache`` it reproduces the library's incremental
  decoding through its own ``DynamicCache`` (its own masks, its own positions), at every
  position.
- ``fit_power_law`` equals ``numpy.polyfit`` and ``scipy.stats.linregress`` on the logs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course import catalogue
from course.grading.checks import reference

transformers = pytest.importorskip("transformers")
from transformers import DynamicCache, GPT2Config, GPT2Model  # noqa: E402
from transformers.generation.logits_process import (  # noqa: E402
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

NS = reference(catalogue.find("gpt-3")).namespace


def _library_sample(logits, temperature, top_k, top_p, seed):
    scores = logits.clone()
    ids = torch.zeros(scores.shape[0], 1, dtype=torch.long)  # the warpers ignore the prompt
    scores = TemperatureLogitsWarper(temperature)(ids, scores)
    if top_k is not None:
        scores = TopKLogitsWarper(top_k)(ids, scores)
    if top_p is not None:
        scores = TopPLogitsWarper(top_p)(ids, scores)
    probs = torch.softmax(scores, dim=-1)
    return torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(seed)).squeeze(1)


@pytest.mark.parametrize(("temperature", "top_k", "top_p"), [
    (1.0, None, None), (0.7, None, None), (1.5, 5, None), (1.0, 1, None), (1.0, None, 0.9),
    (0.8, None, 0.3), (1.2, 8, 0.75), (1.0, 50, 0.5), (0.5, 3, 0.999),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sample_next_equals_transformers_warpers(temperature, top_k, top_p, dtype):
    g = torch.Generator().manual_seed(17)
    logits = (torch.randn(2000, 40, generator=g, dtype=torch.float64) * 2).to(dtype)
    want = _library_sample(logits, temperature, top_k, top_p, seed=3)
    got = NS["sample_next"](logits, temperature=temperature, top_k=top_k, top_p=top_p,
                            generator=torch.Generator().manual_seed(3))
    assert got.dtype == torch.int64 and got.shape == (2000,)
    assert torch.equal(got, want)


def test_sample_next_greedy_is_argmax_and_draws_nothing():
    logits = torch.randint(0, 3, (50, 7)).double()  # many ties: argmax takes the first
    g = torch.Generator().manual_seed(5)
    state = g.get_state()
    got = NS["sample_next"](logits, temperature=0.0, top_k=2, top_p=0.5, generator=g)
    assert torch.equal(got, logits.argmax(dim=-1))
    assert torch.equal(g.get_state(), state)


def _attention(d_model, n_head, seed):
    torch.manual_seed(seed)
    return NS["CausalSelfAttention"](d_model, n_head).double()


@pytest.mark.parametrize(("B", "T", "d_model", "n_head"), [(2, 7, 12, 3), (1, 1, 4, 2),
                                                           (3, 5, 8, 1)])
def test_attention_equals_scaled_dot_product_attention(B, T, d_model, n_head):
    attn = _attention(d_model, n_head, seed=T)
    x = torch.randn(B, T, d_model, dtype=torch.float64, requires_grad=True)
    q, k, v = attn.c_attn(x).split(d_model, dim=2)
    q, k, v = (t.view(B, T, n_head, d_model // n_head).transpose(1, 2) for t in (q, k, v))
    want = attn.c_proj(F.scaled_dot_product_attention(q, k, v, is_causal=True)
                       .transpose(1, 2).reshape(B, T, d_model))
    got = attn(x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    cot = torch.randn_like(got)
    (grad_got,) = torch.autograd.grad((got * cot).sum(), x)
    (grad_want,) = torch.autograd.grad((want * cot).sum(), x)
    torch.testing.assert_close(grad_got, grad_want, rtol=1e-12, atol=1e-12)


def _gpt2(n_layer, d_model, n_head, vocab=30, positions=32, seed=0):
    config = GPT2Config(vocab_size=vocab, n_positions=positions, n_embd=d_model,
                        n_layer=n_layer, n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
                        attn_implementation="eager")
    torch.manual_seed(seed)
    model = GPT2Model(config).double().eval()
    layers = []
    for block in model.h:
        attn = NS["CausalSelfAttention"](d_model, n_head).double()
        attn.load_state_dict({  # Conv1D stores (in, out): transpose into nn.Linear's (out, in)
            "c_attn.weight": block.attn.c_attn.weight.T, "c_attn.bias": block.attn.c_attn.bias,
            "c_proj.weight": block.attn.c_proj.weight.T, "c_proj.bias": block.attn.c_proj.bias,
        })
        layers.append(attn)
    return model, layers


def _ours(model, layers, ids, caches=None):
    """GPT-2 from the library's embeddings, layer norms and MLPs, with our attention; with
    caches, ``ids`` continue the cached sequence (positions from len(cache))."""
    start = 0 if caches is None else len(caches[0])
    pos = torch.arange(start, start + ids.shape[1])
    h = model.wte(ids) + model.wpe(pos)
    for i, (block, attn) in enumerate(zip(model.h, layers)):
        h = h + attn(block.ln_1(h), None if caches is None else caches[i])
        h = h + block.mlp(block.ln_2(h))
    return model.ln_f(h)


@pytest.mark.parametrize(("n_layer", "d_model", "n_head", "chunks"), [
    (2, 12, 3, [4, 1, 1, 3, 1]), (1, 8, 2, [1] * 7), (3, 16, 4, [6, 2, 1]), (2, 8, 1, [9]),
])
def test_cached_decoding_equals_transformers_gpt2(n_layer, d_model, n_head, chunks):
    model, layers = _gpt2(n_layer, d_model, n_head, seed=len(chunks))
    ids = torch.randint(0, 30, (2, sum(chunks)), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(_ours(model, layers, ids), model(ids).last_hidden_state,
                                   rtol=1e-10, atol=1e-10)
        ours, caches = [], [NS["KVCache"]() for _ in layers]
        theirs, cache, start = [], DynamicCache(), 0
        for size in chunks:
            piece = ids[:, start:start + size]
            ours.append(_ours(model, layers, piece, caches))
            out = model(piece, cache=cache, use_cache=True)
            cache = out.past_key_values
            theirs.append(out.last_hidden_state)
            start += size
            assert all(len(c) == start for c in caches)
        ours_all, theirs_all = torch.cat(ours, dim=1), torch.cat(theirs, dim=1)
        torch.testing.assert_close(ours_all, theirs_all, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(ours_all, model(ids).last_hidden_state, rtol=1e-10,
                                   atol=1e-10)
        for i, c in enumerate(caches):  # the very keys and values the library cached
            torch.testing.assert_close(c.k, cache.layers[i].keys, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(c.v, cache.layers[i].values, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_fit_power_law_equals_numpy_and_scipy(seed):
    from scipy import stats

    g = np.random.default_rng(seed)
    n = np.sort(g.uniform(2, 8, size=3 + seed)) ** 10
    losses = 7.0 * n ** -0.2 * np.exp(g.normal(0, 0.1, size=n.shape))
    a, alpha = NS["fit_power_law"](torch.tensor(n), torch.tensor(losses))
    assert type(a) is float and type(alpha) is float
    slope, intercept = np.polyfit(np.log(n), np.log(losses), 1)
    assert math.isclose(alpha, -slope, rel_tol=1e-10) and math.isclose(a, math.exp(intercept),
                                                                       rel_tol=1e-10)
    fit = stats.linregress(np.log(n), np.log(losses))
    assert math.isclose(alpha, -fit.slope, rel_tol=1e-10)
    assert math.isclose(a, math.exp(fit.intercept), rel_tol=1e-10)
    assert NS["fit_power_law"](n.tolist(), losses.tolist()) == pytest.approx((a, alpha))
