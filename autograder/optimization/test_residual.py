"""Hidden checks for unit 2.3 `residual` (He, Zhang, Ren & Sun, 2015).

Every module is built on both sides from the same state dict, written here from the contract's
submodule names (weights, BN affine parameters and BN running statistics), and run in training
mode (BN uses batch statistics) and in eval mode (BN uses the copied running statistics), in
float32 and float64, with gradients w.r.t. the input and every parameter. The layouts (names and
shapes of parameters and buffers) are compared exactly, through a driver, because freshly
initialised values depend on the order in which submodules are created. Blocks are probed with
identity shortcuts, with projections that change the channels, and with a projection that only
changes the resolution (in_ch == out_ch, stride 2); spatial sizes include odd ones and 1×1.
"""

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Make, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "residual"

FORBIDDEN = [
    Forbid(
        calls=(
            "torchvision.models.resnet.BasicBlock",
            "torchvision.models.resnet.Bottleneck",
            "torchvision.models.resnet.ResNet",
            "torchvision.models.resnet18",
            "torchvision.models.resnet34",
        ),
    ),
]

MISTAKES = [
    Mistake(
        "relu-before-add",
        "Your output matches relu(bn2(conv2(...))) + shortcut(x): the ReLU is applied to the "
        "residual branch before the addition and not after it. Add first, then apply the ReLU: "
        "relu(bn2(conv2(...)) + shortcut(x)).",
        {"return torch.relu(residual + self.shortcut(x))":
         "return torch.relu(residual) + self.shortcut(x)"},
    ),
    Mistake(
        "no-final-relu",
        "Your output matches bn2(conv2(...)) + shortcut(x) with no ReLU at all after the "
        "addition. The block ends with relu(residual + shortcut(x)).",
        {"return torch.relu(residual + self.shortcut(x))":
         "return residual + self.shortcut(x)"},
    ),
    Mistake(
        "no-shortcut",
        "Your output matches the residual branch alone, relu(bn2(conv2(...))): the shortcut is "
        "never added. Add shortcut(x) before the final ReLU; that sum is the whole idea.",
        {"return torch.relu(residual + self.shortcut(x))": "return torch.relu(residual)"},
    ),
    Mistake(
        "no-bn2",
        "Your output matches a block whose second convolution is not followed by bn2. "
        "Normalise it: residual = bn2(conv2(h)).",
        {"residual = self.bn2(self.conv2(h))": "residual = self.conv2(h)"},
    ),
    Mistake(
        "stride-on-conv2",
        "Your output matches a block whose stride sits on conv2 instead of conv1. The first "
        "3×3 convolution (conv1) downsamples; conv2 always has stride 1.",
        {
            "self.conv1 = nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride,":
            "self.conv1 = nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=1,",
            "self.conv2 = nn.Conv2d(out_ch, out_ch, kernel_size=3, stride=1,":
            "self.conv2 = nn.Conv2d(out_ch, out_ch, kernel_size=3, stride=stride,",
        },
    ),
    Mistake(
        "no-projection-on-stride",
        "Your block builds the projection shortcut only when the number of channels changes. "
        "A block with stride 2 and in_ch == out_ch also changes the shape (it halves the "
        "height and width), so it needs the 1×1-conv + BN projection too: use it whenever "
        "stride != 1 or in_ch != out_ch.",
        {"if stride != 1 or in_ch != out_ch:": "if in_ch != out_ch:"},
    ),
    Mistake(
        "projection-without-bn",
        "Your projection shortcut is a 1×1 convolution alone. Follow it with "
        "nn.BatchNorm2d(out_ch): shortcut = nn.Sequential(conv 1×1, BatchNorm2d).",
        {
            "nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False),\n"
            "                nn.BatchNorm2d(out_ch),\n":
            "nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False),\n"
        },
    ),
    Mistake(
        "conv-bias",
        "Your block's 3×3 convolutions have a bias (conv1.bias / conv2.bias). A convolution "
        "followed by batch normalization needs none (BN subtracts it again): pass bias=False.",
        {
            "kernel_size=3, stride=stride, padding=1, bias=False)":
            "kernel_size=3, stride=stride, padding=1)",
            "kernel_size=3, stride=1, padding=1, bias=False)\n        self.bn2":
            "kernel_size=3, stride=1, padding=1)\n        self.bn2",
        },
    ),
    Mistake(
        "every-block-strided",
        "Your stage passes its stride to every block. Only the first block of a stage "
        "downsamples; the later blocks are BasicBlock(out_ch, out_ch, stride=1).",
        {"stage.append(BasicBlock(out_ch, out_ch, 1))":
         "stage.append(BasicBlock(out_ch, out_ch, stride))"},
    ),
    Mistake(
        "later-blocks-from-in-ch",
        "Your stage builds every block from in_ch channels. Only the first block sees in_ch; "
        "the blocks after it receive out_ch channels: BasicBlock(out_ch, out_ch, 1).",
        {"stage.append(BasicBlock(out_ch, out_ch, 1))":
         "stage.append(BasicBlock(in_ch, out_ch, 1))"},
    ),
    Mistake(
        "stage-strides-one",
        "Your output matches a ResNet whose stages all have stride 1, so the feature maps "
        "never shrink. layer2 and layer3 start with stride 2 (strides 1, 2, 2).",
        {
            "self.layer2 = make_stage(16, 32, n, stride=2)":
            "self.layer2 = make_stage(16, 32, n, stride=1)",
            "self.layer3 = make_stage(32, 64, n, stride=2)":
            "self.layer3 = make_stage(32, 64, n, stride=1)",
        },
    ),
    Mistake(
        "no-stem-relu",
        "Your output matches a ResNet without the ReLU after the stem's bn1. The stem is "
        "relu(bn1(conv1(x))).",
        {"out = torch.relu(self.bn1(self.conv1(x)))": "out = self.bn1(self.conv1(x))"},
    ),
    Mistake(
        "max-pool",
        "Your output matches a global *max* pool before fc. The paper averages: take the mean "
        "over the height and width, out.mean(dim=(2, 3)).",
        {"pooled = out.mean(dim=(2, 3))": "pooled = out.amax(dim=(2, 3))"},
    ),
    Mistake(
        "flatten-instead-of-pool",
        "Your fc layer takes the flattened 64×8×8 feature map. Average over the spatial "
        "positions first (global average pooling), so fc is nn.Linear(64, num_classes) and "
        "works for any image size.",
        {
            "self.fc = nn.Linear(64, num_classes)": "self.fc = nn.Linear(64 * 8 * 8, num_classes)",
            "pooled = out.mean(dim=(2, 3))": "pooled = out.flatten(1)",
        },
    ),
]



