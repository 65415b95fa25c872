"""Hidden checks for unit 3.2 `lstm` (Hochreiter & Schmidhuber, 1997; forget gate of Gers,
Schmidhuber & Cummins, 2000).

Every check compares the learner's code with the master solution, which equals
``torch.nn.LSTMCell`` (forward and gradients, checked in float64 when the unit was written),
on seeded inputs: modules built from a copied state dict, several sizes including batch 1,
H = 1 and T = 1, float32 and float64, with and without an initial state and with bias off. On a
mismatch the learner's output is looked up in the mistake bank below. Gradients w.r.t. the
state are checked through the unrolled sequence: d/dxs of ``lstm_forward`` flows through every
(h, c) that a step hands to the next.
"""

import math

import torch

from course.grading.cell_checks import require_layout, require_uniform_init
from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import (
    LSTM_ATEN,
    LSTM_CALLS,
    Call,
    Fixture,
    Forbid,
    Inspect,
    Make,
    Mistake,
    check,
)
from course.grading.dsl import dtype_word as _dt

UNIT = "lstm"

FORBIDDEN = [
    Forbid(calls=LSTM_CALLS, aten=LSTM_ATEN),
]

MISTAKES = [
    Mistake(
        "gate-order-fi",
        "Your output matches the cell with the input and forget gates swapped. PyTorch's layout "
        "is input, forget, cell, output: rows 0:H of the stacked weights are the input gate, "
        "rows H:2H the forget gate.",
        {"i, f, g, o = gates.chunk(4, dim=1)": "f, i, g, o = gates.chunk(4, dim=1)"},
    ),
    Mistake(
        "gate-order-ifog",
        "Your output matches the gate order input, forget, output, cell (i, f, o, g). PyTorch "
        "stacks the candidate before the output gate: i, f, g, o.",
        {"i, f, g, o = gates.chunk(4, dim=1)": "i, f, o, g = gates.chunk(4, dim=1)"},
    ),
    Mistake(
        "candidate-sigmoid",
        "Your output matches a sigmoid on the candidate g. The three gates use the sigmoid, "
        "but the candidate uses tanh, so that it can also lower the cell state.",
        {"g = torch.tanh(g)": "g = torch.sigmoid(g)"},
    ),
    Mistake(
        "no-tanh-on-cell",
        "Your output matches h = o·c, without the tanh. Squash the cell state before the "
        "output gate: h = o·tanh(c).",
        {"h = o * torch.tanh(c)": "h = o * c"},
    ),
    Mistake(
        "h-from-old-cell",
        "Your output matches h = o·tanh(c_prev), computed from the previous cell state. "
        "Update the cell first, then read it out: h = o·tanh(c_new).",
        {"h = o * torch.tanh(c)": "h = o * torch.tanh(c_prev)"},
    ),
    Mistake(
        "no-forget-gate",
        "Your output matches c = c_prev + i·g, the 1997 cell without a forget gate. "
        "Multiply the previous cell state by the forget gate: c = f·c_prev + i·g.",
        {"c = f * c_prev + i * g": "c = c_prev + i * g"},
    ),
    Mistake(
        "no-input-gate",
        "Your output matches c = f·c_prev + g: the candidate enters the cell without the "
        "input gate. Use c = f·c_prev + i·g.",
        {"c = f * c_prev + i * g": "c = f * c_prev + g"},
    ),
    Mistake(
        "dropped-bias-hh",
        "Your output matches the cell with bias_hh left out. nn.LSTMCell adds both biases, "
        "bias_ih and bias_hh, to the gate pre-activations.",
        {"gates = gates + self.bias_ih + self.bias_hh": "gates = gates + self.bias_ih"},
    ),
    Mistake(
        "dropped-bias-ih",
        "Your output matches the cell with bias_ih left out. nn.LSTMCell adds both biases, "
        "bias_ih and bias_hh, to the gate pre-activations.",
        {"gates = gates + self.bias_ih + self.bias_hh": "gates = gates + self.bias_hh"},
    ),
    Mistake(
        "returns-c-h",
        "Your output matches a cell that returns (c, h). Return the pair in the order "
        "(h, c), as nn.LSTMCell does.",
        {"return h, c\n": "return c, h\n"},
    ),
    Mistake(
        "state-not-carried",
        "Your outputs match every step starting again from the initial state. Feed the "
        "(h, c) that a step returns into the next step.",
        {"        state = (h_t, c_t)\n": ""},
    ),
    Mistake(
        "state-detached",
        "Your outputs are right but your gradients match a state detached between steps "
        "(truncated back-propagation). Pass (h, c) on without .detach() so that gradients "
        "flow through every step.",
        {"state = (h_t, c_t)": "state = (h_t.detach(), c_t.detach())"},
    ),
    Mistake(
        "outputs-are-c",
        "Your outputs match the stacked cell states c_t. The outputs are the hidden states "
        "h_t; c_t only appears in the final state.",
        {"outputs.append(h_t)": "outputs.append(c_t)"},
    ),
    Mistake(
        "stack-batch-first",
        "Your outputs match the hidden states stacked batch first, (B, T, H). Stack along a "
        "new first dimension: outputs has shape (T, B, H).",
        {"torch.stack(outputs)": "torch.stack(outputs, dim=1)"},
    ),
]

