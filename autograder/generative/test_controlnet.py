"""Hidden checks for unit 5.12 `controlnet` (Zhang, Rao & Agrawala, 2023).

``zero_conv`` is checked for what it builds (an ``nn.Conv2d`` with a 1×1 kernel, stride 1, no
padding, a bias, weight and bias zeros and trainable) and through a forward and backward pass
(output zero, input gradient zero, weight and bias gradients not), over channel counts 1 to 8,
batch 1 and odd spatial sizes, float32 and float64.

``ControlledBlock`` takes a block object, which a probe cannot carry, so its checks go through
the grader-owned drivers of ``course/grading/drivers/controlnet.py``. The grader's locked blocks
are a 3×3 convolution, convolution + group norm + SiLU, a residual block x + conv(silu(norm(x)))
and a strided convolution (the output smaller than the input), with channels 1 to 5, batch 1 to
3 and odd spatial sizes, seeded weights, float32 and float64. The drivers never read attribute
names (and, while the learner's class is built, put a correct grader-owned ``zero_conv`` in
place of the learner's, so that a Task 1 mistake costs only Task 1's checks): they sort the
wrapper's parameters into the block's own (by identity), copies of them
(other tensors with equal values) and zero-initialised ones, and report

- the structure: the very block passed in held as a submodule and frozen, the copy separate
  and trainable (also when the block arrives already frozen), the zero parameters trainable;
- the output at initialisation and whether it equals ``block(x)`` exactly (``torch.equal`` in
  the learner's process, on the learner's device);
- a grader-owned SGD run (p ← p − lr·p.grad, lr = 0.1, on the mean squared error against a
  seeded target): per step the loss, how many of the block's parameters got a ``.grad`` (none
  may) and how many parameters of each group changed bitwise. After step 1 only the output
  zero convolution has moved (2 parameters) and the copy has not (its gradient is exactly
  zero behind the zero weight); after step 2 the copy and the input zero convolution have
  moved too; the block's parameters never change. Then the output after training;
- after 0 and 2 SGD steps, the gradients of the output (contracted with a fixed cotangent)
  w.r.t. x and control, which show a detached locked branch and a control that bypasses its
  zero convolution.

The check that ends with an already-frozen block runs that case last, so that freezing before
copying (wrong in every case) is told from a copy that keeps the frozen flags (wrong only
there). No randomness is involved in the unit's API, so no statistical check is needed. The
master was compared, in ``tests/test_oracle_controlnet.py``, with a functional forward written
with ``F.conv2d`` on the copied weights, and with diffusers' ``zero_module`` applied to
convolutions and its ``ControlNetModel``'s zero-initialised blocks.
"""


from course.grading.drivers.controlnet import block_shapes
from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Device, Forbid, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "controlnet"

# Nothing in plain PyTorch builds a zero convolution or a controlled block. diffusers' own
# (``zero_module``, ``ControlNetModel``) would, but resolving them imports diffusers, about ten
# seconds in every grading process; the exercise tells the learner not to import it. Weights
# loaded from elsewhere would skip the exercise.
FORBIDDEN = [
    Forbid(calls=("torch.load", "torch.hub.load", "torch.hub.load_state_dict_from_url")),
]

_INIT = "    nn.init.zeros_(conv.weight)\n    nn.init.zeros_(conv.bias)\n"
_COPY = ("        self.trainable = copy.deepcopy(frozen_block)  # Θ_c ← Θ, copied before freezing\n"
         "        self.trainable.requires_grad_(True)  # also when the block arrived frozen\n")
_LOCK = ("        self.frozen = frozen_block  # the very block passed in, locked: Θ never changes\n"
         "        self.frozen.requires_grad_(False)\n")
_FORWARD = ("        y = self.frozen(x)  # F(x; Θ)\n"
            "        h = self.trainable(x + self.zero_in(control))  # F(x + Z(c; Θ_z1); Θ_c)\n"
            "        return y + self.zero_out(h)\n")

