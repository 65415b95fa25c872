"""Hidden checks for unit 3.1 `rnn` (Williams & Zipser, 1989).

The learner's ``rnn_forward``, ``bptt_gradients`` and ``rtrl_gradients`` are compared with the
master on seeded inputs: sequence lengths T = 1 … 30, batch 1 and larger, H ≠ I (and H = I = 1),
random initial states, float32 and float64. The master's gradients are computed by hand (BPTT
and RTRL, no autograd); the gradient checks also compare the learner's results, in the grader's
own process, with torch autograd's gradients of the same loss in float64 (tests/
test_oracle_rnn.py checks the master against autograd the same way). Gradients through
``rnn_forward`` are taken by autograd over the learner's own operations. On a mismatch the
learner's output is looked up in the mistake bank below.
"""

import torch

from course.grading.dsl import (
    AUTOGRAD_CALLS,
    AUTOGRAD_ENGINE,
    Call,
    Forbid,
    Mistake,
    Tolerance,
    check,
)
from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import dtype_word as _dt

UNIT = "rnn"

BY_HAND = ("bptt_gradients", "rtrl_gradients")

FORBIDDEN = [
    # The library recurrent networks would make the forward pass (and BPTT) a one-liner.
    Forbid(
        calls=(
            "torch.nn.RNN",
            "torch.nn.RNNCell",
            "torch._VF.rnn_tanh",
            "torch._VF.rnn_tanh_cell",
            "torch.rnn_tanh",
            "torch.rnn_tanh_cell",
        ),
        aten=("rnn_tanh", "rnn_tanh_cell"),
    ),
    # Both gradient algorithms are the exercise: no autograd in any form inside them.
    Forbid(
        calls=AUTOGRAD_CALLS,
        aten=(AUTOGRAD_ENGINE,),  # the engine however reached (its own run_backward too)
        within=BY_HAND,
    ),
]

