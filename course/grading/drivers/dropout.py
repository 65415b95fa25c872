"""Drivers for unit 2.4 `dropout`."""

from __future__ import annotations

import torch

from course.grading.probes import lookup


def mask(ns: dict, shape: tuple[int, ...], p: float, generator, device: torch.device):
    """The implementation's ``dropout_mask(shape, p, generator)``, moved to ``device``.

    ``dropout_mask`` draws on the CPU by contract; moving its result to the grading device lets
    the grader compare it like any other output on every device.
    """
    out = lookup(ns, "dropout_mask")(shape, p, generator)
    return out.to(device) if isinstance(out, torch.Tensor) else out


def seeded(ns: dict, module, x: torch.Tensor, seed: int):
    """``module(x)`` right after ``torch.manual_seed(seed)``: a module like ``nn.Dropout`` draws
    its mask from the global generator, so seeding it is how both sides get the same mask
    while the module keeps ``nn.Dropout``'s ``forward(x)``."""
    torch.manual_seed(seed)
    return module(x)