MISTAKES = [
    # -- zero_conv
    Mistake(
        "zero-conv-default-init",
        "Your zero convolution keeps nn.Conv2d's default (random) initialisation. Set its "
        "weight and its bias to zeros (nn.init.zeros_ on both, or .zero_() under no_grad): "
        "that is what makes the controlled block equal the locked one at initialisation.",
        {_INIT: ""},
    ),
    Mistake(
        "zero-conv-bias-left",
        "Your zero convolution zeroes the weight but leaves the bias at nn.Conv2d's random "
        "default: the output is then a constant per channel, not zero. Zero the bias too.",
        {"    nn.init.zeros_(conv.bias)\n": ""},
    ),
    Mistake(
        "zero-conv-no-bias",
        "Your zero convolution has no bias (bias=False). The paper's zero convolution is an "
        "ordinary 1×1 convolution, weight and bias both initialised to zero and both trained: "
        "keep the bias.",
        {"conv = nn.Conv2d(in_ch, out_ch, kernel_size=1)":
         "conv = nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False)",
         "    nn.init.zeros_(conv.bias)\n": ""},
    ),
    Mistake(
        "zero-conv-3x3",
        "Your zero convolution has a 3×3 kernel. The zero convolution is 1×1 (kernel_size=1, "
        "no padding): it mixes channels at each pixel and never looks at neighbours.",
        {"conv = nn.Conv2d(in_ch, out_ch, kernel_size=1)":
         "conv = nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)"},
    ),
    Mistake(
        "zero-conv-frozen",
        "Your zero convolution's parameters do not require grad: zeros are only where they "
        "start. Leave weight and bias trainable (requires_grad True), or the control branch "
        "can never switch on.",
        {"    nn.init.zeros_(conv.bias)\n":
         "    nn.init.zeros_(conv.bias)\n    conv.requires_grad_(False)\n"},
    ),
    # -- ControlledBlock: what is frozen, what is copied
    Mistake(
        "frozen-not-frozen",
        "The block you were given is not frozen: its parameters still require grad, receive a "
        ".grad and move when the wrapper is trained. Call requires_grad_(False) on the block "
        "passed in (the locked F(·; Θ)); only the copy and the zero convolutions train.",
        {"        self.frozen.requires_grad_(False)\n": ""},
    ),
    Mistake(
        "copy-shares-parameters",
        "Your 'copy' is the block itself (no copy.deepcopy): it shares its parameters with the "
        "locked block, so the wrapper holds no separate trainable copy, and freezing one "
        "freezes (or unfreezing one unfreezes) the other. Make the copy with "
        "copy.deepcopy(frozen_block).",
        {"self.trainable = copy.deepcopy(frozen_block)": "self.trainable = frozen_block"},
    ),
    Mistake(
        "copy-keeps-frozen-flags",
        "When the block you are given is already frozen, your copy is frozen too: "
        "copy.deepcopy copies requires_grad. After copying, set requires_grad_(True) on every "
        "parameter of the copy (freezing the whole base model, then wrapping its blocks, is "
        "the usual workflow).",
        {"        self.trainable.requires_grad_(True)  # also when the block arrived frozen\n":
         ""},
    ),
    Mistake(
        "copy-frozen-too",
        "Your trainable copy does not train: it is made after the block was frozen, and "
        "copy.deepcopy copies requires_grad = False. Copy first (or set requires_grad_(True) "
        "on the copy afterwards), then freeze the block passed in.",
        {_COPY + _LOCK: _LOCK + "        self.trainable = copy.deepcopy(frozen_block)\n"},
    ),
    Mistake(
        "frozen-is-a-copy",
        "Your wrapper runs a copy of the block it was given as the locked branch, not the block "
        "itself. Keep the block passed in (the same object, registered as a submodule) and "
        "freeze it in place; only the trainable branch is a copy.",
        {"self.frozen = frozen_block  #": "self.frozen = copy.deepcopy(frozen_block)  #"},
    ),
    # -- ControlledBlock: the forward pass
    Mistake(
        "no-output-zero-conv",
        "Your output adds the copy's output straight to the locked block's, without the second "
        "zero convolution: at initialisation the output is then frozen(x) + copy(x), not "
        "frozen(x). Pass the copy's output through its own zero convolution before adding it.",
        {"        return y + self.zero_out(h)\n": "        return y + h\n"},
    ),
    Mistake(
        "frozen-output-not-added",
        "Your output is the control branch alone, zero_out(copy(x + zero_in(control))): the "
        "locked block's output frozen_block(x) is missing (the output is zero at "
        "initialisation). Add frozen_block(x) to it.",
        {"        return y + self.zero_out(h)\n": "        return self.zero_out(h)\n"},
    ),
    Mistake(
        "control-added-to-output",
        "Your control enters at the output (frozen(x) + zero_out(copy(x)) + zero_in(control)) "
        "instead of at the copy's input. The control goes through its zero convolution and is "
        "added to the copy's input: zero_out(copy(x + zero_in(control))).",
        {"        h = self.trainable(x + self.zero_in(control))  # F(x + Z(c; Θ_z1); Θ_c)\n"
         "        return y + self.zero_out(h)\n":
         "        h = self.trainable(x)\n"
         "        return y + self.zero_out(h) + self.zero_in(control)\n"},
    ),
    Mistake(
        "control-without-zero-conv",
        "Your copy reads x + control, the raw control map, not x + zero_in(control): the first "
        "zero convolution is skipped. The control is passed through its own zero convolution "
        "so that, at initialisation, the copy sees exactly the block's input x.",
        {"self.trainable(x + self.zero_in(control))": "self.trainable(x + control)"},
    ),
    Mistake(
        "control-into-frozen",
        "Your control reaches the locked block (frozen(x + zero_in(control))) and the copy "
        "reads x alone: the branches are swapped. The locked block sees x alone; the copy "
        "reads x + zero_in(control).",
        {_FORWARD: "        y = self.frozen(x + self.zero_in(control))\n"
         "        h = self.trainable(x)\n        return y + self.zero_out(h)\n"},
    ),
    Mistake(
        "one-zero-conv-for-both",
        "Your output goes through the control's zero convolution a second time "
        "(zero_in used for the copy's output): the two zero convolutions are separate modules "
        "with their own weights, one on the control, one on the copy's output.",
        {"        return y + self.zero_out(h)\n": "        return y + self.zero_in(h)\n"},
    ),
    Mistake(
        "frozen-branch-detached",
        "Your locked block's output is detached (or computed under torch.no_grad()): no "
        "gradient reaches x through it. Freezing means its parameters get no gradient, not "
        "that nothing flows through it: keep frozen_block(x) in the graph (a block stacked "
        "below needs the gradient).",
        {"        y = self.frozen(x)  # F(x; Θ)\n": "        y = self.frozen(x).detach()\n"},
    ),
]


