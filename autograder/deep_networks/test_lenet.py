"""Hidden checks for unit 1.3 `lenet` (LeCun, Bottou, Bengio & Haffner, 1998).

``scaled_tanh`` is compared with the reference on several shapes (a 0-dim tensor included), on
a grid through the saturated tails, in float32 and float64, with gradients. ``LeNet5`` is
compared in three ways: its layout (names and shapes of parameters and buffers, and the number
of trainable parameters) exactly, through a driver, since freshly initialised values depend on
the order in which the layers are created; its forward pass and gradients with a state dict
written here from the contract's names and copied into both models (batches of 1 to 16,
float32 and float64, several ``num_classes``); and a grader-owned training loop
(``course/grading/drivers/lenet.py``) that trains the learner's model from the grader's initial
weights on the digits at 32×32 and must reach 97% test accuracy.
"""

from __future__ import annotations

import math
from functools import cache

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Make, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "lenet"

FORBIDDEN = [
    Forbid(
        calls=(
            # weights or whole models from elsewhere would skip the exercise
            "torch.load",
            "torch.hub.load",
            "torch.hub.load_state_dict_from_url",
            "torch.hub.download_url_to_file",
            "torch.utils.model_zoo.load_url",
            "torch.jit.load",
            "torch.export.load",
            "torch.package.PackageImporter",
            # torchvision, where it is installed, ships model builders
            "torchvision.models.get_model",
            "torchvision.models.get_weight",
        ),
    ),
]

MISTAKES = [
    Mistake(
        "max-pool",
        "Your output matches a LeNet5 whose subsampling layers take the maximum of each 2×2 "
        "block. LeNet-5 averages: s2 and s4 are 2×2 average pools with stride 2 "
        "(nn.AvgPool2d(2)).",
        {
            "self.s2 = nn.AvgPool2d(kernel_size=2, stride=2)":
            "self.s2 = nn.MaxPool2d(kernel_size=2, stride=2)",
            "self.s4 = nn.AvgPool2d(kernel_size=2, stride=2)":
            "self.s4 = nn.MaxPool2d(kernel_size=2, stride=2)",
        },
    ),
    Mistake(
        "relu",
        "Your output matches a LeNet5 with ReLU activations. LeNet-5 squashes with "
        "scaled_tanh, 1.7159·tanh(2a/3), after c1, c3, c5 and f6.",
        {
            "h = self.s2(scaled_tanh(self.c1(x)))": "h = self.s2(torch.relu(self.c1(x)))",
            "h = self.s4(scaled_tanh(self.c3(h)))": "h = self.s4(torch.relu(self.c3(h)))",
            "h = scaled_tanh(self.c5(h))": "h = torch.relu(self.c5(h))",
            "h = scaled_tanh(self.f6(h))": "h = torch.relu(self.f6(h))",
        },
    ),
    Mistake(
        "no-c5-activation",
        "Your output matches a LeNet5 with no activation after c5. C5 is a layer of "
        "squashing units like the others: h = scaled_tanh(c5(h)) before flattening.",
        {"h = scaled_tanh(self.c5(h))": "h = self.c5(h)"},
    ),
    Mistake(
        "no-f6-activation",
        "Your output matches a LeNet5 with no activation after f6. F6 is squashed too: "
        "h = scaled_tanh(f6(h)); only the output layer is left linear.",
        {"h = scaled_tanh(self.f6(h))": "h = self.f6(h)"},
    ),
    Mistake(
        "flatten-squeeze",
        "Your output for a batch of ONE image has lost its batch dimension: that is what "
        "squeeze() does to (1, 120, 1, 1). Flatten from dimension 1 on (h.flatten(1), or "
        "h.reshape(len(h), -1)), so that (N, 120, 1, 1) becomes (N, 120) for every N.",
        {"h = h.flatten(start_dim=1)": "h = h.squeeze()"},
    ),
    Mistake(
        "detached-features",
        "The gradients w.r.t. c1, c3 and c5 are missing: the feature maps are cut off from "
        "autograd before the fully connected layers (.detach(), .data, or a round trip through "
        "numpy or a new tensor). Keep every step a torch operation on the tensor itself, so "
        "that training can reach the convolutions.",
        {"h = h.flatten(start_dim=1)": "h = h.detach().flatten(start_dim=1)"},
    ),
    Mistake(
        "c5-linear",
        "Your c5 is an nn.Linear(400, 120) on the flattened 16×5×5 maps. On a 32×32 input it "
        "computes the same function, but C5 is a convolution, nn.Conv2d(16, 120, 5), with a "
        "(120, 16, 5, 5) weight: the grader's weights (and any LeNet-5 state dict) have that "
        "shape, and a convolution would also slide over a larger input.",
        {
            "self.c5 = nn.Conv2d(16, 120, kernel_size=5)": "self.c5 = nn.Linear(16 * 5 * 5, 120)",
            "h = scaled_tanh(self.c5(h))": "h = scaled_tanh(self.c5(h.flatten(start_dim=1)))",
        },
    ),
    Mistake(
        "f6-width",
        "Your f6 layer does not have 84 units. F6 is nn.Linear(120, 84) (the paper sized it for "
        "7×12 bitmaps of the characters) and output is nn.Linear(84, num_classes).",
        {
            "self.f6 = nn.Linear(120, 84)": "self.f6 = nn.Linear(120, 64)",
            "self.output = nn.Linear(84, num_classes)": "self.output = nn.Linear(64, num_classes)",
        },
    ),
    Mistake(
        "plain-tanh",
        "Your output matches the plain tanh(x). LeCun's squashing function is scaled: "
        "1.7159·tanh(2x/3), so that f(1) = 1 and f(−1) = −1.",
        {"return 1.7159 * torch.tanh(2.0 / 3.0 * x)": "return torch.tanh(x)"},
    ),
    Mistake(
        "no-two-thirds",
        "Your output matches 1.7159·tanh(x): the slope factor 2/3 inside the tanh is missing. "
        "Compute 1.7159·tanh(2x/3).",
        {"return 1.7159 * torch.tanh(2.0 / 3.0 * x)": "return 1.7159 * torch.tanh(x)"},
    ),
    Mistake(
        "constants-swapped",
        "Your output matches (2/3)·tanh(1.7159·x): the two constants are swapped. The "
        "amplitude 1.7159 goes outside the tanh and the slope 2/3 inside: 1.7159·tanh(2x/3).",
        {"return 1.7159 * torch.tanh(2.0 / 3.0 * x)": "return 2.0 / 3.0 * torch.tanh(1.7159 * x)"},
    ),
    Mistake(
        "activation-after-pool",
        "Your output matches a LeNet5 that averages first and squashes afterwards, "
        "scaled_tanh(s2(c1(x))). In this variant each convolution's activation comes before "
        "its pooling: s2(scaled_tanh(c1(x))), and likewise s4(scaled_tanh(c3(h))).",
        {
            "h = self.s2(scaled_tanh(self.c1(x)))": "h = scaled_tanh(self.s2(self.c1(x)))",
            "h = self.s4(scaled_tanh(self.c3(h)))": "h = scaled_tanh(self.s4(self.c3(h)))",
        },
    ),
    Mistake(
        "softmax-output",
        "Your output matches the softmax of the logits. Return the raw logits of the output "
        "layer: the loss (cross-entropy) applies the softmax itself.",
        {"return self.output(h)": "return torch.softmax(self.output(h), dim=1)"},
    ),
    Mistake(
        "activation-on-logits",
        "Your output matches scaled_tanh applied to the output layer. The output layer is "
        "linear: return output(h) without squashing it.",
        {"return self.output(h)": "return scaled_tanh(self.output(h))"},
    ),
]

