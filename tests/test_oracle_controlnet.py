"""Unit 5.12 `controlnet`: the master against independent implementations.

- A functional ControlNet block written with ``F.conv2d`` / ``F.group_norm`` on explicit weight
  lists (the locked weights, the copy's and the two zero convolutions'), for the grader's four
  kinds of block: with every parameter set to random non-zero values, the master's forward
  and its gradients (w.r.t. x, control and every trainable parameter) equal the functional
  one's; trained side by side with ``torch.optim.SGD`` (the functional weights as plain leaf
  tensors), the two give the same parameters after every step, and the functional side shows
  the same step-1 rule (only the output zero convolution moves) on its own.
- diffusers (test-only, built from configs, nothing downloaded): ``zero_conv`` builds what
  diffusers' ``zero_module(nn.Conv2d(in, out, 1))`` builds (same module type, kernel, stride,
  padding, bias, zero values, trainable), and the same layout as every zero convolution of a
  tiny ``ControlNetModel.from_unet`` (``controlnet_down_blocks``, ``controlnet_mid_block``),
  whose residuals leave the UNet's output unchanged at initialisation, the property the master
  has per block; wrapped around diffusers' ``ResnetBlock2D``, the master's block equals it
  exactly at initialisation.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course import catalogue
from course.grading.checks import reference
from course.grading.drivers.controlnet import KINDS, make_block

NS = reference(catalogue.find("controlnet")).namespace
zero_conv, ControlledBlock = NS["zero_conv"], NS["ControlledBlock"]


def _groups(c):
    return 2 if c % 2 == 0 else 1


def functional_block(kind, p, h, channels):
    """The grader's blocks, written out on a list of weights (parameters() order)."""
    if kind == "conv":
        return F.conv2d(h, p[0], p[1], padding=1)
    if kind == "conv-norm-act":
        return F.silu(F.group_norm(F.conv2d(h, p[0], p[1], padding=1), _groups(channels),
                                   p[2], p[3]))
    if kind == "residual":
        return h + F.conv2d(F.silu(F.group_norm(h, _groups(channels), p[0], p[1])), p[2],
                            p[3], padding=1)
    if kind == "strided":
        return F.conv2d(h, p[0], p[1], stride=2, padding=1)
    raise ValueError(kind)


def functional_controlnet(kind, locked, copied, z_in, z_out, x, control, channels,
                          control_at_output=False):
    """y = F(x; Θ) + Z(F(x + Z(c; Θ_z1); Θ_c); Θ_z2), each Z a 1×1 F.conv2d."""
    if control_at_output:  # a wrong variant: shows that the comparison can fail
        return (functional_block(kind, locked, x, channels)
                + F.conv2d(functional_block(kind, copied, x, channels), *z_out)
                + F.conv2d(control, *z_in))
    h = functional_block(kind, copied, x + F.conv2d(control, *z_in), channels)
    return functional_block(kind, locked, x, channels) + F.conv2d(h, *z_out)


def _setup(kind, channels, shape, seed, dtype=torch.float64, randomise=True):
    g = torch.Generator().manual_seed(seed)
    block = make_block(kind, channels).to(dtype)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) * 0.5)
    locked = [p.detach().clone() for p in block.parameters()]
    layer = ControlledBlock(block, channels).to(dtype)
    if randomise:  # move every trainable parameter off its initial value
        with torch.no_grad():
            for p in layer.parameters():
                if p.requires_grad:
                    p.add_(torch.randn(p.shape, generator=g, dtype=dtype) * 0.3)
    x = torch.randn(shape, generator=g, dtype=dtype)
    control = torch.randn(shape, generator=g, dtype=dtype) * 2
    return block, locked, layer, x, control, g


def _functional_weights(layer):
    copied = [p.detach().clone().requires_grad_(True) for p in layer.trainable.parameters()]
    z_in = [layer.zero_in.weight.detach().clone().requires_grad_(True),
            layer.zero_in.bias.detach().clone().requires_grad_(True)]
    z_out = [layer.zero_out.weight.detach().clone().requires_grad_(True),
             layer.zero_out.bias.detach().clone().requires_grad_(True)]
    return copied, z_in, z_out


