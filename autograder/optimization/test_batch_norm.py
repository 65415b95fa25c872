"""Hidden checks for unit 2.5 `batch-norm` (Ioffe & Szegedy, 2015).

Every check compares the learner's code with the master solution (which equals
``F.batch_norm`` on all these inputs) on seeded inputs: (N, C) and (N, C, H, W) layouts,
float32 and float64, several momenta, with and without the affine parameters. The running
statistics are compared after the call (``after=(1, 2)``), so the in-place update is graded in
training mode and its absence in eval mode. On a mismatch the output is looked up in the
mistake bank below.
"""

import torch

from course.grading.dsl import AUTOGRAD_ENGINE, Call, Forbid, Mistake, check
from course.grading.dsl import FLOAT_DTYPES as DTYPES

UNIT = "batch-norm"

FORBIDDEN = [
    Forbid(
        calls=(
            "torch.nn.functional.batch_norm",
            "torch.batch_norm",
            "torch.native_batch_norm",
            "torch.nn.BatchNorm1d",
            "torch.nn.BatchNorm2d",
            "torch.nn.BatchNorm3d",
        ),
        aten=("native_batch_norm", "_native_batch_norm_legit", "batch_norm"),
    ),
    Forbid(
        calls=("torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward"),
        aten=(AUTOGRAD_ENGINE,),  # the engine however reached (its own run_backward too)
        within=("batch_norm_backward",),
    ),
]

MISTAKES = [
    Mistake(
        "input-centred-in-place",
        "Your batch_norm changes its input x in place (x.sub_(...) or x -= ...): the caller's "
        "tensor is corrupted. Only the running statistics are updated in place; compute the "
        "normalised values into a new tensor.",
        {"x_hat = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)":
         "x_hat = x.sub_(mean.view(shape)).div_(torch.sqrt(var.view(shape) + eps))"},
    ),
    Mistake(
        "running-var-biased",
        "Your running variance matches an update with the biased batch variance (divide by "
        "m). The running variance is an estimate of the population variance: update it with "
        "the unbiased one, var · m / (m − 1), where m = values per channel (N·H·W). Keep the "
        "biased variance for normalising the batch itself.",
        {"momentum * var * m / (m - 1)": "momentum * var"},
    ),
    Mistake(
        "momentum-reversed",
        "Your running statistics match the reversed momentum convention, momentum · running "
        "+ (1 − momentum) · batch. PyTorch's convention is running ← (1 − momentum) · running "
        "+ momentum · batch: momentum is the weight of the NEW batch statistic.",
        {
            "running_mean.mul_(1 - momentum).add_(momentum * mean)":
            "running_mean.mul_(momentum).add_((1 - momentum) * mean)",
            "running_var.mul_(1 - momentum).add_(momentum * var * m / (m - 1))":
            "running_var.mul_(momentum).add_((1 - momentum) * var * m / (m - 1))",
        },
    ),
    Mistake(
        "running-not-in-place",
        "Your running statistics are unchanged after a training-mode call: the new values "
        "were probably assigned to the local names (running_mean = ...), which does not "
        "change the caller's tensors. Update them in place, e.g. running_mean.mul_(1 - "
        "momentum).add_(momentum * mean) or running_mean.copy_(...), under torch.no_grad().",
        {
            "running_mean.mul_(1 - momentum).add_(momentum * mean)":
            "running_mean = (1 - momentum) * running_mean + momentum * mean",
            "running_var.mul_(1 - momentum).add_(momentum * var * m / (m - 1))":
            "running_var = (1 - momentum) * running_var + momentum * var * m / (m - 1)",
        },
    ),
    Mistake(
        "image-axes",
        "For (N, C, H, W) inputs your statistics are not taken over the right values: your "
        "output matches x.reshape(-1, C), which mixes channels and positions. Batch norm "
        "treats every (sample, row, column) position as one example of its channel: take the "
        "mean and variance over axes 0, 2 and 3 (e.g. move axis 1 last before flattening).",
        {"x.movedim(1, -1).reshape(-1, channels)": "x.reshape(-1, channels)"},
    ),
    Mistake(
        "eval-batch-stats",
        "In eval mode (training=False) your output matches normalising with the statistics of "
        "the batch itself. At test time batch norm uses the running statistics, so that a "
        "prediction does not depend on the other samples of the batch.",
        {
            "mean, var = running_mean, running_var":
            "mean, var = values.mean(dim=0), values.var(dim=0, unbiased=False)"
        },
    ),
    Mistake(
        "unbiased-normalisation",
        "Your output matches normalising the batch with the unbiased variance (divide by "
        "m − 1). Normalise with the biased variance (divide by m, unbiased=False / "
        "correction=0); only the running variance gets the unbiased estimate.",
        {"values.var(dim=0, unbiased=False)": "values.var(dim=0)"},
    ),
    Mistake(
        "eps-outside-sqrt",
        "Your output matches what we get when epsilon is added outside the square root, "
        "sqrt(var) + eps. Put it inside: sqrt(var + eps).",
        {"torch.sqrt(var.view(shape) + eps)": "(torch.sqrt(var.view(shape)) + eps)"},
    ),
    Mistake(
        "bias-before-weight",
        "Your output matches (x̂ + bias) · weight. The shift comes after the gain: "
        "weight · x̂ + bias.",
        {
            "    if weight is not None:\n        y = y * weight.view(shape)\n"
            "    if bias is not None:\n        y = y + bias.view(shape)\n":
            "    if bias is not None:\n        y = y + bias.view(shape)\n"
            "    if weight is not None:\n        y = y * weight.view(shape)\n"
        },
    ),
    Mistake(
        "backward-missing-mean-terms",
        "Your dx matches g·γ / s alone: the two mean terms are missing. Every x_i moves its "
        "channel's batch mean and variance, so dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) / s, with "
        "the means over the channel's m values.",
        {
            "g - g.mean(dim=dims, keepdim=True) - x_hat * (g * x_hat).mean(dim=dims, "
            "keepdim=True)": "g"
        },
    ),
    Mistake(
        "backward-missing-variance-term",
        "Your dx lacks the variance term −x̂·mean(ĝ·x̂)/s: the batch variance depends on x "
        "too.",
        {" - x_hat * (g * x_hat).mean(dim=dims, keepdim=True)": ""},
    ),
    Mistake(
        "backward-unbiased-var",
        "Your dx matches a backward pass that uses the unbiased variance (divide by m − 1). "
        "The forward pass normalises with the biased variance, so the backward must use it "
        "too (x.var(..., unbiased=False) or the mean of the squared centred values).",
        {"(centred * centred).mean(dim=dims, keepdim=True)":
         "x.var(dim=dims, keepdim=True)"},
    ),
    Mistake(
        "backward-weight-ignored",
        "Your dx matches a backward pass that ignores the gain: the gradient reaching x̂ is "
        "g · γ, not g.",
        {"g = grad_out * weight.view(shape) if weight is not None else grad_out":
         "g = grad_out"},
    ),
    Mistake(
        "dweight-not-summed-spatial",
        "For images your dweight/dbias are summed over the batch axis only. γ and β are "
        "shared by every position of a channel: sum over axes 0, 2 and 3 so they have "
        "shape (C,).",
        {
            "(grad_out * x_hat).sum(dim=dims)": "(grad_out * x_hat).sum(dim=0)",
            "grad_out.sum(dim=dims)": "grad_out.sum(dim=0)",
        },
    ),
]