TARGET_ACCURACY = 0.97


# -- weights written from the contract's names -------------------------------------------------
def _shapes(num_classes: int) -> dict[str, tuple[int, ...]]:
    return {
        "c1.weight": (6, 1, 5, 5), "c1.bias": (6,),
        "c3.weight": (16, 6, 5, 5), "c3.bias": (16,),
        "c5.weight": (120, 16, 5, 5), "c5.bias": (120,),
        "f6.weight": (84, 120), "f6.bias": (84,),
        "output.weight": (num_classes, 84), "output.bias": (num_classes,),
    }


def _state(grader, num_classes: int, dtype: torch.dtype, gain: float = 1.0) -> dict:
    """Uniform weights in ±gain/sqrt(fan_in) (PyTorch's default range when gain is 1)."""
    shapes = _shapes(num_classes)
    state = {}
    for name, shape in shapes.items():
        weight_shape = shapes[name.replace(".bias", ".weight")]
        bound = gain / math.sqrt(math.prod(weight_shape[1:]))
        state[name] = ((2 * grader.rand(*shape) - 1) * bound).to(dtype)
    return state


def _model(grader, num_classes: int, dtype: torch.dtype) -> Make:
    return Make("LeNet5", (num_classes,), state_dict=_state(grader, num_classes, dtype, 1.5),
                dtype=dtype, train=False)


def _images(grader, n: int, dtype: torch.dtype) -> torch.Tensor:
    return grader.randn(n, 1, 32, 32, dtype=dtype)


# -- scaled_tanh ---------------------------------------------------------------------------
@check(points=1, public=True, task="scaled_tanh")
def test_scaled_tanh(grader):
    """scaled_tanh matches 1.7159·tanh(2x/3) on several shapes, float32 and float64"""
    for shape in [(7,), (3, 4), (2, 3, 4, 5), (1,), ()]:
        for dtype in DTYPES:
            x = grader.randn(*shape, dtype=dtype, scale=2.0)
            grader.compare(Call("scaled_tanh", (x,)), case=f"scaled_tanh(x{list(shape)}), "
                           f"{_dt(dtype)}")
    grid = torch.linspace(-8.0, 8.0, 161, dtype=torch.float64)
    grader.compare(Call("scaled_tanh", (grid,)), case="scaled_tanh on 161 points in [-8, 8]")


