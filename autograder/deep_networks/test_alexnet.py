"""Hidden checks for unit 1.4 `alexnet` (Krizhevsky, Sutskever & Hinton, 2012).

Local response normalization is compared with the master (the paper's formula) on inputs large
enough for the window sum to matter, over odd and even window sizes, channel counts smaller
than the window, (N, C), (N, C, L) and (N, C, H, W) inputs, float32 and float64, forward and
gradients. Ten crops are compared exactly (non-square images, odd and even margins, crop equal
to the image size, integer and floating images). Ten-crop prediction runs the learner's
``ten_crop_predict`` on a fixed grader-owned model (see ``course/grading/drivers/alexnet.py``).
"""

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Mistake, check

UNIT = "alexnet"

_TORCHVISION_CROPS = tuple(
    f"torchvision.transforms.{where}{name}"
    for where in ("", "functional.", "v2.", "v2.functional.")
    for name in (("TenCrop", "FiveCrop") if where in ("", "v2.") else ("ten_crop", "five_crop"))
)

FORBIDDEN = [
    Forbid(calls=("torch.nn.functional.local_response_norm", "torch.nn.LocalResponseNorm")),
    Forbid(calls=_TORCHVISION_CROPS),
]

MISTAKES = [
    # -- local_response_norm -------------------------------------------------------------
    Mistake(
        "alpha-divided-by-size",
        "Your output matches what we get when alpha multiplies the mean of the squares over the "
        "window (alpha / size × sum), as torch.nn.functional.local_response_norm does. The paper "
        "multiplies alpha by the sum of the squares itself.",
        {"k + alpha * window_sum": "k + alpha / size * window_sum"},
    ),
    Mistake(
        "window-not-centred",
        "Your output matches a window that starts at channel i and runs size channels upwards. "
        "The window is centred on channel i: size // 2 channels below it and the rest above.",
        {"below = size // 2": "below = 0"},
    ),
    Mistake(
        "even-window-too-wide",
        "Your output matches, for an even size, a window of size + 1 channels (size // 2 on each "
        "side of i). The window always holds size channels; for an even size it has size // 2 "
        "channels below i and size // 2 − 1 above.",
        {"above = size - 1 - below": "above = below"},
    ),
    Mistake(
        "edges-not-clipped",
        "Your output matches a window whose lower end is not clipped at channel 0: a negative "
        "start index in a slice counts from the end, so the sums of the first channels go wrong. "
        "Start the window at max(0, i − size // 2).",
        {"first = max(0, i - below)": "first = i - below"},
    ),
    Mistake(
        "beta-ignored",
        "Your output matches dividing by (k + alpha·sum) without raising it to the power beta.",
        {"(k + alpha * window_sum) ** beta": "(k + alpha * window_sum)"},
    ),
    Mistake(
        "k-missing",
        "Your output matches a denominator without the constant k: use (k + alpha·sum)^beta.",
        {"k + alpha * window_sum": "alpha * window_sum"},
    ),
    Mistake(
        "abs-not-squared",
        "Your output matches summing the absolute values |a| over the window. The paper sums the "
        "squares a².",
        {"squared = x * x": "squared = x.abs()"},
    ),
    # -- ten_crop ------------------------------------------------------------------------
    Mistake(
        "corner-off-by-one",
        "Your crops match corner crops that start one pixel too early (at H − crop − 1 and "
        "W − crop − 1). The bottom and right crops start at H − crop and W − crop, so that they "
        "end on the last row and column.",
        {"bottom = height - crop\n": "bottom = height - crop - 1\n",
         "right = width - crop\n": "right = width - crop - 1\n"},
    ),
    Mistake(
        "centre-rounded-up",
        "Your centre crop starts one pixel too far down or right when the margin is odd. Start it "
        "at (H − crop) // 2 and (W − crop) // 2, rounding down.",
        {"top = (height - crop) // 2": "top = (height - crop + 1) // 2",
         "left = (width - crop) // 2": "left = (width - crop + 1) // 2"},
    ),
    Mistake(
        "vertical-flip",
        "Your flipped views match flipping upside down (reversing the rows). AlexNet's "
        "reflections are horizontal: reverse the last axis (the columns).",
        {"view.flip(-1)": "view.flip(-2)"},
    ),
    Mistake(
        "flipped-image-crops",
        "Your last five views match crops taken from the mirrored image, so the left and right "
        "corners come in swapped order. The exercise asks for the mirror of each of the first "
        "five crops, in the same order (view 5 is the mirrored top-left crop).",
        {"views += [view.flip(-1) for view in views]":
         "views += [images.flip(-1)[:, :, r:r + crop, c:c + crop] for r, c in corners]"},
    ),
    Mistake(
        "views-major-order",
        "Your crops hold the right views in a different order: all images' first view, then all "
        "images' second view, and so on. Keep the ten views of each image together: rows "
        "10·n … 10·n + 9 belong to image n.",
        {"torch.stack(views, dim=1)": "torch.stack(views, dim=0)"},
    ),
    # -- ten_crop_predict ----------------------------------------------------------------
    Mistake(
        "averaged-logits",
        "Your predictions match the softmax of the averaged logits. AlexNet averages the ten "
        "softmax outputs: apply the softmax to each view first, then take the mean.",
        {"    probs = torch.softmax(logits, dim=-1)\n": "    probs = logits\n",
         "return probs.reshape(images.shape[0], 10, -1).mean(dim=1)":
         "return torch.softmax(probs.reshape(images.shape[0], 10, -1).mean(dim=1), dim=-1)"},
    ),
    Mistake(
        "softmax-wrong-axis",
        "Your predictions match a softmax taken over the batch of views (dim 0) instead of over "
        "the classes (the last dimension).",
        {"torch.softmax(logits, dim=-1)": "torch.softmax(logits, dim=0)"},
    ),
    Mistake(
        "views-grouped-wrongly",
        "Your predictions match averaging rows n, N + n, 2N + n, … for image n. The ten views of "
        "image n are the consecutive rows 10·n … 10·n + 9 of ten_crop's output.",
        {"probs.reshape(images.shape[0], 10, -1).mean(dim=1)":
         "probs.reshape(10, images.shape[0], -1).mean(dim=0)"},
    ),
]

