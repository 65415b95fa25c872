"""Unit 3.6 `encoder-decoder`: the master against PyTorch's own GRU, in float64.

- ``GRUCell`` equals ``torch.nn.GRUCell`` with the state dict copied across (both ways), forward
  and gradients w.r.t. the input, the state and every parameter, with and without bias and
  initial state, batch 1 included;
- its parameters have nn.GRUCell's names, shapes and init bound;
- ``EncoderDecoder`` equals the same model assembled from ``torch.nn.GRU`` layers (the layout of
  the lecture's fast model) with the weights copied: logits and parameter gradients.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("encoder-decoder")).namespace
GRUCell, EncoderDecoder = NS["GRUCell"], NS["EncoderDecoder"]


def _pair(i, h, bias, seed):
    torch.manual_seed(seed)
    theirs = nn.GRUCell(i, h, bias=bias).double()
    ours = GRUCell(i, h, bias=bias).double()
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


@pytest.mark.parametrize(("b", "i", "h"), [(4, 3, 5), (1, 1, 1), (1, 8, 16), (3, 7, 2)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
def test_cell_matches_nn_grucell(b, i, h, bias, with_state):
    ours, theirs = _pair(i, h, bias, seed=b * 100 + i * 10 + h)
    g = torch.Generator().manual_seed(7)
    x = torch.randn(b, i, dtype=torch.float64, generator=g, requires_grad=True)
    h0 = torch.randn(b, h, dtype=torch.float64, generator=g, requires_grad=True)
    args = (x, h0) if with_state else (x,)
    out_ours, out_theirs = ours(*args), theirs(*args)
    torch.testing.assert_close(out_ours, out_theirs, rtol=1e-12, atol=1e-12)
    cot = torch.randn(out_ours.shape, dtype=torch.float64, generator=g)
    leaves_ours = list(args) + list(ours.parameters())
    leaves_theirs = list(args) + list(theirs.parameters())
    grads_ours = torch.autograd.grad(out_ours, leaves_ours, cot)
    grads_theirs = torch.autograd.grad(out_theirs, leaves_theirs, cot)
    for a, t in zip(grads_ours, grads_theirs):
        torch.testing.assert_close(a, t, rtol=1e-10, atol=1e-12)


def test_cell_layout_and_init_match():
    for bias in (True, False):
        ours, theirs = GRUCell(6, 9, bias=bias), nn.GRUCell(6, 9, bias=bias)
        assert {k: v.shape for k, v in ours.state_dict().items()} == {
            k: v.shape for k, v in theirs.state_dict().items()}
        theirs.load_state_dict(ours.state_dict())  # copies the other way too
        bound = 1 / math.sqrt(9)
        assert all(float(p.detach().abs().max()) <= bound for p in ours.parameters())


class TorchGRUModel(nn.Module):
    """EncoderDecoder's equations with nn.GRU layers (one call per sequence)."""

    def __init__(self, v, e, h):
        super().__init__()
        self.src_embed, self.tgt_embed = nn.Embedding(v, e), nn.Embedding(v, e)
        self.encoder, self.decoder = nn.GRU(e, h), nn.GRU(e + h, h)
        self.init, self.out = nn.Linear(h, h), nn.Linear(2 * h + e, v)

    def forward(self, src, tgt_in):
        _, c = self.encoder(self.src_embed(src))
        emb = self.tgt_embed(tgt_in)
        ctx = c.expand(tgt_in.shape[0], -1, -1)
        states, _ = self.decoder(torch.cat([emb, ctx], -1), torch.tanh(self.init(c)))
        return self.out(torch.cat([states, emb, ctx], -1))


def _copied_state(theirs: TorchGRUModel) -> dict:
    state = {}
    for name, tensor in theirs.state_dict().items():
        state[name.replace("_l0", "")] = tensor  # encoder.weight_ih_l0 -> encoder.weight_ih
    return state


@pytest.mark.parametrize(("v", "e", "h", "s", "t", "b"),
                         [(7, 3, 5, 4, 3, 2), (5, 2, 3, 1, 1, 1), (11, 4, 6, 9, 7, 3)])
def test_model_matches_nn_gru_model(v, e, h, s, t, b):
    torch.manual_seed(v + s)
    theirs = TorchGRUModel(v, e, h).double()
    ours = EncoderDecoder(v, e, h).double()
    ours.load_state_dict(_copied_state(theirs))
    g = torch.Generator().manual_seed(3)
    src = torch.randint(0, v, (s, b), generator=g)
    tgt_in = torch.randint(0, v, (t, b), generator=g)
    out_ours, out_theirs = ours(src, tgt_in), theirs(src, tgt_in)
    assert out_ours.shape == (t, b, v)
    torch.testing.assert_close(out_ours, out_theirs, rtol=1e-12, atol=1e-12)
    cot = torch.randn(out_ours.shape, dtype=torch.float64, generator=g)
    grads_ours = dict(zip([n for n, _ in ours.named_parameters()],
                          torch.autograd.grad(out_ours, list(ours.parameters()), cot)))
    names_theirs = [n.replace("_l0", "") for n, _ in theirs.named_parameters()]
    grads_theirs = dict(zip(names_theirs,
                            torch.autograd.grad(out_theirs, list(theirs.parameters()), cot)))
    assert grads_ours.keys() == grads_theirs.keys()
    for name in grads_ours:
        torch.testing.assert_close(grads_ours[name], grads_theirs[name], rtol=1e-10, atol=1e-12)
