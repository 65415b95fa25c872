"""Hidden checks for unit 5.13 `sdxl` (Podell et al., 2023).

Both functions are deterministic and are compared with the master solution: the sinusoidal
embedding on integer and fractional inputs (batch 1 and odd batches, widths even and odd, dim = 1,
several max_period values, float32 and float64, and its gradient w.r.t. a floating input), and
the micro-conditioning vector on integer and floating sizes and crops, with even and odd widths.

float32 tolerance: the numbers embedded reach about 1000, where neighbouring float32 values are
6e-5 apart, so two correct float32 computations of cos(t·ω) can differ by about 1e-4; the float32
cases allow an absolute error of 5e-4 (every banked mistake is off by far more).
"""

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Mistake, Tolerance, check
from course.grading.dsl import dtype_word as _dt

UNIT = "sdxl"

# diffusers' get_timestep_embedding would do the exercise, but it is not forbidden: importing
# diffusers takes about four seconds, which every grading process would pay (as for peft in
# 4.8 lora); the oracle test compares the master with it. Forbidden instead: the complex
# exponential shortcut (cos + i·sin in one call), so the learner writes cos and sin.
FORBIDDEN = [
    Forbid(calls=("torch.polar", "torch.view_as_real"),
           aten=("polar", "view_as_real"), within=("timestep_embedding",)),
]

MISTAKES = [
    Mistake(
        "sin-first",
        "Your embedding matches [sin(t·ω), cos(t·ω)]. SDXL's layout puts the cosines first: "
        "columns 0 … h−1 hold cos(t·ω_k), columns h … 2h−1 hold sin(t·ω_k).",
        {"torch.cat([torch.cos(args), torch.sin(args)], dim=1)":
         "torch.cat([torch.sin(args), torch.cos(args)], dim=1)"},
    ),
    Mistake(
        "freq-shift-one",
        "Your frequencies match ω_k = exp(−ln(P)·k/(h − 1)) (the slowest exactly 1/P). Divide "
        "by h = dim // 2, not h − 1: ω_k = exp(−ln(P)·k/h).",
        {"* k / half)": "* k / (half - 1))"},
    ),
    Mistake(
        "freq-over-dim",
        "Your frequencies match ω_k = exp(−ln(P)·k/dim). The exponent is divided by the number "
        "of frequencies h = dim // 2, not by dim: ω_k = exp(−ln(P)·k/h).",
        {"* k / half)": "* k / dim)"},
    ),
    Mistake(
        "odd-no-pad",
        "For an odd dim your embedding has dim − 1 columns. Append one zero column at the end "
        "when dim is odd, so the result is always (B, dim).",
        {"    if dim % 2 == 1:\n        pad = emb.new_zeros(emb.shape[0], 1)  # the extra column "
         "(the only one when dim = 1)\n        emb = torch.cat([emb, pad], dim=1)\n": ""},
    ),
    Mistake(
        "odd-pad-front",
        "For an odd dim your zero column comes first. The padding goes at the end: the last "
        "column (index dim − 1) is zero, the cosines start at column 0.",
        {"torch.cat([emb, pad], dim=1)": "torch.cat([pad, emb], dim=1)"},
    ),
    Mistake(
        "always-float32",
        "Your embedding of a float64 t comes back in float32. Compute in t's dtype when t is "
        "floating (float32 only for integer t), frequencies included.",
        {"dtype = t.dtype if t.is_floating_point() else torch.float32":
         "dtype = torch.float32"},
    ),
    Mistake(
        "max-period-ignored",
        "Your embedding matches P = 10000 whatever max_period is passed. Use the argument: "
        "ω_k = exp(−ln(max_period)·k/h).",
        {"math.log(max_period)": "math.log(10000)"},
    ),
    Mistake(
        "t-rounded",
        "Your embedding matches rounding t down to an integer first. Fractional numbers are "
        "embedded as they are: multiply the floating t itself by the frequencies (this also "
        "keeps the gradient w.r.t. t).",
        {"args = t.to(dtype)[:, None]": "args = t.long().to(dtype)[:, None]"},
    ),
    Mistake(
        "micro-interleaved",
        "Your conditioning vector interleaves the six embeddings column by column. Concatenate "
        "them as six contiguous blocks: columns [j·dim, (j+1)·dim) hold the j-th number's "
        "embedding.",
        {"return torch.cat(embs, dim=1)": "return torch.stack(embs, dim=2).flatten(1)"},
    ),
    Mistake(
        "micro-order",
        "Your conditioning vector matches the order (original size, target size, crop). SDXL's "
        "order is (h_orig, w_orig, c_top, c_left, h_tgt, w_tgt): the crop comes second.",
        {"torch.cat([original_size, crop_top_left, target_size], dim=1)":
         "torch.cat([original_size, target_size, crop_top_left], dim=1)"},
    ),
    Mistake(
        "micro-crop-left-top",
        "Your conditioning vector matches the crop embedded as (left, top). crop_top_left is "
        "(top, left), column 0 first: embed c_top, then c_left.",
        {"[original_size, crop_top_left, target_size]":
         "[original_size, crop_top_left.flip(1), target_size]"},
    ),
    Mistake(
        "micro-summed",
        "Your conditioning vector has dim columns: the six embeddings were added. SDXL "
        "concatenates them, giving (B, 6·dim).",
        {"return torch.cat(embs, dim=1)": "return torch.stack(embs, dim=0).sum(0)"},
    ),
]


