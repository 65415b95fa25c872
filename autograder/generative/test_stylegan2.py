"""Hidden checks for unit 5.3 `stylegan2` (Karras et al., 2019).

Every check compares the learner's ``modulated_conv2d`` with the master on seeded inputs and,
on a mismatch, looks the output up in the mistake bank below.

- Inputs: x (B, C_in, H, W) standard normal; weight (C_out, C_in, k, k) standard normal
  scaled by 1/sqrt(C_in·k²) (as StyleGAN2's equalised learning rate scales it at run time);
  styles (B, C_in) drawn as 1 + 0.8·N(0, 1), so some are negative and none is the same for
  every channel. Kernels k = 1, 3, 5; B = 1, 2, 3, 4, 5; C_in ≠ C_out and C_in = C_out (the
  latter is where styles put on the output axis still broadcast and give a wrong value
  rather than an error); odd, non-square and tiny (1×1, 2×3) images, a kernel larger than
  the image (k = 5 on 3×3); float32 and float64.
- ``demodulate=True`` and ``demodulate=False``; ``eps`` = 1e-8 (default), 0.5 and 2 (where
  ε inside or outside the root gives different values); a sample whose styles are all 0
  (its filters are all zero: the result must be 0, where dropping ε gives NaN).
- Gradients w.r.t. x, weight and styles, in both modes.
- Every tensor argument must come back unchanged (the probe checks that).

The "one grouped convolution" of the syllabus is documented as the expected implementation
but is not enforced: the check tools record which library calls were made, not how often,
so a per-sample loop cannot be told apart honestly; results alone are graded.

The master was compared, in ``tests/test_oracle_stylegan2.py``, with a per-sample loop that
scales the input channels of x instead of the weight, convolves with the shared weight and
divides each output channel by its separately computed norm, and with an explicit
unfold-and-matmul convolution, for k in {1, 3, 5}, B = 1 and B > 1, in float64.
"""

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "stylegan2"

FORBIDDEN = [
    # each of these divides a tensor by its norm over chosen axes: the demodulation itself
    Forbid(
        calls=(
            "torch.nn.functional.normalize",
            "torch._weight_norm",
            "torch.norm_except_dim",
            "torch.nn.utils.weight_norm",
            "torch.nn.utils.parametrizations.weight_norm",
        ),
        aten=("_weight_norm", "_weight_norm_interface", "norm_except_dim"),
    ),
]

_DEMOD = "torch.rsqrt(w.square().sum(dim=(2, 3, 4), keepdim=True) + eps)"

