"""scikit-learn's handwritten digits (1,797 images, 8×8, ships with scikit-learn)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class DigitSplit:
    """A fixed train/test split. Images are float32 in [0, 1], shape (N, 1, size, size)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@lru_cache(maxsize=8)
def _raw() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32) / 16.0
    return images.unsqueeze(1), torch.tensor(bunch.target, dtype=torch.int64)


@lru_cache(maxsize=8)
def load_digits(size: int = 8, test_fraction: float = 0.25, seed: int = 0) -> DigitSplit:
    """The digits at ``size``×``size`` (bilinear upsampling from 8×8) with a fixed split.

    The split is a seeded permutation, so the same ``seed`` always gives the same images.
    """
    images, labels = _raw()
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(len(labels) * test_fraction))
    test, train = perm[:n_test], perm[n_test:]
    return DigitSplit(images[train], labels[train], images[test], labels[test])