# (kind of locked block, channels, x's shape (B, C, H, W))
BLOCKS = [
    ("conv", 3, (2, 3, 5, 7)),
    ("conv-norm-act", 4, (1, 4, 6, 5)),
    ("residual", 5, (3, 5, 4, 3)),
    ("strided", 2, (2, 2, 7, 9)),
    ("conv", 1, (1, 1, 3, 3)),
]


def _weights(grader, kind, channels, dtype):
    """Seeded weights for the grader's block (every parameter, norm gains included, scale 0.5:
    nothing is zero, so copies and zero-initialised parameters are told apart by value)."""
    return tuple(grader.randn(*shape, dtype=dtype, scale=0.5)
                 for shape in block_shapes(kind, channels))


def _out_shape(kind, shape):
    b, c, h, w = shape
    if kind == "strided":
        return (b, c, (h - 1) // 2 + 1, (w - 1) // 2 + 1)
    return shape


def _inputs(grader, kind, channels, shape, dtype):
    weights = _weights(grader, kind, channels, dtype)
    x = grader.randn(*shape, dtype=dtype)
    control = grader.randn(*shape, dtype=dtype, scale=2.0)
    target = grader.randn(*_out_shape(kind, shape), dtype=dtype)
    return weights, x, control, target


def _case(kind, channels, shape, dtype, what=""):
    return (f"{what}ControlledBlock({kind} block, channels={channels}) on x, control "
            f"{list(shape)}, {_dt(dtype)}")


# -- Task 1: zero_conv -----------------------------------------------------------------------


@check(points=1, public=True, task="zero_conv")
def test_zero_conv_is_zero(grader):
    """zero_conv builds a trainable 1×1 nn.Conv2d whose weight and bias are zeros"""
    for in_ch, out_ch in [(3, 5), (1, 1), (8, 4), (4, 4)]:
        grader.compare(Call("@controlnet.zero_conv_layout", (in_ch, out_ch, Device())), exact=True,
                       case=f"zero_conv({in_ch}, {out_ch}): type, kernel, weight, bias, flags")


@check(points=1, task="zero_conv")
def test_zero_conv_forward_and_gradients(grader):
    """zero_conv outputs zeros, passes no gradient to its input, and trains its weight and bias"""
    for in_ch, out_ch, shape in [(3, 5, (2, 3, 5, 7)), (1, 2, (1, 1, 3, 3)),
                                 (4, 4, (3, 4, 6, 1))]:
        for dtype in DTYPES:
            x = grader.randn(*shape, dtype=dtype)
            grader.compare(Call("@controlnet.zero_conv_gradients", (in_ch, out_ch, x)),
                           case=f"zero_conv({in_ch}, {out_ch})(x {list(shape)}) and its "
                           f"gradients, {_dt(dtype)}")


# -- Task 2: ControlledBlock ------------------------------------------------------------------


@check(points=2, public=True, task="ControlledBlock")
def test_initial_output_is_frozen(grader):
    """at initialisation the output equals frozen_block(x) exactly, for any control"""
    for kind, channels, shape in BLOCKS:
        for dtype in DTYPES:
            weights, x, control, _ = _inputs(grader, kind, channels, shape, dtype)
            grader.compare(Call("@controlnet.initial", (kind, weights, channels, x, control)),
                           case=_case(kind, channels, shape, dtype, "fresh "))


@check(points=1, public=True, task="ControlledBlock")
def test_structure(grader):
    """the block passed in is held and frozen, the copy is separate and trainable, two zero convs"""
    cases = [("conv", 3, False), ("conv-norm-act", 4, False), ("residual", 1, False),
             ("conv-norm-act", 2, True)]  # an already-frozen block last (see the docstring)
    for kind, channels, prefrozen in cases:
        for dtype in DTYPES:
            weights = _weights(grader, kind, channels, dtype)
            grader.compare(Call("@controlnet.structure", (kind, weights, channels, prefrozen)),
                           exact=True,
                           case=f"parameters of ControlledBlock({kind} block, "
                           f"channels={channels}){', the block already frozen' * prefrozen}, "
                           f"{_dt(dtype)}")


@check(points=2, task="ControlledBlock")
def test_first_step(grader):
    """after one SGD step only the output zero conv has moved; the block is untouched, no .grad"""
    for kind, channels, shape in BLOCKS[:4]:
        for dtype in DTYPES:
            weights, x, control, target = _inputs(grader, kind, channels, shape, dtype)
            grader.compare(Call("@controlnet.sgd", (kind, weights, channels, x, control,
                                                    target, 0.1, 1)),
                           case=_case(kind, channels, shape, dtype, "one SGD step of "))


@check(points=2, task="ControlledBlock")
def test_training(grader):
    """over four SGD steps the copy and both zero convs move, the locked block never does"""
    cases = [(kind, channels, shape, False) for kind, channels, shape in BLOCKS]
    cases.append(("residual", 3, (2, 3, 5, 4), True))  # already frozen: last
    for kind, channels, shape, prefrozen in cases:
        for dtype in DTYPES:
            weights, x, control, target = _inputs(grader, kind, channels, shape, dtype)
            grader.compare(
                Call("@controlnet.sgd", (kind, weights, channels, x, control, target, 0.1, 4,
                                         prefrozen)),
                case=_case(kind, channels, shape, dtype,
                           "four SGD steps" + (" (block already frozen) of " if prefrozen
                                                else " of ")))


@check(points=1, task="ControlledBlock")
def test_gradients(grader):
    """the output is differentiable w.r.t. x (through both branches) and control"""
    for kind, channels, shape in BLOCKS[:4]:
        for dtype in DTYPES:
            for steps in (0, 2):
                weights, x, control, target = _inputs(grader, kind, channels, shape, dtype)
                grader.compare(
                    Call("@controlnet.gradients", (kind, weights, channels, x, control,
                                                   target, 0.1, steps)),
                    case=_case(kind, channels, shape, dtype,
                               f"gradients w.r.t. x and control after {steps} SGD steps of "))
