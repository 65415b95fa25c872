"""Drivers for unit 5.12 `controlnet`.

``ControlledBlock`` takes a block object (the locked ``nn.Module``), which a probe cannot carry,
so its checks go through the drivers here: the driver builds one of the grader's blocks
(:func:`make_block`: a convolution, convolution + group norm + SiLU, a residual block, a
strided convolution) holding the weights the check drew, on the learner's device in the
weights' dtype, wraps it in the learner's ``ControlledBlock(block, channels)``, moves the result
with ``.to(dtype, device)``, and reports what it observes without reading attribute names.
While the learner's class is built, a correct grader-owned ``zero_conv`` stands in for the
learner's (in the namespace and in the class's globals), so that a mistake in Task 1 costs only
Task 1's checks. What the drivers report:

- the parameters of the wrapper fall in three groups, told apart by identity and value, not by
  name: the locked block's (the very tensors of the grader's block), the copy's (other tensors
  equal to one of the block's, as ``copy.deepcopy`` makes them) and the zero-initialised ones
  (the zero convolutions); anything else is reported as such;
- outputs (and whether the output at initialisation equals ``block(x)`` exactly), flags, the
  losses and per-group moves of a few steps of plain SGD on the grader's loss, and gradients of
  the output contracted with a fixed cotangent.

Drivers run where learner code runs and return plain data, never verdicts.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course.grading.drivers.modules import StandIn
from course.grading.probes import ProbeError, cotangents, lookup

KINDS = ("conv", "conv-norm-act", "residual", "strided")


class _Residual(nn.Module):
    """x + conv(silu(norm(x))), the shape of a diffusion U-Net's residual block (no time)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(F.silu(self.norm(x)))


def _groups(channels: int) -> int:
    return 2 if channels % 2 == 0 else 1


def make_block(kind: str, channels: int) -> nn.Module:
    """One of the grader's blocks, C = ``channels`` in and out, default-initialised."""
    c = channels
    if kind == "conv":
        return nn.Conv2d(c, c, 3, padding=1)
    if kind == "conv-norm-act":
        return nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.GroupNorm(_groups(c), c),
                             nn.SiLU())
    if kind == "residual":
        return _Residual(c)
    if kind == "strided":
        return nn.Conv2d(c, c, 3, stride=2, padding=1)
    raise ValueError(f"unknown block kind {kind!r}")


def block_shapes(kind: str, channels: int) -> list[tuple[int, ...]]:
    """The shapes of the block's parameters, in ``parameters()`` order (for drawing weights)."""
    return [tuple(p.shape) for p in make_block(kind, channels).parameters()]


def _block(kind: str, channels: int, weights: tuple, frozen: bool = False) -> nn.Module:
    """The grader's block holding ``weights`` (on their device, in their dtype)."""
    w0 = weights[0]
    block = make_block(kind, channels).to(device=w0.device, dtype=w0.dtype)
    with torch.no_grad():
        for p, w in zip(block.parameters(), weights, strict=True):
            p.copy_(w)
    if frozen:
        block.requires_grad_(False)
    return block


def _grader_zero_conv(in_ch: int, out_ch: int) -> nn.Conv2d:
    """The grader's zero convolution, put in place of the learner's while ``ControlledBlock``
    is built, so that a mistake in Task 1 costs only Task 1's checks."""
    conv = nn.Conv2d(in_ch, out_ch, kernel_size=1)
    for p in conv.parameters():
        nn.init.zeros_(p)
    return conv


def _wrap(ns: dict, block: nn.Module, channels: int, like: torch.Tensor) -> nn.Module:
    cls = lookup(ns, "ControlledBlock")
    with StandIn(ns, cls, "zero_conv", _grader_zero_conv):
        layer = cls(block, channels)
    if not isinstance(layer, nn.Module):
        raise ProbeError("ControlledBlock(frozen_block, channels) should build a "
                         "torch.nn.Module")
    return layer.to(device=like.device, dtype=like.dtype)


class _Groups:
    """The wrapper's parameters sorted by identity and value (see the module docstring)."""

    def __init__(self, layer: nn.Module, block: nn.Module) -> None:
        self.locked: list[torch.Tensor] = list(block.parameters())
        locked_ids = {id(p) for p in self.locked}
        self.copy: list[torch.Tensor] = []
        self.zero: list[torch.Tensor] = []
        self.other: list[torch.Tensor] = []
        for p in layer.parameters():
            if id(p) in locked_ids:
                continue
            d = torch.Tensor.detach(p)
            if any(tuple(d.shape) == tuple(q.shape) and torch.equal(d, q.detach())
                   for q in self.locked):
                self.copy.append(p)
            elif bool((d == 0).all()):
                self.zero.append(p)
            else:
                self.other.append(p)
        self.held = {id(p) for p in layer.parameters()}

    def snapshot(self) -> dict[str, list[torch.Tensor]]:
        return {name: [torch.Tensor.detach(p).clone() for p in group]
                for name, group in self.named().items()}

    def named(self) -> dict[str, list[torch.Tensor]]:
        return {"locked": self.locked, "copy": self.copy, "zero": self.zero,
                "other": self.other}