CASES = [("conv", 3, (2, 3, 5, 7)), ("conv-norm-act", 4, (1, 4, 6, 5)),
         ("residual", 5, (3, 5, 4, 3)), ("strided", 2, (2, 2, 7, 9))]


def test_cases_cover_every_kind():
    assert {kind for kind, _, _ in CASES} == set(KINDS)


@pytest.mark.parametrize(("kind", "channels", "shape"), CASES)
def test_forward_and_gradients_match_functional(kind, channels, shape):
    _, locked, layer, x, control, _ = _setup(kind, channels, shape, seed=channels)
    copied, z_in, z_out = _functional_weights(layer)
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    cs = [control.clone().requires_grad_(True) for _ in range(2)]
    ours = layer(xs[0], cs[0])
    theirs = functional_controlnet(kind, locked, copied, z_in, z_out, xs[1], cs[1], channels)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    cot = torch.randn(ours.shape, dtype=ours.dtype, generator=torch.Generator().manual_seed(1))
    trainable = [p for p in layer.parameters() if p.requires_grad]
    g_ours = torch.autograd.grad((ours * cot).sum(), [xs[0], cs[0], *trainable])
    mine = [*layer.trainable.parameters(), layer.zero_in.weight, layer.zero_in.bias,
            layer.zero_out.weight, layer.zero_out.bias]
    order = [next(i for i, p in enumerate(trainable) if p is q) for q in mine]
    g_theirs = torch.autograd.grad((theirs * cot).sum(), [xs[1], cs[1], *copied, *z_in, *z_out])
    torch.testing.assert_close(g_ours[0], g_theirs[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g_ours[1], g_theirs[1], rtol=1e-12, atol=1e-12)
    for i, j in enumerate(order):
        torch.testing.assert_close(g_ours[2 + j], g_theirs[2 + i], rtol=1e-12, atol=1e-12)
    # the locked block's weights are constants on both sides
    assert all(p.grad is None and not p.requires_grad for p in layer.frozen.parameters())


def test_the_comparison_can_fail():
    kind, channels, shape = CASES[0]
    _, locked, layer, x, control, _ = _setup(kind, channels, shape, seed=7)
    copied, z_in, z_out = _functional_weights(layer)
    wrong = functional_controlnet(kind, locked, copied, z_in, z_out, x, control, channels,
                                  control_at_output=True)
    assert (layer(x, control) - wrong).abs().max() > 0.1


@pytest.mark.parametrize(("kind", "channels", "shape"), CASES)
def test_sgd_trajectory_matches_functional(kind, channels, shape):
    block, locked, layer, x, control, g = _setup(kind, channels, shape, seed=11 + channels,
                                                randomise=False)
    target = torch.randn(layer(x, control).shape, generator=g, dtype=x.dtype)
    copied, z_in, z_out = _functional_weights(layer)
    start = [t.detach().clone() for t in (*copied, *z_in, *z_out)]
    opt_ours = torch.optim.SGD(layer.parameters(), lr=0.1)
    opt_theirs = torch.optim.SGD([*copied, *z_in, *z_out], lr=0.1)
    for step in range(1, 6):
        for opt, out in ((opt_ours, lambda: layer(x, control)),
                         (opt_theirs, lambda: functional_controlnet(
                             kind, locked, copied, z_in, z_out, x, control, channels))):
            opt.zero_grad()
            ((out() - target) ** 2).mean().backward()
            opt.step()
        mine = [*layer.trainable.parameters(), layer.zero_in.weight, layer.zero_in.bias,
                layer.zero_out.weight, layer.zero_out.bias]
        for a, b in zip(mine, (*copied, *z_in, *z_out), strict=True):
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-10, atol=1e-12)
        moved = [not torch.equal(b.detach(), s) for b, s in zip((*copied, *z_in, *z_out), start)]
        n = len(copied)
        if step == 1:  # only the output zero convolution (weight, bias) has moved
            assert moved == [False] * (n + 2) + [True, True]
        else:
            assert all(moved)
        for p, w in zip(block.parameters(), locked, strict=True):
            assert torch.equal(p.detach(), w) and p.grad is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("kind", "channels", "shape"), CASES)
