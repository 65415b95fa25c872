"""Hidden checks for unit 2.6 `layer-norm` (Ba, Kiros & Hinton, 2016).

Every check compares the learner's code with the master solution on seeded inputs (several
shapes including D = 1, float32 and float64, scaled inputs where epsilon matters) and, on a
mismatch, looks the output up in the mistake bank below.
"""

import torch

from course.grading.dsl import AUTOGRAD_ENGINE, Call, Forbid, Inspect, Make, Mistake, Outcome, check
from course.grading.dsl import FLOAT_DTYPES as DTYPES

UNIT = "layer-norm"

FORBIDDEN = [
    Forbid(
        calls=(
            "torch.nn.functional.layer_norm",
            "torch.layer_norm",
            "torch.native_layer_norm",
            "torch.nn.LayerNorm",
            # group norm with one group is a layer norm in disguise
            "torch.nn.functional.group_norm",
            "torch.group_norm",
            "torch.nn.GroupNorm",
        ),
        aten=("native_layer_norm", "native_group_norm", "native_layer_norm_backward"),
    ),
    Forbid(
        calls=("torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward"),
        aten=(AUTOGRAD_ENGINE,),  # the engine however reached (its own run_backward too)
        within=("layer_norm_backward",),
    ),
]

MISTAKES = [
    Mistake(
        "input-centred-in-place",
        "Your layer_norm changes its input x in place (x.sub_(mean) or x -= mean): the values "
        "come out right, but the caller's tensor is corrupted. Compute x - mean into a new "
        "tensor and leave x as it was.",
        {"x_hat = (x - mean) / torch.sqrt(var + eps)":
         "x_hat = x.sub_(mean).div_(torch.sqrt(var + eps))"},
    ),
    Mistake(
        "unbiased-variance",
        "Your output matches what we get with the unbiased variance (dividing by D − 1). "
        "Layer norm uses the biased variance: divide by D (unbiased=False / correction=0).",
        {"x.var(dim=-1, keepdim=True, unbiased=False)": "x.var(dim=-1, keepdim=True)"},
    ),
    Mistake(
        "eps-outside-sqrt",
        "Your output matches what we get when epsilon is added outside the square root, "
        "sqrt(var) + eps. Put it inside: sqrt(var + eps).",
        {"torch.sqrt(var + eps)": "(torch.sqrt(var) + eps)"},
    ),
    Mistake(
        "no-sqrt",
        "Your output matches dividing by the variance instead of the standard deviation: "
        "take the square root of (var + eps).",
        {"torch.sqrt(var + eps)": "(var + eps)"},
    ),
    Mistake(
        "batch-axis",
        "Your output matches normalising over the batch (first) axis, which is batch norm. "
        "Layer norm takes the mean and variance over the last dimension of each sample.",
        {
            "mean = x.mean(dim=-1, keepdim=True)\n    var = x.var(dim=-1, keepdim=True, "
            "unbiased=False)":
            "mean = x.mean(dim=0, keepdim=True)\n    var = x.var(dim=0, "
            "keepdim=True, unbiased=False)"
        },
    ),
    Mistake(
        "affine-ignored",
        "Your output matches the plain normalised x̂: weight and bias were not applied. Return "
        "weight * x̂ + bias when they are given.",
        {
            "        y = y * weight\n": "        y = y\n",
            "        y = y + bias\n": "        y = y\n",
        },
    ),
    Mistake(
        "bias-before-weight",
        "Your output matches (x̂ + bias) * weight. The shift comes after the gain: "
        "weight * x̂ + bias.",
        {
            "    if weight is not None:\n        y = y * weight\n    if bias is not None:\n"
            "        y = y + bias\n": "    if bias is not None:\n        y = y + bias\n"
            "    if weight is not None:\n        y = y * weight\n"
        },
    ),
    Mistake(
        "dx-missing-mean-terms",
        "Your dx matches g·γ / σ alone: the two mean terms are missing. Every x_i moves the "
        "mean and the variance, so dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) / σ.",
        {
            "g - g.mean(dim=-1, keepdim=True) - x_hat * (g * x_hat).mean(dim=-1, keepdim=True)":
            "g"
        },
    ),
    Mistake(
        "dx-missing-variance-term",
        "Your dx lacks the variance term −x̂·mean(ĝ·x̂)/σ: the variance depends on x too.",
        {" - x_hat * (g * x_hat).mean(dim=-1, keepdim=True)": ""},
    ),
    Mistake(
        "dweight-not-summed",
        "Your dweight/dbias are summed over the first axis only. Sum over every leading "
        "dimension so they have shape (D,).",
        {"leading = tuple(range(x.dim() - 1))": "leading = 0"},
    ),
]

