"""Drivers for unit 1.5 `unet`.

``layout`` builds a module of the implementation and reports the *names and shapes* of its
parameters and buffers, without their values: freshly built weights are random, so the layout
is what the grader can compare exactly (and what a copied state dict needs).
"""

from __future__ import annotations

import torch
from torch import nn

from course.grading.probes import ProbeError, lookup


def layout(ns: dict, name: str, args: tuple = (), kwargs: dict | None = None) -> dict:
    """``{"parameter <name>": shape, "buffer <name>": shape}`` of ``ns[name](*args, **kwargs)``,
    each shape an int64 tensor."""
    module = lookup(ns, name)(*args, **(kwargs or {}))
    if not isinstance(module, nn.Module):
        raise ProbeError(f"{name}(...) should build a torch.nn.Module")
    found: dict[str, torch.Tensor] = {}
    for pname, param in module.named_parameters():
        found[f"parameter {pname}"] = torch.tensor(list(param.shape), dtype=torch.int64)
    for bname, buf in module.named_buffers():
        found[f"buffer {bname}"] = torch.tensor(list(buf.shape), dtype=torch.int64)
    return found