@check(points=1, task="scaled_tanh")
def test_scaled_tanh_gradient(grader):
    """scaled_tanh's gradient through autograd, in the middle and in the saturated tails"""
    for shape, scale in [((5, 6), 1.0), ((2, 3, 4), 3.0), ((1,), 1.0), ((4,), 20.0)]:
        for dtype in DTYPES:
            x = grader.randn(*shape, dtype=dtype, scale=scale)
            grader.compare(
                Call("scaled_tanh", (x,), grad=(0,)),
                case=f"d/dx of scaled_tanh(x{list(shape)}) with |x| ~ {scale:g}, {_dt(dtype)}",
            )


# -- LeNet5 --------------------------------------------------------------------------------
@check(points=1, public=True, task="LeNet5")
def test_layout(grader):
    """LeNet5 has c1, c3, c5, f6 and output (61,706 trainable parameters for 10 classes)"""
    grader.compare(
        Call("@lenet.layout", (10,)),
        case="parameter names/shapes and parameter count of LeNet5(10)", exact=True,
    )


@check(points=2, public=True, task="LeNet5")
def test_forward(grader):
    """LeNet5 forward with copied weights, on a batch of 4 and a single image"""
    for n in (4, 1):
        for dtype in DTYPES:
            grader.compare(
                Call(_model(grader, 10, dtype), (_images(grader, n, dtype),)),
                case=f"LeNet5(10) on x[{n}, 1, 32, 32], {_dt(dtype)}",
            )


@check(points=2, task="LeNet5")
def test_forward_gradients(grader):
    """LeNet5 forward and gradients w.r.t. the input and every parameter, batches 1 to 16"""
    for n in (1, 3, 16):
        for dtype in DTYPES:
            grader.compare(
                Call(_model(grader, 10, dtype), (_images(grader, n, dtype),), grad=(0, "params")),
                case=f"d/dx and d/dparams of LeNet5(10) on x[{n}, 1, 32, 32], {_dt(dtype)}",
            )


@check(points=1, task="LeNet5")
def test_num_classes(grader):
    """LeNet5(num_classes) for 1, 2 and 26 classes: layout and logits of shape (N, num_classes)"""
    for classes in (1, 2, 26):
        grader.compare(Call("@lenet.layout", (classes,)), exact=True,
                       case=f"parameter names/shapes and parameter count of LeNet5({classes})")
        for dtype in DTYPES:
            grader.compare(
                Call(_model(grader, classes, dtype), (_images(grader, 2, dtype),)),
                case=f"LeNet5({classes}) on x[2, 1, 32, 32], {_dt(dtype)}",
            )


@cache
def _digits() -> tuple[torch.Tensor, ...]:
    """The digits at 32×32, standardised with the training set's mean and deviation."""
    from course.data import load_digits

    split = load_digits(32)
    mean, std = split.x_train.mean(), split.x_train.std()
    return ((split.x_train - mean) / std, split.y_train, (split.x_test - mean) / std,
            split.y_test)


@check(points=3, task="LeNet5")
def test_trains_on_digits(grader):
    """the grader's loop trains your LeNet5 to at least 97% test accuracy on 32×32 digits"""
    x_train, y_train, x_test, y_test = _digits()
    state = _state(grader, 10, torch.float32)
    case = (f"LeNet5(10) trained by the grader (Adam, 10 epochs, batches of 32, shifts of up to "
            f"2 pixels, fixed seed) on {len(y_train)} digits, tested on {len(y_test)}")
    got = grader.learner(Call("@lenet.train", (state, x_train, y_train, x_test)), case)
    logits = got.out["test_logits"]
    grader.require(
        tuple(logits.shape) == (len(y_test), 10),
        f"{case}: the logits on the test images have shape {tuple(logits.shape)}, expected "
        f"({len(y_test)}, 10)",
    )
    grader.require(bool(torch.isfinite(logits).all()),
                   f"{case}: the logits on the test images are not all finite")
    accuracy = float((logits.argmax(dim=1).cpu() == y_test).double().mean())
    losses = got.out["train_loss"]

    curve = ", ".join(f"{float(v):.3f}" for v in losses)
    grader.require(
        accuracy >= TARGET_ACCURACY,
        f"{case}: test accuracy {accuracy:.2%}, below the target of {TARGET_ACCURACY:.0%} "
        f"(training loss per epoch: {curve}). Check the activations, the pooling and the "
        "flattening against the docstring.",
    )
    grader.cases.append(f"{case}: {accuracy:.2%} test accuracy")
