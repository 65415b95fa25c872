"""Hidden checks for unit 1.5 `unet` (Ronneberger, Fischer & Brox, 2015).

Every check compares the learner's code with the master solution on seeded inputs. The crop is
probed on even and odd margins, square and non-square windows, 2-D to 4-D inputs and integer
tensors. The network is built on both sides from one state dict written here from the
contract's submodule names, for depth 1 to 4, padding 1 and the paper's valid convolutions
(padding 0, where the skips are cropped, including odd sizes where the crop margin is odd),
batch 1 and 2, float32 and float64, with gradients w.r.t. the input and every parameter; its
layout (parameter names and shapes) is compared exactly through a driver, and the valid-mode
output size is checked against the paper's formula (572 → 388 at depth 5). The weight map is
probed on synthetic touching cells, on hand-made touching and nearly touching objects, and on
masks with zero, one or only foreground objects; the loss and its gradients on several shapes,
with per-image and shared weight maps.
"""

import torch

from course.data.cells import touching_cells
from course.grading.dsl import (
    CROSS_ENTROPY_ATEN,
    CROSS_ENTROPY_CALLS,
    Call,
    Forbid,
    Make,
    Mistake,
    check,
)
from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import dtype_word as _dt

UNIT = "unet"

FORBIDDEN = [
    Forbid(
        calls=CROSS_ENTROPY_CALLS,
        aten=CROSS_ENTROPY_ATEN,
        within=("weighted_cross_entropy",),
    ),
    Forbid(
        calls=(
            "torchvision.transforms.functional.center_crop",
            "torchvision.transforms.CenterCrop",
            "torchvision.transforms.v2.functional.center_crop",
            "torchvision.transforms.v2.CenterCrop",
        ),
    ),
]

