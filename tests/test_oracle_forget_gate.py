"""Unit 3.3 `forget-gate`: the master against independent implementations, in float64.

- ``ForgetLSTMCell`` with the forget gate on equals ``torch.nn.LSTMCell`` with the state dict
  copied across (both ways), and the 3.2 master's ``LSTMCell``: forward and gradients w.r.t.
  the input, the state and every parameter, with and without bias and initial state, batch 1
  and H = 1 included, and unrolled over many steps;
- with the forget gate off it equals a 1997 cell written here from the equations
  (c = c_prev + i·g, h = o·tanh(c), one weight block per gate), the forget rows have no effect
  at all and get zero gradients, and a large initial state is kept where the gate-on cell
  forgets it;
- the master's grammar functions agree with a regular expression written from the diagram and
  with next-symbol sets enumerated from every string up to a length.
"""

from __future__ import annotations

import itertools
import re

import pytest
import torch
from torch import nn

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("forget-gate")).namespace
ForgetLSTMCell = NS["ForgetLSTMCell"]
reber_next, is_reber, sample_reber = NS["reber_next"], NS["is_reber"], NS["sample_reber"]
LSTMCell_32 = reference(catalogue.find("lstm")).namespace["LSTMCell"]

SIZES = [(4, 3, 5), (1, 1, 1), (1, 8, 16), (3, 7, 2)]
TIGHT = {"rtol": 1e-12, "atol": 1e-12}


def _inputs(b, i, h, seed, c_scale=2.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, i, dtype=torch.float64, generator=g, requires_grad=True)
    h0 = (0.5 * torch.randn(b, h, dtype=torch.float64, generator=g)).requires_grad_()
    c0 = (c_scale * torch.randn(b, h, dtype=torch.float64, generator=g)).requires_grad_()
    return x, h0, c0, g


def _grads(out, leaves, g):
    cots = [torch.randn(o.shape, dtype=o.dtype, generator=g) for o in out]
    return torch.autograd.grad(out, leaves, cots, allow_unused=True)


