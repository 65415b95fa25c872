"""Offline data: seeded, deterministic, the documented shapes and ranges."""

import torch

from course import data


def test_digits_split_is_fixed_and_upsampled():
    a, b = data.load_digits(8), data.load_digits(8)
    assert torch.equal(a.y_test, b.y_test)
    assert a.x_train.shape[1:] == (1, 8, 8) and a.x_train.dtype == torch.float32
    assert len(a.x_train) + len(a.x_test) == 1797
    big = data.load_digits(32)
    assert big.x_train.shape[1:] == (1, 32, 32)
    assert 0.0 <= float(big.x_train.min()) and float(big.x_train.max()) <= 1.0


def test_toy_distributions_are_seeded():
    assert torch.equal(data.swiss_roll(100, seed=3), data.swiss_roll(100, seed=3))
    assert not torch.equal(data.swiss_roll(100, seed=3), data.swiss_roll(100, seed=4))
    xy, labels = data.moons(50)
    assert xy.shape == (50, 2) and set(labels.tolist()) <= {0, 1}
    xy, modes = data.gaussian_mixture(80, modes=4)
    assert xy.shape == (80, 2) and int(modes.max()) < 4


def test_sequence_tasks_have_known_structure():
    src, tgt = data.reverse_task(5, 7, vocab=6)
    assert torch.equal(tgt, src.flip(1)) and int(src.min()) >= 1 and int(src.max()) < 6
    src, tgt = data.sort_task(5, 7)
    assert torch.equal(tgt, src.sort(1).values)
    src, tgt = data.copy_task(3, 4)
    assert torch.equal(src, tgt)
    xs, bits = data.long_lag_bits(16, lag=10, noise_std=0.5)
    assert xs.shape == (11, 16, 2)
    assert torch.equal(xs[0, :, 0], bits.float() * 2 - 1)
    assert torch.all(xs[1:, :, 1] == 1)