def _changed(now: list[torch.Tensor], before: list[torch.Tensor]) -> int:
    return sum(not torch.equal(torch.Tensor.detach(p), b) for p, b in zip(now, before))


def _forward(layer: nn.Module, x: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
    out = layer(x, control)
    if not isinstance(out, torch.Tensor):
        raise ProbeError("ControlledBlock.forward(x, control) should return a tensor")
    return out


# -- zero_conv ---------------------------------------------------------------------------------


def zero_conv_layout(ns: dict, in_ch: int, out_ch: int, device: torch.device) -> dict:
    """What ``zero_conv(in_ch, out_ch)`` builds: type, kernel, stride, padding, weight, bias
    (moved to ``device`` with ``.to``, as any module), their dtype and flags."""
    conv = lookup(ns, "zero_conv")(in_ch, out_ch)
    found: dict[str, Any] = {"is an nn.Conv2d": isinstance(conv, nn.Conv2d)}
    if not isinstance(conv, nn.Conv2d):
        return found
    conv = conv.to(device)
    bias = conv.bias
    found.update({
        "kernel_size": [int(k) for k in conv.kernel_size],
        "stride": [int(s) for s in conv.stride],
        "padding": repr(conv.padding),
        "has a bias": bias is not None,
        "weight": torch.Tensor.detach(conv.weight).clone(),
        "weight requires_grad": bool(conv.weight.requires_grad),
    })
    if bias is not None:
        found["bias"] = torch.Tensor.detach(bias).clone()
        found["bias requires_grad"] = bool(bias.requires_grad)
    return found


def zero_conv_gradients(ns: dict, in_ch: int, out_ch: int, x: torch.Tensor) -> dict:
    """``zero_conv(in_ch, out_ch)`` moved to x's dtype and device: its output on x, and the
    gradients of ⟨output, fixed cotangent⟩ w.r.t. x, the weight and the bias (words where a
    parameter is missing or does not require grad)."""
    conv = lookup(ns, "zero_conv")(in_ch, out_ch)
    if not isinstance(conv, nn.Module):
        raise ProbeError("zero_conv(in_ch, out_ch) should return an nn.Conv2d")
    conv = conv.to(device=x.device, dtype=x.dtype)
    named = {"weight": getattr(conv, "weight", None), "bias": getattr(conv, "bias", None)}
    with torch.enable_grad():
        xg = x.clone().requires_grad_(True)
        out = conv(xg)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            raise ProbeError("zero_conv(in_ch, out_ch)(x) should return a tensor with autograd "
                             "history")
        [cot] = cotangents([out])
        (out * cot).sum().backward()
    found: dict[str, Any] = {"output": out.detach(), "gradient w.r.t. x": xg.grad}
    for name, p in named.items():
        if not isinstance(p, torch.Tensor):
            found[f"gradient w.r.t. {name}"] = f"none (no {name})"
        elif not p.requires_grad:
            found[f"gradient w.r.t. {name}"] = f"none ({name} does not require grad)"
        else:
            found[f"gradient w.r.t. {name}"] = p.grad
    return found


# -- ControlledBlock ---------------------------------------------------------------------------


def structure(ns: dict, kind: str, weights: tuple, channels: int,
              prefrozen: bool = False) -> dict:
    """Which parameters the wrapper holds, in groups, with their flags; whether it holds the
    very block passed in; the block's flags after wrapping."""
    block = _block(kind, channels, weights, frozen=prefrozen)
    layer = _wrap(ns, block, channels, weights[0])
    groups = _Groups(layer, block)
    return {
        "holds the block passed in as a submodule": any(m is block for m in layer.modules()),
        "parameters of the block passed in that it holds":
            sum(id(p) in groups.held for p in groups.locked),
        "parameters of the block passed in requiring grad":
            sum(bool(p.requires_grad) for p in groups.locked),
        "copied parameters (other tensors equal to the block's)": len(groups.copy),
        "copied parameters requiring grad": sum(bool(p.requires_grad) for p in groups.copy),
        "zero-initialised parameters": len(groups.zero),
        "zero-initialised parameters requiring grad":
            sum(bool(p.requires_grad) for p in groups.zero),
        "other parameters (neither the block's, copies of them, nor zeros)": len(groups.other),
    }


def initial(ns: dict, kind: str, weights: tuple, channels: int, x: torch.Tensor,
            control: torch.Tensor) -> dict:
    """The freshly wrapped block's output, and whether it equals ``block(x)`` exactly."""
    block = _block(kind, channels, weights)
    with torch.no_grad():
        plain = block(x)
    layer = _wrap(ns, block, channels, x)
    out = _forward(layer, x, control)
    same = (isinstance(out, torch.Tensor) and out.shape == plain.shape
            and out.dtype == plain.dtype and torch.equal(torch.Tensor.detach(out), plain))
    return {"output equals frozen_block(x) exactly (torch.equal)": bool(same),
            "output": torch.Tensor.detach(out)}


def sgd(ns: dict, kind: str, weights: tuple, channels: int, x: torch.Tensor,
        control: torch.Tensor, target: torch.Tensor, lr: float, steps: int,
        prefrozen: bool = False) -> dict:
    """``steps`` steps of plain SGD (p ← p − lr·p.grad for every parameter of the wrapper that
    received a gradient) on mean((layer(x, control) − target)²). The sizes of the copy and
    zero groups at the start; per step: the loss, how many
    of the locked block's parameters were given a ``.grad``, and after the update how many
    parameters of each group differ (bitwise) from their initial values; then the output."""
    block = _block(kind, channels, weights, frozen=prefrozen)
    layer = _wrap(ns, block, channels, x)
    groups = _Groups(layer, block)
    start = groups.snapshot()
    params = list(layer.parameters())
    found: dict[str, Any] = {
        "copied parameters (other tensors equal to the block's) at the start":
            len(groups.copy),
        "zero-initialised parameters at the start": len(groups.zero),
    }
    losses = []
    with torch.enable_grad():
        for step in range(1, steps + 1):
            for p in params:
                p.grad = None
            out = _forward(layer, x, control)
            if out.shape != target.shape:
                raise ProbeError(f"ControlledBlock.forward(x, control) returned shape "
                                 f"{tuple(out.shape)}, expected {tuple(target.shape)}")
            loss = ((out - target) ** 2).mean()
            if not loss.requires_grad:
                raise ProbeError("ControlledBlock.forward(x, control) has no autograd "
                                 "history: nothing to train")
            loss.backward()
            losses.append(loss.detach())
            found[f"step {step}: parameters of the block passed in given a .grad"] = sum(
                p.grad is not None for p in groups.locked)
            with torch.no_grad():
                for p in params:
                    if p.grad is not None:
                        p.sub_(lr * p.grad)
            for name, group in groups.named().items():
                label = {"locked": "parameters of the block passed in",
                         "copy": "copied parameters", "zero": "zero-initialised parameters",
                         "other": "other parameters"}[name]
                found[f"after step {step}: {label} changed"] = _changed(group, start[name])
    found["loss at each step"] = torch.stack(losses)
    with torch.no_grad():
        found["output after training"] = torch.Tensor.detach(_forward(layer, x, control))
    return found


def gradients(ns: dict, kind: str, weights: tuple, channels: int, x: torch.Tensor,
              control: torch.Tensor, target: torch.Tensor, lr: float, steps: int) -> dict:
    """The sizes of the copy and zero groups; after ``steps`` SGD steps as in :func:`sgd`, the
    output and the gradients of ⟨output, fixed cotangent⟩ w.r.t. x and control."""
    block = _block(kind, channels, weights)
    layer = _wrap(ns, block, channels, x)
    groups = _Groups(layer, block)
    found: dict[str, Any] = {
        "copied parameters (other tensors equal to the block's) at the start":
            len(groups.copy),
        "zero-initialised parameters at the start": len(groups.zero),
    }
    params = list(layer.parameters())
    with torch.enable_grad():
        for _ in range(steps):
            for p in params:
                p.grad = None
            loss = ((_forward(layer, x, control) - target) ** 2).mean()
            loss.backward()
            with torch.no_grad():
                for p in params:
                    if p.grad is not None:
                        p.sub_(lr * p.grad)
        for p in params:
            p.grad = None
        xg = x.clone().requires_grad_(True)
        cg = control.clone().requires_grad_(True)
        out = _forward(layer, xg, cg)
        if not out.requires_grad:
            raise ProbeError("ControlledBlock.forward(x, control) is not differentiable: its "
                             "output has no autograd history")
        [cot] = cotangents([out])
        grad_x, grad_c = torch.autograd.grad((out * cot).sum(), [xg, cg], allow_unused=True)
    found.update({
        "output": out.detach(),
        "gradient w.r.t. x": "none (x does not reach the output)" if grad_x is None else grad_x,
        "gradient w.r.t. control": "none (control does not reach the output)"
        if grad_c is None else grad_c,
    })
    return found