def _assert_same(out_a, out_b, leaves_a, leaves_b, seed, **tol):
    tol = tol or TIGHT
    for a, b in zip(out_a, out_b):
        torch.testing.assert_close(a, b, **tol)
    grads_a = _grads(out_a, leaves_a, torch.Generator().manual_seed(seed))
    grads_b = _grads(out_b, leaves_b, torch.Generator().manual_seed(seed))
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize(("b", "i", "h"), SIZES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
def test_gate_on_matches_nn_lstmcell(b, i, h, bias, with_state):
    torch.manual_seed(b * 100 + i * 10 + h)
    theirs = nn.LSTMCell(i, h, bias=bias).double()
    ours = ForgetLSTMCell(i, h, bias=bias).double()  # the default is forget_gate=True
    ours.load_state_dict(theirs.state_dict())
    x, h0, c0, _ = _inputs(b, i, h, seed=h)
    args = (x, (h0, c0)) if with_state else (x,)
    leaves = [x, h0, c0] if with_state else [x]
    _assert_same(ours(*args), theirs(*args), leaves + list(ours.parameters()),
                 leaves + list(theirs.parameters()), seed=1)


@pytest.mark.parametrize(("b", "i", "h"), SIZES)
def test_gate_on_matches_the_lstm_unit(b, i, h):
    torch.manual_seed(7 + h)
    ours = ForgetLSTMCell(i, h, forget_gate=True).double()
    theirs = LSTMCell_32(i, h).double()
    theirs.load_state_dict(ours.state_dict())  # and the other way round
    x, h0, c0, _ = _inputs(b, i, h, seed=3)
    _assert_same(ours(x, (h0, c0)), theirs(x, (h0, c0)), [x, h0, c0] + list(ours.parameters()),
                 [x, h0, c0] + list(theirs.parameters()), seed=2)


def test_layout_is_nn_lstmcells_in_both_settings():
    for forget_gate in (True, False):
        for bias in (True, False):
            ours, theirs = ForgetLSTMCell(6, 9, bias, forget_gate), nn.LSTMCell(6, 9, bias)
            assert {k: v.shape for k, v in ours.state_dict().items()} == {
                k: v.shape for k, v in theirs.state_dict().items()}
            assert list(ours.buffers()) == []
            theirs.load_state_dict(ours.state_dict())
            ours.load_state_dict(theirs.state_dict())
            assert all(float(p.detach().abs().max()) <= 1 / 3 for p in ours.parameters())
            assert ours.forget_gate is forget_gate


def cell_1997(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """Hochreiter & Schmidhuber's cell from the equations: three gated blocks, no forget gate.

    The stacked weights hold four blocks (input, forget, cell, output) of H rows; the 1997 cell
    reads the first, third and fourth and never touches the second."""
    h_prev, c_prev = state
    hidden = h_prev.shape[1]

    def block(k):
        rows = slice(k * hidden, (k + 1) * hidden)
        z = x @ weight_ih[rows].T + h_prev @ weight_hh[rows].T
        if bias_ih is not None:
            z = z + bias_ih[rows] + bias_hh[rows]
        return z

    i, g, o = torch.sigmoid(block(0)), torch.tanh(block(2)), torch.sigmoid(block(3))
    c = c_prev + i * g
    return o * torch.tanh(c), c


@pytest.mark.parametrize(("b", "i", "h"), SIZES)
@pytest.mark.parametrize("bias", [True, False])
def test_gate_off_is_the_1997_cell(b, i, h, bias):
    torch.manual_seed(b + 10 * h)
    ours = ForgetLSTMCell(i, h, bias=bias, forget_gate=False).double()
    params = dict(ours.named_parameters())
    x, h0, c0, _ = _inputs(b, i, h, seed=5)
    leaves = [x, h0, c0] + list(params.values())
    _assert_same(ours(x, (h0, c0)), cell_1997(x, (h0, c0), **params), leaves, leaves, seed=4)
    # without a state: zeros
    _assert_same(ours(x), cell_1997(x, (torch.zeros(b, h, dtype=torch.float64),) * 2, **params),
                 [x], [x], seed=4)


def test_gate_off_ignores_the_forget_rows_exactly():
    """Whatever the forget rows hold, the 1997 cell's output is bit for bit the same, and those
    rows get exactly zero gradient: f is held at 1, not at sigmoid(something large)."""
    torch.manual_seed(0)
    i, h = 5, 4
    a = ForgetLSTMCell(i, h, forget_gate=False).double()
    b = ForgetLSTMCell(i, h, forget_gate=False).double()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(b, name)[h:2 * h] = 50 * torch.randn_like(getattr(b, name)[h:2 * h])
    x, h0, c0, _ = _inputs(3, i, h, seed=9, c_scale=30.0)
    out_a, out_b = a(x, (h0, c0)), b(x, (h0, c0))
    assert torch.equal(out_a[0], out_b[0]) and torch.equal(out_a[1], out_b[1])
    sum(o.sum() for o in out_b).backward()
    for p in b.parameters():
        assert torch.equal(p.grad[h:2 * h], torch.zeros_like(p.grad[h:2 * h]))
        assert p.grad.abs().sum() > 0


@pytest.mark.parametrize("forget_gate", [True, False])
def test_unrolled_against_the_oracles(forget_gate):
    """Forty steps from a large cell state, float64: states and gradients through every step."""
    torch.manual_seed(11)
    t, b, i, h = 40, 2, 3, 4
    ours = ForgetLSTMCell(i, h, forget_gate=forget_gate).double()
    theirs = nn.LSTMCell(i, h).double()
    theirs.load_state_dict(ours.state_dict())
    x, h0, c0, g = _inputs(b, i, h, seed=12, c_scale=20.0)
    xs = torch.randn(t, b, i, dtype=torch.float64, generator=g, requires_grad=True)

    def run(step):
        state, hs, cs = (h0, c0), [], []
        for x_t in xs:
            state = step(x_t, state)
            hs.append(state[0])
            cs.append(state[1])
        return torch.stack(hs), torch.stack(cs)

    if forget_gate:
        want = run(theirs)
        leaves_b = [xs, h0, c0] + list(theirs.parameters())
    else:
        params = dict(ours.named_parameters())
        want = run(lambda x_t, s: cell_1997(x_t, s, **params))
        leaves_b = [xs, h0, c0] + list(params.values())
    got = run(ours)
    _assert_same(got, want, [xs, h0, c0] + list(ours.parameters()), leaves_b, seed=13,
                 rtol=1e-10, atol=1e-11)


def test_gate_on_forgets_and_gate_off_does_not():
    """Same weights: with the gate on, a huge initial cell state decays; with it off, it stays."""
    torch.manual_seed(3)
    on = ForgetLSTMCell(2, 3, forget_gate=True).double()
    off = ForgetLSTMCell(2, 3, forget_gate=False).double()
    off.load_state_dict(on.state_dict())
    state_on = state_off = (torch.zeros(1, 3, dtype=torch.float64),
                            torch.full((1, 3), 1000.0, dtype=torch.float64))
    with torch.no_grad():
        for _ in range(50):
            x = torch.randn(1, 2, dtype=torch.float64)
            state_on, state_off = on(x, state_on), off(x, state_off)
    assert float(state_on[1].abs().max()) < 10
    assert float(state_off[1].abs().min()) > 950


# -- the grammar, against a regular expression and an enumeration -----------------------------

_FROM_3 = "T*V(?:PXT*V)*(?:V|PS)"  # from state 3 to the end of the plain string, minus E
PLAIN = re.compile(f"B(?:TS*X(?:S|X{_FROM_3})|P{_FROM_3})E")
EMBEDDED = re.compile(f"B(?:T{PLAIN.pattern}T|P{PLAIN.pattern}P)E")


def _all_plain(max_len):
    return [s for k in range(max_len - 1) for m in itertools.product("TSXPV", repeat=k)
            if PLAIN.fullmatch(s := "B" + "".join(m) + "E")]


PLAIN_10 = _all_plain(10)
EMBEDDED_14 = [f"B{b}{s}{b}E" for s in PLAIN_10 for b in "TP"]


@pytest.mark.parametrize("embedded", [False, True])
def test_master_grammar_against_enumeration(embedded):
    strings, longest = (EMBEDDED_14, 8) if embedded else (PLAIN_10, 6)  # see test_data_reber
    prefixes = {s[:k] for s in strings for k in range(min(len(s), longest) + 1)}
    prefixes |= {p + a for p in list(prefixes) for a in "BTSXPVEQ"}
    for p in sorted(q for q in prefixes if len(q) <= longest):
        want = {s[len(p)] for s in strings if len(s) > len(p) and s.startswith(p)}
        assert reber_next(p, embedded=embedded) == want, p
    regex = EMBEDDED if embedded else PLAIN
    for s in strings + sorted(prefixes):
        assert is_reber(s, embedded=embedded) is (regex.fullmatch(s) is not None), s


@pytest.mark.parametrize("embedded", [False, True])
def test_master_sampler_is_grammatical_and_seeded(embedded):
    regex = EMBEDDED if embedded else PLAIN
    g = torch.Generator().manual_seed(0)
    draws = [sample_reber(g, embedded=embedded) for _ in range(400)]
    assert all(regex.fullmatch(s) for s in draws)
    assert len(set(draws)) > 50
    g = torch.Generator().manual_seed(0)
    assert [sample_reber(g, embedded=embedded) for _ in range(400)] == draws