# (B, I, H): batch 1, H = 1, I > H and I < H
SIZES = [(4, 3, 5), (1, 1, 1), (2, 6, 4), (1, 8, 16), (3, 2, 7)]
FEW_SIZES = [(4, 3, 5), (1, 1, 1), (1, 8, 16)]


def _weights(grader, i, h, dtype, bias=True):
    """A state dict of nn.LSTMCell(i, h, bias) with entries of order 1/sqrt(h)."""
    scale = 1.0 / math.sqrt(h)
    state = {
        "weight_ih": grader.randn(4 * h, i, dtype=dtype, scale=scale),
        "weight_hh": grader.randn(4 * h, h, dtype=dtype, scale=scale),
    }
    if bias:
        state["bias_ih"] = grader.randn(4 * h, dtype=dtype, scale=scale)
        state["bias_hh"] = grader.randn(4 * h, dtype=dtype, scale=scale)
    return state


def _cell(grader, i, h, dtype, bias=True):
    kwargs = {} if bias else {"bias": False}
    return Make("LSTMCell", (i, h), kwargs, state_dict=_weights(grader, i, h, dtype, bias),
                dtype=dtype)


def _stand_in(grader, i, h, dtype):
    """A correct cell owned by the grader (:class:`StandInLSTMCell`), so that the checks of
    ``lstm_forward`` grade the unrolling alone."""
    return Fixture("StandInLSTMCell", _weights(grader, i, h, dtype, True))


def _state(grader, b, h, dtype):
    return (grader.randn(b, h, dtype=dtype, scale=0.5), grader.randn(b, h, dtype=dtype))


@check(points=1, public=True, task="LSTMCell")
def test_parameters(grader):
    """LSTMCell has the parameter names and shapes of torch.nn.LSTMCell, with and without bias"""
    for i, h in [(3, 5), (1, 1), (7, 2)]:
        for bias in (True, False):
            require_layout(
                grader, Inspect(Make("LSTMCell", (i, h), {"bias": bias})),
                f"LSTMCell({i}, {h}, bias={bias})",
                "Use the names and shapes of torch.nn.LSTMCell: weight_ih (4H, I), "
                "weight_hh (4H, H), bias_ih and bias_hh (4H,), the biases only when "
                "bias=True, and no buffers.",
            )


@check(points=1, task="LSTMCell")
def test_init(grader):
    """every parameter is initialised uniformly in [-1/sqrt(H), 1/sqrt(H)]"""
    for i, h in [(8, 16), (2, 6)]:
        require_uniform_init(grader, Inspect(Make("LSTMCell", (i, h))),
                             f"LSTMCell({i}, {h}) as constructed", h, "torch.nn.LSTMCell")


@check(points=2, public=True, task="LSTMCell")
def test_cell_forward(grader):
    """one LSTMCell step with copied weights and a given state matches nn.LSTMCell"""
    for b, i, h in SIZES:
        for dtype in DTYPES:
            x = grader.randn(b, i, dtype=dtype)
            grader.compare(
                Call(_cell(grader, i, h, dtype), (x, _state(grader, b, h, dtype))),
                case=f"LSTMCell({i}, {h}) on x[{b}, {i}] with state (h, c), {_dt(dtype)}",
            )


@check(points=1, public=True, task="LSTMCell")
def test_cell_zero_state(grader):
    """LSTMCell starts from h = c = 0 when no state is given"""
    for b, i, h in FEW_SIZES:
        for dtype in DTYPES:
            x = grader.randn(b, i, dtype=dtype)
            grader.compare(
                Call(_cell(grader, i, h, dtype), (x,)),
                case=f"LSTMCell({i}, {h}) on x[{b}, {i}] without state, {_dt(dtype)}",
            )


