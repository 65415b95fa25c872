"""Hidden checks for unit 5.10 `classifier-guidance` (Dhariwal & Nichol, 2021).

``classifier_grad`` is driven by grader-owned copies of the exercise's two given classifiers
with seeded weights (``course.grading.fixtures.StandInLinearClassifier``, whose logits ignore
t, and ``StandInNoiseAwareClassifier``, a small tanh MLP whose logits depend on t: a learner's
copy of those classes does not matter, and a ``.py`` submission need not carry them), in the
learner's dtype: batch 1, odd sizes, image-shaped
inputs, target classes that repeat, per-sample steps, float32 and float64, and logits so
confident that log(softmax) underflows. Every plain probe runs under ``torch.no_grad()``, as a
sampler calls it, and every probe checks that the caller's x_t keeps its values and its
``requires_grad`` flag. A gradient probe with x_t requiring grad checks that the returned
tensor is detached: no gradient reaches x_t or the classifier's weights through it.

``guided_mean`` is compared with the reference on scalar, 0-dim, per-sample (B, 1, …) and
full-shape variances, a float64 variance with float32 data (the result keeps the data's
dtype), several scales including 0, and with gradients w.r.t. mean, variance and grad.
"""

import torch

from course.grading.dsl import (
    CROSS_ENTROPY_ATEN,
    CROSS_ENTROPY_CALLS,
    Call,
    CheckFailure,
    Fixture,
    Forbid,
    Mistake,
    Tolerance,
    check,
)
from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import dtype_word as _dt

UNIT = "classifier-guidance"

FORBIDDEN = [
    # the library losses would choose the sign and the batch reduction for the learner
    Forbid(calls=CROSS_ENTROPY_CALLS, aten=CROSS_ENTROPY_ATEN, within=("classifier_grad",)),
    # a full (B, C, ...) Jacobian instead of one backward pass of the summed log-probabilities
    Forbid(
        calls=("torch.func.jacrev", "torch.func.jacfwd", "torch.func.vmap", "torch.vmap",
               "torch.func.hessian", "torch.autograd.functional.jacobian"),
        within=("classifier_grad",),
    ),
]

NO_ENABLE_GRAD = Mistake(
    "no-enable-grad",
    "Your classifier_grad fails when it is called inside torch.no_grad(), as every sampler "
    "calls it: there the classifier's logits carry no graph. Switch autograd back on inside "
    "the function: with torch.enable_grad(): x = x_t.detach().requires_grad_(True); "
    "logits = classifier(x, t); ...",
    {"    with torch.enable_grad():\n": "    if True:\n"},
)