FLAT_SHAPES = [(4, 3), (2, 5), (16, 8), (3, 1)]
IMAGE_SHAPES = [(2, 3, 4, 5), (1, 2, 3, 3), (4, 3, 1, 1), (3, 4, 2, 1)]


def _x(grader, shape, dtype, scale=1.0):
    """Inputs with a non-zero mean and a per-channel spread, so that every axis matters."""
    c = shape[1]
    spread = (1.0 + grader.rand(c)).view((1, c) + (1,) * (len(shape) - 2))
    return (scale * (grader.randn(*shape) * spread + 0.5)).to(dtype)


def _running(grader, c, dtype):
    """Running statistics that differ from any batch's: mean around 0, variance in [0.5, 2]."""
    return grader.randn(c, dtype=dtype), (0.5 + 1.5 * grader.rand(c)).to(dtype)


def _affine(grader, c, dtype):
    return grader.randn(c, dtype=dtype) + 1.0, grader.randn(c, dtype=dtype)


def _bn(x, rm, rv, w, b, training, running=True, **kwargs):
    """A batch_norm probe that also reports running_mean and running_var after the call
    (``running=False``: the output only, for checks whose title is not about them, so that
    a mistake in the running statistics costs only the checks that say so)."""
    return Call("batch_norm", (x, rm, rv, w, b, training), kwargs,
                after=(1, 2) if running else (), mutates=(1, 2))


def _train_layout(grader, shapes):
    for shape in shapes:
        for dtype in DTYPES:
            c = shape[1]
            x = _x(grader, shape, dtype)
            rm, rv = _running(grader, c, dtype)
            w, b = _affine(grader, c, dtype)
            grader.compare(
                _bn(x, rm, rv, w, b, True),
                case=f"batch_norm(x{list(shape)}, ..., training=True), {dtype}",
            )


@check(points=2, public=True, task="batch_norm")
def test_train_flat(grader):
    """training mode on (N, C): output and running statistics after the call"""
    _train_layout(grader, FLAT_SHAPES)


@check(points=2, public=True, task="batch_norm")
def test_train_images(grader):
    """training mode on (N, C, H, W): statistics over batch and pixels, running statistics"""
    _train_layout(grader, IMAGE_SHAPES)


@check(points=1, task="batch_norm")
def test_momentum(grader):
    """the running statistics follow PyTorch's momentum convention for several momenta"""
    for shape in [(6, 4), (2, 3, 2, 3)]:
        for dtype in DTYPES:
            c = shape[1]
            x = _x(grader, shape, dtype)
            rm, rv = _running(grader, c, dtype)
            for momentum in (0.3, 0.0, 1.0):
                grader.compare(
                    _bn(x, rm, rv, None, None, True, momentum=momentum),
                    case=f"x{list(shape)}, momentum={momentum}, {dtype}",
                )


