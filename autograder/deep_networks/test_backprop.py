"""Hidden checks for unit 1.1 `backprop` (Rumelhart, Hinton & Williams, 1986).

The learner's ``sigmoid``, ``forward_backward`` and ``momentum_step`` are compared with the
master on seeded inputs: networks of many shapes (batch 1, single units, square and
non-square layers, the XOR and 8-3-8 shapes), float32 and float64. The hand-computed
gradients are also compared, in the grader's process, with what torch's autograd gives for the
same loss in float64. The update rule is checked on one step (inputs left unchanged), on a
trajectory of fixed gradients, and inside a grader-owned training loop
(``course/grading/drivers/backprop.py``), which must also solve XOR from a fixed seed.
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

UNIT = "backprop"

FORBIDDEN = [
    # Back-propagation by hand is the exercise: no autograd anywhere in the learner's code.
    Forbid(
        calls=AUTOGRAD_CALLS,
    ),
    # The engine however reached (its own run_backward too), seen through the profiler; only
    # where gradients are graded, since profiling the 1,500-step XOR loop costs seconds.
    Forbid(aten=(AUTOGRAD_ENGINE,), within=("forward_backward",)),
    # The logistic function is one line of elementary operations: write it.
    Forbid(
        calls=(
            "torch.sigmoid",
            "torch.Tensor.sigmoid",
            "torch.Tensor.sigmoid_",
            "torch.special.expit",
            "torch.nn.functional.sigmoid",
            "torch.nn.Sigmoid",
        ),
        aten=("sigmoid", "sigmoid_backward"),
        within=("sigmoid", "forward_backward"),
    ),
]

MISTAKES = [
    Mistake(
        "derivative-at-net-input",
        "Your gradients match sigmoid'(z) computed as z·(1 − z) from the net input z (before "
        "the sigmoid). The derivative of the logistic function is y·(1 − y) with y = σ(z), the "
        "unit's OUTPUT: use out·(1 − out) and hidden·(1 − hidden).",
        {
            "error * out * (1 - out) / batch": "error * net_out * (1 - net_out) / batch",
            "* hidden * (1 - hidden)": "* net_hidden * (1 - net_hidden)",
        },
    ),
    Mistake(
        "weight-grads-transposed",
        "Your weight gradients are transposed: (I, H) and (H, O) instead of the shapes of W1 "
        "(H, I) and W2 (O, H). A weight's gradient is δ of the receiving unit times the output "
        "of the sending unit: dW1 = δ_hiddenᵀ x and dW2 = δ_outᵀ h.",
        {"delta_hidden.T @ x": "x.T @ delta_hidden",
         "delta_out.T @ hidden": "hidden.T @ delta_out"},
    ),
    Mistake(
        "backprop-through-w2-transposed",
        "Your hidden deltas match δ_out W2ᵀ (possible only because W2 is square here). W2 has "
        "shape (O, H), so the error reaches the hidden layer as δ_out W2, a (B, O) times (O, H) "
        "product.",
        {"(delta_out @ w2)": "(delta_out @ w2.T)"},
    ),
    Mistake(
        "delta-not-through-w2",
        "Your hidden deltas match δ_out · h(1 − h) with the output deltas not sent back through "
        "the weights W2. Each hidden unit is to blame in proportion to its weights to the "
        "output units: δ_hidden = (δ_out W2) · h(1 − h).",
        {"(delta_out @ w2) * hidden": "delta_out * hidden"},
    ),
    Mistake(
        "hidden-without-derivative",
        "Your hidden deltas lack the factor h(1 − h): the sigmoid's derivative is applied at "
        "the output layer only. The hidden units are sigmoids too: δ_hidden = (δ_out W2) · "
        "h(1 − h).",
        {"(delta_out @ w2) * hidden * (1 - hidden)": "(delta_out @ w2)"},
    ),
    Mistake(
        "output-without-derivative",
        "Your output deltas match (ŷ − y)/B without the factor ŷ(1 − ŷ): that is the delta of a "
        "linear output unit. Here the output units are sigmoids: δ_out = (ŷ − y) · ŷ(1 − ŷ) / B.",
        {"error * out * (1 - out) / batch": "error / batch"},
    ),
    Mistake(
        "bias-grad-not-summed",
        "Your bias gradients keep one row per pattern, shape (B, H) / (B, O). The bias is shared "
        "by every pattern of the batch, so its gradient is the sum of the deltas over the "
        "batch: shape (H,) / (O,).",
        {"delta_hidden.sum(dim=0)": "delta_hidden", "delta_out.sum(dim=0)": "delta_out"},
    ),
    Mistake(
        "no-batch-average",
        "Your loss and gradients are B times too large: they are summed over the batch and not "
        "averaged. Divide the loss, and therefore every gradient, by the batch size B.",
        {
            "loss = 0.5 * (error * error).sum() / batch": "loss = 0.5 * (error * error).sum()",
            "* (1 - out) / batch": "* (1 - out)",
        },
    ),
    Mistake(
        "grads-not-averaged",
        "Your loss is averaged over the batch, but your gradients are B times too large: they "
        "are the gradients of the summed loss. The 1/B of the loss carries into every delta.",
        {"* (1 - out) / batch": "* (1 - out)"},
    ),
    Mistake(
        "loss-without-half",
        "Your loss is twice the expected value: the factor ½ is missing. The paper's error is "
        "E = ½ Σ (ŷ − y)², whose derivative is simply (ŷ − y).",
        {"loss = 0.5 * (error * error).sum() / batch": "loss = (error * error).sum() / batch"},
    ),
    Mistake(
        "momentum-sign-flipped",
        "Your update subtracts the momentum term: −lr·g − momentum·Δw(t−1). The previous change "
        "is ADDED, so that steps in a consistent direction build up speed: Δw(t) = −lr·g + "
        "momentum·Δw(t−1).",
        {"step = -lr * grads[name] + momentum * velocity[name]":
         "step = -lr * grads[name] - momentum * velocity[name]"},
    ),
    Mistake(
        "lr-on-momentum-term",
        "Your update multiplies the momentum term by the learning rate too: −lr·(g + momentum·"
        "Δw(t−1)). The velocity already holds a weight change, so it is added as it is: Δw(t) "
        "= −lr·g + momentum·Δw(t−1).",
        {"step = -lr * grads[name] + momentum * velocity[name]":
         "step = -lr * (grads[name] + momentum * velocity[name])"},
    ),
    Mistake(
        "velocity-not-updated",
        "Your new velocity is the old one passed back unchanged. Return the change you just "
        "made, Δw(t), as the new velocity: the next step needs it.",
        {"new_velocity[name] = step": "new_velocity[name] = velocity[name]"},
    ),
    Mistake(
        "params-updated-in-place",
        "Your momentum_step changed the parameter tensors it was given (an in-place update such "
        "as w += step or w.add_(...)). Build new tensors (w + step) and leave the inputs as they "
        "were.",
        {"new_params[name] = w + step": "new_params[name] = w.add_(step)"},
    ),
    Mistake(
        "sigmoid-overflow",
        "Your sigmoid gives NaN for very large inputs: exp(x) / (1 + exp(x)) is inf / inf once "
        "exp(x) overflows. Write it as 1 / (1 + exp(−x)), which tends to 0 or 1 without NaN.",
        {"1.0 / (1.0 + torch.exp(-x))": "torch.exp(x) / (1.0 + torch.exp(x))"},
    ),
]


# (B, I, H, O): square W2 (H == O), XOR, the 8-3-8 encoder, batch 1, single units, others
NETS = [
    (5, 3, 4, 4),
    (4, 2, 2, 1),
    (8, 8, 3, 8),
    (1, 3, 4, 2),
    (1, 1, 1, 1),
    (3, 1, 1, 1),
    (6, 5, 7, 3),
    (2, 4, 3, 1),
]


def _params(grader, i, h, o, dtype, scale=1.0):
    return {
        "W1": grader.randn(h, i, dtype=dtype, scale=scale),
        "b1": grader.randn(h, dtype=dtype, scale=scale),
        "W2": grader.randn(o, h, dtype=dtype, scale=scale),
        "b2": grader.randn(o, dtype=dtype, scale=scale),
    }


def _problem(grader, b, i, h, o, dtype):
    params = _params(grader, i, h, o, dtype)
    x = grader.randn(b, i, dtype=dtype)
    y = grader.rand(b, o, dtype=dtype)
    return params, x, y


def _case(b, i, h, o, dtype):
    return f"forward_backward on a {i}-{h}-{o} network, batch {b}, {_dt(dtype)}"


def _xor(dtype):
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=dtype)
    y = torch.tensor([[0.0], [1.0], [1.0], [0.0]], dtype=dtype)
    return x, y


def _autograd_reference(params, x, y):
    """Loss and gradients by torch's autograd, in float64, in the grader's own process."""
    leaves = {k: v.detach().double().requires_grad_(True) for k, v in params.items()}
    x, y = x.double(), y.double()
    hidden = torch.sigmoid(x @ leaves["W1"].T + leaves["b1"])
    out = torch.sigmoid(hidden @ leaves["W2"].T + leaves["b2"])
    loss = 0.5 * ((out - y) ** 2).sum() / x.shape[0]
    grads = torch.autograd.grad(loss, [leaves[k] for k in leaves])
    return loss.detach(), dict(zip(leaves, grads))


# -- sigmoid --------------------------------------------------------------------------------
@check(points=1, public=True, task="sigmoid")
def test_sigmoid(grader):
    """sigmoid matches 1 / (1 + exp(-x)) on many shapes, float32 and float64"""
    for shape in [(5,), (3, 4), (2, 3, 2), (1,), ()]:
        for dtype in DTYPES:
            x = grader.randn(*shape, dtype=dtype, scale=4.0)
            grader.compare(Call("sigmoid", (x,)), case=f"sigmoid(x{list(shape)}), {_dt(dtype)}")


@check(points=1, task="sigmoid")
def test_sigmoid_saturates(grader):
    """sigmoid gives 0 and 1, never NaN, for inputs as large as ±1000"""
    for dtype in DTYPES:
        extreme = torch.tensor([1000.0, -1000.0, 800.0, -800.0], dtype=dtype)
        x = torch.cat([grader.randn(6, dtype=dtype, scale=3.0), extreme]).reshape(2, 5)
        grader.compare(Call("sigmoid", (x,)), case=f"sigmoid of inputs up to ±1000, {_dt(dtype)}")


# -- forward_backward ------------------------------------------------------------------------
@check(points=3, public=True, task="forward_backward")
def test_forward_backward(grader):
    """loss and hand-computed gradients match the reference on many network shapes"""
    for b, i, h, o in NETS:
        for dtype in DTYPES:
            params, x, y = _problem(grader, b, i, h, o, dtype)
            grader.compare(Call("forward_backward", (params, x, y)), case=_case(b, i, h, o, dtype))


@check(points=2, task="forward_backward")
def test_gradients_equal_autograd(grader):
    """the gradients equal torch autograd's gradients of the same loss (float64)"""
    for b, i, h, o in [(4, 2, 2, 1), (1, 3, 5, 2), (7, 4, 3, 6), (5, 3, 4, 4)]:
        for dtype in DTYPES:
            params, x, y = _problem(grader, b, i, h, o, dtype)
            case = _case(b, i, h, o, dtype)
            got = grader.compare(Call("forward_backward", (params, x, y)), case=case)
            loss, grads = got.out
            want_loss, want_grads = _autograd_reference(params, x, y)
            rtol, atol = Tolerance().for_dtype(dtype)
            grader.require(
                torch.allclose(loss.double(), want_loss, rtol=rtol, atol=atol),
                f"{case}: your loss {float(loss):.6g} differs from autograd's "
                f"{float(want_loss):.6g}",
            )
            for name, want in want_grads.items():
                have = grads[name].double()
                grader.require(
                    torch.allclose(have, want, rtol=rtol, atol=atol),
                    f"{case}: your gradient w.r.t. {name} differs from autograd's by up to "
                    f"{float((have - want).abs().max()):.3g}",
                )