# -- state dicts written from the contract's names ---------------------------------------------
def _conv(grader, out_ch, in_ch, k, dtype):
    fan_in = in_ch * k * k
    return grader.randn(out_ch, in_ch, k, k, dtype=dtype, scale=(2.0 / fan_in) ** 0.5)


def _bn(grader, prefix, ch, dtype):
    return {
        f"{prefix}.weight": 1.0 + grader.randn(ch, dtype=dtype, scale=0.2),
        f"{prefix}.bias": grader.randn(ch, dtype=dtype, scale=0.2),
        f"{prefix}.running_mean": grader.randn(ch, dtype=dtype, scale=0.2),
        f"{prefix}.running_var": 0.5 + grader.rand(ch, dtype=dtype),
        f"{prefix}.num_batches_tracked": torch.tensor(7),
    }


def _block_state(grader, in_ch, out_ch, stride, dtype, prefix=""):
    state = {f"{prefix}conv1.weight": _conv(grader, out_ch, in_ch, 3, dtype)}
    state.update(_bn(grader, f"{prefix}bn1", out_ch, dtype))
    state[f"{prefix}conv2.weight"] = _conv(grader, out_ch, out_ch, 3, dtype)
    state.update(_bn(grader, f"{prefix}bn2", out_ch, dtype))
    if stride != 1 or in_ch != out_ch:
        state[f"{prefix}shortcut.0.weight"] = _conv(grader, out_ch, in_ch, 1, dtype)
        state.update(_bn(grader, f"{prefix}shortcut.1", out_ch, dtype))
    return state