@check(points=2, task="LSTMCell")
def test_cell_gradients(grader):
    """LSTMCell gradients w.r.t. the input, the state and every parameter"""
    for b, i, h in FEW_SIZES:
        for dtype in DTYPES:
            x = grader.randn(b, i, dtype=dtype)
            grader.compare(
                Call(_cell(grader, i, h, dtype), (x, _state(grader, b, h, dtype)),
                     grad=(0, (1, 0), (1, 1), "params")),
                case=f"d/dx, d/dh0, d/dc0, d/dparams of LSTMCell({i}, {h}) on x[{b}, {i}], "
                f"{_dt(dtype)}",
            )
            grader.compare(
                Call(_cell(grader, i, h, dtype), (x,), grad=(0, "params")),
                case=f"d/dx, d/dparams of LSTMCell({i}, {h}) on x[{b}, {i}] without state, "
                f"{_dt(dtype)}",
            )


@check(points=1, task="LSTMCell")
def test_cell_no_bias(grader):
    """LSTMCell(bias=False): forward and gradients with copied weights"""
    for b, i, h in [(3, 4, 5), (1, 2, 3)]:
        for dtype in DTYPES:
            x = grader.randn(b, i, dtype=dtype)
            grader.compare(
                Call(_cell(grader, i, h, dtype, bias=False), (x, _state(grader, b, h, dtype)),
                     grad=(0, "params")),
                case=f"LSTMCell({i}, {h}, bias=False) on x[{b}, {i}] with state, {_dt(dtype)}",
            )


@check(points=2, public=True, task="lstm_forward")
def test_sequence_forward(grader):
    """lstm_forward with a correct stand-in cell: stacked h_t and final (h, c), with(out) state"""
    for t, b, i, h in [(1, 2, 3, 4), (6, 1, 2, 3), (5, 2, 1, 1)]:
        for dtype in DTYPES:
            xs = grader.randn(t, b, i, dtype=dtype)
            grader.compare(
                Call("lstm_forward", (_stand_in(grader, i, h, dtype), xs)),
                case=f"lstm_forward(stand-in cell({i}, {h}), xs[{t}, {b}, {i}]), {_dt(dtype)}",
            )
            grader.compare(
                Call("lstm_forward", (_stand_in(grader, i, h, dtype), xs,
                                      _state(grader, b, h, dtype))),
                case=f"lstm_forward(stand-in cell({i}, {h}), xs[{t}, {b}, {i}], (h0, c0)), "
                f"{_dt(dtype)}",
            )


@check(points=2, task="lstm_forward")
def test_sequence_gradients(grader):
    """lstm_forward with a stand-in cell: gradients w.r.t. inputs and initial state, T = 1..20"""
    b, i, h = 2, 3, 4
    for t in (1, 2, 3, 5, 8, 13, 20):
        xs = grader.randn(t, b, i, dtype=torch.float64)
        grader.compare(
            Call("lstm_forward", (_stand_in(grader, i, h, torch.float64), xs,
                                  _state(grader, b, h, torch.float64)),
                     grad=(1, (2, 0), (2, 1))),
            case=f"d/dxs, d/d(h0, c0) of lstm_forward over T = {t}, stand-in cell, float64",
        )
    for t, b, i, h in [(20, 3, 5, 8), (12, 1, 2, 6), (1, 4, 3, 2)]:
        for with_state in (False, True):
            xs = grader.randn(t, b, i, dtype=torch.float32)
            args = (_stand_in(grader, i, h, torch.float32), xs)
            if with_state:
                args += (_state(grader, b, h, torch.float32),)
            grader.compare(
                Call("lstm_forward", args, grad=(1,)),
                case=f"d/dxs of lstm_forward(stand-in cell({i}, {h}), xs[{t}, {b}, {i}])"
                f"{' with state' if with_state else ''}, float32",
            )


@check(points=1, task="lstm_forward")
def test_sequence_no_bias_batch_one(grader):
    """lstm_forward with your own LSTMCell(bias=False), batch 1, T = 20: forward and gradients"""
    for dtype in DTYPES:
        xs = grader.randn(20, 1, 3, dtype=dtype)
        grader.compare(
            Call("lstm_forward", (_cell(grader, 3, 5, dtype, bias=False), xs,
                                  _state(grader, 1, 5, dtype)), grad=(1, "params")),
            case=f"lstm_forward(LSTMCell(3, 5, bias=False), xs[20, 1, 3], (h0, c0)), "
            f"{_dt(dtype)}",
        )
