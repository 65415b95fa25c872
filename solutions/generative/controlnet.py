# %% [markdown]
# # 5.12 ControlNet — exercise
#
# Zhang, Rao & Agrawala (2023) add a new kind of condition (edges, depth, pose, a sketch) to a
# large pretrained text-to-image diffusion model without touching it. Each block $F(\cdot;
# \Theta)$ of the pretrained network is **locked** (its parameters $\Theta$ never change) and
# gets a **trainable copy** $F(\cdot; \Theta_c)$, initialised with the same weights. The copy
# reads the block's input plus the control map $c$, and its output is added back to the locked
# block's through a $1\times 1$ convolution whose weight and bias start at zero, a *zero
# convolution* $\mathcal Z$:
#
# $$y_c = F(x; \Theta) + \mathcal Z\big(F(x + \mathcal Z(c; \Theta_{z1}); \Theta_c);
#   \Theta_{z2}\big).$$
#
# At initialisation both zero convolutions output zeros, so $y_c = F(x; \Theta)$ **exactly**:
# the controlled network is the pretrained one, bit for bit, and training starts from it rather
# than from a perturbed copy. Gradients still flow: a zero convolution's weight gradient is its
# input times the upstream gradient, not zero, so it leaves zero after the first step.
#
# You write the zero convolution and the controlled block. Everything is 2-D images in
# PyTorch's layout $(B, C, H, W)$. No library call does this for you in plain PyTorch
# (diffusers' `zero_module` zeroes a module's parameters; do not import diffusers).

# %%
import copy

import torch  # noqa: F401 (yours to use)
from torch import nn

# %% [markdown]
# ## Task 1 — `zero_conv`
#
# A $1\times 1$ convolution from `in_ch` to `out_ch` channels, $\mathcal Z(h)_{b,o,i,j} =
# \mathrm{bias}_o + \sum_k W_{o,k}\, h_{b,k,i,j}$, with $W = 0$ and $\mathrm{bias} = 0$. Its
# output is zero whatever the input, but its gradients are not: $\partial L/\partial W_{o,k} =
# \sum_{b,i,j} g_{b,o,i,j}\, h_{b,k,i,j}$ and $\partial L/\partial \mathrm{bias}_o =
# \sum_{b,i,j} g_{b,o,i,j}$ for an upstream gradient $g$, while the gradient it passes back to
# its input, $W^\top g$, is zero as long as $W$ is.


