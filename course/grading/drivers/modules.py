"""Drivers shared by units whose exercise is an ``nn.Module`` (2.3 residual, 1.5 unet, 4.12
vit, 5.2 stylegan, 5.4 vae).

``state`` builds a module of the implementation and returns its state dict, so that a check can
compare names, shapes and dtypes (``cell_checks.require_state_layout``). ``layout`` reports
the *names and shapes* of its parameters and buffers, without their values. Freshly built
weights are random and their values depend on the order in which a learner creates the
submodules, so a layout is what the grader can compare exactly (and what a state dict needs to
copy across).
"""

from __future__ import annotations

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
