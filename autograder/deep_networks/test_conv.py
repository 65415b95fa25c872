"""Hidden checks for unit 1.2 `conv` (LeCun et al., 1989).

`conv_output_size` is compared exactly on a table of sizes, kernels, strides and paddings.
`conv2d` is compared with the master solution on seeded inputs: strides 1–3, paddings 0–2,
non-square inputs and kernels, one and several input channels, batch 1, bias on and off,
float32 and float64, and its gradients w.r.t. the input, the weight and the bias
(back-propagated through the learner's own operations with fixed cotangents). In the grader's
process each forward case also checks the master itself against ``F.conv2d``, so the reference
is proven right on the very inputs it grades. On a mismatch the learner's output is looked up
in the mistake bank below.
"""

import torch
import torch.nn.functional as F

from course.grading.dsl import Call, Forbid, Mistake, check
from course.grading.grader import GraderError
from course.grading.probes import cotangents

UNIT = "conv"

FORBIDDEN = [
    Forbid(
        calls=(
            "torch.nn.functional.conv1d",
            "torch.nn.functional.conv2d",
            "torch.nn.functional.conv3d",
            "torch.nn.functional.conv_transpose1d",
            "torch.nn.functional.conv_transpose2d",
            "torch.nn.functional.conv_transpose3d",
            "torch.conv1d",
            "torch.conv2d",
            "torch.conv3d",
            "torch.convolution",
            "torch.conv_transpose2d",
            "torch.nn.Conv1d",
            "torch.nn.Conv2d",
            "torch.nn.Conv3d",
            "torch.nn.ConvTranspose2d",
            "torch.nn.LazyConv2d",
            "torch.nn.functional.unfold",
            "torch.nn.functional.fold",
            "torch.nn.Unfold",
            "torch.nn.Fold",
        ),
        # What F.conv2d dispatches to (seen with torch's profiler on CPU: conv2d ->
        # convolution -> _convolution -> mkldnn_convolution for float32, thnn_conv2d ->
        # _slow_conv2d_forward for float64; _convolution_mode for padding="same"), the GPU
        # back ends, and im2col / col2im behind F.unfold / F.fold.
        aten=(
            "conv1d",
            "conv2d",
            "conv3d",
            "convolution",
            "_convolution",
            "_convolution_mode",
            "convolution_overrideable",
            "conv_transpose2d",
            "mkldnn_convolution",
            "thnn_conv2d",
            "_slow_conv2d_forward",
            "slow_conv_dilated2d",
            "_nnpack_spatial_convolution",
            "cudnn_convolution",
            "miopen_convolution",
            "im2col",
            "col2im",
        ),
    ),
]