SHAPES = [(4, 8), (2, 3, 5), (1, 1), (6, 1), (3, 16), (2, 2, 2, 7)]


def _x(grader, shape, dtype, scale=1.0):
    return grader.randn(*shape, dtype=dtype, scale=scale) + 0.3 * scale


@check(points=2, public=True, task="layer_norm")
def test_forward(grader):
    """layer_norm without affine parameters matches the reference over many shapes"""
    for shape in SHAPES:
        for dtype in DTYPES:
            x = _x(grader, shape, dtype)
            grader.compare(Call("layer_norm", (x,)), case=f"layer_norm(x{list(shape)}, {dtype})")


@check(points=1, public=True, task="layer_norm")
def test_forward_small_variance(grader):
    """layer_norm puts epsilon inside the square root (inputs with tiny variance)"""
    for shape in [(4, 8), (3, 5)]:
        for dtype in DTYPES:
            x = _x(grader, shape, dtype, scale=1e-2)
            grader.compare(Call("layer_norm", (x,)), case=f"layer_norm(0.01·x{list(shape)})")
            grader.compare(
                Call("layer_norm", (x,), {"eps": 1e-3}), case=f"eps=1e-3 on x{list(shape)}"
            )


@check(points=2, public=True, task="layer_norm")
def test_forward_affine(grader):
    """layer_norm applies weight then bias"""
    for shape in [(4, 8), (2, 3, 5), (5, 1)]:
        for dtype in DTYPES:
            d = shape[-1]
            x = _x(grader, shape, dtype)
            w = grader.randn(d, dtype=dtype) + 1.0
            b = grader.randn(d, dtype=dtype)
            grader.compare(Call("layer_norm", (x, w, b)), case=f"x{list(shape)} with weight, bias")
            grader.compare(Call("layer_norm", (x, w)), case=f"x{list(shape)} with weight only")
            grader.compare(
                Call("layer_norm", (x,), {"bias": b}), case=f"x{list(shape)} with bias only"
            )


@check(points=1, public=True, task="layer_norm")
def test_batch_independence(grader):
    """each row is normalised alone: the same values inside a batch, mean 0 and variance 1"""
    # your code against itself, and the two properties of a normalised row; the exact values
    # are the other checks' business
    x = _x(grader, (5, 6), torch.float64)
    batch = _tensor_out(grader, grader.learner(Call("layer_norm", (x,)), "a batch of 5 rows"),
                        (5, 6), "a batch of 5 rows")
    mean, var = batch.mean(dim=-1), batch.var(dim=-1, unbiased=False)
    grader.require(
        bool((mean.abs() < 1e-3).all() and ((var - 1).abs() < 1e-2).all()),
        f"layer_norm(x) without weight and bias: a row's mean differs from 0 or its variance "
        f"from 1 (yours: means {[round(float(m), 4) for m in mean]}, variances "
        f"{[round(float(v), 4) for v in var]}); every row should come out with mean 0 and "
        "variance 1",
    )
    for row in (0, 2, 4):
        case = f"row {row} alone"
        alone = _tensor_out(grader, grader.learner(Call("layer_norm", (x[row:row + 1],)), case),
                            (1, 6), case)
        grader.require(
            torch.allclose(alone, batch[row:row + 1], rtol=1e-9, atol=1e-12),
            f"row {row} normalised alone differs from row {row} normalised in its batch of "
            "5 (largest difference "
            f"{float((alone - batch[row:row + 1]).abs().max()):.3g}): layer norm's statistics "
            "are each row's own, over the last dimension only.",
        )
        grader.cases.append(case)


