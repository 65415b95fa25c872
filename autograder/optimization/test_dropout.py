"""Hidden checks for unit 2.4 `dropout` (Srivastava, Hinton, Krizhevsky, Sutskever &
Salakhutdinov, 2014).

Masks are drawn from seeded ``torch.Generator`` objects (``Gen(seed)``), so the learner's output
must equal the master's exactly up to floating rounding: same mask, same scaling. On top of that,
statistical checks on large inputs test the properties themselves (the fraction of units kept,
the expectation E[dropout(x)] = x, independent masks per example) with a bound of five standard
errors, and the edge cases p = 0 (identity) and p = 1 (zeros, never NaN) are checked separately.
"""

import math

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Device, Forbid, Gen, Make, Mistake, check

UNIT = "dropout"

FORBIDDEN = [
    Forbid(
        calls=(
            "torch.nn.functional.dropout",
            "torch.nn.functional.dropout1d",
            "torch.nn.functional.dropout2d",
            "torch.nn.functional.dropout3d",
            "torch.nn.functional.alpha_dropout",
            "torch.nn.functional.feature_alpha_dropout",
            "torch.dropout",
            "torch.nn.Dropout",
            "torch.nn.Dropout1d",
            "torch.nn.Dropout2d",
            "torch.nn.Dropout3d",
            "torch.nn.AlphaDropout",
            "torch.nn.FeatureAlphaDropout",
        ),
        aten=(
            "dropout",
            "dropout_",
            "native_dropout",
            "feature_dropout",
            "feature_dropout_",
            "alpha_dropout",
            "alpha_dropout_",
            "feature_alpha_dropout",
            "feature_alpha_dropout_",
        ),
    ),
]

MISTAKES = [
    Mistake(
        "scale-by-p",
        "Your output matches kept units multiplied by p. Inverted dropout divides the kept units "
        "by the keep probability 1 − p, so that the expected output equals x.",
        {"return x * keep / (1 - p)": "return x * keep * p"},
    ),
    Mistake(
        "mask-polarity",
        "Your mask matches rand < p: it keeps a unit with probability p instead of 1 − p. "
        "Keep the entries whose uniform number is at least p: torch.rand(shape, "
        "generator=generator) >= p.",
        {"return u >= p": "return u < p"},
    ),
    Mistake(
        "draw-in-x-dtype",
        "Your output matches a mask drawn with torch.rand in x's dtype: float64 uniforms are a "
        "different random stream from float32 ones, so float64 inputs get another mask. Draw the "
        "mask with dropout_mask(x.shape, p, generator), whose uniforms are float32 whatever x is.",
        {
            "keep = dropout_mask(x.shape, p, generator).to(x.device)":
            "keep = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device) >= p"
        },
    ),
    Mistake(
        "scale-by-keep-prob",
        "Your output matches kept units multiplied by 1 − p. That is the test-time factor of the "
        "paper's convention; inverted dropout divides by 1 − p in training instead.",
        {"return x * keep / (1 - p)": "return x * keep * (1 - p)"},
    ),
    Mistake(
        "no-rescale",
        "Your output matches the masked x without rescaling. Inverted dropout divides the kept "
        "units by 1 − p in training, so that E[dropout(x)] = x and nothing changes at test time.",
        {"return x * keep / (1 - p)": "return x * keep"},
    ),
    Mistake(
        "one-mask-per-batch",
        "Your output matches a single mask of shape x.shape[1:] shared by every example of the "
        "batch. Each entry of x needs its own mask entry: draw dropout_mask(x.shape, p, "
        "generator).",
        {
            "keep = dropout_mask(x.shape, p, generator)":
            "keep = dropout_mask(x.shape[1:], p, generator)"
        },
    ),
    Mistake(
        "nan-at-p-1",
        "Your output holds NaN at p = 1: every unit is dropped and 0 / (1 − p) is 0 / 0. Handle "
        "p = 1 separately and return zeros (x times the all-False mask).",
        {"    if p == 1:\n        return x * keep  # every unit dropped: zeros with zero "
         "gradient, never 0 / 0\n": ""},
    ),
    Mistake(
        "module-ignores-training",
        "Your Dropout module drops units in eval mode: it does not pass self.training on. Call "
        "dropout(x, self.p, training=self.training, ...) so that .eval() turns it into the "
        "identity.",
        {"training=self.training": "training=True"},
    ),
    Mistake(
        "drop-at-eval",
        "Your output matches dropout applied even though training=False. At test time inverted "
        "dropout is the identity: return x unchanged.",
        {"    if not training:\n        return x\n    keep": "    keep"},
    ),
    Mistake(
        "paper-scaled-in-training",
        "Your paper_dropout output matches the training mask divided by p_retain. That is "
        "inverted dropout; the paper's convention does not rescale in training (it multiplies "
        "by p_retain at test time instead).",
        {"        return x * keep\n    return x * p_retain":
         "        return x * keep / p_retain\n    return x * p_retain"},
    ),
    Mistake(
        "paper-no-test-scaling",
        "Your paper_dropout at test time matches x unchanged. In the paper's convention the "
        "test-time output is p_retain · x, the expected value of the training output.",
        {"\n    return x * p_retain\n": "\n    return x\n"},
    ),
    Mistake(
        "paper-p-as-drop-probability",
        "Your paper_dropout matches treating p_retain as the drop probability. In the paper p is "
        "the probability of retaining a unit: drop with probability 1 − p_retain and multiply by "
        "p_retain at test time.",
        {
            "keep = dropout_mask(x.shape, 1 - p_retain, generator)":
            "keep = dropout_mask(x.shape, p_retain, generator)",
            "\n    return x * p_retain\n": "\n    return x * (1 - p_retain)\n",
        },
    ),
    Mistake(
        "paper-rand-below",
        "Your paper_dropout mask matches rand < p_retain. That keeps units with the right "
        "probability but is a different draw from the one asked for: use dropout_mask(x.shape, "
        "1 − p_retain, generator), i.e. rand >= 1 − p_retain, so that the same generator gives "
        "the same mask as dropout(x, 1 − p_retain).",
        {
            "keep = dropout_mask(x.shape, 1 - p_retain, generator).to(x.device)":
            "keep = (torch.rand(x.shape, generator=generator) < p_retain).to(x.device)"
        },
    ),
]