def test_initial_output_is_exactly_the_block(kind, channels, shape, dtype):
    block, _, layer, x, control, _ = _setup(kind, channels, shape, seed=3, dtype=dtype,
                                            randomise=False)
    assert layer.frozen is block
    assert torch.equal(layer(x, control), block(x))


# -- diffusers -------------------------------------------------------------------------------


def test_zero_conv_is_diffusers_zero_module():
    pytest.importorskip("diffusers")
    from diffusers.models.controlnets.controlnet import zero_module

    for in_ch, out_ch in [(3, 5), (1, 1), (16, 16)]:
        ours, theirs = zero_conv(in_ch, out_ch), zero_module(nn.Conv2d(in_ch, out_ch, 1))
        assert type(ours) is type(theirs)
        for attr in ("kernel_size", "stride", "padding", "dilation", "groups"):
            assert getattr(ours, attr) == getattr(theirs, attr)
        a, b = ours.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys() == {"weight", "bias"}
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert all(p.requires_grad for p in ours.parameters())
        x = torch.randn(2, in_ch, 5, 3)
        assert torch.equal(ours(x), theirs(x))


def _tiny_unet_and_controlnet():
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16),
        layers_per_block=1, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=8,
        norm_num_groups=4, attention_head_dim=2)
    return unet, ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 8))


def test_zero_convs_have_the_layout_of_diffusers_controlnet():
    pytest.importorskip("diffusers")
    unet, net = _tiny_unet_and_controlnet()
    zero_convs = [*net.controlnet_down_blocks, net.controlnet_mid_block]
    for theirs in zero_convs:
        ours = zero_conv(theirs.in_channels, theirs.out_channels)
        assert type(ours) is type(theirs) and ours.kernel_size == theirs.kernel_size == (1, 1)
        a, b = ours.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
    # diffusers' ControlNet starts as a copy (separate tensors, equal values) and its zero
    # residuals leave the UNet's output unchanged, as the master's block leaves its block's
    assert torch.equal(net.conv_in.weight, unet.conv_in.weight)
    assert net.conv_in.weight is not unet.conv_in.weight
    g = torch.Generator().manual_seed(0)
    x, e = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 5, 8, generator=g)
    t, cond = torch.tensor([3, 500]), torch.randn(2, 3, 16, 16, generator=g)
    with torch.no_grad():
        down, mid = net(x, t, e, controlnet_cond=cond, return_dict=False)
        plain = unet(x, t, e).sample
        steered = unet(x, t, e, down_block_additional_residuals=down,
                       mid_block_additional_residual=mid).sample
    assert torch.equal(plain, steered)


class _Resnet(nn.Module):
    """diffusers' ResnetBlock2D without a time embedding, as a one-argument block."""

    def __init__(self, channels):
        super().__init__()
        from diffusers.models.resnet import ResnetBlock2D

        self.inner = ResnetBlock2D(in_channels=channels, temb_channels=None, groups=2)

    def forward(self, x):
        return self.inner(x, None)


def test_controlled_diffusers_resnet_block_starts_as_the_block():
    pytest.importorskip("diffusers")
    torch.manual_seed(0)
    block = _Resnet(4)
    before = copy.deepcopy(block.state_dict())
    layer = ControlledBlock(block, 4)
    x, control = torch.randn(2, 4, 6, 5), torch.randn(2, 4, 6, 5)
    assert torch.equal(layer(x, control), block(x))
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (layer(x, control) ** 2).mean().backward()
        opt.step()
    assert all(torch.equal(v, block.state_dict()[k]) for k, v in before.items())
    assert not torch.equal(layer(x, control), block(x))