def _tol(dtype: torch.dtype) -> Tolerance | None:
    return Tolerance(rtol=0.0, atol=5e-4) if dtype == torch.float32 else None


def _steps(grader, b: int, high: int) -> torch.Tensor:
    t = grader.randint(0, high, (b,))
    t[0] = 0 if b > 1 else t[0]
    return t


# -- Task 1 ---------------------------------------------------------------------------------


@check(points=2, public=True, task="timestep_embedding")
def test_embedding_integer_steps(grader):
    """timestep_embedding of integer steps: cos then sin of t·ω_k, float32 out"""
    for b, dim in [(4, 8), (1, 16), (7, 32), (3, 2)]:
        t = _steps(grader, b, 1000)
        grader.compare(Call("timestep_embedding", (t, dim)),
                       f"timestep_embedding(t={t.tolist()} long, dim={dim})",
                       tol=_tol(torch.float32))


@check(points=2, public=True, task="timestep_embedding")
def test_embedding_float(grader):
    """timestep_embedding of fractional float32 and float64 numbers keeps their dtype"""
    for dtype in DTYPES:
        for b, dim in [(5, 8), (1, 12), (6, 64)]:
            t = grader.rand(b, dtype=dtype) * 900 + 0.25
            grader.compare(Call("timestep_embedding", (t, dim)),
                           f"timestep_embedding(t[{b}] fractional {_dt(dtype)}, dim={dim})",
                           tol=_tol(dtype))


@check(points=1, task="timestep_embedding")
def test_embedding_odd(grader):
    """timestep_embedding with odd widths (1, 3, 7, 9): a zero column at the end"""
    for dtype in DTYPES:
        for b, dim in [(3, 1), (1, 3), (4, 7), (2, 9)]:
            t = grader.rand(b, dtype=dtype) * 50
            grader.compare(Call("timestep_embedding", (t, dim)),
                           f"timestep_embedding(t[{b}] {_dt(dtype)}, dim={dim})",
                           tol=_tol(dtype))
    t = _steps(grader, 5, 1024)
    grader.compare(Call("timestep_embedding", (t, 11)),
                   f"timestep_embedding(t={t.tolist()} long, dim=11)", tol=_tol(torch.float32))


@check(points=1, task="timestep_embedding")
def test_embedding_max_period(grader):
    """timestep_embedding honours max_period, positional or keyword"""
    for dtype in DTYPES:
        t = grader.rand(6, dtype=dtype) * 20
        grader.compare(Call("timestep_embedding", (t, 10, 100)),
                       f"timestep_embedding(t[6] {_dt(dtype)}, dim=10, max_period=100)",
                       tol=_tol(dtype))
        grader.compare(Call("timestep_embedding", (t, 16), {"max_period": 2.5}),
                       f"timestep_embedding(t[6] {_dt(dtype)}, dim=16, max_period=2.5)",
                       tol=_tol(dtype))


@check(points=1, task="timestep_embedding")
def test_embedding_gradient(grader):
    """timestep_embedding is differentiable w.r.t. a floating t"""
    for dtype in DTYPES:
        for b, dim in [(4, 8), (1, 5)]:
            t = grader.rand(b, dtype=dtype) * 30 + 0.5
            grader.compare(Call("timestep_embedding", (t, dim), grad=(0,)),
                           f"d timestep_embedding / dt, t[{b}] {_dt(dtype)}, dim={dim}",
                           tol=_tol(dtype))


# -- Task 2 ---------------------------------------------------------------------------------


def _sizes(grader, b: int, low: int, high: int) -> torch.Tensor:
    return grader.randint(low, high, (b, 2))


@check(points=2, public=True, task="micro_conditioning")
def test_micro_integer(grader):
    """micro_conditioning of integer sizes and crops: six blocks in SDXL's order"""
    for b, dim in [(4, 8), (1, 16), (5, 7)]:
        orig = _sizes(grader, b, 256, 1500)
        crop = _sizes(grader, b, 0, 300)
        target = _sizes(grader, b, 512, 1100)
        grader.compare(Call("micro_conditioning", (orig, crop, target, dim)),
                       f"micro_conditioning(original_size={orig.tolist()}, "
                       f"crop_top_left={crop.tolist()}, target_size={target.tolist()}, "
                       f"dim={dim})", tol=_tol(torch.float32))


@check(points=1, task="micro_conditioning")
def test_micro_float(grader):
    """micro_conditioning of float32 and float64 inputs keeps their dtype, with gradients"""
    for dtype in DTYPES:
        for b, dim in [(3, 6), (1, 5)]:
            orig = (grader.rand(b, 2, dtype=dtype) * 40 + 20).round()
            crop = grader.rand(b, 2, dtype=dtype) * 10
            target = (grader.rand(b, 2, dtype=dtype) * 40 + 10).round()
            grader.compare(Call("micro_conditioning", (orig, crop, target, dim),
                                grad=(0, 1, 2)),
                           f"micro_conditioning({_dt(dtype)} sizes [{b}, 2], crop "
                           f"{crop.tolist()}, dim={dim}) and its gradients", tol=_tol(dtype))
