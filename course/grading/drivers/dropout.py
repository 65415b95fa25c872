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
