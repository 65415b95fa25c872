"""Hidden checks for unit 5.16 `dall-e-2` (Ramesh et al., 2022).

Every check compares the learner's code with the master on seeded inputs, float32 and float64,
and on a mismatch looks the output up in the mistake bank below.

- ``slerp``: rows of random vectors with different norms, shapes (D,), (1, 3), (5, 8),
  (7, 16), (2, 3, 5); t a Python float in {0, 0.3, 0.75, 1} and an extrapolating 1.2; t a
  tensor of positions (N, 1) between two (D,) vectors, one position per row (B, 1), and a grid
  (N, 1, 1) against (B, D) rows. The degenerate rows the syllabus names: a == b, b = 3a and
  b = −a, for random vectors (where the rounded cosine may leave [−1, 1]; b = a/2 instead of
  −a, whose result rounding decides) and for scaled one-hot vectors (where the cosine is
  exactly ±1, so θ is exactly 0 or π), mixed with ordinary rows;
  the output must be finite and equal to the straight line there. Gradients w.r.t. a, b and a
  tensor t on non-parallel rows.
- ``prior_loss``: a grader-owned prior laid out like the exercise's given ``TinyPrior``
  (``course.grading.fixtures.StandInPrior``, so a learner's copy of that class does not
  matter and a ``.py`` submission need not carry it), with seeded weights in the inputs'
  dtype, embeddings (B, D) with B = 1, 3, 8 and D = 1, 4, 6, steps including 0 and T − 1, a
  float64 schedule for float32 embeddings and one in the embeddings' dtype; gradients w.r.t.
  image_emb, text_emb, noise and the model's parameters. Inputs must come back unchanged.

The master was compared, in ``tests/test_oracle_dall_e_2.py``, with a rotation in the plane of
a and b built from a Gram–Schmidt basis in float64, and its loss with ``F.mse_loss`` on a
noised embedding built by hand.
"""

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Fixture, Forbid, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "dall-e-2"

FORBIDDEN = [
    Forbid(
        calls=("torch.nn.functional.mse_loss", "torch.nn.MSELoss"),
        aten=("mse_loss",),
        within=("prior_loss",),
    ),
]

