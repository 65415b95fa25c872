"""Hidden checks for unit 2.1 `weight-decay` (Krogh & Hertz, 1991).

The penalty is compared with the master solution on several collections of tensors (0-dim and
size-1 ones included, float32 and float64), with its gradient also checked against the formula
λ·p. The in-place steps are driven by grader-owned drivers (course/grading/drivers/
weight_decay.py) that set ``.grad`` on leaf tensors, call the learner's step, and report the
tensors afterwards: single steps (some tensors without a gradient), and 20-step trajectories
on a fixed small regression problem. Trajectories are compared with the master solution and,
in this process, with ``torch.optim.SGD``'s own update (the functional form its ``step``
runs); the decoupled step is also compared with its
formula. A mismatch is looked up in the mistake bank below.
"""

import torch
from torch.optim.sgd import sgd

from course.grading.compare import TOLERANCES
from course.grading.drivers.weight_decay import run_trajectory
from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Mistake, Outcome, check
from course.grading.grader import GraderError
from course.grading.probes import cotangents

UNIT = "weight-decay"

FORBIDDEN = [
    # The class is caught when built; its step and functional form by their code objects.
    Forbid(calls=("torch.optim.SGD", "torch.optim.SGD.step", "torch.optim._functional.sgd")),
]

MISTAKES = [
    Mistake(
        "penalty-no-half",
        "Your penalty matches λ·Σ‖p‖², twice the expected value. The penalty is (λ/2)·Σ‖p‖²: "
        "the ½ makes its gradient exactly λ·p.",
        {"0.5 * weight_decay * squared_norm": "weight_decay * squared_norm"},
    ),
    Mistake(
        "penalty-norm-not-squared",
        "Your penalty matches (λ/2)·Σ‖p‖ with the norms not squared. Sum the squares of the "
        "entries, ‖p‖² = Σ p_i², without a square root.",
        {"(p**2).sum()": "(p**2).sum().sqrt()"},
    ),
    Mistake(
        "penalty-mean-not-sum",
        "Your penalty matches averaging the squared entries of each tensor. ‖p‖² is their "
        "sum: use .sum(), so that every weight is penalised with the same λ whatever the size "
        "of its tensor.",
        {"(p**2).sum()": "(p**2).mean()"},
    ),
    Mistake(
        "penalty-not-a-tensor",
        "Your penalty is a Python number. Return the 0-dim tensor itself (no float(), .item() "
        "or .detach()): it has to stay connected to the parameters so that backward() adds "
        "λ·p to their gradients.",
        {"return 0.5 * weight_decay * squared_norm":
         "return (0.5 * weight_decay * squared_norm).item()"},
    ),
    Mistake(
        "decay-wrong-sign",
        "Your step matches using the gradient ∇p − λ·p, which grows the weights. Weight decay "
        "adds λ·p to the gradient, g = ∇p + λ·p, so that the step p − η·g shrinks them.",
        {"g = p.grad + weight_decay * p": "g = p.grad - weight_decay * p"},
    ),
    Mistake(
        "half-decay-in-step",
        "Your step matches adding (λ/2)·p to the gradient. The penalty is (λ/2)·‖p‖² but its "
        "gradient is λ·p: add weight_decay * p, as torch.optim.SGD does.",
        {"g = p.grad + weight_decay * p": "g = p.grad + 0.5 * weight_decay * p"},
    ),
    Mistake(
        "decay-after-step",
        "Your step matches taking the gradient step first and then decaying the already "
        "updated weights. Both terms use the weights from before the step: "
        "p ← p − η·(∇p + λ·p).",
        {"g = p.grad + weight_decay * p\n        p.sub_(lr * g)":
         "g = p.grad\n        p.sub_(lr * g)\n        p.sub_(lr * weight_decay * p)"},
    ),
    Mistake(
        "decays-params-without-grad",
        "Your step changes tensors whose .grad is None (it decays them as if their gradient "
        "were zero). torch.optim.SGD skips such tensors entirely: `continue` when p.grad is "
        "None.",
        {"        if p.grad is None:\n            continue\n        g = p.grad + weight_decay * p":
         "        grad = p.grad if p.grad is not None else torch.zeros_like(p)\n"
         "        g = grad + weight_decay * p"},
    ),
    Mistake(
        "grad-modified-in-place",
        "Your step adds λ·p into p.grad in place, so .grad no longer holds the gradient of the "
        "loss after the step. Compute g = p.grad + λ·p as a new tensor and leave p.grad "
        "alone, as torch.optim.SGD does.",
        {"g = p.grad + weight_decay * p": "g = p.grad.add_(weight_decay * p)"},
    ),
    Mistake(
        "rebinds-instead-of-in-place",
        "The caller's tensors did not change: `p = p - lr * g` only rebinds the loop variable "
        "to a new tensor. Update the tensor itself in place, e.g. p.sub_(lr * g) or "
        "p -= lr * g.",
        {"p.sub_(lr * g)": "p = p - lr * g"},
    ),
    Mistake(
        "decoupled-lr-not-on-decay",
        "Your decoupled step matches w ← w − λ·w − η·∇w: the decay is not scaled by the "
        "learning rate. Here each step removes η·λ·w: w ← w − η·λ·w − η·∇w.",
        {"w.sub_(lr * weight_decay * w + lr * w.grad)":
         "w.sub_(weight_decay * w + lr * w.grad)"},
    ),
    Mistake(
        "decoupled-decay-after-step",
        "Your decoupled step matches decaying the weights after the gradient step, from the "
        "updated weights. Both terms use the weights from before the step: "
        "w ← w − η·λ·w − η·∇w.",
        {"w.sub_(lr * weight_decay * w + lr * w.grad)":
         "w.sub_(lr * w.grad)\n        w.sub_(lr * weight_decay * w)"},
    ),
]