@check(points=1, task="forward_backward")
def test_batch_average(grader):
    """repeating every pattern of a batch leaves the (averaged) loss and gradients unchanged"""
    for b, i, h, o in [(3, 2, 3, 1), (2, 4, 2, 3)]:
        dtype = torch.float64
        params, x, y = _problem(grader, b, i, h, o, dtype)
        case = _case(b, i, h, o, dtype)
        once = grader.compare(Call("forward_backward", (params, x, y)), case=case)
        twice = grader.compare(
            Call("forward_backward", (params, x.repeat(2, 1), y.repeat(2, 1))),
            case=f"{case}, every pattern twice",
        )
        a = [once.out[0]] + [once.out[1][k] for k in ("W1", "b1", "W2", "b2")]
        c = [twice.out[0]] + [twice.out[1][k] for k in ("W1", "b1", "W2", "b2")]
        grader.require(
            all(torch.allclose(u, v, rtol=1e-9, atol=1e-12) for u, v in zip(a, c)),
            f"{case}: repeating the batch changed your loss or gradients; they must be "
            "averaged over the batch, not summed",
        )


# -- momentum_step ---------------------------------------------------------------------------
@check(points=2, public=True, task="momentum_step")
def test_momentum_step(grader):
    """one step: Δw = -lr·g + momentum·Δw_prev, new dicts, inputs left unchanged"""
    for (i, h, o), lr, momentum in [((2, 2, 1), 0.5, 0.9), ((3, 4, 2), 0.1, 0.0),
                                    ((1, 1, 1), 2.0, 0.5), ((8, 3, 8), 0.25, 0.95)]:
        for dtype in DTYPES:
            params = _params(grader, i, h, o, dtype)
            grads = _params(grader, i, h, o, dtype)
            velocity = _params(grader, i, h, o, dtype, scale=0.1)
            grader.compare(
                Call("momentum_step", (params, grads, velocity, lr, momentum), after=(0, 1, 2)),
                case=f"momentum_step on a {i}-{h}-{o} network, lr={lr}, momentum={momentum}, "
                f"{_dt(dtype)} (outputs, and the inputs after the call)",
            )