MISTAKES = [
    Mistake(
        "style-on-output-channels",
        "Your output matches scaling the weight's OUTPUT-channel axis by the style "
        "(w_{o,i}·s_{b,o}). The style has one entry per INPUT channel, s_{b,i}: it scales "
        "axis 1 of the (C_out, C_in, k, k) weight, e.g. weight[None] * "
        "styles[:, None, :, None, None].",
        {"styles[:, None, :, None, None]": "styles[:, :, None, None, None]"},
    ),
    Mistake(
        "demod-over-output-channels",
        "Your output matches a demodulation norm summed over the output channels (and the "
        "kernel). Each filter (b, o) is normalised by its own norm, summed over what feeds "
        "that one output: the input channels and the kernel taps, axes (i, kh, kw) = (2, 3, 4) "
        "of the (B, C_out, C_in, k, k) modulated weight.",
        {"sum(dim=(2, 3, 4), keepdim=True)": "sum(dim=(1, 3, 4), keepdim=True)"},
    ),
    Mistake(
        "eps-outside-root",
        "Your output is right for the default eps but not for a large eps: it matches "
        "w' / (sqrt(Σ w'²) + eps). The epsilon goes INSIDE the square root: "
        "w' / sqrt(Σ w'² + eps).",
        {_DEMOD: "1 / (torch.sqrt(w.square().sum(dim=(2, 3, 4), keepdim=True)) + eps)"},
    ),
    Mistake(
        "eps-dropped",
        "Your output holds NaN for a sample whose styles are all zero: its filters are all "
        "zero and 0 / sqrt(0) is NaN. Add eps inside the root, w' / sqrt(Σ w'² + eps), which "
        "gives 0 there.",
        {_DEMOD: "torch.rsqrt(w.square().sum(dim=(2, 3, 4), keepdim=True))"},
    ),
    Mistake(
        "sqrt-missing",
        "Your output matches dividing by Σ w'² + eps, without the square root. The "
        "demodulation divides by the standard deviation the filter gives a unit-variance "
        "input, sqrt(Σ w'² + eps), not by the variance.",
        {_DEMOD: "1 / (w.square().sum(dim=(2, 3, 4), keepdim=True) + eps)"},
    ),
    Mistake(
        "demod-from-unmodulated-weight",
        "Your output matches normalising by the norm of the shared weight w, not of the "
        "modulated weight w' = s·w. Demodulation undoes the scale the style gave each "
        "filter: compute Σ w'² from the per-sample, modulated weights.",
        {"torch.rsqrt(w.square()": "torch.rsqrt(weight[None].square()"},
    ),
    Mistake(
        "padding-zero",
        "Your output is smaller than the input (H − k + 1): the convolution has no padding. "
        "Use zero padding k // 2 so that an odd kernel keeps the spatial size H × W.",
        {"out = F.conv2d(x, w, padding=k // 2, groups=B)":
         "out = F.conv2d(x, w, padding=0, groups=B)"},
    ),
    Mistake(
        "padding-k",
        "Your output is larger than the input (H + k + 1): the padding is k. Use zero "
        "padding k // 2 (1 for a 3×3 kernel, 0 for 1×1) so that the spatial size stays "
        "H × W.",
        {"out = F.conv2d(x, w, padding=k // 2, groups=B)":
         "out = F.conv2d(x, w, padding=k, groups=B)"},
    ),
    Mistake(
        "demodulate-flag-ignored",
        "With demodulate=False your output matches the demodulated one: the flag is "
        "ignored. When demodulate is False use the modulated weights w' = s·w as they are, "
        "without dividing by their norm.",
        {"    if demodulate:\n        # demodulation": "    if True:\n        # demodulation"},
    ),
    Mistake(
        "styles-only-when-demodulating",
        "With demodulate=False your output matches a convolution with the plain, shared "
        "weight: the styles were not applied. Modulation (w' = s·w) happens in both modes; "
        "the flag only decides whether w' is then divided by its norm.",
        {"    w = weight[None] * styles[:, None, :, None, None]\n    if demodulate:\n":
         "    w = weight[None].expand(B, -1, -1, -1, -1)\n    if demodulate:\n"
         "        w = weight[None] * styles[:, None, :, None, None]\n"},
    ),
    Mistake(
        "input-fold-order",
        "Your output is right for one sample but wrong for a batch: it matches folding x "
        "into the channel axis channel-major (x.transpose(0, 1).reshape(1, C_in·B, H, W)), "
        "so each group mixes channels of different samples. Fold batch first: "
        "x.reshape(1, B·C_in, H, W) puts sample b's channels in group b, matching the "
        "weight reshaped to (B·C_out, C_in, k, k).",
        {"x = x.reshape(1, B * C_in, H, W)": "x = x.transpose(0, 1).reshape(1, B * C_in, H, W)"},
    ),
    Mistake(
        "output-buffer-default-dtype",
        "Your float64 inputs give a float32 output: the result was copied into a buffer made "
        "with torch.zeros(B, C_out, H, W) (or torch.empty) without a dtype, and the copy "
        "silently rounds to the default float32. Return the convolution's result itself, or "
        "allocate with x.new_zeros(...) / dtype=x.dtype.",
        {"    return out.reshape(B, C_out, *out.shape[2:])\n":
         "    result = torch.zeros(B, C_out, *out.shape[2:])\n"
         "    result[:] = out.reshape(B, C_out, *out.shape[2:])\n    return result\n"},
    ),
    Mistake(
        "output-unfold-order",
        "Your output is right for one sample but wrong for a batch: it matches reading the "
        "grouped convolution's (1, B·C_out, H, W) result as (C_out, B, H, W) and transposing. "
        "Its channels are ordered batch first (group b holds sample b's C_out outputs): "
        "reshape it straight to (B, C_out, H, W).",
        {"return out.reshape(B, C_out, *out.shape[2:])":
         "return out.reshape(C_out, B, *out.shape[2:]).transpose(0, 1)"},
    ),
]


# -- inputs -------------------------------------------------------------------------------


def _inputs(grader, b, c_in, c_out, h, w, k, dtype, style_scale=0.8):
    x = grader.randn(b, c_in, h, w, dtype=dtype)
    weight = grader.randn(c_out, c_in, k, k, scale=(c_in * k * k) ** -0.5, dtype=dtype)
    styles = (1 + grader.randn(b, c_in, scale=style_scale)).to(dtype)
    return x, weight, styles


