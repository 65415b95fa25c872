"""Hidden checks for unit 2.8 `adam` (Kingma & Ba, 2014).

Every check runs the learner's ``Adam`` through the grader-owned driver
``course/grading/drivers/adam.py``: it builds leaf parameters, computes the gradients of a fixed
loss (a quadratic in all parameters, or a small tanh MLP on fixed data), calls ``step()`` 100
times and reports every iterate (and, where asked, the optimizer state and what ``step(closure)``
returned). The reference side runs the master solution, which agrees with ``torch.optim.Adam`` /
``torch.optim.AdamW`` to about 1e-15 in float64 on these problems. On a mismatch the
trajectory is looked up in the mistake bank below.
"""

import torch

from course.grading.dsl import Call, Forbid, Mistake, check

UNIT = "adam"

FORBIDDEN = [
    Forbid(
        calls=(
            "torch.optim.Adam",
            "torch.optim.AdamW",
            "torch.optim.Adam.step",  # also AdamW's: AdamW inherits it
            "torch.optim._functional.adam",
            "torch.optim._functional.adamw",
            "torch.optim.adam.adam",
            "torch.optim.adamw.adamw",
            "torch.optim.adam._single_tensor_adam",
            "torch.optim.adam._multi_tensor_adam",
            "torch.optim.adam._fused_adam",
            "torch._fused_adam_",
            "torch._fused_adamw_",
        ),
        # No aten=(...) net: it runs every call under torch's legacy profiler, which makes a
        # 100-step trajectory about 20 times slower. The torch.* bindings of the fused kernels
        # are caught by name above.
    ),
]

MISTAKES = [
    Mistake(
        "no-bias-correction",
        "Your trajectory matches Adam without bias correction (m and v used as they are). Both "
        "averages start at zero, so early on they are too small: divide m by 1 − β₁ᵗ and v by "
        "1 − β₂ᵗ before the update.",
        {
            "m_hat = m / (1 - beta1**t)": "m_hat = m",
            "v_hat = v / (1 - beta2**t)": "v_hat = v",
        },
    ),
    Mistake(
        "m-uncorrected",
        "Your trajectory matches an update that uses the raw first moment m with the corrected "
        "second moment v̂. Use the bias-corrected m̂ = m / (1 − β₁ᵗ) in the numerator too.",
        {"lr * m_hat /": "lr * m /"},
    ),
    Mistake(
        "eps-inside-sqrt",
        "Your trajectory matches sqrt(v̂ + ε) in the denominator. Adam adds ε after the square "
        "root: m̂ / (sqrt(v̂) + ε).",
        {"torch.sqrt(v_hat) + eps": "torch.sqrt(v_hat + eps)"},
    ),
    Mistake(
        "eps-before-correction",
        "Your trajectory matches (sqrt(v) + ε) / sqrt(1 − β₂ᵗ), i.e. ε added before the bias "
        "correction (the paper's 'efficient' form). This exercise, like torch.optim.Adam, adds ε "
        "to the square root of the corrected v̂: m̂ / (sqrt(v̂) + ε).",
        {"torch.sqrt(v_hat) + eps": "(torch.sqrt(v) + eps) / (1 - beta2**t) ** 0.5"},
    ),
    Mistake(
        "no-sqrt",
        "Your trajectory matches dividing by v̂ + ε instead of sqrt(v̂) + ε. The step is "
        "m̂ / (sqrt(v̂) + ε): v̂ estimates the squared gradient, so take its square root.",
        {"torch.sqrt(v_hat) + eps": "v_hat + eps"},
    ),
    Mistake(
        "v-not-squared",
        "Your parameters match what we get when the second moment averages g instead of g²: "
        "it turns negative and its square root NaN. exp_avg_sq averages the squared gradient "
        "g * g.",
        {"(1 - beta2) * grad * grad": "(1 - beta2) * grad"},
    ),
    Mistake(
        "betas-swapped",
        "Your trajectory matches β₁ and β₂ swapped. β₁ (0.9 by default) is the decay of the "
        "gradient average m, β₂ (0.999) that of the squared-gradient average v.",
        {"beta1, beta2 = group[\"betas\"]": "beta2, beta1 = group[\"betas\"]"},
    ),
    Mistake(
        "step-from-zero",
        "Your parameters turn NaN at the first update, as when the bias correction uses t = 0: "
        "1 − β⁰ = 0 and the division gives inf / inf. Increment state['step'] before the "
        "correction, so that the first update uses t = 1.",
        {
            "state[\"step\"] += 1\n                t = state[\"step\"]":
            "t = state[\"step\"]\n                state[\"step\"] += 1"
        },
    ),
    Mistake(
        "step-starts-at-one",
        "Your trajectory matches a step counter that starts at 1 and is incremented before the "
        "first update, so the corrections use t + 1. Start state['step'] at 0: the first update "
        "has t = 1.",
        {"state[\"step\"] = 0": "state[\"step\"] = 1"},
    ),
    Mistake(
        "decay-modes-swapped",
        "Your trajectory matches L2 and decoupled weight decay swapped. decoupled=False adds "
        "λ·p to the gradient (torch.optim.Adam); decoupled=True shrinks p ← p − lr·λ·p and "
        "leaves the gradient alone (torch.optim.AdamW).",
        {"if group[\"decoupled\"]:": "if not group[\"decoupled\"]:"},
    ),
    Mistake(
        "decoupled-without-lr",
        "Your trajectory matches decoupled decay p ← p − λ·p without the learning rate. AdamW "
        "scales the decay by the learning rate: p ← p − lr·λ·p.",
        {"p.mul_(1 - lr * weight_decay)": "p.mul_(1 - weight_decay)"},
    ),
    Mistake(
        "lr-not-per-group",
        "Your trajectory matches every group using the constructor's learning rate. Read the "
        "hyperparameters from each group (group['lr'], ...): groups may override them.",
        {"lr, eps, weight_decay = group[\"lr\"]": "lr, eps, weight_decay = self.defaults[\"lr\"]"},
    ),
    Mistake(
        "decoupled-not-per-group",
        "Your trajectory matches every group using the constructor's decay mode. `decoupled` "
        "is a per-group option like lr: read it from each group (group['decoupled']), as one "
        "group may use L2 decay and another decoupled decay.",
        {"if group[\"decoupled\"]:": "if self.defaults[\"decoupled\"]:"},
    ),
    Mistake(
        "none-grad-as-zero",
        "Your trajectory matches treating a missing gradient (p.grad is None) as zero, so the "
        "parameter keeps moving on its old momentum. Skip such parameters entirely: no "
        "update, no state change.",
        {
            "if p.grad is None:\n                    continue\n                grad = p.grad":
            "grad = p.grad if p.grad is not None else torch.zeros_like(p)"
        },
    ),
    Mistake(
        "not-in-place",
        "Your optimizer state moves but the parameters never change: `p = p - ...` only rebinds "
        "a local name. Update the parameter in place (p.sub_(...), p.add_(...)).",
        {"p.sub_(lr * m_hat / (torch.sqrt(v_hat) + eps))":
         "p = p - lr * m_hat / (torch.sqrt(v_hat) + eps)"},
    ),
    Mistake(
        "closure-loss-dropped",
        "step(closure) returned None: return what the closure returned (the loss).",
        {"        return loss\n": "        return None\n"},
    ),
]

