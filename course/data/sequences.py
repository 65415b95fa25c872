"""Synthetic sequence tasks whose structure is known exactly.

Token tasks return LongTensors ``(source, target)`` of shape (n, length); token 0 is never
used so that callers may reserve it for padding or a start symbol.
"""

from __future__ import annotations

import torch


def _tokens(n: int, length: int, vocab: int, seed: int) -> torch.Tensor:
    if vocab < 2:
        raise ValueError("vocab must be at least 2 (token 0 is reserved)")
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, vocab, (n, length), generator=g)


def copy_task(n: int, length: int, vocab: int = 10, seed: int = 0):
    """Target equals the source."""
    src = _tokens(n, length, vocab, seed)
    return src, src.clone()


def reverse_task(n: int, length: int, vocab: int = 10, seed: int = 0):
    """Target is the source read backwards."""
    src = _tokens(n, length, vocab, seed)
    return src, src.flip(1)


def sort_task(n: int, length: int, vocab: int = 10, seed: int = 0):
    """Target is the source sorted in increasing order."""
    src = _tokens(n, length, vocab, seed)
    return src, src.sort(dim=1).values


def long_lag_bits(n: int, lag: int, noise_std: float = 0.0, seed: int = 0):
    """Remember one bit across ``lag`` steps.

    Returns ``(xs, bits)``: xs float32 (lag + 1, n, 2) in time-major layout. At t = 0 channel 0
    holds the bit as ±1 and channel 1 is 0; at every later step channel 0 holds gaussian
    distractor noise (std ``noise_std``) and channel 1 is 1 ("keep waiting"). The target
    ``bits`` (n,) in {0, 1} must be read out after the last step.
    """
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(0, 2, (n,), generator=g)
    xs = torch.zeros(lag + 1, n, 2)
    xs[0, :, 0] = bits.float() * 2 - 1
    xs[1:, :, 0] = noise_std * torch.randn(lag, n, generator=g)
    xs[1:, :, 1] = 1.0
    return xs, bits
