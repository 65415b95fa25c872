"""Hidden checks for unit 2.2 `relu` (Glorot, Bordes & Bengio, 2011).

Every check compares the learner's code with the master solution on seeded inputs that contain
exact zeros (+0.0 and -0.0) and tiny values of both signs (±1e-30), where a rectifier's kink and
a sparsity count are easy to get wrong; several shapes (one element, one row, 3-D), float32 and
float64. Forward values of a rectifier are exact, and so are float64 gradients, so they are
compared exactly (float32 gradients within the float32 tolerance, since the grader's float64
reference uses unrounded cotangents); the two statistics are Python floats, compared to float64
precision. On a mismatch the output
is looked up in the mistake bank below.
"""

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Mistake, check

UNIT = "relu"

FORBIDDEN = [
    Forbid(
        calls=(
            "torch.relu",
            "torch.relu_",
            "torch.nn.functional.relu",
            "torch.nn.functional.relu_",
            "torch.nn.ReLU",
            "torch.Tensor.relu",
            "torch.Tensor.relu_",
        ),
        aten=("relu", "relu_"),
    ),
]

MISTAKES = [
    Mistake(
        "grad-one-at-zero",
        "Your gradient matches a mask that is 1 where x >= 0: at exactly x = 0 you let the "
        "gradient through. The rectifier's gradient is taken as 0 at the kink (as in PyTorch): "
        "use the mask x > 0. (Autograd through clamp(x, min=0) has this gradient too: route relu "
        "through ReLU.apply.)",
        {"active = x > 0": "active = x >= 0"},
    ),
    Mistake(
        "grad-is-output",
        "Your gradient matches grad_output multiplied by the output relu(x). The derivative of "
        "max(0, x) is not the output but a mask: 1 where x > 0 and 0 elsewhere, so the "
        "gradient is grad_output * (x > 0).",
        {"active = x > 0": "active = torch.where(x > 0, x, torch.zeros_like(x))"},
    ),
    Mistake(
        "mask-from-grad-output",
        "Your gradient matches grad_output kept where grad_output > 0. The mask comes from the "
        "forward input, not from the incoming gradient: save x in forward and pass "
        "grad_output where x > 0 (of either sign).",
        {"active = x > 0": "active = grad_output > 0"},
    ),
    Mistake(
        "backward-unmasked",
        "Your gradient matches grad_output returned unchanged (an identity backward). Units "
        "that were silent in the forward pass (x <= 0) must get gradient 0: multiply by the "
        "mask x > 0.",
        {"return grad_output * active.to(grad_output.dtype)": "return grad_output"},
    ),
    Mistake(
        "forward-in-place",
        "relu changed the tensor you passed in: your forward overwrites the negative entries "
        "of its input in place. Return a new tensor (torch.where, multiplication by a mask, "
        "clamp) and leave x untouched.",
        {
            "return torch.where(x > 0, x, torch.zeros_like(x))":
            "x[x <= 0] = 0\n        return x"
        },
    ),
    Mistake(
        "sparsity-per-sample",
        "Your sparsity matches the number of zeros divided by the batch size (zeros per "
        "sample), not by the number of entries. Sparsity is a fraction over all elements: "
        "divide by h.numel().",
        {"return zeros / h.numel()": "return zeros / h.shape[0]"},
    ),
    Mistake(
        "sparsity-near-zero",
        "Your sparsity matches counting entries with |h| < 1e-6 as zeros. Only exact zeros "
        "count (h == 0): a tiny positive activation is an active unit.",
        {"zeros = (h == 0).sum().item()": "zeros = (h.abs() < 1e-6).sum().item()"},
    ),
    Mistake(
        "sparsity-counts-active",
        "Your sparsity matches the fraction of NON-zero entries (the density, 1 − sparsity). "
        "Count the entries equal to 0.",
        {"zeros = (h == 0).sum().item()": "zeros = (h != 0).sum().item()"},
    ),
    Mistake(
        "sparsity-nonpositive",
        "Your sparsity matches counting every entry <= 0. On ReLU outputs that is the same, "
        "but sparsity(h) is defined for any tensor: count only entries exactly equal to 0.",
        {"zeros = (h == 0).sum().item()": "zeros = (h <= 0).sum().item()"},
    ),
    Mistake(
        "dead-wrong-axis",
        "Your dead_units matches the fraction of SAMPLES (rows) whose activations are all "
        "zero. A unit is a column of the (B, U) batch: reduce over the batch axis (dim 0) and "
        "divide by U.",
        {"silent = (h == 0).all(dim=0)": "silent = (h == 0).all(dim=1)"},
    ),
    Mistake(
        "dead-any-zero",
        "Your dead_units matches counting units that are zero for ANY sample. A unit is dead "
        "only when it is zero for EVERY sample of the batch: use .all over the batch axis, "
        "not .any.",
        {"silent = (h == 0).all(dim=0)": "silent = (h == 0).any(dim=0)"},
    ),
    Mistake(
        "dead-count",
        "Your dead_units returns the NUMBER of dead units. Return the fraction: divide by the "
        "number of units U.",
        {"return silent.sum().item() / silent.numel()": "return silent.sum().item()"},
    ),
]