STEPS = 100


def _quadratic(grader, n, dtype=torch.float64, quartic=0.0):
    """A well-conditioned positive definite quadratic in n variables (plus c·Σx⁴)."""
    q = grader.randn(n, n)
    a = q @ q.T / n + 0.2 * torch.eye(n, dtype=torch.float64)
    problem = {"kind": "quadratic", "A": a.to(dtype), "b": grader.randn(n, dtype=dtype)}
    if quartic:
        problem["quartic"] = quartic
    return problem


def _params(grader, shapes, dtype=torch.float64, scale=1.0):
    return [grader.randn(*s, dtype=dtype, scale=scale) for s in shapes]


def _mlp(grader, dtype=torch.float64, n=16, d=3, hidden=5, k=2):
    problem = {
        "kind": "mlp",
        "x": grader.randn(n, d, dtype=dtype),
        "y": grader.randn(n, k, dtype=dtype),
    }
    params = [
        grader.randn(hidden, d, dtype=dtype, scale=0.5),
        grader.randn(hidden, dtype=dtype, scale=0.1),
        grader.randn(k, hidden, dtype=dtype, scale=0.5),
        grader.randn(k, dtype=dtype, scale=0.1),
    ]
    return problem, params


def _run(problem, params, steps=STEPS, **kwargs):
    return Call("@adam.trajectory", (problem, params, steps), kwargs)


@check(points=2, public=True, task="Adam")
def test_quadratic(grader):
    """100 steps on quadratics follow torch.optim.Adam's trajectory (float64)"""
    problem = _quadratic(grader, 5)
    grader.compare(_run(problem, _params(grader, [(5,)])), case="Adam() on one (5,) parameter")
    problem = _quadratic(grader, 7)
    grader.compare(
        _run(problem, _params(grader, [(3,), (2, 2)]), lr=0.05),
        case="Adam(lr=0.05) on parameters (3,) and (2, 2)",
    )


