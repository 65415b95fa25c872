"""course.data.patterns: XOR and the encoder patterns are fixed, with the documented shapes."""

import pytest
import torch

from course import data


def test_xor_truth_table():
    x, y = data.xor()
    assert x.shape == (4, 2) and y.shape == (4, 1)
    assert x.dtype == y.dtype == torch.float32
    assert x.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert y.flatten().tolist() == [0, 1, 1, 0]
    x2, y2 = data.xor()
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x2[0, 0] = 5.0  # each call returns fresh tensors
    assert data.xor()[0][0, 0] == 0


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_encoder_patterns_are_one_hot(n):
    x, y = data.encoder_patterns(n)
    assert x.shape == y.shape == (n, n) and x.dtype == torch.float32
    assert torch.equal(x, torch.eye(n)) and torch.equal(x, y)
    assert x.data_ptr() != y.data_ptr()  # separate tensors: editing one leaves the other


def test_encoder_default_is_eight_and_rejects_tiny():
    assert data.encoder_patterns()[0].shape == (8, 8)
    with pytest.raises(ValueError):
        data.encoder_patterns(1)