MISTAKES = [
    Mistake(
        "crop-rounding",
        "Your crop matches one that rounds the margin up: when H − h is odd you drop the extra "
        "row at the top instead of the bottom (off by one). Use top = (H − h) // 2 and "
        "left = (W − w) // 2.",
        {"top = (H - h) // 2": "top = (H - h + 1) // 2",
         "left = (W - w) // 2": "left = (W - w + 1) // 2"},
    ),
    Mistake(
        "crop-size-swapped",
        "Your crop matches one that reads the pair size as (w, h). size = (h, w): the first "
        "number is the height (rows, dim −2), the second the width (columns, dim −1).",
        {"(int(size[0]), int(size[1]))": "(int(size[1]), int(size[0]))"},
    ),
    Mistake(
        "concat-order",
        "Your network matches one that concatenates [upsampled, skip]. The order fixes which "
        "input channels of dec[j]'s first convolution see which features: concatenate the "
        "cropped skip first, torch.cat([skip, upsampled], dim=1).",
        {"torch.cat([s, u], dim=1)": "torch.cat([u, s], dim=1)"},
    ),
    Mistake(
        "no-channel-halving",
        "Your up-convolutions keep the number of channels (c_{i+1} → c_{i+1}). In U-Net each 2×2 "
        "up-convolution halves them, ConvTranspose2d(c_{i+1}, c_i, 2, stride=2), so dec[j] "
        "receives 2·c_i channels after the concatenation.",
        {
            "nn.ConvTranspose2d(widths[i + 1], widths[i], kernel_size=2, stride=2)":
            "nn.ConvTranspose2d(widths[i + 1], widths[i + 1], kernel_size=2, stride=2)",
            "double_conv(2 * widths[i], widths[i])":
            "double_conv(widths[i] + widths[i + 1], widths[i])",
        },
    ),
    Mistake(
        "no-second-relu",
        "Your network matches one without the ReLU after the second 3×3 convolution of each "
        "block. Every 3×3 convolution is followed by a ReLU: Conv, ReLU, Conv, ReLU.",
        {
            "nn.Conv2d(c_out, c_out, kernel_size=3, padding=padding),\n"
            "                nn.ReLU(),\n":
            "nn.Conv2d(c_out, c_out, kernel_size=3, padding=padding),\n"
        },
    ),
    Mistake(
        "d1-twice",
        "Your weight map matches one that uses the distance to the nearest object twice, "
        "exp(−(2·d1)²/2σ²). The border term uses d1 + d2, d2 the distance to the "
        "second-nearest object, so it is large only where two objects are close.",
        {"(d1 + d2) ** 2": "(d1 + d1) ** 2"},
    ),
    Mistake(
        "sigma-not-squared",
        "Your weight map matches exp(−(d1 + d2)² / (2σ)): σ is not squared. The border term is "
        "w0 · exp(−(d1 + d2)² / (2σ²)).",
        {"(2 * sigma**2)": "(2 * sigma)"},
    ),
    Mistake(
        "missing-factor-2",
        "Your weight map matches exp(−(d1 + d2)² / σ²): the factor 2 in the denominator is "
        "missing. The border term is w0 · exp(−(d1 + d2)² / (2σ²)).",
        {"(2 * sigma**2)": "(sigma**2)"},
    ),
    Mistake(
        "border-on-foreground",
        "Your weight map adds the border term on object pixels too. It belongs to background "
        "pixels only (the gaps between objects); object pixels get w_c alone.",
        {"w = w + np.where(fg, 0.0, border)": "w = w + border"},
    ),
    Mistake(
        "no-class-balance",
        "Your weight map matches one with w_c = 1 everywhere: the class balance is missing. "
        "w_c = 1 / (C · f_c), f_c the fraction of pixels of the pixel's class (background or "
        "object) and C the number of classes present.",
        {"w[c] = labels.size / (len(classes) * c.sum())": "w[c] = 1.0"},
    ),
    Mistake(
        "class-weights-unnormalised",
        "Your class weights match 1 / f_c without the 1 / C factor. Divide by the number of "
        "classes present as well, w_c = 1 / (C · f_c), so that w_c averages to 1 over the image.",
        {"w[c] = labels.size / (len(classes) * c.sum())": "w[c] = labels.size / c.sum()"},
    ),
    Mistake(
        "loss-summed",
        "Your loss matches the weighted sum over pixels. Take the mean over all N·H·W pixels "
        "instead, so the loss does not grow with the image size or the batch.",
        {"return (w * nll).mean()": "return (w * nll).sum()"},
    ),
    Mistake(
        "weights-normalised",
        "Your loss matches Σ w·nll / Σ w (normalised by the sum of the weights). This exercise "
        "defines the loss as the plain mean over N·H·W pixels of w·nll.",
        {"return (w * nll).mean()": "return (w * nll).sum() / w.expand_as(nll).sum()"},
    ),
    Mistake(
        "softmax-wrong-axis",
        "Your loss matches a softmax taken over the last (width) axis. The classes live on "
        "dim 1 of (N, C, H, W): normalise over dim 1.",
        {"torch.logsumexp(logits, dim=1, keepdim=True)":
         "torch.logsumexp(logits, dim=-1, keepdim=True)"},
    ),
]



# -- center_crop ---------------------------------------------------------------------------
# (input shape, size): even and odd margins in each direction, pair sizes, no-op crops, 1×1
CROP_CASES = [
    ((1, 1, 6, 6), 4),
    ((2, 3, 7, 9), 4),
    ((2, 5, 8), (3, 6)),
    ((9, 4), (4, 1)),
    ((1, 2, 5, 8), (5, 3)),
    ((3, 6, 7), 1),
    ((2, 1, 4, 4), (4, 4)),
    ((1, 1, 11, 6), (6, 3)),
]


@check(points=2, public=True, task="center_crop")
def test_crop(grader):
    """center_crop on even and odd margins, square and non-square windows, 2-D to 4-D inputs"""
    for shape, size in CROP_CASES:
        for dtype in DTYPES:
            x = grader.randn(*shape, dtype=dtype)
            grader.compare(Call("center_crop", (x, size)), case=f"center_crop(x{list(shape)}, "
                           f"{size}), {_dt(dtype)}", exact=True)


@check(points=1, task="center_crop")
def test_crop_integers_and_gradient(grader):
    """center_crop keeps integer dtypes and passes gradients to the kept window only"""
    for shape, size in [((2, 7, 9), (4, 4)), ((1, 3, 6, 5), (3, 2))]:
        x = grader.randint(0, 100, shape)
        grader.compare(Call("center_crop", (x, size)), case=f"int64 x{list(shape)}, {size}",
                       exact=True)
        y = grader.randn(*shape, dtype=torch.float64)
        grader.compare(Call("center_crop", (y, size), grad=(0,)),
                       case=f"d/dx of center_crop(x{list(shape)}, {size})")