SHAPES = [(7,), (1,), (1, 1), (4, 8), (2, 3, 5), (3, 1, 6)]


def _x(grader, shape, dtype=torch.float64):
    """randn with about 20% exact zeros (+0.0 and -0.0), 10% ±1e-30, and x.flat[0] = 0."""
    x = grader.randn(*shape)
    u = grader.rand(*shape)
    x = torch.where(u < 0.1, torch.zeros_like(x), x)
    x = torch.where((u >= 0.1) & (u < 0.2), -torch.zeros_like(x), x)
    x = torch.where((u >= 0.2) & (u < 0.3), 1e-30 * x.sign(), x)
    x.view(-1)[0] = 0.0
    return x.to(dtype)


def _code(grader, b, u, dtype=torch.float64, dead=(), partial=(), zero_rows=()):
    """A (b, u) hidden code: positive entries (some tiny), dead columns, partly silent columns,
    all-zero rows."""
    h = grader.rand(b, u) + 0.05
    tiny = grader.rand(b, u) < 0.1
    h = torch.where(tiny, torch.full_like(h, 1e-30), h)
    for col in partial:
        rows = grader.rand(b) < 0.5
        rows[col % b] = True
        rows[(col + 1) % b] = b == 1  # keep at least one active sample when b > 1
        h[rows, col] = 0.0
    for col in dead:
        h[:, col] = 0.0
    for row in zero_rows:
        h[row, :] = 0.0
    return h.to(dtype)


def _require_float(grader, got, case):
    grader.require(
        type(got.out) is float,
        f"{case}: returned {type(got.out).__name__}, expected a Python float "

        "(use .item() on a one-element tensor, then divide)",
    )


@check(points=2, public=True, task="relu")
def test_forward(grader):
    """relu(x) is max(0, x) exactly, keeps dtype and shape (inputs with exact zeros and ±1e-30)"""
    for shape in SHAPES:
        for dtype in DTYPES:
            x = _x(grader, shape, dtype)
            grader.compare(Call("relu", (x,)), case=f"relu(x{list(shape)}, {dtype})", exact=True)


@check(points=1, public=True, task="ReLU")
def test_function_apply(grader):
    """ReLU.apply(x) itself computes max(0, x) and its gradient"""
    for shape in [(4, 8), (2, 3, 5)]:
        for dtype in DTYPES:
            x = _x(grader, shape, dtype)
            grader.compare(
                Call("@relu.apply", (x,), grad=(0,)),
                case=f"ReLU.apply(x{list(shape)}, {dtype}) and its gradient",
                exact=dtype == torch.float64,
            )


@check(points=2, public=True, task="relu")
def test_backward(grader):
    """the gradient of relu is grad_output where x > 0 and 0 elsewhere (exact)"""
    for shape in SHAPES:
        for dtype in DTYPES:
            x = _x(grader, shape, dtype)
            grader.compare(
                Call("relu", (x,), grad=(0,)),
                case=f"d/dx of relu(x{list(shape)}), {dtype}",
                exact=dtype == torch.float64,
            )


@check(points=1, task="relu")
def test_backward_at_zero(grader):
    """the gradient is 0 at exactly x = 0 (+0.0 and -0.0) and passes for tiny positive x"""
    for dtype in DTYPES:
        exact = dtype == torch.float64  # float32 cotangents are rounded copies of float64 ones
        edge = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 1e-20, -1e-20, 2.5, -2.5], dtype=dtype)
        grader.compare(Call("relu", (edge,), grad=(0,)),
                       case=f"x = [0, -0, ±1e-30, ±1e-20, ±2.5], {dtype}", exact=exact)
        for zero in (0.0, -0.0):
            x = torch.full((3, 4), zero, dtype=dtype)
            x[:, 0] = -1.0  # a silent column, so that an identity backward shows too
            grader.compare(Call("relu", (x,), grad=(0,)),
                           case=f"x[3, 4] = {zero} except a column of -1, {dtype}", exact=exact)