PAPER = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}


# -- local_response_norm ------------------------------------------------------------------
@check(points=2, public=True, task="local_response_norm")
def test_lrn_paper_constants(grader):
    """local_response_norm with the paper's constants (k=2, n=5, α=1e-4, β=0.75)"""
    # activations of tens, as after a ReLU on ImageNet-scale inputs, so that α·Σa² matters
    for shape in [(2, 8, 3, 4), (1, 6, 2, 2), (3, 7), (2, 9, 5)]:
        for dtype in DTYPES:
            x = grader.randn(*shape, dtype=dtype, scale=30.0)
            grader.compare(Call("local_response_norm", (x,)),
                           case=f"local_response_norm(x{list(shape)}), defaults, {dtype}")
    x = grader.randn(2, 8, 3, 3, dtype=torch.float64, scale=30.0)
    grader.compare(Call("local_response_norm", (x,), dict(PAPER)),
                   case="local_response_norm(x[2, 8, 3, 3]) with the constants passed by name")


@check(points=2, public=True, task="local_response_norm")
def test_lrn_window_sizes(grader):
    """local_response_norm over odd and even window sizes, and fewer channels than the window"""
    cases = [((2, 8, 3, 3), 3), ((2, 8, 3, 3), 1), ((1, 9, 2, 3), 4), ((2, 7, 4), 2),
             ((2, 3, 2, 2), 5), ((1, 2, 3, 3), 4), ((3, 1, 2, 2), 3), ((2, 10), 6)]
    for shape, size in cases:
        for dtype in DTYPES:
            x = grader.randn(*shape, dtype=dtype, scale=2.0)
            kwargs = {"size": size, "alpha": 0.2, "beta": 0.75, "k": 1.0}
            grader.compare(Call("local_response_norm", (x,), kwargs),
                           case=f"local_response_norm(x{list(shape)}, size={size}, alpha=0.2, "
                                f"k=1), {dtype}")


@check(points=1, public=True, task="local_response_norm")
def test_lrn_parameters(grader):
    """local_response_norm uses k, alpha and beta as given"""
    for kwargs in [{"size": 3, "alpha": 0.5, "beta": 0.5, "k": 1.0},
                   {"size": 5, "alpha": 0.05, "beta": 1.0, "k": 0.5},
                   {"size": 4, "alpha": 1.0, "beta": 2.0, "k": 3.0}]:
        for dtype in DTYPES:
            x = grader.randn(2, 6, 3, 2, dtype=dtype, scale=1.5)
            grader.compare(Call("local_response_norm", (x,), kwargs),
                           case=f"local_response_norm(x[2, 6, 3, 2], {kwargs}), {dtype}")