def _tensor_out(grader, got: Outcome, shape: tuple[int, ...], case: str) -> torch.Tensor:
    out = got.out
    grader.require(isinstance(out, torch.Tensor) and tuple(out.shape) == shape,
                   f"{case}: layer_norm should return a tensor of shape {shape}")
    return out.double()



@check(points=1, task="layer_norm")
def test_autograd_through_forward(grader):
    """gradients flow through layer_norm (autograd over your operations)"""
    for shape in [(4, 8), (2, 3, 5)]:
        for dtype in DTYPES:
            d = shape[-1]
            x = _x(grader, shape, dtype)
            w = grader.randn(d, dtype=dtype) + 1.0
            b = grader.randn(d, dtype=dtype)
            grader.compare(
                Call("layer_norm", (x, w, b), grad=(0, 1, 2)),
                case=f"d/dx, d/dweight, d/dbias of layer_norm(x{list(shape)}, w, b)",
            )


@check(points=2, public=True, task="layer_norm_backward")
def test_backward(grader):
    """layer_norm_backward matches the true gradients, with and without weight"""
    for shape in SHAPES:
        for dtype in DTYPES:
            d = shape[-1]
            x = _x(grader, shape, dtype)
            g = grader.randn(*shape, dtype=dtype)
            w = grader.randn(d, dtype=dtype) + 1.0
            grader.compare(
                Call("layer_norm_backward", (g, x, w)),
                case=f"layer_norm_backward(g, x{list(shape)}, weight), {dtype}",
            )
            grader.compare(
                Call("layer_norm_backward", (g, x)),
                case=f"layer_norm_backward(g, x{list(shape)}) without weight",
            )


@check(points=1, task="layer_norm_backward")
def test_backward_eps(grader):
    """layer_norm_backward with tiny variance and a custom epsilon"""
    for dtype in DTYPES:
        x = _x(grader, (3, 6), dtype, scale=1e-2)
        g = grader.randn(3, 6, dtype=dtype)
        w = grader.randn(6, dtype=dtype)
        grader.compare(Call("layer_norm_backward", (g, x, w), {"eps": 1e-3}), case="eps=1e-3")


@check(points=1, public=True, task="LayerNorm")
def test_module_parameters(grader):
    """LayerNorm(dim) has parameters weight (ones) and bias (zeros) of shape (dim,)"""
    for dim in (1, 7):
        grader.compare(Inspect(Make("LayerNorm", (dim,))), case=f"LayerNorm({dim})", exact=True)


@check(points=2, public=True, task="LayerNorm")
def test_module_forward(grader):
    """LayerNorm forward and gradients with copied weights"""
    for shape in [(4, 8), (2, 3, 5)]:
        for dtype in DTYPES:
            d = shape[-1]
            state = {
                "weight": grader.randn(d, dtype=dtype) + 1,
                "bias": grader.randn(d, dtype=dtype),
            }
            module = Make("LayerNorm", (d,), state_dict=state, dtype=dtype)
            x = _x(grader, shape, dtype)
            grader.compare(
                Call(module, (x,), grad=(0, "params")),
                case=f"LayerNorm({d}) on x{list(shape)}, {dtype}, with gradients",
            )
    grader.compare(
        Call(Make("LayerNorm", (4,), {"eps": 0.5}, dtype=torch.float64),
             (_x(grader, (3, 4), torch.float64),)),
        case="LayerNorm(4, eps=0.5)",
    )