# -- UNet ----------------------------------------------------------------------------------
def _conv(grader, out_ch, in_ch, k, dtype):
    return grader.randn(out_ch, in_ch, k, k, dtype=dtype, scale=(2.0 / (in_ch * k * k)) ** 0.5)


def _double(grader, prefix, c_in, c_out, dtype):
    return {
        f"{prefix}.0.weight": _conv(grader, c_out, c_in, 3, dtype),
        f"{prefix}.0.bias": grader.randn(c_out, dtype=dtype, scale=0.1),
        f"{prefix}.2.weight": _conv(grader, c_out, c_out, 3, dtype),
        f"{prefix}.2.bias": grader.randn(c_out, dtype=dtype, scale=0.1),
    }


def _unet_state(grader, in_ch, classes, depth, base, dtype):
    widths = [base * 2**i for i in range(depth)]
    state = {}
    for i in range(depth):
        state.update(_double(grader, f"down.{i}", in_ch if i == 0 else widths[i - 1],
                             widths[i], dtype))
    for j, i in enumerate(reversed(range(depth - 1))):
        state[f"up.{j}.weight"] = grader.randn(widths[i + 1], widths[i], 2, 2, dtype=dtype,
                                               scale=(1.0 / widths[i + 1]) ** 0.5)
        state[f"up.{j}.bias"] = grader.randn(widths[i], dtype=dtype, scale=0.1)
        state.update(_double(grader, f"dec.{j}", 2 * widths[i], widths[i], dtype))
    state["head.weight"] = _conv(grader, classes, widths[0], 1, dtype)
    state["head.bias"] = grader.randn(classes, dtype=dtype, scale=0.1)
    return state


def _unet(grader, in_ch, classes, depth, base, padding, dtype):
    return Make("UNet", (in_ch, classes, depth, base, padding),
                state_dict=_unet_state(grader, in_ch, classes, depth, base, dtype), dtype=dtype)


def _describe(in_ch, classes, depth, base, padding):
    return (f"UNet(in_channels={in_ch}, num_classes={classes}, depth={depth}, "
            f"base_channels={base}, padding={padding})")


def _valid_size(size, depth):
    """Output size of the valid-convolution U-Net (paper: 572 → 388 at depth 5)."""
    for _ in range(depth - 1):
        size = (size - 4) // 2
    size -= 4
    for _ in range(depth - 1):
        size = 2 * size - 4
    return size


@check(points=1, public=True, task="UNet")
def test_unet_layout(grader):
    """UNet has down / up / dec / head with the contract's names and shapes"""
    for args in [(1, 2, 3, 4, 1), (3, 5, 2, 2, 0), (1, 2, 1, 4, 1), (2, 3, 4, 2, 0)]:
        grader.compare(Call("@modules.layout", ("UNet", args)),
                       case=f"parameter names/shapes of {_describe(*args)}", exact=True)


# (in_ch, classes, depth, base, N, H, W)
SAME_CASES = [
    (1, 2, 1, 4, 1, 5, 7),
    (1, 2, 2, 4, 2, 8, 6),
    (2, 3, 3, 3, 1, 8, 12),
    (1, 2, 3, 4, 2, 16, 16),
]
# valid convolutions; odd sizes make the skip crops' margins odd
VALID_CASES = [
    (1, 2, 1, 4, 1, 7, 5),
    (1, 2, 2, 4, 1, 18, 21),
    (2, 3, 2, 3, 2, 23, 20),
    (1, 2, 3, 3, 1, 44, 47),
    (1, 2, 3, 2, 1, 45, 51),
]


@check(points=2, public=True, task="UNet")
def test_unet_forward_padded(grader):
    """UNet(padding=1) with copied weights, depth 1 to 3, float32 and float64"""
    for in_ch, classes, depth, base, n, h, w in SAME_CASES:
        for dtype in DTYPES:
            x = grader.randn(n, in_ch, h, w, dtype=dtype)
            grader.compare(Call(_unet(grader, in_ch, classes, depth, base, 1, dtype), (x,)),
                           case=f"{_describe(in_ch, classes, depth, base, 1)} on "
                           f"x{list(x.shape)}, {_dt(dtype)}")