PARAM_SETS = [[(3, 4), (3,)], [(5,)], [()], [(1, 1)], [(2, 3, 4), (4,), (1,)]]


def _tensors(grader, shapes, dtype):
    return tuple(grader.randn(*shape, dtype=dtype) for shape in shapes)


def _problem(grader, dtype, frozen=False):
    """Starting weights (W (3, 4), b (3,), optionally an unused tensor) and data x, y."""
    shapes = [(3, 4), (3,)] + ([(2, 2)] if frozen else [])
    params = _tensors(grader, shapes, dtype)
    x = grader.randn(8, 4, dtype=dtype)
    y = grader.randn(8, 3, dtype=dtype)
    return params, x, y


def _close(got: torch.Tensor, want: torch.Tensor) -> bool:
    rtol, atol = TOLERANCES[got.dtype]
    return torch.allclose(got.double(), want.double(), rtol=rtol, atol=atol)


def _items(got: Outcome) -> list[torch.Tensor]:
    return list(got.out)


def _torch_sgd_step(params, lr, weight_decay=0.0):
    """``torch.optim.SGD(params, lr=lr, weight_decay=weight_decay).step()`` as torch runs it:
    the functional update that ``SGD.step`` calls, on the tensors that have a gradient
    (building the optimizer itself would first import torch._dynamo, over a second)."""
    with_grad = [p for p in params if p.grad is not None]
    with torch.no_grad():
        sgd(with_grad, [p.grad for p in with_grad], [None] * len(with_grad),
            weight_decay=weight_decay, momentum=0.0, lr=lr, dampening=0.0, nesterov=False,
            maximize=False)


def _against_torch_sgd(grader, probe, got, params, x, y, lr, weight_decay, what):
    """Compare the learner's trajectory (already matching the reference) with torch.optim.SGD
    run here, in float64, on the same inputs; the reference must match it too."""
    as64 = [t.double() for t in params]
    want = run_trajectory(_torch_sgd_step, as64, x.double(), y.double(), lr,
                          weight_decay=weight_decay)
    ref = grader.reference(probe)
    if not all(torch.allclose(r, w, rtol=1e-10, atol=1e-12) for r, w in zip(_items(ref), want)):
        raise GraderError("the reference trajectory differs from torch.optim.SGD")
    grader.require(
        all(_close(g, w) for g, w in zip(_items(got), want)),
        f"{what}: your trajectory differs from torch.optim.SGD's on the same problem",
    )


# -- Task 1: l2_penalty -----------------------------------------------------------------------


@check(points=2, public=True, task="l2_penalty")
def test_penalty(grader):
    """l2_penalty returns λ/2·Σ‖p‖² as a 0-dim tensor, for several collections of tensors"""
    for shapes in PARAM_SETS:
        for dtype in DTYPES:
            params = _tensors(grader, shapes, dtype)
            for wd in (0.1, 3.0):
                grader.compare(Call("l2_penalty", (params, wd)),
                               case=f"l2_penalty(shapes {shapes}, {wd}), {dtype}")
    params = _tensors(grader, [(3, 2)], torch.float64)
    grader.compare(Call("l2_penalty", (params, 0.0)), case="l2_penalty(..., 0.0)")


@check(points=2, task="l2_penalty")
def test_penalty_gradient(grader):
    """the gradient of l2_penalty w.r.t. each tensor is λ·p"""
    for shapes in PARAM_SETS:
        for dtype in DTYPES:
            params = _tensors(grader, shapes, dtype)
            wd = 0.7
            paths = tuple((0, i) for i in range(len(shapes)))
            case = f"d l2_penalty / d params, shapes {shapes}, {dtype}"
            got = grader.compare(Call("l2_penalty", (params, wd), grad=paths), case=case)
            grads = got.grads
            # the probe contracts the 0-dim output with a fixed cotangent c: grad = c·λ·p
            c = cotangents([torch.zeros((), dtype=dtype)])[0].double()
            for i, p in enumerate(params):
                grader.require(_close(grads[f"arg0.{i}"], c * wd * p.double()),
                               f"{case}: the gradient w.r.t. tensor {i} is not λ·p")