@check(points=1, task="relu")
def test_two_layers(grader):
    """gradients through two stacked rectifier layers match autograd (gradcheck-like)"""
    for dtype in DTYPES:
        x = grader.randn(5, 6)
        x[1] = 0.0  # an all-zero sample: both layers see pre-activations of exactly 0
        w1 = grader.randn(6, 7)
        w2 = grader.randn(7, 4)
        grader.compare(
            Call("@relu.two_layer", (x.to(dtype), w1.to(dtype), w2.to(dtype)), grad=(0, 1, 2)),
            case=f"relu(relu(x @ w1) @ w2) with x[5, 6], w1[6, 7], w2[7, 4], {dtype}",
        )


@check(points=1, task="relu")
def test_input_untouched(grader):
    """relu returns a new tensor and leaves its input unchanged"""
    for dtype in DTYPES:
        x = _x(grader, (4, 6), dtype)
        grader.compare(Call("relu", (x,), after=(0,)), case=f"x after relu(x[4, 6]), {dtype}",
                       exact=True)


@check(points=2, public=True, task="sparsity")
def test_sparsity(grader):
    """sparsity(h) is the fraction of exact zeros over all entries, as a Python float"""
    for b, u, dtype in [(8, 16, torch.float32), (5, 12, torch.float64), (3, 7, torch.float32)]:
        h = _x(grader, (b, u)).clamp_min(0).to(dtype)  # a ReLU code with tiny active values
        case = f"sparsity(h[{b}, {u}]), {dtype}"
        got = grader.compare(Call("sparsity", (h,)), case=case, exact=True)
        _require_float(grader, got, case)
    h = _x(grader, (2, 3, 4)).clamp_min(0)
    grader.compare(Call("sparsity", (h,)), case="sparsity(h[2, 3, 4])", exact=True)


@check(points=1, task="sparsity")
def test_sparsity_exact_zeros(grader):
    """sparsity counts exact zeros only (not negatives, not tiny values); 1-D and edge cases"""
    x = _x(grader, (6, 10))
    grader.compare(Call("sparsity", (x,)), case="sparsity of pre-activations with negatives",
                   exact=True)
    cases = {
        "sparsity(h[1, 9])": _x(grader, (1, 9)).clamp_min(0),
        "sparsity(h[11]) (1-D)": _x(grader, (11,)).clamp_min(0),
        "all zeros": torch.zeros(4, 5),
        "no zeros": grader.rand(4, 5) + 0.5,
        "only ±1e-30, no zeros": 1e-30 * (grader.rand(3, 5) - 0.5).sign(),
    }
    for case, h in cases.items():
        got = grader.compare(Call("sparsity", (h.float(),)), case=case + ", float32", exact=True)
        _require_float(grader, got, case)


@check(points=2, public=True, task="dead_units")
def test_dead_units(grader):
    """dead_units(h) is the fraction of units (columns) that are zero for every sample"""
    specs = [
        (6, 10, (2, 7), (0, 4, 5), ()),
        (9, 5, (1,), (3,), ()),
        (4, 12, (0, 3, 11), (5, 6), (2,)),
        (7, 3, (), (0, 1), (1, 4)),
    ]
    for b, u, dead, partial, zero_rows in specs:
        for dtype in DTYPES:
            h = _code(grader, b, u, dtype, dead, partial, zero_rows)
            case = (f"dead_units(h[{b}, {u}]), {dtype}, dead columns {list(dead)}, "
                    f"partly silent {list(partial)}, zero rows {list(zero_rows)}")
            got = grader.compare(Call("dead_units", (h,)), case=case, exact=True)
            _require_float(grader, got, case)


@check(points=1, task="dead_units")
def test_dead_units_edges(grader):
    """dead_units with one sample, one unit, no dead unit and every unit dead"""
    cases = {
        "one sample h[1, 6]": _code(grader, 1, 6, dead=(1, 4)),
        "one unit h[5, 1], alive": _code(grader, 5, 1, partial=(0,)),
        "one unit h[5, 1], dead": torch.zeros(5, 1),
        "no dead unit h[4, 6]": _code(grader, 4, 6, partial=(0, 1, 2), zero_rows=(3,)),
        "every unit dead h[3, 4]": torch.zeros(3, 4),
        "ReLU of a shifted batch h[6, 8]": (grader.randn(6, 8) - 1.2).clamp_min(0),
    }
    for case, h in cases.items():
        got = grader.compare(Call("dead_units", (h,)), case=case, exact=True)
        _require_float(grader, got, case)