SHAPES = [(4, 8), (2, 3, 5), (1, 6), (1,), (5, 1), (3, 16)]
SIGMAS = 5.0  # statistical checks allow five standard errors


def _learner_tensor(grader, probe, shape, case):
    """The learner's output for ``probe`` as a float64 CPU tensor of ``shape``, or a failure."""
    data = grader.learner(probe, case).out
    grader.require(isinstance(data, torch.Tensor), f"{case}: expected a tensor")
    grader.require(tuple(data.shape) == tuple(shape),
                   f"{case}: output has shape {tuple(data.shape)}, expected {tuple(shape)}")
    grader.require(data.is_floating_point(), f"{case}: expected a floating-point output")
    grader.require(bool(torch.isfinite(data).all()), f"{case}: output holds NaN or inf")
    return data.double()


# -- dropout_mask --------------------------------------------------------------------------


@check(points=2, public=True, task="dropout_mask")
def test_mask(grader):
    """dropout_mask equals torch.rand(shape, generator=generator) >= p, as a bool tensor"""
    for shape in [(4, 8), (2, 3, 5), (1,), (1, 1), (7,)]:
        for p in (0.2, 0.9, 0.5):
            seed = grader.seed()
            grader.compare(
                Call("@dropout.mask", (shape, p, Gen(seed), Device())),
                case=f"dropout_mask({shape}, p={p}, generator=Gen({seed}))",
                exact=True,
            )
    for p in (0.0, 1.0):
        grader.compare(
            Call("@dropout.mask", ((3, 4), p, Gen(grader.seed()), Device())),
            case=f"dropout_mask((3, 4), p={p})",
            exact=True,
        )


@check(points=1, task="dropout_mask")
def test_mask_global_rng(grader):
    """dropout_mask and dropout use torch's global generator when generator is None"""
    grader.compare(
        Call("@dropout.mask", ((6, 5), 0.3, None, Device())),
        case="dropout_mask((6, 5), p=0.3) with the global generator",
        exact=True,
    )
    x = grader.randn(6, 5)
    grader.compare(Call("dropout", (x, 0.3)), case="dropout(x[6, 5], p=0.3), global generator")


# -- dropout -------------------------------------------------------------------------------


@check(points=2, public=True, task="dropout")
def test_forward(grader):
    """dropout in training: dropout_mask's mask, kept units scaled by 1 / (1 - p)"""
    for p in (0.2, 0.7):
        for shape in SHAPES:
            for dtype in DTYPES:
                x = grader.randn(*shape, dtype=dtype)
                seed = grader.seed()
                grader.compare(
                    Call("dropout", (x, p), {"generator": Gen(seed)}),
                    case=f"dropout(x{list(shape)}, p={p}, generator=Gen({seed})), {dtype}",
                )