@check(points=2, task="local_response_norm")
def test_lrn_gradients(grader):
    """gradients flow through local_response_norm (autograd over your operations)"""
    cases = [((2, 6, 3, 3), {}, 30.0), ((1, 7, 2, 4), {"size": 3, "alpha": 0.3, "k": 1.0}, 1.5),
             ((2, 6, 5), {"size": 4, "alpha": 0.3, "k": 1.0}, 1.5),
             ((2, 3, 2, 2), {"size": 5, "alpha": 0.3, "beta": 1.5, "k": 1.0}, 1.5)]
    for shape, kwargs, scale in cases:
        for dtype in DTYPES:
            x = grader.randn(*shape, dtype=dtype, scale=scale)
            grader.compare(Call("local_response_norm", (x,), kwargs, grad=(0,)),
                           case=f"d/dx of local_response_norm(x{list(shape)}, {kwargs}), {dtype}")


# -- ten_crop -----------------------------------------------------------------------------
def _images(grader, shape, dtype):
    if dtype == torch.uint8:
        return grader.randint(0, 256, shape).to(torch.uint8)
    return grader.randn(*shape, dtype=dtype)


@check(points=2, public=True, task="ten_crop")
def test_ten_crop(grader):
    """ten_crop on non-square images with even and odd margins, exact"""
    cases = [((2, 3, 7, 9), 5), ((2, 2, 8, 11), 5), ((1, 1, 6, 6), 6), ((2, 2, 5, 8), 5)]
    for shape, crop in cases:
        for dtype in (torch.float32, torch.uint8):
            x = _images(grader, shape, dtype)
            grader.compare(Call("ten_crop", (x, crop)), exact=True,
                           case=f"ten_crop(images{list(shape)}, {crop}), {dtype}")


@check(points=1, task="ten_crop")
def test_ten_crop_more(grader):
    """ten_crop on more shapes: batch of one, crop of 1, tall images, float64"""
    cases = [((1, 3, 9, 6), 4), ((3, 1, 4, 5), 1), ((1, 2, 10, 7), 7), ((2, 4, 12, 12), 9),
             ((1, 1, 3, 3), 2)]
    for shape, crop in cases:
        for dtype in (torch.float64, torch.int64):
            x = _images(grader, shape, dtype) if dtype.is_floating_point else \
                grader.randint(-1000, 1000, shape)
            grader.compare(Call("ten_crop", (x, crop)), exact=True,
                           case=f"ten_crop(images{list(shape)}, {crop}), {dtype}")


# -- ten_crop_predict ---------------------------------------------------------------------
def _predict_probe(grader, n, c, h, w, crop, classes, dtype):
    d = c * crop * crop
    hidden = 12
    w1 = grader.randn(hidden, d, dtype=dtype, scale=1.5 / d**0.5)
    b1 = grader.randn(hidden, dtype=dtype, scale=0.1)
    w2 = grader.randn(classes, hidden, dtype=dtype, scale=2.0)
    b2 = grader.randn(classes, dtype=dtype, scale=0.1)
    images = grader.randn(n, c, h, w, dtype=dtype)
    return Call("@alexnet.predict", (w1, b1, w2, b2, images, crop))


@check(points=2, public=True, task="ten_crop_predict")
def test_ten_crop_predict(grader):
    """ten_crop_predict averages softmax outputs over the ten views of each image"""
    for n, c, h, w, crop, classes in [(3, 2, 7, 9, 5, 4), (2, 1, 8, 8, 6, 3)]:
        for dtype in DTYPES:
            grader.compare(_predict_probe(grader, n, c, h, w, crop, classes, dtype),
                           case=f"ten_crop_predict(model, images[{n}, {c}, {h}, {w}], {crop}) "
                                f"with {classes} classes, {dtype}")


@check(points=1, task="ten_crop_predict")
def test_ten_crop_predict_more(grader):
    """ten_crop_predict on a batch of one, odd margins and crop equal to the image"""
    for n, c, h, w, crop, classes in [(1, 3, 9, 6, 4, 5), (4, 1, 5, 6, 5, 2),
                                      (2, 2, 6, 6, 6, 3)]:
        for dtype in DTYPES:
            grader.compare(_predict_probe(grader, n, c, h, w, crop, classes, dtype),
                           case=f"ten_crop_predict(model, images[{n}, {c}, {h}, {w}], {crop}) "
                                f"with {classes} classes, {dtype}")
