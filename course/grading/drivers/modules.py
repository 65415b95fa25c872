"""Drivers shared by units whose exercise is an ``nn.Module`` (2.3 residual, 1.5 unet, 4.12
vit, 5.2 stylegan, 5.4 vae), and the stand-in every module driver uses.

``StandIn`` puts a grader-owned piece in place of the learner's while their code runs (lora's
``LoRALinear``, controlnet's ``zero_conv``, vit's ``Block`` and ``patchify``), so that a
mistake in one task costs only its own checks. ``state`` builds a module of the implementation
and returns its state dict, so that a check can compare names, shapes and dtypes
(``cell_checks.require_state_layout``). ``layout`` reports the *names and shapes* of its
parameters and buffers, without their values. Freshly built weights are random and their
values depend on the order in which a learner creates the submodules, so a layout is what the
grader can compare exactly (and what a state dict needs to copy across).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from course.grading.probes import ProbeError, lookup


def state(ns: dict, name: str, args: tuple = (), kwargs: dict | None = None) -> dict:
    """``dict(ns[name](*args, **kwargs).state_dict())``: every parameter and buffer, by name."""
    module = lookup(ns, name)(*args, **(kwargs or {}))
    if not isinstance(module, nn.Module):
        raise ProbeError(f"{name}(...) should build a torch.nn.Module")
    return dict(module.state_dict())


def layout(ns: dict, name: str, args: tuple = (), kwargs: dict | None = None) -> dict:
    """``{"parameter <name>": shape, "buffer <name>": shape}`` of ``ns[name](*args, **kwargs)``,
    each shape an int64 tensor (a 0-dim buffer such as ``num_batches_tracked`` gives ``[]``)."""
    module = lookup(ns, name)(*args, **(kwargs or {}))
    if not isinstance(module, nn.Module):
        raise ProbeError(f"{name}(...) should build a torch.nn.Module")
    found: dict[str, torch.Tensor] = {}
    for pname, param in module.named_parameters():
        found[f"parameter {pname}"] = torch.tensor(list(param.shape), dtype=torch.int64)
    for bname, buf in module.named_buffers():
        found[f"buffer {bname}"] = torch.tensor(list(buf.shape), dtype=torch.int64)
    return found


class StandIn:
    """``name`` bound to ``replacement`` while the block runs, then restored (or removed): in
    the namespace and in the globals ``code`` looks names up in (a function's, or a class's
    ``__init__``'s: the learner's module, however the namespace was handed over)."""

    def __init__(self, ns: dict, code: Any, name: str, replacement: Any) -> None:
        owner = code if hasattr(code, "__globals__") else getattr(code, "__init__", None)
        found = getattr(owner, "__globals__", None)
        self.spaces = [ns] + ([found] if isinstance(found, dict) and found is not ns else [])
        self.name, self.replacement = name, replacement
        self.saved: list[tuple[dict, bool, Any]] = []

    def __enter__(self) -> None:
        for space in self.spaces:
            self.saved.append((space, self.name in space, space.get(self.name)))
            space[self.name] = self.replacement

    def __exit__(self, *exc: object) -> None:
        for space, had, value in reversed(self.saved):
            if had:
                space[self.name] = value
            else:
                space.pop(self.name, None)