MISTAKES = [
    # -- classifier_grad
    Mistake(
        "grad-of-logit",
        "Your gradient matches that of the raw logit f(x)_y. Guidance uses the "
        "log-probability: take log_softmax of the logits over the class axis first, then "
        "pick y (for a linear classifier the gradient is Wᵀ(onehot(y) − softmax), not W_y).",
        {"log_probs = torch.log_softmax(logits, dim=-1)": "log_probs = logits"},
    ),
    Mistake(
        "grad-of-probability",
        "Your gradient matches that of the probability softmax(f(x))_y. Guidance uses its "
        "logarithm, log p(y | x_t): use torch.log_softmax, not torch.softmax.",
        {"log_probs = torch.log_softmax(logits, dim=-1)":
         "log_probs = torch.softmax(logits, dim=-1)"},
    ),
    Mistake(
        "log-of-softmax",
        "Your gradient is NaN (or inf) where the classifier is very confident: log(softmax) "
        "rounds a tiny probability to 0, log 0 = −inf, and its gradient 1/p · ∂p is 0·∞. "
        "Use torch.log_softmax, which stays finite.",
        {"log_probs = torch.log_softmax(logits, dim=-1)":
         "log_probs = torch.log(torch.softmax(logits, dim=-1))"},
    ),
    Mistake(
        "softmax-over-batch",
        "Your gradient matches a log-softmax taken over the batch axis (dim=0). The "
        "probabilities are over the classes, the last axis of the (B, C) logits: "
        "torch.log_softmax(logits, dim=-1).",
        {"torch.log_softmax(logits, dim=-1)": "torch.log_softmax(logits, dim=0)"},
    ),
    Mistake(
        "sign-flipped",
        "Your gradient has the opposite sign: it is the gradient of the cross-entropy "
        "−log p(y | x_t), which points away from the class. Guidance climbs log p(y | x_t): "
        "differentiate +Σᵢ log p(yᵢ | xᵢ).",
        {"torch.autograd.grad(chosen.sum(), x)": "torch.autograd.grad(-chosen.sum(), x)"},
    ),
    Mistake(
        "batch-mean",
        "Your gradient is B times too small: you differentiated the mean of the "
        "log-probabilities over the batch. Each sample needs the gradient of its own "
        "log-probability: differentiate their sum, which leaves every row unscaled.",
        {"torch.autograd.grad(chosen.sum(), x)": "torch.autograd.grad(chosen.mean(), x)"},
    ),
    Mistake(
        "y-wrong-axis",
        "Your gradient matches picking log_probs[:, y], a (B, B) block that gives every "
        "sample every other sample's class too. Pick one entry per row: "
        "log_probs[torch.arange(B), y], sample i at its own class y_i.",
        {"log_probs[torch.arange(x.shape[0], device=x.device), y]": "log_probs[:, y]"},
    ),
    Mistake(
        "caller-requires-grad",
        "Your code switched on requires_grad of the caller's x_t (x_t.requires_grad_()), "
        "which leaves it attached to autograd after the call. Differentiate w.r.t. a "
        "detached copy instead: x = x_t.detach().requires_grad_(True).",
        {"x = x_t.detach().requires_grad_(True)": "x = x_t.requires_grad_(True)"},
    ),
    Mistake(
        "graph-kept",
        "Your gradient still carries an autograd graph (create_graph=True): gradients flow "
        "from it back into the classifier's weights, and a sampler would keep every step's "
        "graph alive. Take torch.autograd.grad without create_graph (or .detach() the "
        "result).",
        {"torch.autograd.grad(chosen.sum(), x)":
         "torch.autograd.grad(chosen.sum(), x, create_graph=True)"},
    ),
    NO_ENABLE_GRAD,
    # -- guided_mean
    Mistake(
        "std-not-variance",
        "Your guided mean matches μ + s·σ·g, with the standard deviation. Algorithm 1 "
        "scales the gradient by the covariance Σ = σ_t², the variance itself: "
        "μ + s·Σ·g.",
        {"mean + scale * variance * grad": "mean + scale * torch.sqrt(variance) * grad"},
    ),
    Mistake(
        "no-variance",
        "Your guided mean matches μ + s·g, without the variance. The shift is s·Σ·g: "
        "multiply by the step's variance Σ = σ_t², which makes it small where the step "
        "adds little noise.",
        {"mean + scale * variance * grad": "mean + scale * grad"},
    ),
    Mistake(
        "no-scale",
        "Your guided mean matches μ + Σ·g, ignoring the scale. Multiply the shift by the "
        "guidance scale s: μ + s·Σ·g.",
        {"mean + scale * variance * grad": "mean + variance * grad"},
    ),
    Mistake(
        "scale-twice",
        "Your guided mean matches μ + s²·Σ·g: the scale is applied twice. It enters once: "
        "μ + s·Σ·g.",
        {"mean + scale * variance * grad": "mean + scale * scale * variance * grad"},
    ),
    Mistake(
        "mean-minus",
        "Your guided mean matches μ − s·Σ·g, moving away from the class. The mean moves "
        "along the gradient of log p(y | x_t): μ + s·Σ·g.",
        {"mean + scale * variance * grad": "mean - scale * variance * grad"},
    ),
    Mistake(
        "variance-dtype",
        "Your guided mean does not use the variance in mean's dtype: it comes back in the "
        "variance's dtype (float64) for float32 data, or a Python float variance was first "
        "rounded to float32 (torch.tensor(v) uses the default dtype) before meeting float64 "
        "data. Convert the variance straight to mean's dtype and device before combining.",
        {"torch.as_tensor(variance, dtype=mean.dtype, device=mean.device)":
         "torch.as_tensor(variance, device=mean.device)"},
    ),
    Mistake(
        "mean-in-place",
        "Your guided_mean changed the caller's mean in place (mean += … or mean.add_). "
        "Return a new tensor: mean + scale · variance · grad.",
        {"return mean + scale * variance * grad": "return mean.add_(scale * variance * grad)"},
    ),
]


# -- helpers ----------------------------------------------------------------------------------


def _linear(grader, d, c, dtype, scale=1.0):
    """A grader-owned LinearClassifier(d, c), seeded weights ~ N(0, scale²) in dtype."""
    return Fixture("StandInLinearClassifier", {
        "weight": grader.randn(c, d, scale=scale).to(dtype),
        "bias": grader.randn(c, scale=0.5 * scale).to(dtype)})