MISTAKES = [
    # -- conv_output_size ------------------------------------------------------------------
    Mistake(
        "size-off-by-one",
        "Your output size is one short: it matches (H + 2p − k) // s, without the + 1. The "
        "kernel's first position (offset 0) counts too: H_out = (H + 2p − k) // s + 1.",
        {"return (size + 2 * padding - kernel) // stride + 1":
         "return (size + 2 * padding - kernel) // stride"},
    ),
    Mistake(
        "size-stride-ignored",
        "Your output size matches H + 2p − k + 1, the count for stride 1: the stride is "
        "ignored. Consecutive kernel positions are s apart, so divide the free room by s: "
        "H_out = (H + 2p − k) // s + 1.",
        {"return (size + 2 * padding - kernel) // stride + 1":
         "return size + 2 * padding - kernel + 1"},
    ),
    Mistake(
        "size-padding-once",
        "Your output size matches (H + p − k) // s + 1: the padding is counted once. "
        "Padding p adds p zeros at *each* end of the axis, so the padded length is H + 2p.",
        {"return (size + 2 * padding - kernel) // stride + 1":
         "return (size + padding - kernel) // stride + 1"},
    ),
    Mistake(
        "size-rounded-up",
        "Your output size matches the division by the stride rounded *up*. A last step that "
        "would leave the kernel hanging over the edge is not taken: round down, "
        "(H + 2p − k) // s + 1.",
        {"return (size + 2 * padding - kernel) // stride + 1":
         "return -(-(size + 2 * padding - kernel) // stride) + 1"},
    ),
    # -- conv2d ----------------------------------------------------------------------------
    Mistake(
        "flipped-kernel",
        "Your output matches a true convolution, with the kernel flipped in both directions. "
        "F.conv2d (and this exercise) computes a cross-correlation: tap (u, v) of the kernel "
        "multiplies the input at (s·i + u, s·j + v), with no flip.",
        {"tap = weight[:, :, u, v]": "tap = weight[:, :, kh - 1 - u, kw - 1 - v]"},
    ),
    Mistake(
        "transposed-kernel",
        "Your output matches the kernel transposed: its height and width axes are swapped. "
        "weight has shape (C_out, C_in, kH, kW); axis 2 runs down the image (rows, H) and "
        "axis 3 across it (columns, W).",
        {
            "kh, kw = weight.shape[-2:]": "kw, kh = weight.shape[-2:]",
            "tap = weight[:, :, u, v]": "tap = weight[:, :, v, u]",
        },
    ),
    Mistake(
        "missing-channel-sum",
        "Your output matches what we get when only the first input channel contributes (right "
        "only when C_in = 1). Each output value sums over every input channel c as well as "
        "over the kernel offsets (u, v).",
        {"products.sum(dim=2)": "products[:, :, 0]"},
    ),
    Mistake(
        "weight-channels-swapped",
        "Your output matches reading the weight as (C_in, C_out, kH, kW). For conv2d the "
        "output channel comes first: weight[o, c] is the kernel that input channel c "
        "contributes to output channel o.",
        {"tap = weight[:, :, u, v]": "tap = weight[:, :, u, v].T"},
    ),
    Mistake(
        "padding-one-side",
        "Your output matches zero padding added only at the top and the left. Padding p adds "
        "p zero rows above *and* below and p zero columns left *and* right.",
        {"F.pad(x, (pw, pw, ph, ph))": "F.pad(x, (pw, 0, ph, 0))"},
    ),
    Mistake(
        "padding-width-only",
        "Your output matches an input padded along the width only. F.pad's pad tuple starts "
        "with the *last* axis: (left, right) pads W, and you need (left, right, top, bottom) "
        "to pad H as well.",
        {"F.pad(x, (pw, pw, ph, ph))": "F.pad(x, (pw, pw))"},
    ),
    Mistake(
        "stride-ignored",
        "Your output matches the convolution with stride 1: the stride is ignored. With "
        "stride s the kernel moves s pixels between consecutive output positions.",
        {"u : h_pad - kh + u + 1 : sh, v : w_pad - kw + v + 1 : sw]":
         "u : h_pad - kh + u + 1, v : w_pad - kw + v + 1]"},
    ),
    Mistake(
        "stride-as-dilation",
        "Your output matches a dilated convolution: the kernel's taps are spaced s pixels "
        "apart while the kernel moves one pixel at a time. Stride is the other way round: the "
        "taps are adjacent and the kernel moves s pixels between output positions.",
        {"u : h_pad - kh + u + 1 : sh, v : w_pad - kw + v + 1 : sw]":
         "sh * u : h_pad - sh * (kh - 1) + sh * u, sw * v : w_pad - sw * (kw - 1) + sw * v]"},
    ),
    Mistake(
        "bias-wrong-axis",
        "Your output matches the bias added along the last (width) axis. There is one bias "
        "per output channel (axis 1): reshape it to (1, C_out, 1, 1) before adding.",
        {"bias[None, :, None, None]": "bias[None, None, None, :]"},
    ),
    Mistake(
        "bias-ignored",
        "Your output matches the convolution without its bias. When a bias is given, add "
        "bias[o] to every position of output channel o.",
        {"out = out + bias[None, :, None, None]": "out = out"},
    ),
]

DTYPES = [torch.float64, torch.float32]


def _conv_case(grader, n, c_in, c_out, h, w, kh, kw, dtype, bias=False):
    x = grader.randn(n, c_in, h, w, dtype=dtype)
    weight = grader.randn(c_out, c_in, kh, kw, dtype=dtype, scale=0.5)
    b = grader.randn(c_out, dtype=dtype) if bias else None
    return x, weight, b


