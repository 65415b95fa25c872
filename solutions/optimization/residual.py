# %% [markdown]
# # 2.3 Residual networks — exercise
#
# He, Zhang, Ren & Sun (2015) noticed that plain convolutional networks get *worse on their
# own training set* as they are made deeper, although a deeper net could copy the shallower
# one and add identity layers. Their fix: let a stack of layers learn a residual $F(x)$ and add
# the input back through a shortcut, so that doing nothing (the identity) is the easy default:
#
# $$y = \operatorname{ReLU}\big(F(x) + S(x)\big), \qquad
#   F(x) = \operatorname{BN}_2\big(W_2 * \operatorname{ReLU}(\operatorname{BN}_1(W_1 * x))\big),$$
#
# where $W_1, W_2$ are 3×3 convolutions and the shortcut $S$ is the identity when the input and
# output shapes agree, and a 1×1 convolution with batch normalization (a *projection*) when the
# block changes the number of channels or the resolution. Backpropagation through the sum gives
# $\partial L/\partial x = \partial L/\partial y \cdot (I + \partial F/\partial x)$ (up to the
# final ReLU): the gradient always has a direct path to earlier layers.
#
# You will build the basic block, a stage of blocks, and the CIFAR-10 ResNet of the paper's
# Section 4.2 with $6n+2$ layers. `nn.Conv2d`, `nn.BatchNorm2d` and `nn.Linear` are allowed:
# this exercise is about the architecture. The grader copies its own weights into your modules
# with `load_state_dict`, so the submodule names below are part of the exercise.

# %%
import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `BasicBlock`
#
# Two 3×3 convolutions (padding 1, no bias), each followed by batch normalization; the first
# convolution carries the block's stride. Add the shortcut, *then* apply the ReLU:
# `out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`. The shortcut is
# `nn.Identity()` when the output has the input's shape (same channels, stride 1); otherwise it
# is `nn.Sequential(1×1 conv with the block's stride and no bias, BatchNorm2d)`, so that its
# parameters are named `shortcut.0.weight`, `shortcut.1.weight`, `shortcut.1.bias`, ...

# %%
class BasicBlock(nn.Module):
    """The two-layer residual block of ResNet-18/34 and of the CIFAR ResNets.

    Args:
        in_ch: channels of the input.
        out_ch: channels of the output.
        stride: stride of the first 3×3 convolution (and of the projection shortcut); 2 halves
            the height and width.

    Submodules (exactly these names, so that state dicts copy across):
        ``conv1``: ``nn.Conv2d(in_ch, out_ch, 3)`` with the block's stride, padding 1, no bias.
        ``bn1``: ``nn.BatchNorm2d(out_ch)``.
        ``conv2``: ``nn.Conv2d(out_ch, out_ch, 3)``, stride 1, padding 1, no bias.
        ``bn2``: ``nn.BatchNorm2d(out_ch)``.
        ``shortcut``: ``nn.Identity()`` when ``stride == 1`` and ``in_ch == out_ch``, else
            ``nn.Sequential(nn.Conv2d(in_ch, out_ch, 1) with the block's stride and no bias,
            nn.BatchNorm2d(out_ch))``.

    ``forward(x)`` maps (N, in_ch, H, W) to (N, out_ch, H', W') with H' = ⌈H / stride⌉,
    W' = ⌈W / stride⌉; the ReLU comes after the addition. Any float dtype and device (the
    checks cast the block with ``.double()`` for float64), differentiable w.r.t. the input and
    every parameter (the checks back-propagate through it).

    Forbidden: torchvision's ``resnet.BasicBlock`` and ``resnet.ResNet``.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.conv1 = nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_ch),
            )
        else:
            self.shortcut = nn.Identity()
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        h = torch.relu(self.bn1(self.conv1(x)))
        residual = self.bn2(self.conv2(h))
        return torch.relu(residual + self.shortcut(x))
        # END SOLUTION


# %% [markdown]
# ## Task 2 — `make_stage`
#
# A stage is a run of `blocks` basic blocks at one resolution. Only its first block changes the
# shape (from `in_ch` to `out_ch` channels, with the given stride); every later block maps
# `out_ch` channels to `out_ch` channels with stride 1.

# %%
def make_stage(in_ch: int, out_ch: int, blocks: int, stride: int) -> nn.Sequential:
    """A stage of ``blocks`` :class:`BasicBlock` modules.

    Args:
        in_ch: channels entering the stage.
        out_ch: channels of every block's output.
        blocks: number of blocks (at least 1).
        stride: stride of the first block; the others have stride 1.

    Returns:
        ``nn.Sequential`` whose children are named ``"0"``, ``"1"``, ... (so state-dict keys are
        ``0.conv1.weight``, ``1.bn2.running_var``, ...). Like its blocks it works in any float
        dtype (cast with ``.double()``) and is differentiable end to end.
    """
    # BEGIN SOLUTION
    stage = [BasicBlock(in_ch, out_ch, stride)]
    for _ in range(blocks - 1):
        stage.append(BasicBlock(out_ch, out_ch, 1))
    return nn.Sequential(*stage)
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `ResNet`
#
# The CIFAR-10 network of the paper (Section 4.2): a 3×3 convolution to 16 channels with batch
# normalization and a ReLU, three stages of $n$ blocks with 16, 32 and 64 channels and strides
# 1, 2 and 2 (so a 32×32 image gives 32×32, 16×16 and 8×8 feature maps), a global average over
# the remaining height and width, and a linear classifier. That is $6n + 2$ weighted layers:
# $n = 3, 5, 7, 9$ give ResNet-20, 32, 44, 56.

# %%
class ResNet(nn.Module):
    """CIFAR-style ResNet with 6n + 2 layers, for (N, 3, 32, 32) images (any H, W ≥ 1 work).

    Args:
        n: blocks per stage.
        num_classes: size of the output.

    Submodules (exactly these names):
        ``conv1``: ``nn.Conv2d(3, 16, 3)``, stride 1, padding 1, no bias.
        ``bn1``: ``nn.BatchNorm2d(16)``.
        ``layer1``: ``make_stage(16, 16, n, stride=1)``.
        ``layer2``: ``make_stage(16, 32, n, stride=2)``.
        ``layer3``: ``make_stage(32, 64, n, stride=2)``.
        ``fc``: ``nn.Linear(64, num_classes)``.

    ``forward(x)`` maps (N, 3, H, W) to logits (N, num_classes): stem (conv1, bn1, ReLU), the
    three stages, the mean over the spatial positions, then ``fc``. Any float dtype and
    device (the checks cast the model with ``.double()`` for float64), differentiable w.r.t.
    the input and every parameter.

    Forbidden: torchvision's ``resnet.BasicBlock`` and ``resnet.ResNet``.
    """

    def __init__(self, n: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = make_stage(16, 16, n, stride=1)
        self.layer2 = make_stage(16, 32, n, stride=2)
        self.layer3 = make_stage(32, 64, n, stride=2)
        self.fc = nn.Linear(64, num_classes)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        pooled = out.mean(dim=(2, 3))
        return self.fc(pooled)
        # END SOLUTION