def _mlp(grader, d, c, dtype, hidden=7, period=3.0):
    """A grader-owned NoiseAwareClassifier(d, c, hidden, period), seeded weights in dtype."""
    weights = {"inp_weight": grader.randn(hidden, d + 2, scale=0.9),
               "inp_bias": grader.randn(hidden, scale=0.3),
               "out_weight": grader.randn(c, hidden, scale=1.2),
               "out_bias": grader.randn(c, scale=0.3)}
    return Fixture("StandInNoiseAwareClassifier",
                   {**{k: v.to(dtype) for k, v in weights.items()}, "period": period})


def _classes(grader, b, c, repeat=True):
    """(B,) target classes; with repeat, the first two samples share a class (B ≥ 2)."""
    y = grader.randint(0, c, (b,))
    if repeat and b >= 2:
        y[1] = y[0]
    return y


def _numel(shape):
    n = 1
    for s in shape[1:]:
        n *= s
    return n


def _finite(outcome) -> bool:
    out = outcome.out
    return isinstance(out, torch.Tensor) and bool(torch.isfinite(out).all())


def _grad_compare(grader, probe, case, **kwargs):
    """grader.compare, naming the no-enable-grad mistake when the learner's autograd call
    found no graph (the probe runs under torch.no_grad(), as a sampler does), and the banked
    mistake that turns the gradient non-finite when the learner's does (NaN never matches a
    comparison, so the bank is asked which mistake gives non-finite values here)."""
    try:
        return grader.compare(probe, case=case, **kwargs)
    except CheckFailure as exc:
        if exc.mistake is None and "does not require grad" in exc.message:
            grader.fail(exc.message, mistake=NO_ENABLE_GRAD, case=exc.case)
        if exc.mistake is None and "non-finite" in exc.message:
            found = grader.banked_mistake(probe, lambda outcome: not _finite(outcome))
            if found is not None:
                grader.fail(exc.message, mistake=found, case=exc.case)
        raise


# -- Task 1: classifier_grad ------------------------------------------------------------------


@check(points=2, public=True, task="classifier_grad")
def test_grad_linear(grader):
    """classifier_grad of a linear classifier, for several batch sizes and input shapes"""
    for shape, c in [((4, 2), 3), ((7, 3), 5), ((1, 5), 4), ((3, 2, 3, 3), 4), ((6, 1), 2)]:
        for dtype in DTYPES:
            clf = _linear(grader, _numel(shape), c, dtype)
            x = grader.randn(*shape, dtype=dtype, scale=1.5)
            t = grader.randint(0, 50, (shape[0],))
            y = _classes(grader, shape[0], c)
            _grad_compare(grader, Call("classifier_grad", (clf, x, t, y)),
                          f"classifier_grad(LinearClassifier({_numel(shape)}, {c}), "
                          f"x_t{list(shape)} {_dt(dtype)}, y={y.tolist()})")


@check(points=2, public=True, task="classifier_grad")
def test_grad_noise_aware(grader):
    """classifier_grad of a small MLP whose logits depend on the step t"""
    for shape, c in [((5, 2), 3), ((1, 2), 4), ((8, 3), 6), ((2, 1, 2, 3), 3)]:
        for dtype in DTYPES:
            clf = _mlp(grader, _numel(shape), c, dtype)
            x = grader.randn(*shape, dtype=dtype, scale=1.5)
            t = grader.randint(0, 40, (shape[0],))
            y = _classes(grader, shape[0], c)
            _grad_compare(grader, Call("classifier_grad", (clf, x, t, y)),
                          f"classifier_grad(NoiseAwareClassifier({_numel(shape)}, {c}), "
                          f"x_t{list(shape)} {_dt(dtype)}, t={t.tolist()}, y={y.tolist()})")


@check(points=1, task="classifier_grad")
def test_grad_depends_on_t_and_y(grader):
    """classifier_grad: same x_t at different steps, and one class for the whole batch"""
    b, d, c = 6, 2, 4
    for dtype in DTYPES:
        clf = _mlp(grader, d, c, dtype, period=2.0)
        row = grader.randn(1, d, dtype=dtype)
        x = row.expand(b, d).clone()  # one point, seen at six steps
        t = torch.tensor([0, 3, 7, 12, 20, 39])
        y = torch.full((b,), int(grader.randint(0, c, (1,))))
        _grad_compare(grader, Call("classifier_grad", (clf, x, t, y)),
                      f"classifier_grad(NoiseAwareClassifier({d}, {c}), one x_t at steps "
                      f"{t.tolist()}, y={y.tolist()}, {_dt(dtype)})")
        y2 = torch.arange(b) % c  # every class, one point
        t2 = torch.full((b,), 5)
        _grad_compare(grader, Call("classifier_grad", (clf, x, t2, y2)),
                      f"classifier_grad(NoiseAwareClassifier({d}, {c}), one x_t at step 5, "
                      f"y={y2.tolist()}, {_dt(dtype)})")