def _label(x, weight, bias, stride, padding):
    dtype = str(x.dtype).replace("torch.", "")
    text = f"conv2d(x{list(x.shape)}, weight{list(weight.shape)}"
    text += ", bias" if bias is not None else ""
    return text + f", stride={stride}, padding={padding}) in {dtype}"


def _probe(x, weight, bias, stride, padding, grad=()):
    args = (x, weight) if bias is None else (x, weight, bias)
    return Call("conv2d", args, {"stride": stride, "padding": padding}, grad=grad)


def _reference_against_torch(grader, x, weight, bias, stride, padding, grad=()):
    """In the grader's process: the master's output (and gradients, with the probe's own
    cotangents) must agree with F.conv2d's; a disagreement is a course bug, not the
    learner's."""
    ref = grader.reference(_probe(x, weight, bias, stride, padding, grad))
    inputs = [t.double().requires_grad_() for t in (x, weight) + (() if bias is None else (bias,))]
    want = F.conv2d(*inputs, stride=stride, padding=padding)
    got = ref.out
    agree = got.shape == want.shape and torch.allclose(got, want, rtol=1e-10, atol=1e-12)
    if agree and grad:
        # Σ⟨want, cotangent⟩'s gradient: bit for bit the vector-Jacobian product, without
        # grad_outputs (whose shape check imports sympy, a third of a second, in this process)
        (cot,) = cotangents([want])
        wanted = torch.autograd.grad((want * cot).sum(), [inputs[i] for i in grad])
        for i, w in zip(grad, wanted):
            g = ref.grads[f"arg{i}"]

            agree = agree and torch.allclose(g, w, rtol=1e-10, atol=1e-12)
    if not agree:
        raise GraderError(f"the reference disagrees with F.conv2d on "
                          f"{_label(x, weight, bias, stride, padding)}")


def _compare_conv(grader, x, weight, bias=None, stride=1, padding=0, grad=()):
    case = _label(x, weight, bias, stride, padding)
    if grad:
        case = "gradients of " + case
    grader.compare(_probe(x, weight, bias, stride, padding, grad), case=case)
    _reference_against_torch(grader, x, weight, bias, stride, padding, grad)


# (size, kernel, stride, padding). The order matters for the diagnosis: each mistake's first
# wrong entry tells it apart from every other mistake of the bank.
SIZE_TABLE = [
    (5, 3, 1, 0), (5, 3, 2, 0), (6, 3, 2, 0), (10, 3, 1, 2), (7, 3, 2, 1), (16, 5, 2, 2),
    (8, 5, 2, 2), (1, 1, 1, 0), (4, 4, 1, 0), (3, 5, 1, 1), (9, 4, 2, 0), (7, 2, 3, 1),
    (11, 3, 3, 2), (28, 5, 1, 0), (32, 5, 1, 2), (224, 7, 2, 3), (6, 3, 3, 0), (2, 3, 2, 1),
]


@check(points=1, public=True, task="conv_output_size")
def test_output_size(grader):
    """conv_output_size is exact on a table of sizes, kernels, strides and paddings"""
    for size, kernel, stride, padding in SIZE_TABLE:
        grader.compare(
            Call("conv_output_size", (size, kernel), {"stride": stride, "padding": padding}),
            case=f"conv_output_size({size}, {kernel}, stride={stride}, padding={padding})",
            exact=True,
        )


@check(points=2, public=True, task="conv2d")
def test_forward(grader):
    """conv2d with stride 1 and no padding: several channels, non-square, 1×1 and full-size"""
    shapes = [
        # n, c_in, c_out, h, w, kh, kw
        (2, 3, 4, 7, 9, 3, 2),
        (1, 1, 1, 5, 5, 5, 5),    # the kernel covers the whole image: a 1×1 output
        (3, 2, 5, 6, 4, 1, 1),    # a 1×1 kernel mixes channels only
        (1, 4, 2, 10, 3, 2, 3),
        (2, 1, 3, 6, 8, 3, 3),
    ]
    for dtype, some in [(torch.float64, shapes), (torch.float32, shapes[:2])]:
        for n, c_in, c_out, h, w, kh, kw in some:
            x, weight, _ = _conv_case(grader, n, c_in, c_out, h, w, kh, kw, dtype)
            _compare_conv(grader, x, weight)