@check(points=2, task="momentum_step")
def test_momentum_trajectory(grader):
    """ten steps from zero velocity on fixed gradients follow the reference trajectory"""
    for (i, h, o), lr, momentum in [((2, 3, 1), 0.5, 0.9), ((4, 2, 3), 1.5, 0.6)]:
        for dtype in DTYPES:
            params = _params(grader, i, h, o, dtype)
            grad_seq = [_params(grader, i, h, o, dtype) for _ in range(10)]
            grader.compare(
                Call("@backprop.momentum_trajectory", (params, grad_seq, lr, momentum)),
                case=f"10 momentum steps on fixed gradients, {i}-{h}-{o}, lr={lr}, "
                f"momentum={momentum}, {_dt(dtype)}",
            )


# -- the two together ------------------------------------------------------------------------
@check(points=2, task="momentum_step")
def test_training_steps(grader):
    """30 steps of the training loop (your gradients and updates) follow the reference"""
    for (b, i, h, o), dtype in [((4, 2, 2, 1), torch.float64), ((4, 2, 2, 1), torch.float32),
                                ((8, 8, 3, 8), torch.float64), ((5, 3, 4, 4), torch.float32)]:
        if (b, i) == (4, 2):
            x, y = _xor(dtype)
        elif b == i:
            x, y = torch.eye(b, dtype=dtype), torch.eye(b, dtype=dtype)
        else:
            x, y = grader.randn(b, i, dtype=dtype), grader.rand(b, o, dtype=dtype)
        params = _params(grader, i, h, o, dtype)
        grader.compare(
            Call("@backprop.train", (params, x, y), {"lr": 2.0, "momentum": 0.9, "steps": 30}),
            case=f"30 training steps on a {i}-{h}-{o} network, lr=2, momentum=0.9, "
            f"{_dt(dtype)}",
            tol=Tolerance(scale=10.0),
        )