MISTAKES = [
    Mistake(
        "tanh-derivative-at-preactivation",
        "Your gradients match tanh' taken as 1 − a_t² at the pre-activation a_t. The "
        "derivative of tanh at a_t is 1 − tanh(a_t)² = 1 − h_t²: square the unit's OUTPUT h_t.",
        {"d = 1 - h * h": "d = 1 - a * a"},
        count=2,
    ),
    Mistake(
        "tanh-derivative-of-output",
        "Your gradients match tanh' computed as 1 − tanh(h_t)², the formula applied to the "
        "output h_t = tanh(a_t) instead of to a_t. Since h_t already is tanh(a_t), the "
        "derivative is simply 1 − h_t².",
        {"d = 1 - h * h": "d = 1 - torch.tanh(h) ** 2"},
        count=2,
    ),
    Mistake(
        "no-carry-through-w",
        "Your gradients keep only the immediate effect of each parameter at each step, as if "
        "h_{t-1} did not depend on the parameters: in RTRL the sensitivity P_t must carry the "
        "old one through W, P_t = diag(1 − h_t²)(W P_{t-1} + immediate term); in BPTT the "
        "error must flow back to h_{t-1} as Wᵀ δ_t.",
        {
            "(carried + immediate)": "(immediate)",
            "carry = delta @ W  #": "carry = torch.zeros_like(delta)  #",
        },
    ),
    Mistake(
        "w-not-transposed",
        "Your gradients match the error (or sensitivity) carried through W the wrong way "
        "round. Unit k at time t receives W_km h_{t-1}[m]: forwards in time (RTRL) the "
        "sensitivities go through W, P_t ∝ W P_{t-1}; backwards (BPTT) the error goes "
        "through the transpose, h̄_{t-1} = e_{t-1} + Wᵀ δ_t (delta @ W in row form).",
        {
            "(W @ P.reshape": "(W.T @ P.reshape",
            "carry = delta @ W  #": "carry = delta @ W.T  #",
        },
    ),
    Mistake(
        "derivative-only-on-new-term",
        "Your gradients apply tanh'(a_t) = 1 − h_t² to part of the signal only. It multiplies "
        "everything that reaches a_t: in RTRL P_t = diag(1 − h_t²)(W P_{t-1} + immediate "
        "term), both terms; in BPTT δ_t = (e_t + Wᵀ δ_{t+1}) ⊙ (1 − h_t²), the error from the "
        "future as well as the error at step t.",
        {
            "d[:, :, None, None] * (carried + immediate)":
            "carried + d[:, :, None, None] * immediate",
            "delta = (err[t] + carry) * slopes[t]": "delta = err[t] * slopes[t] + carry",
        },
    ),
    Mistake(
        "h0-term-dropped",
        "Your gradient w.r.t. W lacks the t = 1 term δ_1 h_0ᵀ (as if h_0 were zero). The "
        "first step's pre-activation a_1 = W h_0 + U x_1 + b depends on W through the given "
        "initial state h_0: use h_0 in the immediate term at t = 1.",
        {
            "prevs = [h0] + states[:-1]": "prevs = [torch.zeros_like(h0)] + states[:-1]",
            "torch.cat([h_prev, xs[t], ones]":
            "torch.cat([h_prev if t > 0 else torch.zeros_like(h0), xs[t], ones]",
        },
    ),
    Mistake(
        "w-term-uses-new-state",
        "Your gradient w.r.t. W uses h_t where h_{t-1} belongs: a_t = W h_{t-1} + U x_t + b, "
        "so the W term at step t is δ_t h_{t-1}ᵀ (the state the step started from), not "
        "δ_t h_tᵀ.",
        {
            "delta.T @ prevs[t]": "delta.T @ states[t]",
            "torch.cat([h_prev, xs[t], ones]": "torch.cat([h, xs[t], ones]",
        },
    ),
    Mistake(
        "grads-not-accumulated",
        "Your gradients keep only one time step's contribution: they are overwritten instead "
        "of summed. ∂L/∂θ sums the contributions of every step t = 1 … T.",
        {
            "grad_W += delta.T": "grad_W = delta.T",
            "grad_U += delta.T": "grad_U = delta.T",
            "grad_b += delta": "grad_b = delta",
            "grad = grad + (err": "grad = (err",
        },
    ),
    Mistake(
        "loss-not-batch-averaged",
        "Your loss and gradients are summed over the batch. Divide by the batch size B: "
        "loss = ½·Σ (h_t − y_t)² / B, and so every error e_t = (h_t − y_t) / B.",
        {"(diff * diff).sum() / B": "(diff * diff).sum()", "err = diff / B": "err = diff"},
        count=2,
    ),
    Mistake(
        "grads-not-batch-averaged",
        "Your loss is averaged over the batch but your gradients are not: the error fed into "
        "the gradients must be e_t = (h_t − y_t) / B, the derivative of the averaged loss.",
        {"err = diff / B": "err = diff"},
        count=2,
    ),
    Mistake(
        "loss-without-half",
        "Your loss is twice the expected value: the loss is ½·Σ (h_t − y_t)² / B, with the "
        "factor ½ (which makes its derivative simply (h_t − y_t) / B).",
        {"0.5 * (diff * diff)": "(diff * diff)"},
        count=2,
    ),
    Mistake(
        "recurrent-weights-transposed",
        "Your states match h_{t-1} W instead of W h_{t-1}: W[k, m] connects unit m at t − 1 "
        "to unit k at t, so in row form the step reads h_prev @ W.T.",
        {"a = h_prev @ W.T + drive[t]": "a = h_prev @ W + drive[t]"},
        count=3,
    ),
    Mistake(
        "state-not-carried",
        "Your states match every step restarting from h_0. Feed each new state h_t into the "
        "next step.",
        {"        h_prev = h\n": ""},
        count=3,
    ),
    Mistake(
        "outputs-include-h0",
        "Your output matches h_0 … h_{T-1}: the stack should hold the T new states "
        "h_1 … h_T, without the initial state.",
        {"return torch.stack(outputs)": "return torch.stack([h0] + outputs[:-1])"},
    ),
]

# (T, B, H, I): T = 1 and T = 30, batch 1, H < I, H > I, H = I = 1
SIZES = [(1, 1, 3, 2), (1, 4, 1, 1), (2, 3, 4, 5), (5, 1, 5, 2), (8, 2, 3, 4), (13, 3, 2, 1),
         (30, 2, 4, 3), (30, 1, 3, 5)]
# The gradient checks run under the profiler that watches for the autograd engine, which costs
# tens of microseconds per tensor operation: these sizes keep the hidden checks within budget.
LENGTHS = [1, 2, 4, 9, 30]  # float64, B = 2, H = 4, I = 3
SIZES_32 = [(1, 1, 3, 2), (3, 4, 1, 1), (6, 3, 4, 5), (30, 1, 2, 3)]  # float32
AUTOGRAD_SIZES = [(1, 1, 2, 3), (7, 3, 5, 2), (30, 1, 3, 4)]  # float64