@check(points=1, public=True, task="Adam")
def test_state(grader):
    """state[p] holds step, exp_avg and exp_avg_sq with torch's values"""
    problem = _quadratic(grader, 6)
    params = _params(grader, [(4,), (1, 2)])
    for steps in (1, STEPS):
        grader.compare(
            _run(problem, params, steps, report_state=True, lr=0.05),
            case=f"state after {steps} step(s)",
        )


@check(points=1, task="Adam")
def test_hyperparameters(grader):
    """betas, a large eps and a large lr are used as in torch.optim.Adam"""
    problem = _quadratic(grader, 5, quartic=0.1)
    params = _params(grader, [(5,)])
    for kw in [{"lr": 0.1, "betas": (0.8, 0.99)}, {"lr": 0.05, "betas": (0.5, 0.9), "eps": 0.1}]:
        grader.compare(_run(problem, params, **kw), case=f"Adam({kw})")


@check(points=1, public=True, task="Adam")
def test_weight_decay_l2(grader):
    """decoupled=False: L2 weight decay as torch.optim.Adam(weight_decay=...)"""
    problem = _quadratic(grader, 5, quartic=0.05)
    params = _params(grader, [(2,), (3,)], scale=2.0)
    kw = {"lr": 0.05, "weight_decay": 0.3}
    grader.compare(_run(problem, params, **kw), case=f"Adam({kw})")


@check(points=1, public=True, task="Adam")
def test_weight_decay_decoupled(grader):
    """decoupled=True: decoupled weight decay as torch.optim.AdamW"""
    problem = _quadratic(grader, 5, quartic=0.05)
    params = _params(grader, [(2,), (3,)], scale=2.0)
    kw = {"lr": 0.05, "weight_decay": 0.3, "decoupled": True}
    grader.compare(_run(problem, params, **kw), case=f"Adam({kw})")


@check(points=2, public=True, task="Adam")
def test_param_groups(grader):
    """several parameter groups with their own lr, betas, weight decay and mode"""
    problem = _quadratic(grader, 9)
    params = _params(grader, [(3,), (2, 2), (2,)])
    two = [{"params": [0, 2], "lr": 0.1}, {"params": [1]}]
    grader.compare(_run(problem, params, groups=two, lr=0.01), case="2 groups: lr 0.1 and 0.01")
    three = [
        {"params": [0], "lr": 0.1, "weight_decay": 0.2},
        {"params": [1], "betas": (0.8, 0.99), "weight_decay": 0.5, "decoupled": True},
        {"params": [2], "lr": 0.002, "eps": 0.01},
    ]
    grader.compare(
        _run(problem, params, groups=three, lr=0.05, report_state=True),
        case="3 groups with different lr, betas, eps, L2 and decoupled decay",
    )


@check(points=1, task="Adam")
def test_none_grad(grader):
    """a parameter whose grad is None on some steps is skipped on those steps"""
    problem = _quadratic(grader, 6)
    params = _params(grader, [(3,), (3,)])
    none_grad = {"index": 1, "start": 10, "period": 3}
    for kw in [{"lr": 0.05}, {"lr": 0.05, "weight_decay": 0.2, "decoupled": True}]:
        grader.compare(
            _run(problem, params, none_grad=none_grad, report_state=True, **kw),
            case=f"param 1 without grad for 10 steps, then every 3rd step; Adam({kw})",
        )


@check(points=2, task="Adam")
def test_mlp(grader):
    """100 steps on a small tanh MLP follow torch.optim.Adam / AdamW (float64)"""
    problem, params = _mlp(grader)
    for kw in [{"lr": 0.02, "weight_decay": 0.1},
               {"lr": 0.02, "weight_decay": 0.1, "decoupled": True}]:
        grader.compare(
            _run(problem, params, report_state=True, **kw), case=f"MLP 3-5-2, Adam({kw})"
        )


@check(points=1, task="Adam")
def test_float32(grader):
    """float32 parameters: same trajectories, state in float32"""
    problem = _quadratic(grader, 5, dtype=torch.float32)
    params = _params(grader, [(2,), (3,)], dtype=torch.float32)
    grader.compare(_run(problem, params, report_state=True, lr=0.05), case="quadratic, float32")
    problem, params = _mlp(grader, dtype=torch.float32)
    grader.compare(
        _run(problem, params, lr=0.01, weight_decay=0.1, decoupled=True),
        case="MLP 3-5-2, float32, decoupled decay",
    )


@check(points=1, task="Adam")
def test_closure(grader):
    """step(closure) evaluates the closure, updates with its gradients and returns its loss"""
    problem, params = _mlp(grader)
    grader.compare(_run(problem, params, 20, closure=True, lr=0.02), case="MLP, step(closure)")