def _stage_state(grader, in_ch, out_ch, blocks, stride, dtype, prefix=""):
    state = _block_state(grader, in_ch, out_ch, stride, dtype, f"{prefix}0.")
    for i in range(1, blocks):
        state.update(_block_state(grader, out_ch, out_ch, 1, dtype, f"{prefix}{i}."))
    return state


def _resnet_state(grader, n, num_classes, dtype):
    state = {"conv1.weight": _conv(grader, 16, 3, 3, dtype)}
    state.update(_bn(grader, "bn1", 16, dtype))
    state.update(_stage_state(grader, 16, 16, n, 1, dtype, "layer1."))
    state.update(_stage_state(grader, 16, 32, n, 2, dtype, "layer2."))
    state.update(_stage_state(grader, 32, 64, n, 2, dtype, "layer3."))
    state["fc.weight"] = grader.randn(num_classes, 64, dtype=dtype, scale=0.125)
    state["fc.bias"] = grader.randn(num_classes, dtype=dtype, scale=0.1)
    return state


def _block(grader, in_ch, out_ch, stride, dtype, train, state=None):
    state = state if state is not None else _block_state(grader, in_ch, out_ch, stride, dtype)
    return Make("BasicBlock", (in_ch, out_ch, stride), state_dict=state, dtype=dtype, train=train)


def _mode(train):
    return "train mode" if train else "eval mode"


def _layout(grader, name, args, case):
    grader.compare(Call("@modules.layout", (name, args)), case=case, exact=True)


# (in_ch, out_ch, stride, N, H, W): identity, channel projection, resolution-only projection,
# both; odd sizes, a 1×1 map, batch 1.
BLOCK_CASES = [
    (4, 4, 1, 2, 6, 6),
    (3, 6, 1, 2, 5, 7),
    (4, 4, 2, 2, 8, 8),
    (3, 5, 2, 3, 7, 5),
    (2, 4, 2, 1, 6, 6),
]


# -- BasicBlock -----------------------------------------------------------------------------
@check(points=1, public=True, task="BasicBlock")
def test_block_layout(grader):
    """BasicBlock has conv1, bn1, conv2, bn2 and the right shortcut (identity or conv + BN)"""
    for in_ch, out_ch, stride in [(4, 4, 1), (3, 6, 1), (4, 4, 2), (3, 5, 2)]:
        _layout(grader, "BasicBlock", (in_ch, out_ch, stride),
                f"parameter and buffer names/shapes of BasicBlock({in_ch}, {out_ch}, {stride})")


@check(points=2, public=True, task="BasicBlock")
def test_block_eval(grader):
    """BasicBlock with copied weights and running statistics, eval mode"""
    for in_ch, out_ch, stride, n, h, w in BLOCK_CASES:
        for dtype in DTYPES:
            x = grader.randn(n, in_ch, h, w, dtype=dtype)
            grader.compare(
                Call(_block(grader, in_ch, out_ch, stride, dtype, train=False), (x,)),
                case=f"BasicBlock({in_ch}, {out_ch}, {stride}).eval() on x{list(x.shape)}, "
                f"{_dt(dtype)}",
            )


@check(points=2, public=True, task="BasicBlock")
def test_block_train(grader):
    """BasicBlock with copied weights, training mode (batch statistics)"""
    for in_ch, out_ch, stride, n, h, w in BLOCK_CASES:
        for dtype in DTYPES:
            x = grader.randn(n, in_ch, h, w, dtype=dtype)
            grader.compare(
                Call(_block(grader, in_ch, out_ch, stride, dtype, train=True), (x,)),
                case=f"BasicBlock({in_ch}, {out_ch}, {stride}).train() on x{list(x.shape)}, "
                f"{_dt(dtype)}",
            )