def _problem(grader, t, b, h, i, dtype, h0_scale=0.5):
    """W scaled to spectral size ~1.2 so that gradients neither vanish nor explode by T = 30."""
    W = grader.randn(h, h, dtype=dtype, scale=1.2 / h ** 0.5)
    U = grader.randn(h, i, dtype=dtype, scale=1.0 / i ** 0.5)
    bias = grader.randn(h, dtype=dtype, scale=0.3)
    xs = grader.randn(t, b, i, dtype=dtype)
    h0 = grader.randn(b, h, dtype=dtype, scale=h0_scale)
    targets = grader.randn(t, b, h, dtype=dtype, scale=0.5)
    return W, U, bias, xs, h0, targets


def _case(name, t, b, h, i, dtype, extra=""):
    return f"{name} T={t} B={b} H={h} I={i}{extra}, {_dt(dtype)}"


def _autograd_reference(W, U, b, xs, h0, targets):
    """Loss and gradients by torch's autograd, in float64, in the grader's own process."""
    leaves = {k: v.detach().double().requires_grad_(True) for k, v in
              (("W", W), ("U", U), ("b", b))}
    h = h0.double()
    loss = torch.zeros((), dtype=torch.float64)
    for x_t, y_t in zip(xs.double(), targets.double()):
        h = torch.tanh(h @ leaves["W"].T + x_t @ leaves["U"].T + leaves["b"])
        loss = loss + 0.5 * ((h - y_t) ** 2).sum()
    loss = loss / xs.shape[1]
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return loss.detach(), dict(zip(leaves, grads))


def _unpack(got):
    loss, grads = got.out
    return loss, dict(grads)



def _against_autograd(grader, name, sizes):
    """The learner's loss and gradients vs the master, then vs autograd in this process."""
    dtype = torch.float64
    rtol, atol = Tolerance().for_dtype(dtype)
    for t, b, h, i in sizes:
        problem = _problem(grader, t, b, h, i, dtype)
        case = _case(name, t, b, h, i, dtype)
        loss, grads = _unpack(grader.compare(Call(name, problem), case=case))
        want_loss, want_grads = _autograd_reference(*problem)
        grader.require(
            torch.allclose(loss.double(), want_loss, rtol=rtol, atol=atol),
            f"{case}: your loss {float(loss):.10g} differs from autograd's "
            f"{float(want_loss):.10g}",
        )
        for key, want in want_grads.items():
            have = grads[key].double()
            grader.require(
                torch.allclose(have, want, rtol=rtol, atol=atol),
                f"{case}: your gradient w.r.t. {key} differs from autograd's by up to "
                f"{float((have - want).abs().max()):.3g}",
            )


# -- rnn_forward -----------------------------------------------------------------------------
@check(points=2, public=True, task="rnn_forward")
def test_forward(grader):
    """rnn_forward returns h_1 … h_T for T = 1 … 30, batch 1 and more, H ≠ I"""
    for t, b, h, i in SIZES:
        for dtype in DTYPES:
            W, U, bias, xs, h0, _ = _problem(grader, t, b, h, i, dtype)
            grader.compare(Call("rnn_forward", (W, U, bias, xs, h0)),
                           case=_case("rnn_forward", t, b, h, i, dtype))


@check(points=1, task="rnn_forward")
def test_forward_gradients(grader):
    """gradients flow through rnn_forward to W, U, b, xs and h0 (autograd over your ops)"""
    for t, b, h, i in [(1, 2, 3, 2), (6, 1, 4, 3), (20, 3, 2, 5)]:
        for dtype in DTYPES:
            W, U, bias, xs, h0, _ = _problem(grader, t, b, h, i, dtype)
            grader.compare(
                Call("rnn_forward", (W, U, bias, xs, h0), grad=(0, 1, 2, 3, 4)),
                case=_case("d/dW, d/dU, d/db, d/dxs, d/dh0 of rnn_forward", t, b, h, i, dtype),
            )


