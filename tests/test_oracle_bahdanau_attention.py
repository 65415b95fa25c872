"""Unit 3.8 `bahdanau-attention`: the master against the paper's equations written out
independently, in float64 (there is no library additive attention to compare with).

- ``AdditiveAttention``: e_j = v·tanh(W_dec s + W_enc h_j) computed one sample and one source
  position at a time with plain matrix-vector products, masked positions left out of a softmax
  taken by hand (exp and sum over the real positions only), and the context Σ_j α_j h_j: weights,
  context and gradients w.r.t. every input and parameter;
- ``AttentionDecoder``: the same step loop written with ``torch.nn.GRUCell`` and the oracle
  attention above, the master's weights copied in: logits, weights and gradients.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("bahdanau-attention")).namespace
AdditiveAttention, AttentionDecoder = NS["AdditiveAttention"], NS["AttentionDecoder"]


def oracle_attention(att, s, enc, mask):
    """(context (B, enc), weights (B, S)) from the module's parameters, one sample at a time."""
    w_enc, w_dec, b_dec, v = att.W_enc.weight, att.W_dec.weight, att.W_dec.bias, att.v.weight[0]
    contexts, weights = [], []
    for b in range(enc.shape[0]):
        query = w_dec @ s[b] + b_dec
        real = [j for j in range(enc.shape[1]) if mask is None or bool(mask[b, j])]
        scores = torch.stack([v @ torch.tanh(query + w_enc @ enc[b, j]) for j in real])
        expo = torch.exp(scores - scores.max())
        alpha_real = expo / expo.sum()
        alpha = torch.zeros(enc.shape[1], dtype=enc.dtype)
        alpha = alpha.index_put((torch.tensor(real),), alpha_real)
        weights.append(alpha)
        contexts.append(sum(alpha_real[k] * enc[b, j] for k, j in enumerate(real)))
    return torch.stack(contexts), torch.stack(weights)


def _mask(b, s, seed):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, s + 1, (b,), generator=g)
    lengths[0] = s  # one fully real row
    return torch.arange(s)[None, :] < lengths[:, None]


@pytest.mark.parametrize(("b", "s", "enc", "dec", "a"), [(3, 5, 4, 6, 7), (1, 1, 2, 2, 3),
                                                          (4, 7, 5, 5, 2)])
@pytest.mark.parametrize("masked", [False, True])
def test_additive_attention_matches_the_equations(b, s, enc, dec, a, masked):
    torch.manual_seed(b * 100 + s * 10 + enc)
    att = AdditiveAttention(enc, dec, a).double()
    state = torch.randn(b, dec, dtype=torch.float64, requires_grad=True)
    outputs = torch.randn(b, s, enc, dtype=torch.float64, requires_grad=True)
    mask = _mask(b, s, seed=s) if masked else None
    context, weights = att(state, outputs, mask)
    want_context, want_weights = oracle_attention(att, state, outputs, mask)
    torch.testing.assert_close(context, want_context, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(weights, want_weights, rtol=1e-12, atol=1e-12)
    if mask is not None:
        assert bool((weights[~mask] == 0).all())
    cot_c, cot_w = torch.randn_like(context), torch.randn_like(weights)
    leaves = [state, outputs, *att.parameters()]
    ours = torch.autograd.grad((context * cot_c).sum() + (weights * cot_w).sum(), leaves)
    theirs = torch.autograd.grad((want_context * cot_c).sum() + (want_weights * cot_w).sum(),
                                 leaves)
    for got, want in zip(ours, theirs):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def oracle_decoder(dec, tgt_in, enc, s0, mask):
    """The decoder's step equations with a fresh torch.nn.GRUCell run on the decoder's own cell
    parameters (so gradients reach them) and the oracle attention."""
    cell = nn.GRUCell(dec.cell.input_size, dec.cell.hidden_size).double()
    params = dict(dec.cell.named_parameters())
    state, logits, weights = s0, [], []
    for y in tgt_in:
        x = dec.embedding.weight[y]
        context, alpha = oracle_attention(dec.attention, state, enc, mask)
        state = functional_call(cell, params, (torch.cat([x, context], dim=-1), state))
        logits.append(dec.out.weight @ torch.cat([state, context, x], dim=-1).T
                      + dec.out.bias[:, None])
        weights.append(alpha)
    return torch.stack(logits).transpose(1, 2), torch.stack(weights)


@pytest.mark.parametrize(("t", "b", "s"), [(4, 3, 5), (1, 1, 1), (3, 2, 6)])
@pytest.mark.parametrize("masked", [False, True])
def test_decoder_matches_the_step_equations(t, b, s, masked):
    torch.manual_seed(t * 100 + b * 10 + s)
    v, e, enc, h, a = 9, 4, 5, 6, 3
    dec = AttentionDecoder(v, e, enc, h, a).double()
    tgt_in = torch.randint(0, v, (t, b))
    outputs = torch.randn(b, s, enc, dtype=torch.float64, requires_grad=True)
    s0 = torch.randn(b, h, dtype=torch.float64, requires_grad=True)
    mask = _mask(b, s, seed=t) if masked else None
    logits, weights = dec(tgt_in, outputs, s0, mask)
    want_logits, want_weights = oracle_decoder(dec, tgt_in, outputs, s0, mask)
    torch.testing.assert_close(logits, want_logits, rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(weights, want_weights, rtol=1e-11, atol=1e-12)
    cot = torch.randn_like(logits)
    leaves = [outputs, s0, *dec.parameters()]
    ours = torch.autograd.grad((logits * cot).sum(), leaves, allow_unused=True)
    theirs = torch.autograd.grad((want_logits * cot).sum(), leaves, allow_unused=True)
    for got, want in zip(ours, theirs):
        if want is None:
            assert got is None or bool((got == 0).all())
        else:
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