MISTAKES = [
    # -- slerp
    Mistake(
        "slerp-no-clamp",
        "Your slerp is NaN for (nearly) parallel or opposite vectors: the rounded cosine "
        "â·b̂ can come out a hair above 1 (or below −1), where arccos is NaN. Clamp it to "
        "[−1, 1] before taking arccos.",
        {"torch.arccos(cos.clamp(-1.0, 1.0))": "torch.arccos(cos)"},
    ),
    Mistake(
        "slerp-not-normalised",
        "Your angle matches arccos(clamp(a·b)) with the raw dot product: θ is the angle between "
        "the directions, cos θ = (a·b) / (‖a‖ ‖b‖). Divide by both norms before arccos.",
        {"(a * b).sum(-1, keepdim=True) / (a.norm(dim=-1, keepdim=True)\n"
         "                                           * b.norm(dim=-1, keepdim=True))":
         "(a * b).sum(-1, keepdim=True)"},
    ),
    Mistake(
        "slerp-is-lerp",
        "Your slerp matches the straight line (1 − t)·a + t·b everywhere. That is the fallback "
        "for parallel vectors only; elsewhere use the spherical weights sin((1 − t)θ)/sin θ and "
        "sin(tθ)/sin θ, which keep the norm where lerp shrinks it.",
        {"return torch.where(small, linear, spherical)": "return linear"},
    ),
    Mistake(
        "slerp-global-norm",
        "Your slerp is right for a single pair of vectors but not for a batch: the norms were "
        "taken over the whole tensor (a.norm()) instead of per row. Every row has its own "
        "angle: a.norm(dim=-1, keepdim=True), and likewise for b.",
        {"a.norm(dim=-1, keepdim=True)": "a.norm()", "b.norm(dim=-1, keepdim=True)": "b.norm()"},
    ),
    Mistake(
        "slerp-t-swapped",
        "Your slerp runs from b at t = 0 to a at t = 1: the weights are swapped. a gets "
        "sin((1 − t)θ)/sin θ and b gets sin(tθ)/sin θ, so that t = 0 gives a.",
        {"torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b":
         "torch.sin(t * theta) * a + torch.sin((1 - t) * theta) * b"},
    ),
    Mistake(
        "slerp-no-division",
        "Your slerp matches sin((1 − t)θ)·a + sin(tθ)·b without dividing by sin θ: the points "
        "no longer run from a to b (t = 1 gives sin θ · b). Divide the sum by sin θ.",
        {"* b) / safe": "* b)"},
    ),
    Mistake(
        "slerp-threshold-on-theta",
        "Your slerp is right for parallel vectors but blows up for opposite ones (b = −a, "
        "θ = π): the fallback tests θ itself, and sin θ is 0 at θ = π too. Fall back to the "
        "straight line where sin θ < 1e-7.",
        {"small = sin < 1e-7": "small = theta < 1e-7"},
    ),
    Mistake(
        "slerp-no-fallback",
        "Your slerp is NaN (0/0) or huge where a and b are exactly parallel or opposite "
        "(sin θ = 0). Where sin θ < 1e-7, return the linear interpolation (1 − t)·a + t·b "
        "instead, and keep the unused branch free of 0/0 (torch.where evaluates both).",
        {"return torch.where(small, linear, spherical)":
         "return (torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b) / sin"},
    ),
    # -- prior_loss
    Mistake(
        "prior-target-noise",
        "Your loss matches the error between the model's output and the noise ε, as in DDPM. "
        "The DALL·E 2 prior predicts the clean image embedding itself: the target is "
        "image_emb.",
        {"((pred - image_emb) ** 2)": "((pred - noise) ** 2)"},
    ),
    Mistake(
        "prior-model-on-clean",
        "Your loss matches calling the model on the clean image embedding. Noise it first, "
        "x_t = sqrt(ᾱ_t)·image_emb + sqrt(1 − ᾱ_t)·noise, and call model(x_t, t, text_emb).",
        {"pred = model(x_t, t, text_emb)": "pred = model(image_emb, t, text_emb)"},
    ),
    Mistake(
        "prior-conditioned-on-image",
        "Your loss matches model(x_t, t, image_emb): the model was handed the clean image "
        "embedding (the answer) as its condition. The condition is the caption's text "
        "embedding: model(x_t, t, text_emb).",
        {"pred = model(x_t, t, text_emb)": "pred = model(x_t, t, image_emb)"},
    ),
    Mistake(
        "prior-no-sqrt",
        "Your x_t matches ᾱ_t·image_emb + (1 − ᾱ_t)·noise. The coefficients are square roots: "
        "x_t = sqrt(ᾱ_t)·image_emb + sqrt(1 − ᾱ_t)·noise.",
        {"torch.sqrt(abar) * image_emb + torch.sqrt(1 - abar) * noise":
         "abar * image_emb + (1 - abar) * noise"},
    ),
    Mistake(
        "prior-t-off-by-one",
        "Your loss matches reading ᾱ at index t − 1 (the paper's 1-based steps). Steps are "
        "0-indexed here: use alphas_cumprod[t].",
        {"alphas_cumprod[t].to(": "alphas_cumprod[t - 1].to("},
    ),
    Mistake(
        "prior-loss-sum",
        "Your loss matches the sum of the squared errors. Return their mean over all B·D "
        "elements, so the loss does not grow with the batch or the embedding size.",
        {"** 2).mean()": "** 2).sum()"},
    ),
    Mistake(
        "prior-noise-in-place",
        "Your prior_loss changes noise in place (mul_ or *=): the caller's noise is destroyed "
        "(and autograd refuses it on a tensor that requires grad). Build x_t into a new "
        "tensor: sqrt(1 − ᾱ_t) * noise.",
        {"torch.sqrt(1 - abar) * noise": "noise.mul_(torch.sqrt(1 - abar))"},
    ),
]


# -- slerp ----------------------------------------------------------------------------------


def _pair(grader, shape, dtype):
    """Two tensors of rows in random directions with norms from 0.3 to 1.2 (so that |a·b| and
    cos θ differ: a forgotten normalisation shows)."""
    a, b = grader.randn(*shape), grader.randn(*shape)
    a = a / a.norm(dim=-1, keepdim=True) * (0.3 + 0.9 * grader.rand(*shape[:-1], 1))
    b = b / b.norm(dim=-1, keepdim=True) * (0.3 + 0.9 * grader.rand(*shape[:-1], 1))
    return a.to(dtype), b.to(dtype)