def _against_reference(grader, name: str) -> None:
    """Loss and gradients of ``name`` vs the reference: every length of LENGTHS in float64,
    then the float32 sizes."""
    for t in LENGTHS:
        problem = _problem(grader, t, 2, 4, 3, torch.float64)
        grader.compare(Call(name, problem), case=_case(name, t, 2, 4, 3, torch.float64))
    for t, b, h, i in SIZES_32:
        problem = _problem(grader, t, b, h, i, torch.float32)
        grader.compare(Call(name, problem), case=_case(name, t, b, h, i, torch.float32))


# -- bptt_gradients --------------------------------------------------------------------------
@check(points=3, public=True, task="bptt_gradients")
def test_bptt(grader):
    """bptt_gradients: loss and gradients for T = 1 … 30, batch 1 and more, H ≠ I"""
    _against_reference(grader, "bptt_gradients")


@check(points=2, task="bptt_gradients")
def test_bptt_equals_autograd(grader):
    """bptt_gradients equals torch autograd's loss and gradients (float64, T up to 30)"""
    _against_autograd(grader, "bptt_gradients", AUTOGRAD_SIZES)


# -- rtrl_gradients --------------------------------------------------------------------------
@check(points=3, public=True, task="rtrl_gradients")
def test_rtrl(grader):
    """rtrl_gradients: loss and gradients for T = 1 … 30, batch 1 and more, H ≠ I"""
    _against_reference(grader, "rtrl_gradients")


@check(points=2, task="rtrl_gradients")
def test_rtrl_equals_autograd(grader):
    """rtrl_gradients equals torch autograd's loss and gradients (float64, T up to 30)"""
    _against_autograd(grader, "rtrl_gradients", AUTOGRAD_SIZES)


@check(points=1, task="rtrl_gradients")
def test_rtrl_equals_bptt(grader):
    """rtrl_gradients and bptt_gradients agree (float64, to 1e-9 relative)"""
    for t, b, h, i in [(1, 2, 3, 2), (17, 3, 5, 2)]:
        problem = _problem(grader, t, b, h, i, torch.float64)
        rtrl = _unpack(grader.compare(Call("rtrl_gradients", problem),
                                      case=_case("rtrl_gradients", t, b, h, i, torch.float64)))
        bptt = _unpack(grader.compare(Call("bptt_gradients", problem),
                                      case=_case("bptt_gradients", t, b, h, i, torch.float64)))
        case = _case("rtrl vs bptt", t, b, h, i, torch.float64)
        pairs = [("loss", rtrl[0], bptt[0])] + [(f"gradient w.r.t. {k}", rtrl[1][k], bptt[1][k])
                                                for k in ("W", "U", "b")]
        for what, r, p in pairs:
            grader.require(
                torch.allclose(r, p, rtol=1e-9, atol=1e-12),
                f"{case}: your RTRL and BPTT {what} differ by up to "
                f"{float((r - p).abs().max()):.3g}; the two algorithms compute the same "
                "gradient and must agree up to rounding",
            )


# -- both: the loss and its batch average ------------------------------------------------------
@check(points=1, task="bptt_gradients")
def test_loss_and_batch_average(grader):
    """the loss is ½·Σ(h_t − y_t)²/B; repeating the batch leaves loss and gradients unchanged"""
    for name in BY_HAND:
        for t, b, h, i in [(6, 3, 2, 3)]:
            problem = _problem(grader, t, b, h, i, torch.float64)
            W, U, bias, xs, h0, targets = problem
            case = _case(name, t, b, h, i, torch.float64)
            once = _unpack(grader.compare(Call(name, problem), case=case))
            want_loss, _ = _autograd_reference(*problem)
            grader.require(
                torch.allclose(once[0], want_loss, rtol=1e-12, atol=0.0),
                f"{case}: your loss {float(once[0]):.12g} is not ½·Σ(h_t − y_t)²/B = "
                f"{float(want_loss):.12g}",
            )
            twice = _unpack(grader.compare(
                Call(name, (W, U, bias, xs.repeat(1, 2, 1), h0.repeat(2, 1),
                            targets.repeat(1, 2, 1))),
                case=_case(name, t, 2 * b, h, i, torch.float64, " (every sequence twice)"),
            ))
            same = torch.allclose(once[0], twice[0], rtol=1e-9, atol=1e-12) and all(
                torch.allclose(once[1][k], twice[1][k], rtol=1e-9, atol=1e-12) for k in once[1])
            grader.require(
                same,
                f"{case}: repeating every sequence of the batch changed your loss or gradients; "
                "they must be averaged over the batch (divided by B), not summed",
            )