@check(points=1, public=True, task="dropout")
def test_eval_identity(grader):
    """dropout with training=False returns x unchanged"""
    for shape in [(4, 8), (2, 3, 5), (1,)]:
        for dtype in DTYPES:
            for p in (0.3, 1.0):
                x = grader.randn(*shape, dtype=dtype)
                grader.compare(
                    Call("dropout", (x, p), {"training": False, "generator": Gen(1)}),
                    case=f"dropout(x{list(shape)}, p={p}, training=False), {dtype}",
                )


@check(points=1, task="dropout")
def test_p_zero_and_one(grader):
    """p = 0 is the identity and p = 1 gives zeros (never NaN), in training"""
    for shape in [(4, 8), (1, 1), (3,)]:
        for dtype in DTYPES:
            x = grader.randn(*shape, dtype=dtype)
            for p in (1.0, 0.0):
                grader.compare(
                    Call("dropout", (x, p), {"generator": Gen(grader.seed())}),
                    case=f"dropout(x{list(shape)}, p={p}), {dtype}",
                )


@check(points=2, task="dropout")
def test_gradient(grader):
    """the gradient of dropout w.r.t. x is mask / (1 - p) in training and 1 at test"""
    for shape in [(4, 8), (2, 3, 5), (1,)]:
        for dtype in DTYPES:
            x = grader.randn(*shape, dtype=dtype)
            for p in (0.25, 0.6):
                grader.compare(
                    Call("dropout", (x, p), {"generator": Gen(grader.seed())}, grad=(0,)),
                    case=f"d/dx dropout(x{list(shape)}, p={p}), {dtype}",
                )
            grader.compare(
                Call("dropout", (x, 0.4), {"training": False}, grad=(0,)),
                case=f"d/dx dropout(x{list(shape)}, p=0.4, training=False), {dtype}",
            )


@check(points=2, task="dropout")
def test_expectation(grader):
    """statistics: about 1 - p of the units kept, E[dropout(x)] = x, a fresh mask per example"""
    rows, cols = 400, 250
    n = rows * cols
    ones = torch.ones(rows, cols, dtype=torch.float32)
    for p in (0.1, 0.5, 0.8):
        case = f"dropout(ones[{rows}, {cols}], p={p})"
        out = _learner_tensor(grader, Call("dropout", (ones, p), {"generator": Gen(grader.seed())}),
                              (rows, cols), case)
        kept = out != 0
        grader.require(
            bool((kept != kept[:1]).any()),
            f"{case}: every row has the same mask. Each example must be dropped independently.",
        )
        frac = kept.double().mean().item()
        bound = SIGMAS * math.sqrt(p * (1 - p) / n)
        grader.require(
            abs(frac - (1 - p)) <= bound,
            f"{case}: kept a fraction {frac:.4f} of the units, expected 1 − p = {1 - p:.4f} "
            f"± {bound:.4f} (five standard errors)",
        )
        scale = 1 / (1 - p)
        grader.require(
            bool(torch.allclose(out[kept], torch.full_like(out[kept], scale), rtol=1e-5)),
            f"{case}: kept units should equal 1 / (1 − p) = {scale:.4f}; got values from "
            f"{out[kept].min().item():.4f} to {out[kept].max().item():.4f}",
        )
        mean = out.mean().item()
        bound = SIGMAS * math.sqrt(p / (1 - p) / n)
        grader.require(
            abs(mean - 1) <= bound,
            f"{case}: the mean output is {mean:.4f}, expected E[dropout(1)] = 1 ± {bound:.4f}",
        )
    # E[dropout(x)] = x entry by entry: one row of x repeated, averaged over the repeats
    p, reps = 0.3, 4000
    x = (grader.randn(8) + 0.5).repeat(reps, 1)
    case = f"dropout(x[{reps}, 8], p={p}) with {reps} copies of one row"
    out = _learner_tensor(grader, Call("dropout", (x, p), {"generator": Gen(grader.seed())}),
                          (reps, 8), case)
    err = (out.mean(0) - x[0]).abs()
    bound = SIGMAS * x[0].abs() * math.sqrt(p / (1 - p) / reps)
    worst = int((err / bound).argmax())
    grader.require(
        bool((err <= bound).all()),
        f"{case}: column {worst} averages {out.mean(0)[worst].item():.4f} over the copies, "
        f"expected x = {x[0, worst].item():.4f} ± {bound[worst].item():.4f}",
    )


# -- Dropout -------------------------------------------------------------------------------