@check(points=1, public=True, task="batch_norm")
def test_affine_optional(grader):
    """weight and bias may each be None, and the shift comes after the gain (the output)"""
    for shape in [(5, 3), (2, 3, 2, 2)]:
        for dtype in DTYPES:
            c = shape[1]
            x = _x(grader, shape, dtype)
            rm, rv = _running(grader, c, dtype)
            w, b = _affine(grader, c, dtype)
            for training in (True, False):
                for wb, label in [((None, None), "no affine"), ((w, None), "weight only"),
                                  ((None, b), "bias only"), ((w, b), "weight and bias")]:
                    grader.compare(
                        _bn(x, rm, rv, *wb, training, running=False),
                        case=f"x{list(shape)}, {label}, training={training}",
                    )


@check(points=2, public=True, task="batch_norm")
def test_eval(grader):
    """eval mode normalises with the running statistics and leaves them unchanged"""
    for shape in FLAT_SHAPES[:2] + IMAGE_SHAPES[:3]:
        for dtype in DTYPES:
            c = shape[1]
            x = _x(grader, shape, dtype)
            rm, rv = _running(grader, c, dtype)
            w, b = _affine(grader, c, dtype)
            grader.compare(
                _bn(x, rm, rv, w, b, False),
                case=f"batch_norm(x{list(shape)}, ..., training=False), {dtype}",
            )
    x = _x(grader, (1, 4), torch.float64)  # a single sample is fine at test time
    rm, rv = _running(grader, 4, torch.float64)
    grader.compare(_bn(x, rm, rv, None, None, False), case="one sample x[1, 4], eval mode")


@check(points=1, task="batch_norm")
def test_small_variance(grader):
    """epsilon sits inside the square root (the output, for inputs with tiny variance)"""
    for shape in [(6, 3), (2, 2, 3, 3)]:
        for dtype in DTYPES:
            c = shape[1]
            x = _x(grader, shape, dtype, scale=1e-2)
            rm, rv = _running(grader, c, dtype)
            grader.compare(
                _bn(x, rm, rv, None, None, True, running=False, eps=1e-3),
                case=f"0.01·x{list(shape)}, eps=1e-3, training, {dtype}",
            )
            grader.compare(
                _bn(x, rm, 1e-3 * rv, None, None, False, eps=1e-3),
                case=f"0.01·x{list(shape)}, tiny running var, eps=1e-3, eval, {dtype}",
            )


@check(points=1, task="batch_norm")
def test_autograd_through_forward(grader):
    """gradients flow through batch_norm in both modes (autograd over your operations)"""
    for shape in [(5, 4), (2, 3, 2, 3)]:
        for dtype in DTYPES:
            c = shape[1]
            x = _x(grader, shape, dtype)
            rm, rv = _running(grader, c, dtype)
            w, b = _affine(grader, c, dtype)
            for training in (True, False):
                grader.compare(
                    Call("batch_norm", (x, rm, rv, w, b, training), grad=(0, 3, 4),
                         mutates=(1, 2)),
                    case=f"d/dx, d/dweight, d/dbias, x{list(shape)}, training={training}",
                )


def _backward_cases(grader, shapes, with_weight):
    for shape in shapes:
        for dtype in DTYPES:
            c = shape[1]
            x = _x(grader, shape, dtype)
            g = grader.randn(*shape, dtype=dtype)
            w = grader.randn(c, dtype=dtype) + 1.0 if with_weight else None
            grader.compare(
                Call("batch_norm_backward", (g, x, w)),
                case=f"batch_norm_backward(g, x{list(shape)}, "
                     f"{'weight' if with_weight else 'None'}), {dtype}",
            )


@check(points=2, public=True, task="batch_norm_backward")
def test_backward_flat(grader):
    """batch_norm_backward on (N, C) matches the true gradients"""
    _backward_cases(grader, FLAT_SHAPES, with_weight=True)


@check(points=2, public=True, task="batch_norm_backward")
def test_backward_images(grader):
    """batch_norm_backward on (N, C, H, W): sums over batch and pixels"""
    _backward_cases(grader, IMAGE_SHAPES, with_weight=True)


@check(points=1, task="batch_norm_backward")
def test_backward_no_weight(grader):
    """batch_norm_backward without weight returns (dx, None, None)"""
    _backward_cases(grader, [(4, 3), (2, 3, 2, 2)], with_weight=False)


@check(points=1, task="batch_norm_backward")
def test_backward_eps(grader):
    """batch_norm_backward with tiny variance and a custom epsilon"""
    for shape in [(6, 3), (2, 2, 3, 2)]:
        for dtype in DTYPES:
            x = _x(grader, shape, dtype, scale=1e-2)
            g = grader.randn(*shape, dtype=dtype)
            w = grader.randn(shape[1], dtype=dtype)
            grader.compare(
                Call("batch_norm_backward", (g, x, w), {"eps": 1e-3}),
                case=f"0.01·x{list(shape)}, eps=1e-3, {dtype}",
            )
