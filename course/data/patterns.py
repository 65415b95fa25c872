"""The small Boolean pattern sets of the back-propagation paper (Rumelhart, Hinton & Williams,
1986): exclusive-or and the n-log₂(n)-n encoder problem. Both are fixed (no randomness), float32
tensors with values in {0, 1}, one pattern per row."""

from __future__ import annotations

import torch


def xor() -> tuple[torch.Tensor, torch.Tensor]:
    """Exclusive-or: ``x`` (4, 2), the four input pairs 00, 01, 10, 11 in that order, and
    ``y`` (4, 1), their XOR (0, 1, 1, 0). Both float32 in {0, 1}."""
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = (x[:, :1] != x[:, 1:]).float()
    return x, y


def encoder_patterns(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """The n-log₂(n)-n encoder problem: the ``n`` one-hot patterns, to be reproduced at the
    output through a bottleneck. Returns ``(x, y)``, both the (n, n) float32 identity matrix
    (row ``i`` has a single 1 in column ``i``), as separate tensors.

    ``n`` must be at least 2; the paper's example is n = 8 with 3 hidden units.
    """
    if n < 2:
        raise ValueError(f"the encoder problem needs at least 2 patterns, got n={n}")
    x = torch.eye(n, dtype=torch.float32)
    return x, x.clone()