# %%
def zero_conv(in_ch, out_ch):
    """A 1×1 convolution whose weight and bias are all zeros (the paper's zero convolution).

    Args:
        in_ch: int ≥ 1, the number of input channels.
        out_ch: int ≥ 1, the number of output channels.

    Returns:
        an ``nn.Conv2d(in_ch, out_ch, kernel_size=1)`` (stride 1, no padding, with a bias),
        built like any module in the default dtype (float32) on the CPU, whose ``weight``
        (out_ch, in_ch, 1, 1) and ``bias`` (out_ch,) are zeros and stay trainable
        (``requires_grad`` True: they are ordinary parameters that only *start* at zero).

    Applied to a (B, in_ch, H, W) tensor it returns zeros of shape (B, out_ch, H, W) in the
    input's dtype and on its device (the checks move it with ``.to(dtype)`` / ``.to(device)``
    as any module); the output is differentiable w.r.t. the weight, the bias and the input
    (the checks back-propagate: the weight's and bias's gradients are not zero, the input's is).
    """
    # BEGIN SOLUTION
    conv = nn.Conv2d(in_ch, out_ch, kernel_size=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `ControlledBlock`
#
# Wrap a pretrained block $F(\cdot; \Theta)$ that maps (B, C, H, W) to (B, C, H', W') (the
# same number of channels C = `channels` in and out; the spatial size may change):
#
# - keep the block itself (the same object, so that the model holding it still runs it) and
#   lock it: every parameter gets `requires_grad = False`;
# - make its trainable copy $F(\cdot; \Theta_c)$ with `copy.deepcopy` when the block is wrapped
#   (separate tensors with the same values), every parameter of the copy trainable, *even if
#   the block passed in was already frozen* (freeze the whole base model, then wrap its blocks:
#   the usual workflow);
# - two zero convolutions, $\mathcal Z_1$ on the control (C to C channels) and $\mathcal Z_2$
#   on the copy's output (C to C channels);
# - `forward(x, control)` $= F(x; \Theta) + \mathcal Z_2\big(F(x + \mathcal Z_1(c); \Theta_c)\big)$.
#
# What one gradient step does follows from the zero weights. At initialisation the loss's
# gradient reaches $\mathcal Z_2$'s weight (the copy's output times the upstream gradient) and
# its bias, but everything upstream of $\mathcal Z_2$ (the copy and $\mathcal Z_1$) receives
# $W_2^\top g = 0$: **after the first step only $\mathcal Z_2$ has moved; from the second step
# on, with $W_2 \neq 0$, the copy and $\mathcal Z_1$ move too.** The locked block never
# receives a `.grad` and stays bitwise unchanged, however long you train.


# %%
class ControlledBlock(nn.Module):
    """A locked block plus a trainable copy fed through zero convolutions (ControlNet).

    ``ControlledBlock(frozen_block, channels)``:

    - ``frozen_block``: an ``nn.Module`` mapping (B, C, H, W) to (B, C, H', W') with
      C = ``channels``; its parameters may or may not already have ``requires_grad`` False.
    - ``channels``: int, C.

    At construction (in this order of effect; names are yours, the checks do not read them):

    - the block passed in is kept *as the same object*, registered as a submodule (an
      attribute, not a copy of it), and frozen in place: ``requires_grad_(False)`` on every
      one of its parameters;
    - its trainable copy is made with ``copy.deepcopy(frozen_block)``: new parameter tensors
      with the same values, registered as a submodule, every one of them with
      ``requires_grad`` True, also when the block passed in arrived frozen (a deepcopy copies
      the flags, so set them after copying);
    - two zero convolutions ``zero_conv(channels, channels)`` (Task 1), one for the control
      and one for the copy's output. The module holds no other parameter. (While your class
      is built, the checks of this task put a correct ``zero_conv`` of the grader's in place
      of yours, so that a mistake in Task 1 costs only Task 1's checks: call ``zero_conv``.)

    ``forward(x, control)``: x and control both (B, C, H, W), same dtype and device; returns
    ``frozen_block(x) + zero_out(copy(x + zero_in(control)))``, (B, C, H', W') in x's dtype
    and on its device. The control enters through its zero convolution at the *input* of the
    copy, never added to the output, and the locked block sees x alone.

    Requirements the checks enforce:

    - at initialisation the output equals ``frozen_block(x)`` exactly (``torch.equal``, on
      the same device), for any x and control: zeros are added to it;
    - the output is differentiable w.r.t. x (through both branches: do not detach the locked
      block's output or run it under ``torch.no_grad()``; a block stacked above may need the
      gradient) and w.r.t. control, and w.r.t. the parameters of the copy and of the zero
      convolutions; the locked block's parameters get no ``.grad``;
    - plain SGD on ``self.parameters()`` (the grader's loss, a mean squared error against a
      target) moves only the second zero convolution at the first step and the copy and the
      first zero convolution as well from the second step on (see above), and leaves the
      locked block's parameters bitwise unchanged;
    - dtype and device: the checks build the locked block in float32 or float64 on their
      device, wrap it, then call ``.to(dtype=..., device=...)`` on your ControlledBlock
      (which must be an ``nn.Module``), so zero convolutions built in float32 are fine.
    """

    def __init__(self, frozen_block, channels) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.trainable = copy.deepcopy(frozen_block)  # Θ_c ← Θ, copied before freezing
        self.trainable.requires_grad_(True)  # also when the block arrived frozen
        self.frozen = frozen_block  # the very block passed in, locked: Θ never changes
        self.frozen.requires_grad_(False)
        self.zero_in = zero_conv(channels, channels)  # Z(·; Θ_z1) on the control
        self.zero_out = zero_conv(channels, channels)  # Z(·; Θ_z2) on the copy's output
        # END SOLUTION

    def forward(self, x, control):
        # BEGIN SOLUTION
        y = self.frozen(x)  # F(x; Θ)
        h = self.trainable(x + self.zero_in(control))  # F(x + Z(c; Θ_z1); Θ_c)
        return y + self.zero_out(h)
        # END SOLUTION