@check(points=1, task="BasicBlock")
def test_block_edge_sizes(grader):
    """BasicBlock on a 1×1 map and a single image (eval mode), stride 1 and 2"""
    for in_ch, out_ch, stride, n, h, w in [(3, 3, 1, 1, 1, 1), (3, 3, 2, 2, 1, 1),
                                           (2, 5, 2, 1, 3, 2), (4, 4, 2, 1, 2, 9)]:
        for dtype in DTYPES:
            x = grader.randn(n, in_ch, h, w, dtype=dtype)
            grader.compare(
                Call(_block(grader, in_ch, out_ch, stride, dtype, train=False), (x,)),
                case=f"BasicBlock({in_ch}, {out_ch}, {stride}).eval() on x{list(x.shape)}",
            )


@check(points=2, task="BasicBlock")
def test_block_gradients(grader):
    """BasicBlock gradients w.r.t. the input and every parameter, train and eval mode"""
    for in_ch, out_ch, stride, n, h, w in [(4, 4, 1, 2, 4, 4), (3, 6, 2, 2, 5, 5),
                                           (4, 4, 2, 3, 4, 4)]:
        for dtype in DTYPES:
            for train in (True, False):
                x = grader.randn(n, in_ch, h, w, dtype=dtype)
                grader.compare(
                    Call(_block(grader, in_ch, out_ch, stride, dtype, train), (x,),
                         grad=(0, "params")),
                    case=f"d/dx and d/dparams of BasicBlock({in_ch}, {out_ch}, {stride}) "
                    f"({_mode(train)}) on x{list(x.shape)}, {_dt(dtype)}",
                )


@check(points=2, task="BasicBlock")
def test_block_zero_gamma(grader):
    """a block whose bn2.weight is zero outputs relu(shortcut(x) + bn2.bias)"""
    for in_ch, out_ch, stride, n, h, w in [(4, 4, 1, 2, 5, 5), (3, 6, 2, 2, 6, 6),
                                           (4, 4, 2, 2, 4, 4)]:
        for train in (False, True):
            for zero_bias in (False, True):
                dtype = torch.float64
                state = _block_state(grader, in_ch, out_ch, stride, dtype)
                state["bn2.weight"] = torch.zeros(out_ch, dtype=dtype)
                if zero_bias:
                    state["bn2.bias"] = torch.zeros(out_ch, dtype=dtype)
                block = _block(grader, in_ch, out_ch, stride, dtype, train, state)
                x = grader.randn(n, in_ch, h, w, dtype=dtype)
                what = "bn2.weight = bn2.bias = 0" if zero_bias else "bn2.weight = 0"
                case = (f"BasicBlock({in_ch}, {out_ch}, {stride}) ({_mode(train)}) with {what} "
                        f"on x{list(x.shape)}")
                out = grader.compare(Call(block, (x,)), case=case).out
                short = grader.learner(Call(block, (x,), method="shortcut"),
                                       case + ", its shortcut alone").out
                expected = torch.relu(short + state["bn2.bias"].view(1, -1, 1, 1))
                grader.require(
                    out.shape == expected.shape
                    and torch.allclose(out, expected, rtol=1e-9, atol=1e-12),
                    f"{case}: the block's output is not relu(shortcut(x) + bn2.bias) computed "
                    "from your own shortcut. With a zero gain the residual branch is the "
                    "constant bn2.bias, so the block must reduce to relu(shortcut(x) + bn2.bias)"
                    " (relu(shortcut(x)) when the bias is zero too).",
                )


# -- make_stage ----------------------------------------------------------------------------
@check(points=1, public=True, task="make_stage")
def test_stage_layout(grader):
    """make_stage builds `blocks` blocks named 0, 1, ...; only the first changes the shape"""
    for in_ch, out_ch, blocks, stride in [(4, 4, 2, 1), (3, 6, 3, 2), (4, 4, 3, 2), (2, 5, 1, 2)]:
        _layout(grader, "make_stage", (in_ch, out_ch, blocks, stride),
                f"parameter and buffer names/shapes of make_stage({in_ch}, {out_ch}, {blocks}, "
                f"{stride})")