def _case(b, c_in, c_out, h, w, k, dtype, demodulate, extra=""):
    return (f"modulated_conv2d(x[{b}, {c_in}, {h}, {w}], weight[{c_out}, {c_in}, {k}, {k}], "
            f"styles[{b}, {c_in}], demodulate={demodulate}{extra}), {_dt(dtype)}")


# (B, C_in, C_out, H, W, k); the first of each list has C_in = C_out and B > 1
SHAPES = [
    (3, 4, 4, 6, 6, 3),
    (2, 3, 5, 7, 5, 3),
    (1, 4, 6, 5, 5, 3),
    (4, 2, 3, 6, 7, 1),
    (1, 5, 5, 4, 4, 1),
    (3, 3, 2, 8, 6, 5),
    (2, 6, 6, 5, 9, 5),
    (5, 3, 4, 4, 3, 3),
]


@check(points=3, public=True, task="modulated_conv2d")
def test_demodulated(grader):
    """modulated_conv2d with demodulation: k = 1, 3, 5, batch 1 to 5, C_in ≠ C_out"""
    for b, c_in, c_out, h, w, k in SHAPES:
        for dtype in DTYPES:
            args = _inputs(grader, b, c_in, c_out, h, w, k, dtype)
            grader.compare(Call("modulated_conv2d", args),
                           case=_case(b, c_in, c_out, h, w, k, dtype, True))


@check(points=2, public=True, task="modulated_conv2d")
def test_modulated_only(grader):
    """modulated_conv2d with demodulate=False: the modulated weights s·w as they are"""
    for b, c_in, c_out, h, w, k in SHAPES[:6]:
        for dtype in DTYPES:
            args = _inputs(grader, b, c_in, c_out, h, w, k, dtype)
            grader.compare(Call("modulated_conv2d", args, {"demodulate": False}),
                           case=_case(b, c_in, c_out, h, w, k, dtype, False))


@check(points=1, task="modulated_conv2d")
def test_eps(grader):
    """eps inside the root: eps = 0.5 and 2, and an all-zero style giving 0"""
    for (b, c_in, c_out, h, w, k), eps in [((3, 4, 4, 5, 5, 3), 0.5), ((2, 3, 5, 6, 4, 1), 2.0),
                                           ((1, 2, 3, 4, 4, 5), 0.5)]:
        for dtype in DTYPES:
            args = _inputs(grader, b, c_in, c_out, h, w, k, dtype)
            grader.compare(Call("modulated_conv2d", args, {"eps": eps}),
                           case=_case(b, c_in, c_out, h, w, k, dtype, True, f", eps={eps}"))
    for dtype in DTYPES:
        x, weight, styles = _inputs(grader, 3, 4, 5, 5, 6, 3, dtype)
        styles = styles.clone()
        styles[1] = 0.0
        grader.compare(Call("modulated_conv2d", (x, weight, styles)),
                       case=_case(3, 4, 5, 5, 6, 3, dtype, True, ", styles[1] all zero"))


@check(points=2, task="modulated_conv2d")
def test_gradients(grader):
    """gradients of modulated_conv2d w.r.t. x, weight and styles, with and without demod"""
    for b, c_in, c_out, h, w, k in [(3, 4, 4, 5, 5, 3), (2, 3, 5, 4, 6, 1), (1, 2, 3, 5, 4, 5),
                                    (2, 3, 2, 6, 5, 3)]:
        for dtype in DTYPES:
            for demodulate in (True, False):
                args = _inputs(grader, b, c_in, c_out, h, w, k, dtype)
                grader.compare(
                    Call("modulated_conv2d", args, {"demodulate": demodulate}, grad=(0, 1, 2)),
                    case="gradients of " + _case(b, c_in, c_out, h, w, k, dtype, demodulate))


@check(points=1, task="modulated_conv2d")
def test_edges(grader):
    """edge cases: 1×1 and 2×3 images, a 5×5 kernel on a 3×3 image, one channel"""
    for b, c_in, c_out, h, w, k in [(2, 3, 3, 1, 1, 3), (1, 1, 1, 3, 3, 5), (3, 1, 2, 2, 3, 3),
                                    (2, 2, 1, 1, 1, 1), (4, 3, 3, 3, 3, 5)]:
        for dtype in DTYPES:
            for demodulate in (True, False):
                args = _inputs(grader, b, c_in, c_out, h, w, k, dtype)
                grader.compare(Call("modulated_conv2d", args, {"demodulate": demodulate}),
                               case=_case(b, c_in, c_out, h, w, k, dtype, demodulate))
