"""Hidden checks for unit 2.7 `gelu` (Hendrycks & Gimpel, 2016).

Every check compares the learner's functions with the master solution on seeded inputs
(several shapes including a scalar, a single element and an empty tensor, float32 and float64,
inputs up to |x| = 1e4) and, on a mismatch, looks the output up in the mistake bank below.
The master itself agrees with ``torch.nn.functional.gelu`` in both modes (``approximate=
"none"`` and ``"tanh"``), and the checks also hold the learner's outputs against that function
and the analytic derivative against autograd of it, computed here in the grader.

The approximation bounds are the maxima of the reference's own errors on a dense grid,
rounded up: max |gelu_tanh − gelu| = 4.73e-4 (at |x| ≈ 2.70) and max |gelu_sigmoid − gelu| =
2.03e-2 (at |x| ≈ 2.27); the lecture states the same figures.
"""

import torch
import torch.nn.functional as F

from course.grading.compare import Tolerance
from course.grading.dsl import AUTOGRAD_ENGINE, Call, Forbid, Mistake, check
from course.grading.dsl import FLOAT_DTYPES as DTYPES

UNIT = "gelu"

FORBIDDEN = [
    Forbid(
        calls=("torch.nn.functional.gelu", "torch.nn.GELU"),
        aten=("gelu", "gelu_backward"),
    ),
    Forbid(
        calls=("torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward"),
        aten=(AUTOGRAD_ENGINE,),  # the engine however reached (its own run_backward too)
        within=("gelu_grad",),
    ),
]

MISTAKES = [
    Mistake(
        "missing-half",
        "Your output matches what we get without the factor ½: x·(1 + erf(x/√2)) is twice "
        "GELU. Φ(x) = ½·(1 + erf(x/√2)), so GELU(x) = ½·x·(1 + erf(x/√2)) (the same ½ appears "
        "in the tanh form and in Φ inside the derivative).",
        {
            "return 0.5 * x * (1.0 + torch.erf": "return x * (1.0 + torch.erf",
            "return 0.5 * x * (1.0 + torch.tanh(inner))": "return x * (1.0 + torch.tanh(inner))",
            "cdf = 0.5 * (1.0 + ": "cdf = (1.0 + ",
        },
    ),
    Mistake(
        "erf-without-sqrt2",
        "Your output matches using erf(x) instead of erf(x/√2). erf is the CDF of a normal "
        "with variance ½, so the standard normal CDF is Φ(x) = ½·(1 + erf(x/√2)): divide x by "
        "√2 inside erf.",
        {"torch.erf(x / math.sqrt(2.0))": "torch.erf(x)"},
        count=2,
    ),
    Mistake(
        "sqrt2-outside-erf",
        "Your output matches erf(x)/√2: the division by √2 ended up outside erf. It belongs "
        "to the argument: Φ(x) = ½·(1 + erf(x/√2)).",
        {"torch.erf(x / math.sqrt(2.0))": "torch.erf(x) / math.sqrt(2.0)"},
        count=2,
    ),
    Mistake(
        "gate-only",
        "Your output matches the gate alone (Φ(x), its tanh form, or σ(1.702x)) without the "
        "factor x. GELU multiplies the input by the gate: x·Φ(x).",
        {
            "return 0.5 * x * (1.0 + torch.erf": "return 0.5 * (1.0 + torch.erf",
            "return 0.5 * x * (1.0 + torch.tanh(inner))": "return 0.5 * (1.0 + torch.tanh(inner))",
            "return x * torch.sigmoid(1.702 * x)": "return torch.sigmoid(1.702 * x)",
        },
    ),
    Mistake(
        "tanh-cubic-coefficient",
        "Your output matches the tanh form with 0.44715 as the cubic coefficient. The "
        "constant is 0.044715 (with a zero after the point): √(2/π)·(x + 0.044715·x³).",
        {"0.044715 * x**3": "0.44715 * x**3"},
    ),
    Mistake(
        "tanh-sqrt-2pi",
        "Your output matches the tanh form scaled by √(2π) ≈ 2.51. The factor is √(2/π) ≈ "
        "0.798: tanh(√(2/π)·(x + 0.044715·x³)).",
        {"math.sqrt(2.0 / math.pi)": "math.sqrt(2.0 * math.pi)"},
    ),
    Mistake(
        "tanh-no-sqrt",
        "Your output matches the tanh form scaled by 2/π instead of its square root √(2/π).",
        {"math.sqrt(2.0 / math.pi)": "(2.0 / math.pi)"},
    ),
    Mistake(
        "tanh-x-squared",
        "Your output matches the tanh form with x² where x³ belongs: the argument is "
        "√(2/π)·(x + 0.044715·x³), an odd function of x.",
        {"x**3": "x**2"},
    ),
    Mistake(
        "sigmoid-silu",
        "Your output matches x·σ(x) (SiLU / Swish), not the sigmoid approximation of GELU. "
        "Scale the sigmoid's argument: x·σ(1.702·x).",
        {"torch.sigmoid(1.702 * x)": "torch.sigmoid(x)"},
    ),
    Mistake(
        "grad-missing-x-pdf",
        "Your derivative matches Φ(x) alone: the product rule's second term is missing. "
        "d/dx [x·Φ(x)] = Φ(x) + x·φ(x).",
        {"return cdf + x * pdf": "return cdf"},
    ),
    Mistake(
        "grad-missing-x",
        "Your derivative matches Φ(x) + φ(x): the density term needs the factor x, "
        "d/dx [x·Φ(x)] = Φ(x) + x·φ(x).",
        {"return cdf + x * pdf": "return cdf + pdf"},
    ),
    Mistake(
        "pdf-missing-normaliser",
        "Your derivative matches a density without its normalising constant: "
        "φ(x) = exp(−x²/2) / √(2π).",
        {"torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)": "torch.exp(-0.5 * x * x)"},
    ),
    Mistake(
        "pdf-exponent",
        "Your derivative matches a density with exp(−x²) instead of exp(−x²/2). The standard "
        "normal density is φ(x) = exp(−x²/2) / √(2π).",
        {"torch.exp(-0.5 * x * x)": "torch.exp(-x * x)"},
    ),
]