@check(points=1, public=True, task="Dropout")
def test_module_train(grader):
    """Dropout(p) in training mode (the default) matches dropout, with gradients"""
    for p in (0.25, 0.6):
        for dtype in DTYPES:
            x = grader.randn(4, 6, dtype=dtype)
            seed = grader.seed()
            # forward(x) only, as nn.Dropout: the mask comes from the seeded global generator
            grader.compare(
                Call("@dropout.seeded", (Make("Dropout", (p,)), x, seed), grad=(1,)),
                case=f"Dropout({p}) freshly built (training mode) on x[4, 6] after "
                f"torch.manual_seed({seed}), {dtype}",
            )
            grader.compare(
                Call("@dropout.seeded", (Make("Dropout", (p,), train=True),
                                         grader.randn(2, 3, 5, dtype=dtype), seed + 1)),
                case=f"Dropout({p}).train() on x[2, 3, 5] after torch.manual_seed({seed + 1}), "
                f"{dtype}",
            )


@check(points=1, public=True, task="Dropout")
def test_module_eval(grader):
    """Dropout(p).eval() is the identity"""
    grader.compare(
        Call("dropout", (grader.randn(3, 4), 0.5), {"training": False}),
        case="dropout(x, p=0.5, training=False) (used by the module)",
    )
    for p in (0.25, 1.0):
        for dtype in DTYPES:
            x = grader.randn(4, 6, dtype=dtype)
            grader.compare(
                Call(Make("Dropout", (p,), train=False), (x,), grad=(0,)),
                case=f"Dropout({p}).eval() on x[4, 6], {dtype}",
            )


# -- paper_dropout -------------------------------------------------------------------------


@check(points=2, public=True, task="paper_dropout")
def test_paper_train(grader):
    """paper_dropout in training: mask rand >= 1 - p_retain, no rescaling"""
    for q in (0.8, 0.3):
        for shape in [(4, 8), (2, 3, 5), (1,), (5, 1)]:
            for dtype in DTYPES:
                x = grader.randn(*shape, dtype=dtype)
                seed = grader.seed()
                grader.compare(
                    Call("paper_dropout", (x, q, True), {"generator": Gen(seed)}),
                    case=f"paper_dropout(x{list(shape)}, p_retain={q}, training=True, "
                         f"generator=Gen({seed})), {dtype}",
                )


@check(points=1, public=True, task="paper_dropout")
def test_paper_test(grader):
    """paper_dropout at test time multiplies x by p_retain"""
    for q in (0.8, 0.3, 1.0):
        for shape in [(4, 8), (1,)]:
            for dtype in DTYPES:
                x = grader.randn(*shape, dtype=dtype)
                grader.compare(
                    Call("paper_dropout", (x, q, False)),
                    case=f"paper_dropout(x{list(shape)}, p_retain={q}, training=False), {dtype}",
                )


@check(points=1, task="paper_dropout")
def test_paper_conventions_agree(grader):
    """paper_dropout: gradients, the same mask as dropout(x, 1 - p_retain), test = E[train]"""
    for q in (0.8, 0.3):
        for dtype in DTYPES:
            x = grader.randn(3, 7, dtype=dtype)
            seed = grader.seed()
            paper = grader.compare(
                Call("paper_dropout", (x, q, True), {"generator": Gen(seed)}, grad=(0,)),
                case=f"d/dx paper_dropout(x[3, 7], p_retain={q}, training=True), {dtype}",
            ).out.double()

            grader.compare(
                Call("paper_dropout", (x, q, False), grad=(0,)),
                case=f"d/dx paper_dropout(x[3, 7], p_retain={q}, training=False), {dtype}",
            )
            inverted = grader.compare(
                Call("dropout", (x, 1 - q), {"generator": Gen(seed)}),
                case=f"dropout(x[3, 7], p={1 - q:g}) with the same generator",
            ).out.double()

            grader.require(
                bool(torch.allclose(paper / q, inverted, rtol=1e-5, atol=1e-6)),
                f"paper_dropout(x, {q}, True) / {q} should equal dropout(x, {1 - q:g}) drawn with "
                "the same generator (same mask, different scaling)",
            )
    rows, cols, q = 400, 250, 0.6
    case = f"paper_dropout(ones[{rows}, {cols}], p_retain={q}, training=True)"
    out = _learner_tensor(
        grader,
        Call("paper_dropout", (torch.ones(rows, cols), q, True), {"generator": Gen(grader.seed())}),
        (rows, cols), case,
    )
    mean = out.mean().item()
    bound = SIGMAS * math.sqrt(q * (1 - q) / (rows * cols))
    grader.require(
        abs(mean - q) <= bound,
        f"{case}: the mean training output is {mean:.4f}, expected p_retain = {q} ± {bound:.4f}, "
        "the test-time output",
    )
    grader.require(
        bool(((out == 0) | (out == 1)).all()),
        f"{case}: training outputs should be 0 or x (no rescaling in the paper's convention)",
    )