@check(points=1, public=True, task="make_stage")
def test_stage_forward(grader):
    """make_stage forward with copied weights, train and eval mode"""
    for in_ch, out_ch, blocks, stride, n, h in [(3, 6, 3, 2, 2, 6), (4, 4, 2, 2, 2, 5),
                                                (3, 3, 2, 1, 1, 4)]:
        for dtype in DTYPES:
            for train in ((False, True) if n > 1 else (False,)):
                state = _stage_state(grader, in_ch, out_ch, blocks, stride, dtype)
                stage = Make("make_stage", (in_ch, out_ch, blocks, stride), state_dict=state,
                             dtype=dtype, train=train)
                x = grader.randn(n, in_ch, h, h, dtype=dtype)
                grader.compare(
                    Call(stage, (x,), grad=(0,)),
                    case=f"make_stage({in_ch}, {out_ch}, {blocks}, {stride}) ({_mode(train)}) "
                    f"on x{list(x.shape)}, {_dt(dtype)}, with d/dx",
                )


# -- ResNet --------------------------------------------------------------------------------
def _resnet(grader, n, num_classes, dtype, train):
    return Make("ResNet", (n,), {"num_classes": num_classes},
                state_dict=_resnet_state(grader, n, num_classes, dtype), dtype=dtype, train=train)


@check(points=1, public=True, task="ResNet")
def test_resnet_layout(grader):
    """ResNet(n, num_classes) has conv1, bn1, layer1-3 (16/32/64 channels) and fc"""
    for n, classes in [(1, 10), (2, 4)]:
        _layout(grader, "ResNet", (n, classes),
                f"parameter and buffer names/shapes of ResNet(n={n}, num_classes={classes})")


@check(points=2, public=True, task="ResNet")
def test_resnet_forward(grader):
    """ResNet with copied weights on 32×32 and 16×16 images, train and eval mode"""
    for n, classes, batch, size in [(1, 10, 2, 32), (2, 4, 2, 16), (3, 10, 2, 8)]:
        for dtype in DTYPES:
            for train in (False, True):
                x = grader.randn(batch, 3, size, size, dtype=dtype)
                grader.compare(
                    Call(_resnet(grader, n, classes, dtype, train), (x,)),
                    case=f"ResNet(n={n}, num_classes={classes}) ({_mode(train)}) on "
                    f"x{list(x.shape)}, {_dt(dtype)}",
                )


@check(points=1, task="ResNet")
def test_resnet_edge_sizes(grader):
    """ResNet on a single image and on small odd sizes (eval mode)"""
    for n, batch, h, w in [(1, 1, 32, 32), (1, 2, 7, 5), (2, 1, 3, 3)]:
        for dtype in DTYPES:
            x = grader.randn(batch, 3, h, w, dtype=dtype)
            grader.compare(
                Call(_resnet(grader, n, 10, dtype, False), (x,)),
                case=f"ResNet(n={n}).eval() on x{list(x.shape)}, {_dt(dtype)}",
            )


@check(points=2, task="ResNet")
def test_resnet_deep_gradients(grader):
    """deep ResNets (20 and 32 layers) keep the gradient at the first layer"""
    for n in (3, 5):
        dtype = torch.float64
        x = grader.randn(2, 3, 16, 16, dtype=dtype)
        probe = Call(_resnet(grader, n, 10, dtype, True), (x,), grad=(0, "params"))
        case = (f"d/dx and d/dparams of ResNet(n={n}) ({6 * n + 2} layers, train mode) on "
                "x[2, 3, 16, 16]")
        got = grader.compare(probe, case=case)
        first = float(got.grads["self.conv1.weight"].norm())
        last = float(got.grads["self.fc.weight"].norm())

        grader.require(
            last / 20 <= first <= 20 * last,
            f"{case}: the gradient at the first convolution has norm {first:.3g}, against "
            f"{last:.3g} at fc. Through the identity shortcuts it should stay of the same order "
            "(within a factor of 20) however deep the network is.",
        )