SHAPES = [(4, 8), (2, 3, 5), (1,), (), (0, 3)]
GRAD_SHAPES = [(7,), (4, 8), (1,)]
LARGE = [-1e4, -1e3, -50.0, -10.0, -3.0, -0.5, 0.0, 0.5, 3.0, 10.0, 50.0, 1e3, 1e4]

# Bounds on the approximations' maximum error on [-8, 8], from the reference (see above).
TANH_BOUND = 5e-4
SIGMOID_BOUND = 2.1e-2


def _x(grader, shape, dtype):
    return grader.randn(*shape, dtype=dtype, scale=3.0)


def _name(dtype):
    return str(dtype).replace("torch.", "")


def _against_torch(grader, got, x, case, approximate=None, derivative=False):
    """The learner's output (an Outcome) against F.gelu / autograd of it, computed here."""
    x64 = x.double().requires_grad_(derivative)
    with torch.enable_grad():
        y = F.gelu(x64, approximate=approximate or "none")
        want = torch.autograd.grad(y.sum(), x64)[0] if derivative else y.detach()
    out = got.out.double()
    rtol, atol = Tolerance().for_dtype(x.dtype)
    err = float((out - want).abs().max()) if out.numel() else 0.0
    what = "autograd of F.gelu" if derivative else f"F.gelu(approximate={approximate!r})"
    grader.require(
        torch.allclose(out, want, rtol=rtol, atol=atol),
        f"{case}: differs from {what} (max abs error {err:.3g})",
    )


@check(points=2, public=True, task="gelu")
def test_gelu(grader):
    """gelu matches the exact GELU (and F.gelu) over many shapes, float32 and float64"""
    for shape in SHAPES:
        for dtype in DTYPES:
            x = _x(grader, shape, dtype)
            case = f"gelu(x{list(shape)}, {_name(dtype)})"
            got = grader.compare(Call("gelu", (x,)), case=case)
            _against_torch(grader, got, x, case, approximate="none")


@check(points=1, task="gelu")
def test_gelu_autograd(grader):
    """gradients flow through gelu (autograd over your operations)"""
    for shape in GRAD_SHAPES:
        for dtype in DTYPES:
            grader.compare(
                Call("gelu", (_x(grader, shape, dtype),), grad=(0,)),
                case=f"d/dx of gelu(x{list(shape)}), {_name(dtype)}",
            )


@check(points=1, task="gelu")
def test_gelu_large(grader):
    """gelu is finite and correct for |x| up to 1e4 (gelu(1e4) = 1e4, gelu(−1e4) = 0)"""
    for dtype in DTYPES:
        x = torch.tensor(LARGE, dtype=dtype)
        grader.compare(
            Call("gelu", (x,), grad=(0,)),
            case=f"gelu and its gradient at ±(0.5 … 1e4), {_name(dtype)}",
        )


@check(points=2, public=True, task="gelu_tanh")
def test_gelu_tanh(grader):
    """gelu_tanh matches the tanh approximation (and F.gelu(approximate='tanh'))"""
    for shape in SHAPES:
        for dtype in DTYPES:
            x = _x(grader, shape, dtype)
            case = f"gelu_tanh(x{list(shape)}, {_name(dtype)})"
            got = grader.compare(Call("gelu_tanh", (x,)), case=case)
            _against_torch(grader, got, x, case, approximate="tanh")


@check(points=1, task="gelu_tanh")
def test_gelu_tanh_large(grader):
    """gelu_tanh and its autograd gradient are finite and correct for |x| up to 1e4"""
    for dtype in DTYPES:
        grader.compare(
            Call("gelu_tanh", (_x(grader, (4, 8), dtype),), grad=(0,)),
            case=f"d/dx of gelu_tanh(x[4, 8]), {_name(dtype)}",
        )
        grader.compare(
            Call("gelu_tanh", (torch.tensor(LARGE, dtype=dtype),), grad=(0,)),
            case=f"gelu_tanh and its gradient at ±(0.5 … 1e4), {_name(dtype)}",
        )