@check(points=2, public=True, task="UNet")
def test_unet_forward_valid(grader):
    """UNet(padding=0): valid convolutions with cropped skips, depth 1 to 3, odd sizes"""
    for in_ch, classes, depth, base, n, h, w in VALID_CASES:
        for dtype in DTYPES:
            x = grader.randn(n, in_ch, h, w, dtype=dtype)
            grader.compare(Call(_unet(grader, in_ch, classes, depth, base, 0, dtype), (x,)),
                           case=f"{_describe(in_ch, classes, depth, base, 0)} on "
                           f"x{list(x.shape)}, {_dt(dtype)}")


@check(points=1, task="UNet")
def test_unet_valid_output_size(grader):
    """valid-convolution output sizes follow the paper's formula (572 → 388 at depth 5)"""
    for depth, h, w in [(5, 572, 572), (4, 188, 197), (3, 60, 45)]:
        x = grader.randn(1, 1, h, w, dtype=torch.float32)
        case = f"{_describe(1, 2, depth, 1, 0)} on x{list(x.shape)}"
        got = grader.compare(Call(_unet(grader, 1, 2, depth, 1, 0, torch.float32), (x,)),
                             case=case)
        shape = tuple(got.out.shape[-2:])

        want = (_valid_size(h, depth), _valid_size(w, depth))
        grader.require(shape == want, f"{case}: output is {shape}, the valid-convolution "
                       f"formula gives {want}")


@check(points=1, task="UNet")
def test_unet_edge_cases(grader):
    """UNet on a non-divisible size (padding=1 crops too), 3 input channels, 1 class"""
    for args, shape in [((3, 1, 2, 2, 1), (1, 3, 9, 11)), ((1, 2, 3, 2, 1), (1, 1, 6, 10)),
                        ((3, 1, 2, 2, 0), (2, 3, 19, 18))]:
        for dtype in DTYPES:
            x = grader.randn(*shape, dtype=dtype)
            grader.compare(Call(_unet(grader, *args, dtype), (x,)),
                           case=f"{_describe(*args)} on x{list(shape)}, {_dt(dtype)}")


@check(points=2, task="UNet")
def test_unet_gradients(grader):
    """UNet gradients w.r.t. the input and every parameter, both paddings"""
    for args, shape in [((1, 2, 3, 3, 1), (2, 1, 8, 8)), ((1, 2, 2, 3, 0), (1, 1, 19, 18)),
                        ((2, 3, 3, 2, 0), (1, 2, 45, 44))]:
        for dtype in DTYPES:
            x = grader.randn(*shape, dtype=dtype)
            grader.compare(Call(_unet(grader, *args, dtype), (x,), grad=(0, "params")),
                           case=f"d/dx and d/dparams of {_describe(*args)} on x{list(shape)}, "
                           f"{_dt(dtype)}")


# -- unet_weight_map -----------------------------------------------------------------------
def _blocks(h, w, boxes):
    """An instance mask with rectangles (label, top, left, height, width)."""
    mask = torch.zeros(h, w, dtype=torch.int64)
    for label, top, left, bh, bw in boxes:
        mask[top:top + bh, left:left + bw] = label
    return mask


def _touching_masks():
    _, masks = touching_cells(3, size=32, seed=5)
    return [
        ("two touching squares", _blocks(12, 14, [(1, 2, 2, 5, 5), (2, 2, 7, 5, 5)])),
        ("two squares one pixel apart", _blocks(12, 16, [(1, 3, 1, 6, 6), (2, 3, 8, 6, 6)])),
        ("three objects", _blocks(15, 13, [(1, 1, 1, 4, 4), (2, 1, 6, 4, 5), (3, 7, 3, 5, 6)])),
        *[(f"synthetic touching cells #{i}", masks[i]) for i in range(3)],
    ]


@check(points=2, public=True, task="unet_weight_map")
def test_weight_map_touching(grader):
    """unet_weight_map on touching and nearly touching objects, default and custom w0, σ"""
    for what, mask in _touching_masks():
        grader.compare(Call("unet_weight_map", (mask,)),
                       case=f"unet_weight_map({what}, mask {list(mask.shape)})")
        grader.compare(Call("unet_weight_map", (mask,), {"w0": 4.0, "sigma": 3.0}),
                       case=f"unet_weight_map({what}, w0=4, sigma=3)")


