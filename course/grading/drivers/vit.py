"""Drivers for unit 4.12 `vit`.

- :func:`raises`: what ``patchify(images, P)`` does on a size P does not divide: the name of
  the exception it raised, or the shape it returned (compared as a string);
- :func:`conv_embed`: ``patchify(images, P) @ weight.flatten(1).T + bias``, the patch
  embedding that must equal a stride-P convolution with that weight and bias (the grader
  computes the convolution in its own process);
- :func:`state`: the state dict of a freshly built ``Block``, or of a ``ViT`` built with
  stand-in blocks (the grader compares names, shapes and dtypes only);
- :func:`vit_logits`: the learner's ``ViT`` with grader-owned stand-in blocks
  (:class:`StandInBlock`) in ``blocks`` and the grader's own :func:`grader_patchify` in place
  of the learner's ``patchify`` while ``forward`` runs, so that ``ViT``'s own wiring (patch
  embedding, class token, positions, block order, ``norm``, the head on the class token) is
  graded apart from the learner's ``Block`` and ``patchify``; returns the logits and, given a
  cotangent, the gradients of ⟨logits, cotangent⟩ w.r.t. the images and every parameter,
  read from the parameters' ``.grad`` by name.

Drivers run where learner code runs and return plain data, never verdicts.
"""

from __future__ import annotations

import torch
from torch import nn

from course.grading.drivers import modules
from course.grading.drivers.modules import StandIn
from course.grading.probes import ProbeError, lookup


def grader_patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """The grader's patchify (row-major grid, (C, P, P) inside each patch), written with
    indexing so that it shares no line with the master."""
    B, C, H, W = images.shape
    P = patch_size
    if H % P or W % P:
        raise ValueError(f"image size {H}×{W} is not divisible by patch_size {P}")
    rows = [images[:, :, i * P:(i + 1) * P, j * P:(j + 1) * P].reshape(B, 1, C * P * P)
            for i in range(H // P) for j in range(W // P)]
    return torch.cat(rows, dim=1)


class StandInBlock(nn.Module):
    """A grader-owned stand-in for an encoder block: ``z + tanh(z Wᵀ + mean_T(z) Uᵀ + b)``,
    with parameters ``weight`` (D, D), ``mix`` (D, D) and ``bias`` (D). It is not a ViT block
    (no attention, no layer norm); it only has to be a smooth map (B, T, D) -> (B, T, D) that
    lets every token see the others (through the mean over tokens, like attention it treats
    the tokens alike) and differs from layer to layer, so that the learner's ``ViT`` can be
    checked for what it does around its blocks."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim, dim))
        self.mix = nn.Parameter(torch.zeros(dim, dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, z: torch.Tensor, *rest, **kwargs) -> torch.Tensor:
        if rest or kwargs:
            raise ProbeError("ViT.forward should call each block as block(z), with no other "
                             "arguments")
        return z + torch.tanh(z @ self.weight.T + z.mean(1, keepdim=True) @ self.mix.T
                              + self.bias)


def raises(ns: dict, images: torch.Tensor, patch_size: int) -> str:
    """``"raised <ExceptionName>"``, or ``"returned a tensor of shape [...]"``."""
    try:
        out = lookup(ns, "patchify")(images, patch_size)
    except ProbeError:
        raise
    except Exception as exc:  # the learner's exception is the observation
        return f"raised {type(exc).__name__}"
    if isinstance(out, torch.Tensor):
        return f"returned a tensor of shape {list(out.shape)}"
    return f"returned a {type(out).__name__}"


def conv_embed(ns: dict, images: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
               patch_size: int) -> torch.Tensor:
    """``patchify(images, P) @ weight.flatten(1).T + bias``: (B, N, D) for a conv weight
    (D, C, P, P) and bias (D,)."""
    patches = lookup(ns, "patchify")(images, patch_size)
    if not isinstance(patches, torch.Tensor):
        raise ProbeError(f"patchify returned a {type(patches).__name__}; return a tensor")
    B, C, H, W = images.shape
    want = (B, (H // patch_size) * (W // patch_size), C * patch_size**2)
    if tuple(patches.shape) != want:
        raise ProbeError(f"patchify(images{list(images.shape)}, {patch_size}) returned shape "
                         f"{list(patches.shape)}, expected {list(want)}")
    return patches @ weight.flatten(1).T + bias


def _vit(ns: dict, args: tuple) -> nn.Module:
    """``ViT(*args)`` built while ``Block`` names the stand-in, and with every entry of
    ``blocks`` a stand-in afterwards (whatever class the learner's ``__init__`` used)."""
    image_size, patch_size, in_channels, num_classes, dim, depth, heads, mlp_dim = args
    vit = lookup(ns, "ViT")
    with StandIn(ns, vit, "Block", lambda *a, **k: StandInBlock(dim)):
        model = vit(*args)
    if not isinstance(model, nn.Module):
        raise ProbeError(f"ViT{args} should build a torch.nn.Module")
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList) or len(blocks) != depth:
        raise ProbeError(f"ViT{args}.blocks should be an nn.ModuleList of depth = {depth} "
                         "blocks")
    for i in range(depth):
        if not isinstance(blocks[i], StandInBlock):
            blocks[i] = StandInBlock(dim)
    return model


def state(ns: dict, name: str, args: tuple) -> dict:
    """``dict(name(*args).state_dict())``; a ``ViT`` is built with stand-in blocks."""
    if name == "ViT":
        return dict(_vit(ns, args).state_dict())
    return modules.state(ns, name, args)


def vit_logits(ns: dict, args: tuple, state: dict, images: torch.Tensor,
               cotangent: torch.Tensor | None = None) -> dict:
    """``{"logits": (B, K)}`` of ``ViT(*args)`` with stand-in blocks, the grader's patchify
    and ``state`` loaded, in eval mode; with ``cotangent`` (B, K) also ``"grads"``: the
    gradients of Σ logits·cotangent w.r.t. ``images`` and every parameter (by name; zeros
    where the logits do not depend on one)."""
    model = _vit(ns, args)
    dtype = next(v.dtype for v in state.values() if v.is_floating_point())
    model = model.to(device=images.device, dtype=dtype)
    try:
        model.load_state_dict({k: v.to(images.device) for k, v in state.items()})
    except RuntimeError as exc:
        raise ProbeError(f"could not load the grader's weights into ViT{args} (its blocks "
                         f"replaced by stand-ins): {exc}") from None
    model.eval()
    images = images.clone().requires_grad_(cotangent is not None)
    with StandIn(ns, type(model).forward, "patchify", grader_patchify), torch.enable_grad():
        logits = model(images)
    if not isinstance(logits, torch.Tensor):
        raise ProbeError(f"ViT.forward returned a {type(logits).__name__}; return the logits")
    if cotangent is None:
        return {"logits": logits.detach()}
    if logits.shape != cotangent.shape:
        raise ProbeError(f"ViT.forward should return logits of shape {list(cotangent.shape)}, "
                         f"not {list(logits.shape)}")
    if not logits.requires_grad:
        raise ProbeError("the logits are detached from the parameters (no autograd history): "
                         "keep ViT.forward differentiable")
    with torch.enable_grad():
        (logits * cotangent).sum().backward()
    # an input the logits do not depend on gets a zero gradient, which the comparison names
    grads = {"images": images.grad if images.grad is not None else torch.zeros_like(images)}
    for name, param in model.named_parameters():
        grads[name] = param.grad if param.grad is not None else torch.zeros_like(param)
    return {"logits": logits.detach(), "grads": grads}