# -- Task 2: sgd_step_ ------------------------------------------------------------------------


@check(points=2, public=True, task="sgd_step_")
def test_sgd_step(grader):
    """one sgd_step_ updates the tensors in place, p ← p − η(∇p + λp), and leaves .grad alone"""
    for dtype in DTYPES:
        for shapes in ([(3, 4), (3,)], [()], [(1,)]):
            params = _tensors(grader, shapes, dtype)
            grads = _tensors(grader, shapes, dtype)
            for lr, wd in ((0.1, 0.5), (0.3, 0.05)):
                grader.compare(
                    Call("@weight_decay.one_step", ("sgd_step_", params, grads, lr),
                         {"weight_decay": wd}),
                    case=f"sgd_step_(shapes {shapes}, lr={lr}, weight_decay={wd}), {dtype}",
                )
            grader.compare(Call("@weight_decay.one_step", ("sgd_step_", params, grads, 0.1)),
                           case=f"sgd_step_(shapes {shapes}, lr=0.1) (default weight_decay)")


@check(points=2, public=True, task="sgd_step_")
def test_sgd_trajectory(grader):
    """20 steps of sgd_step_ follow torch.optim.SGD's trajectory"""
    for dtype in DTYPES:
        for lr, wd in ((0.1, 0.0), (0.1, 0.3), (0.5, 0.05)):
            params, x, y = _problem(grader, dtype)
            probe = Call("@weight_decay.trajectory", ("sgd_step_", params, x, y, lr),
                         {"weight_decay": wd})
            case = f"20 steps, lr={lr}, weight_decay={wd}, {dtype}"
            got = grader.compare(probe, case=case)
            _against_torch_sgd(grader, probe, got, params, x, y, lr, wd, case)


@check(points=1, task="sgd_step_")
def test_sgd_skips_missing_grad(grader):
    """sgd_step_ leaves tensors whose .grad is None untouched (no decay either)"""
    for dtype in DTYPES:
        params = _tensors(grader, [(3, 4), (2,), (3,)], dtype)
        grads = _tensors(grader, [(3, 4)], dtype) + (None,) + _tensors(grader, [(3,)], dtype)
        grader.compare(
            Call("@weight_decay.one_step", ("sgd_step_", params, grads, 0.1),
                 {"weight_decay": 0.5}),
            case=f"sgd_step_ with the middle tensor's .grad None, {dtype}",
        )
        params, x, y = _problem(grader, dtype, frozen=True)
        probe = Call("@weight_decay.trajectory", ("sgd_step_", params, x, y, 0.2),
                     {"weight_decay": 0.3})
        case = f"20 steps with an unused tensor, {dtype}"
        got = grader.compare(probe, case=case)
        _against_torch_sgd(grader, probe, got, params, x, y, 0.2, 0.3, case)


# -- Task 3: decoupled_decay_step_ --------------------------------------------------------------


@check(points=2, public=True, task="decoupled_decay_step_")
def test_decoupled_step(grader):
    """one decoupled_decay_step_ computes w ← w − ηλw − η∇w in place"""
    for dtype in DTYPES:
        for shapes in ([(3, 4), (3,)], [()], [(2, 1, 3)]):
            params = _tensors(grader, shapes, dtype)
            grads = _tensors(grader, shapes, dtype)
            for lr, wd in ((0.1, 0.5), (0.3, 0.05), (0.2, 0.0)):
                case = f"decoupled_decay_step_(shapes {shapes}, lr={lr}, wd={wd}), {dtype}"
                got = grader.compare(
                    Call("@weight_decay.one_step",
                         ("decoupled_decay_step_", params, grads, lr), {"weight_decay": wd}),
                    case=case,
                )
                after = list(got.out[0])

                for w_new, w, g in zip(after, params, grads):
                    want = w.double() - lr * wd * w.double() - lr * g.double()
                    grader.require(_close(w_new, want), f"{case}: differs from the formula")


@check(points=1, task="decoupled_decay_step_")
def test_decoupled_trajectory(grader):
    """20 decoupled steps skip tensors without .grad and, for SGD, equal coupled L2"""
    for dtype in DTYPES:
        params, x, y = _problem(grader, dtype, frozen=True)
        for lr, wd in ((0.1, 0.3), (0.5, 0.05)):
            probe = Call("@weight_decay.trajectory",
                         ("decoupled_decay_step_", params, x, y, lr), {"weight_decay": wd})
            case = f"20 decoupled steps, lr={lr}, weight_decay={wd}, {dtype}"
            got = grader.compare(probe, case=case)
            _against_torch_sgd(grader, probe, got, params, x, y, lr, wd, case)