XOR_SEED = 0
XOR_STEPS = 1500
XOR_LOSS = 0.01


@check(points=3, task="forward_backward")
def test_xor_solved(grader):
    """a grader-owned loop with your forward_backward and momentum_step solves XOR (2-2-1)"""
    gen = torch.Generator().manual_seed(XOR_SEED)
    params = {k: torch.rand(*s, generator=gen) * 2 - 1
              for k, s in {"W1": (2, 2), "b1": (2,), "W2": (1, 2), "b2": (1,)}.items()}
    x, y = _xor(torch.float32)
    case = (f"{XOR_STEPS} full-batch steps of your training loop on XOR, a 2-2-1 network from "
            f"seed {XOR_SEED}, lr=2, momentum=0.9, float32")
    got = grader.learner(
        Call("@backprop.train", (params, x, y), {"lr": 2.0, "momentum": 0.9, "steps": XOR_STEPS}),
        case,
    )
    final = {k: v.double() for k, v in got.out["params"].items()}

    grader.require(
        set(final) == {"W1", "b1", "W2", "b2"}, f"{case}: the final parameters lost their keys"
    )
    hidden = torch.sigmoid(x.double() @ final["W1"].T + final["b1"])
    out = torch.sigmoid(hidden @ final["W2"].T + final["b2"])
    loss = float(0.5 * ((out - y.double()) ** 2).sum() / 4)
    wrong = int(((out > 0.5).double() != y.double()).sum())
    grader.require(
        wrong == 0 and loss < XOR_LOSS,
        f"{case}: after training, {wrong} of the 4 patterns are on the wrong side of 0.5 and the "
        f"loss is {loss:.4g} (needed: all 4 right and loss < {XOR_LOSS}). From this seed "
        "correct gradients and updates solve XOR well within the budget.",
    )