@check(points=1, public=True, task="unet_weight_map")
def test_weight_map_few_objects(grader):
    """unet_weight_map with no object, one object, and objects covering the whole image"""
    cases = [
        ("no object", torch.zeros(6, 9, dtype=torch.int64)),
        ("one object", _blocks(10, 8, [(1, 2, 3, 4, 3)])),
        ("one object covering everything", torch.ones(5, 4, dtype=torch.int64)),
        ("two objects covering everything", _blocks(6, 6, [(1, 0, 0, 6, 3), (2, 0, 3, 6, 3)])),
        ("one pixel", torch.zeros(1, 1, dtype=torch.int64)),
    ]
    for what, mask in cases:
        grader.compare(Call("unet_weight_map", (mask,), {"w0": 10.0, "sigma": 3.0}),
                       case=f"unet_weight_map({what}, mask {list(mask.shape)}, sigma=3)")


@check(points=1, task="unet_weight_map")
def test_weight_map_labels(grader):
    """unet_weight_map with non-consecutive labels, int32 masks and small σ"""
    mask = _blocks(14, 19, [(3, 1, 1, 5, 6), (7, 1, 8, 5, 4), (12, 8, 2, 5, 14)])
    grader.compare(Call("unet_weight_map", (mask,), {"w0": 1.0, "sigma": 1.5}),
                   case="labels 3, 7, 12; w0=1, sigma=1.5")
    grader.compare(Call("unet_weight_map", (mask.to(torch.int32),)), case="int32 mask")
    _, masks = touching_cells(1, size=48, seed=11, cells=(8, 10))
    grader.compare(Call("unet_weight_map", (masks[0],), {"sigma": 4.0}),
                   case="crowded synthetic cells, 48×48, sigma=4")


# -- weighted_cross_entropy ----------------------------------------------------------------
LOSS_CASES = [(2, 2, 5, 4, True), (1, 3, 4, 6, False), (3, 4, 2, 3, True), (1, 2, 1, 1, False)]


def _loss_inputs(grader, n, c, h, w, per_image, dtype, map_dtype=None):
    logits = grader.randn(n, c, h, w, dtype=dtype, scale=2.0)
    target = grader.randint(0, c, (n, h, w))
    shape = (n, h, w) if per_image else (h, w)
    weights = 0.5 + 3 * grader.rand(*shape, dtype=map_dtype or dtype)
    return logits, target, weights


@check(points=2, public=True, task="weighted_cross_entropy")
def test_loss(grader):
    """weighted_cross_entropy: per-image and shared weight maps, float32 and float64"""
    for n, c, h, w, per_image in LOSS_CASES:
        for dtype in DTYPES:
            args = _loss_inputs(grader, n, c, h, w, per_image, dtype)
            grader.compare(Call("weighted_cross_entropy", args),
                           case=f"logits {list(args[0].shape)}, weight map "
                           f"{list(args[2].shape)}, {_dt(dtype)}")
    args = _loss_inputs(grader, 2, 2, 3, 5, True, torch.float32, map_dtype=torch.float64)
    grader.compare(Call("weighted_cross_entropy", args),
                   case="float32 logits with a float64 weight map (result in float32)")


@check(points=2, task="weighted_cross_entropy")
def test_loss_gradients(grader):
    """weighted_cross_entropy gradients w.r.t. the logits and the weight map"""
    for n, c, h, w, per_image in LOSS_CASES[:3]:
        for dtype in DTYPES:
            args = _loss_inputs(grader, n, c, h, w, per_image, dtype)
            grader.compare(Call("weighted_cross_entropy", args, grad=(0, 2)),
                           case=f"d/dlogits and d/dweights, logits {list(args[0].shape)}, "
                           f"{_dt(dtype)}")


@check(points=1, task="weighted_cross_entropy")
def test_loss_large_logits(grader):
    """weighted_cross_entropy stays finite and exact with large logits (log-sum-exp)"""
    logits = grader.randn(2, 3, 4, 4, dtype=torch.float64, scale=300.0)
    target = grader.randint(0, 3, (2, 4, 4))
    weights = 1 + grader.rand(4, 4, dtype=torch.float64)
    grader.compare(Call("weighted_cross_entropy", (logits, target, weights), grad=(0,)),
                   case="logits of size ~300, float64")
    grader.compare(Call("weighted_cross_entropy", (logits.float(), target, weights.float())),
                   case="logits of size ~300, float32")