SLERP_CASES = [((5, 8), 0.3), ((1, 3), 0.75), ((7, 16), 0.5), ((2, 3, 5), 0.3), ((6,), 0.75),
               ((4, 2), 1.0), ((3, 4), 0.0)]


@check(points=2, public=True, task="slerp")
def test_slerp(grader):
    """slerp(a, b, t) for a float t: (sin((1 − t)θ)·a + sin(tθ)·b)/sin θ row by row"""
    for shape, t in SLERP_CASES:
        for dtype in DTYPES:
            a, b = _pair(grader, shape, dtype)
            grader.compare(Call("slerp", (a, b, t)),
                           case=f"slerp(a{list(shape)}, b, t={t}), {_dt(dtype)}")
    for dtype in DTYPES:
        a, b = _pair(grader, (3, 6), dtype)
        grader.compare(Call("slerp", (a, b, 1.2)),
                       case=f"slerp(a[3, 6], b, t=1.2) (extrapolation), {_dt(dtype)}")


@check(points=2, task="slerp")
def test_slerp_tensor_t(grader):
    """slerp with t a tensor: positions (N, 1), one per row (B, 1), a grid (N, 1, 1)"""
    for dtype in DTYPES:
        a, b = _pair(grader, (9,), dtype)
        t = torch.linspace(0, 1, 7, dtype=torch.float64)[:, None].to(dtype)
        grader.compare(Call("slerp", (a, b, t)),
                       case=f"slerp(a[9], b[9], t[7, 1] = linspace(0, 1, 7)), {_dt(dtype)}")
        a, b = _pair(grader, (5, 4), dtype)
        t = grader.rand(5, 1, dtype=dtype)
        grader.compare(Call("slerp", (a, b, t)),
                       case=f"slerp(a[5, 4], b, t[5, 1]) (one t per row), {_dt(dtype)}")
        a, b = _pair(grader, (3, 7), dtype)
        t = grader.rand(4, 1, 1, dtype=dtype)
        grader.compare(Call("slerp", (a, b, t)),
                       case=f"slerp(a[3, 7], b, t[4, 1, 1]) (a grid of t), {_dt(dtype)}")


def _degenerate(grader, dtype):
    """(a, b) of 9 rows of 5: ordinary rows, then b = a, b = 3a, b = a/2 for random rows
    (the rounded cosine may leave [−1, 1]) and b = a, 3a, −a for scaled one-hot rows (cosine
    exactly ±1). Random opposite rows are left out: near θ = π the great circle is not
    determined and rounding decides the result."""
    a, b = _pair(grader, (9, 5), torch.float64)
    onehot = torch.zeros(3, 5, dtype=torch.float64)
    onehot[0, 1], onehot[1, 3], onehot[2, 0] = 2.5, 0.5, 1.25
    a[6:] = onehot
    a[4] = torch.tensor([0.1 * 7, 0.2, 0.3, -0.4, 0.7], dtype=torch.float64)
    b[3], b[4], b[5] = a[3], 3 * a[4], a[5] / 2  # row 4: the rounded cosine is above 1
    b[6], b[7], b[8] = a[6], 3 * a[7], -a[8]
    return a.to(dtype), b.to(dtype)


@check(points=2, task="slerp")
def test_slerp_parallel(grader):
    """slerp where a and b are parallel or opposite (a == b, b = 3a, b = −a): finite, linear"""
    for dtype in reversed(DTYPES):  # float64 first: a NaN there is NaN in both dtypes
        for t in (0.3, 0.75):
            a, b = _degenerate(grader, dtype)
            grader.compare(Call("slerp", (a, b, t)),
                           case=f"slerp(a[9, 5], b, t={t}) with rows 3–8 parallel "
                           f"(b = a, 3a, a/2; rows 6–8 one-hot, b = a, 3a, −a), {_dt(dtype)}")
        a, b = _degenerate(grader, dtype)
        t = grader.rand(9, 1, dtype=dtype)
        grader.compare(Call("slerp", (a, b, t)),
                       case=f"slerp(a[9, 5], b, t[9, 1]) with parallel and opposite rows, "
                       f"{_dt(dtype)}")