def _max_error(grader, name, dtype):
    """max |name(x) − gelu(x)| on a dense grid: the learner's approximation against the
    reference's exact GELU, and the reference's own approximation error."""
    grid = torch.linspace(-8.0, 8.0, 3201, dtype=torch.float64).to(dtype)
    exact = grader.reference(Call("gelu", (grid,))).out
    ref = grader.reference(Call(name, (grid,))).out
    out = grader.learner(Call(name, (grid,)), case=f"{name}(x) on 3201 points in [-8, 8]").out

    grader.require(
        tuple(out.shape) == tuple(grid.shape),
        f"{name}: returned shape {tuple(out.shape)} for an input of shape {tuple(grid.shape)}",
    )
    learner_err = (out.double() - exact).abs()
    return float(learner_err.max()), float(grid[learner_err.argmax()]), float(
        (ref - exact).abs().max()
    )


@check(points=1, public=True, task="gelu_tanh")
def test_gelu_tanh_error_bound(grader):
    """max |gelu_tanh − gelu| on [-8, 8] is at most 5e-4 (the reference's is 4.73e-4)"""
    for dtype in DTYPES:
        err, where, ref_err = _max_error(grader, "gelu_tanh", dtype)
        grader.require(
            err <= TANH_BOUND,
            f"max |gelu_tanh(x) − gelu(x)| over [-8, 8] ({_name(dtype)}) is {err:.3g} at "
            f"x = {where:.3g}; the tanh approximation stays within {TANH_BOUND:g} "
            f"(its true maximum is {ref_err:.3g})",
        )


@check(points=1, public=True, task="gelu_sigmoid")
def test_gelu_sigmoid(grader):
    """gelu_sigmoid matches x·σ(1.702x) over many shapes, float32 and float64"""
    for shape in SHAPES:
        for dtype in DTYPES:
            grader.compare(
                Call("gelu_sigmoid", (_x(grader, shape, dtype),)),
                case=f"gelu_sigmoid(x{list(shape)}, {_name(dtype)})",
            )


@check(points=1, task="gelu_sigmoid")
def test_gelu_sigmoid_large(grader):
    """gelu_sigmoid and its autograd gradient are finite and correct for |x| up to 1e4"""
    for dtype in DTYPES:
        grader.compare(
            Call("gelu_sigmoid", (_x(grader, (4, 8), dtype),), grad=(0,)),
            case=f"d/dx of gelu_sigmoid(x[4, 8]), {_name(dtype)}",
        )
        grader.compare(
            Call("gelu_sigmoid", (torch.tensor(LARGE, dtype=dtype),), grad=(0,)),
            case=f"gelu_sigmoid and its gradient at ±(0.5 … 1e4), {_name(dtype)}",
        )


@check(points=1, public=True, task="gelu_sigmoid")
def test_gelu_sigmoid_error_bound(grader):
    """max |gelu_sigmoid − gelu| on [-8, 8] is at most 2.1e-2 (the reference's is 2.03e-2)"""
    for dtype in DTYPES:
        err, where, ref_err = _max_error(grader, "gelu_sigmoid", dtype)
        grader.require(
            err <= SIGMOID_BOUND,
            f"max |gelu_sigmoid(x) − gelu(x)| over [-8, 8] ({_name(dtype)}) is {err:.3g} at "
            f"x = {where:.3g}; the sigmoid approximation stays within {SIGMOID_BOUND:g} "
            f"(its true maximum is {ref_err:.3g})",
        )


@check(points=2, public=True, task="gelu_grad")
def test_gelu_grad(grader):
    """gelu_grad matches Φ(x) + x·φ(x) over many shapes, float32 and float64"""
    for shape in SHAPES:
        for dtype in DTYPES:
            grader.compare(
                Call("gelu_grad", (_x(grader, shape, dtype),)),
                case=f"gelu_grad(x{list(shape)}, {_name(dtype)})",
            )


@check(points=1, task="gelu_grad")
def test_gelu_grad_vs_autograd(grader):
    """gelu_grad equals the derivative autograd computes for F.gelu"""
    for shape in [(64,), (3, 5)]:
        for dtype in DTYPES:
            x = _x(grader, shape, dtype)
            case = f"gelu_grad(x{list(shape)}, {_name(dtype)})"
            got = grader.compare(Call("gelu_grad", (x,)), case=case)
            _against_torch(grader, got, x, case, derivative=True)


@check(points=1, task="gelu_grad")
def test_gelu_grad_large(grader):
    """gelu_grad is finite and correct for |x| up to 1e4 (1 at 1e4, 0 at −1e4, ½ at 0)"""
    for dtype in DTYPES:
        grader.compare(
            Call("gelu_grad", (torch.tensor(LARGE, dtype=dtype),)),
            case=f"gelu_grad at ±(0.5 … 1e4), {_name(dtype)}",
        )