@check(points=1, task="classifier_grad")
def test_grad_confident_logits(grader):
    """classifier_grad stays finite for logits hundreds apart (log_softmax, not log∘softmax)"""
    for shape, c in [((5, 3), 4), ((1, 2), 3)]:
        for dtype in DTYPES:
            # weights of size ~300: logit gaps of hundreds to thousands, exp(−gap) = 0
            clf = _linear(grader, _numel(shape), c, dtype, scale=300.0)
            x = grader.randn(*shape, dtype=dtype)
            t = torch.zeros(shape[0], dtype=torch.long)
            y = _classes(grader, shape[0], c, repeat=False)
            _grad_compare(grader, Call("classifier_grad", (clf, x, t, y)),
                          f"classifier_grad(LinearClassifier({_numel(shape)}, {c}) with weights "
                          f"~300, x_t{list(shape)} {_dt(dtype)}, y={y.tolist()})")


@check(points=1, task="classifier_grad")
def test_grad_leaves_no_graph(grader):
    """classifier_grad returns a detached tensor: no gradient flows back through it"""
    for shape, c, kind in [((4, 3), 3, "linear"), ((3, 2), 4, "mlp")]:
        for dtype in DTYPES:
            d = _numel(shape)
            clf = _linear(grader, d, c, dtype) if kind == "linear" else _mlp(grader, d, c, dtype)
            x = grader.randn(*shape, dtype=dtype)
            t = grader.randint(0, 30, (shape[0],))
            y = _classes(grader, shape[0], c)
            name = "LinearClassifier" if kind == "linear" else "NoiseAwareClassifier"
            grader.compare(Call("classifier_grad", (clf, x, t, y), grad=(1, "params")),
                           case=f"classifier_grad({name}({d}, {c}), x_t{list(shape)} "
                                f"{_dt(dtype)} requiring grad, y={y.tolist()}): no gradient "
                                "through the result to x_t or the weights")


# -- Task 2: guided_mean ----------------------------------------------------------------------


@check(points=2, public=True, task="guided_mean")
def test_guided_mean(grader):
    """guided_mean is mean + scale·variance·grad for scalar and tensor variances"""
    for dtype in DTYPES:
        for shape in [(5, 2), (1, 3), (3, 2, 4, 4)]:
            per_sample = (shape[0],) + (1,) * (len(shape) - 1)
            variances = [
                ("float 0.3", 0.3),
                ("0-dim tensor", (0.05 + grader.rand(1)[0]).to(dtype)),
                (f"per sample {list(per_sample)}", (0.05 + grader.rand(*per_sample)).to(dtype)),
                (f"full {list(shape)}", (0.05 + grader.rand(*shape)).to(dtype)),
            ]
            for words, var in variances:
                for scale in (2.5, 0.4):
                    mean = grader.randn(*shape, dtype=dtype)
                    g = grader.randn(*shape, dtype=dtype, scale=2.0)
                    grader.compare(Call("guided_mean", (mean, var, g, scale)),
                                   case=f"guided_mean(mean{list(shape)} {_dt(dtype)}, "
                                        f"variance {words}, grad, scale={scale})")


@check(points=1, task="guided_mean")
def test_guided_mean_edges(grader):
    """guided_mean keeps mean's dtype for a float64 variance, and scale 0 and 1"""
    for dtype in DTYPES:
        var = (0.02 + 0.3 * grader.rand(4, 1)).double()  # a float64 schedule, per sample
        for scale in (3.0, 1.0, 0.0):
            mean = grader.randn(4, 3, dtype=dtype)
            g = grader.randn(4, 3, dtype=dtype)
            grader.compare(Call("guided_mean", (mean, var, g, scale)),
                           case=f"guided_mean(mean[4, 3] {_dt(dtype)}, float64 variance "
                                f"[4, 1], grad, scale={scale})")


@check(points=1, task="guided_mean")
def test_guided_mean_gradients(grader):
    """guided_mean is differentiable w.r.t. mean, variance and grad"""
    for dtype in DTYPES:
        for shape, vshape in [((4, 2), (4, 1)), ((2, 3, 2), (2, 3, 2))]:
            mean = grader.randn(*shape, dtype=dtype)
            var = (0.05 + grader.rand(*vshape)).to(dtype)
            g = grader.randn(*shape, dtype=dtype)
            grader.compare(Call("guided_mean", (mean, var, g, 1.7), grad=(0, 1, 2)),
                           case=f"d guided_mean / d(mean, variance, grad), mean{list(shape)}, "
                                f"variance{list(vshape)}, {_dt(dtype)}",
                           tol=Tolerance())