@check(points=2, public=True, task="conv2d")
def test_stride_padding(grader):
    """conv2d over strides 1–3 and paddings 0–2 on a non-square input and kernel"""
    x, weight, _ = _conv_case(grader, 2, 2, 3, 7, 8, 3, 2, torch.float64)
    for padding in (0, 1, 2):
        for stride in (1, 2, 3):
            _compare_conv(grader, x, weight, stride=stride, padding=padding)


@check(points=1, task="conv2d")
def test_stride_padding_more(grader):
    """conv2d over strides and paddings in float32, and on a single one-channel image"""
    x, weight, _ = _conv_case(grader, 2, 2, 3, 7, 8, 3, 2, torch.float32)
    for padding in (0, 1, 2):
        for stride in (1, 2, 3):
            _compare_conv(grader, x, weight, stride=stride, padding=padding)
    # a single image, one input channel, a wide kernel on a tall image
    x, weight, _ = _conv_case(grader, 1, 1, 2, 9, 5, 2, 4, torch.float64)
    for stride, padding in [(2, 1), (3, 2), (1, 2)]:
        _compare_conv(grader, x, weight, stride=stride, padding=padding)


@check(points=1, public=True, task="conv2d")
def test_bias(grader):
    """conv2d adds one bias per output channel"""
    for dtype in DTYPES:
        # W_out = C_out here, so a bias on the wrong axis still runs (and is caught)
        x, weight, b = _conv_case(grader, 2, 3, 4, 6, 6, 2, 3, dtype, bias=True)
        _compare_conv(grader, x, weight, b)
        x, weight, b = _conv_case(grader, 1, 2, 3, 7, 5, 3, 3, dtype, bias=True)
        _compare_conv(grader, x, weight, b, stride=2, padding=1)
    x, weight, b = _conv_case(grader, 2, 3, 1, 5, 4, 3, 2, torch.float64, bias=True)
    _compare_conv(grader, x, weight, b, padding=2)


@check(points=1, task="conv2d")
def test_channels(grader):
    """conv2d with as many output as input channels, and with one input or output channel"""
    for dtype in DTYPES:
        for n, c_in, c_out, h, w, kh, kw, stride, padding in [
            (2, 3, 3, 5, 6, 3, 3, 1, 1),
            (1, 1, 3, 6, 5, 2, 3, 2, 0),
            (3, 4, 1, 5, 5, 3, 1, 1, 2),
            (1, 2, 2, 4, 4, 1, 1, 3, 0),
        ]:
            x, weight, b = _conv_case(grader, n, c_in, c_out, h, w, kh, kw, dtype, bias=True)
            _compare_conv(grader, x, weight, b, stride=stride, padding=padding)


@check(points=2, task="conv2d")
def test_gradients(grader):
    """gradients of conv2d w.r.t. input, weight and bias flow through your operations"""
    cases = [
        # n, c_in, c_out, h, w, kh, kw, stride, padding
        (2, 3, 4, 7, 6, 3, 2, 1, 0),
        (1, 2, 3, 8, 7, 3, 3, 2, 1),
        (2, 1, 2, 9, 8, 2, 3, 3, 2),
        (1, 3, 3, 5, 5, 4, 4, 1, 2),
    ]
    for dtype in DTYPES:
        for n, c_in, c_out, h, w, kh, kw, stride, padding in cases:
            x, weight, b = _conv_case(grader, n, c_in, c_out, h, w, kh, kw, dtype, bias=True)
            _compare_conv(grader, x, weight, b, stride, padding, grad=(0, 1, 2))
    x, weight, _ = _conv_case(grader, 2, 2, 3, 6, 5, 2, 2, torch.float64)
    _compare_conv(grader, x, weight, stride=2, padding=1, grad=(0, 1))
