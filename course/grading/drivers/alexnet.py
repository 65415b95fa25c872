"""Drivers for unit 1.4 `alexnet`.

``predict`` hands the implementation's ``ten_crop_predict`` a fixed, grader-owned model built
from plain tensors: logits = tanh(flatten(x) W1ᵀ + b1) W2ᵀ + b2. A model that sees every pixel
by its position tells crops, flips and orders apart, and its nonlinearity makes averaging
logits differ from averaging probabilities.
"""

from __future__ import annotations

import torch
from torch import nn

from course.grading.probes import ProbeError, lookup


class PixelMLP(nn.Module):
    """A fixed two-layer perceptron on the flattened (C, crop, crop) view."""

    def __init__(self, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
                 b2: torch.Tensor, view_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.w1, self.b1, self.w2, self.b2 = w1, b1, w2, b2
        self.view_shape = tuple(view_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != self.view_shape:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            want = ", ".join(map(str, self.view_shape))
            raise ValueError(f"the model expects a batch of crops of shape (M, {want}), got {got}")
        # products and sums instead of matmul: tiny sizes, no BLAS thread hand-offs
        flat = x.reshape(x.shape[0], 1, -1)
        hidden = torch.tanh((flat * self.w1).sum(dim=-1) + self.b1)
        return (hidden.unsqueeze(1) * self.w2).sum(dim=-1) + self.b2


def predict(ns: dict, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor,
            images: torch.Tensor, crop: int) -> torch.Tensor:
    """``ten_crop_predict(PixelMLP(w1, b1, w2, b2), images, crop)``; ``w1`` has
    ``C·crop·crop`` columns."""
    model = PixelMLP(w1, b1, w2, b2, (images.shape[1], crop, crop))
    out = lookup(ns, "ten_crop_predict")(model, images, crop)
    if not isinstance(out, torch.Tensor):
        raise ProbeError(f"ten_crop_predict should return a tensor, got {type(out).__name__}")
    return out