@check(points=1, task="slerp")
def test_slerp_gradients(grader):
    """gradients of slerp w.r.t. a, b and a tensor t, on rows that are not parallel"""
    for dtype in DTYPES:
        a, b = _pair(grader, (4, 6), dtype)
        grader.compare(Call("slerp", (a, b, 0.3), grad=(0, 1)),
                       case=f"d slerp(a[4, 6], b, t=0.3) / d(a, b), {_dt(dtype)}")
        a, b = _pair(grader, (3, 5), dtype)
        t = 0.1 + 0.8 * grader.rand(3, 1, dtype=dtype)
        grader.compare(Call("slerp", (a, b, t), grad=(0, 1, 2)),
                       case=f"d slerp(a[3, 5], b, t[3, 1]) / d(a, b, t), {_dt(dtype)}")


# -- prior_loss -----------------------------------------------------------------------------


def _prior(grader, dim, dtype, hidden=8):
    """A grader-owned prior shaped like TinyPrior(dim, hidden), seeded weights in dtype."""
    weights = {
        "inp_weight": grader.randn(hidden, 2 * dim + 2, scale=0.6),
        "inp_bias": grader.randn(hidden, scale=0.3),
        "out_weight": grader.randn(dim, hidden, scale=0.6),
        "out_bias": grader.randn(dim, scale=0.3),
    }
    return Fixture("StandInPrior", {k: v.to(dtype) for k, v in weights.items()})


def _abar(grader, T):
    """A short decreasing float64 ᾱ schedule, from about 0.97 down to about 0.05."""
    betas = (0.03 + 0.5 * grader.rand(T)).sort().values
    return torch.cumprod(1 - betas, dim=0).clamp_min(0.05)


def _prior_inputs(grader, b, d, T, dtype):
    image = grader.randn(b, d, dtype=dtype, scale=1.5) + 0.5
    text = grader.randn(b, d, dtype=dtype)
    noise = grader.randn(b, d, dtype=dtype)
    t = grader.randint(0, T, (b,))
    t[0] = T - 1
    t[-1] = 0 if b > 1 else t[-1]
    return image, text, t, noise


@check(points=2, public=True, task="prior_loss")
def test_prior_loss(grader):
    """prior_loss = mean((model(x_t, t, text_emb) − image_emb)²), x_t noised from image_emb"""
    T = 8
    for b, d in [(8, 4), (3, 6), (5, 1)]:
        for dtype in DTYPES:
            abar = _abar(grader, T)
            image, text, t, noise = _prior_inputs(grader, b, d, T, dtype)
            model = _prior(grader, d, dtype)
            grader.compare(Call("prior_loss", (model, image, text, t, noise, abar)),
                           case=f"prior_loss(TinyPrior({d}), image_emb[{b}, {d}] "
                           f"{_dt(dtype)}, text_emb, t={t.tolist()}, noise, float64 ᾱ)")


@check(points=1, task="prior_loss")
def test_prior_loss_edges(grader):
    """prior_loss with batch 1, T = 1, and a schedule in the embeddings' dtype"""
    for dtype in DTYPES:
        for b, d, T in [(1, 4, 5), (1, 1, 1), (4, 3, 1), (2, 5, 3)]:
            abar = _abar(grader, T).to(dtype)
            image, text, t, noise = _prior_inputs(grader, b, d, T, dtype)
            model = _prior(grader, d, dtype)
            grader.compare(Call("prior_loss", (model, image, text, t, noise, abar)),
                           case=f"prior_loss(TinyPrior({d}), image_emb[{b}, {d}], "
                           f"t={t.tolist()}, T={T}, ᾱ in {_dt(dtype)})")


@check(points=2, task="prior_loss")
def test_prior_loss_gradients(grader):
    """prior_loss is differentiable w.r.t. image_emb, text_emb, noise and the parameters"""
    T = 6
    for b, d in [(4, 3), (1, 2)]:
        for dtype in DTYPES:
            abar = _abar(grader, T)
            image, text, t, noise = _prior_inputs(grader, b, d, T, dtype)
            model = _prior(grader, d, dtype)
            grader.compare(Call("prior_loss", (model, image, text, t, noise, abar),
                                grad=(1, 2, 4, "params")),
                           case=f"d prior_loss / d(image_emb, text_emb, noise, parameters), "
                           f"[{b}, {d}] {_dt(dtype)}")
