"""Unit 3.1 `rnn`: the master against PyTorch's own RNN and autograd, in float64.

- ``rnn_forward`` equals ``torch.nn.RNN`` (tanh, one layer, time first) with W, U, b copied in
  as ``weight_hh_l0``, ``weight_ih_l0``, ``bias_ih_l0`` (and a zero ``bias_hh_l0``), from the
  same initial state;
- ``bptt_gradients`` and ``rtrl_gradients``, both written by hand, equal torch.autograd's loss
  and gradients of the same loss through ``nn.RNN`` for T = 1 … 30, batch 1 and more, H ≠ I,
  in float64 (and in float32, to float32 precision);
- the two by-hand algorithms agree with each other to rounding.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("rnn")).namespace
rnn_forward, bptt_gradients, rtrl_gradients = (
    NS["rnn_forward"], NS["bptt_gradients"], NS["rtrl_gradients"])

SIZES = [(1, 1, 3, 2), (2, 4, 1, 1), (5, 1, 4, 6), (12, 3, 5, 2), (30, 2, 4, 3), (30, 1, 6, 2)]


def _problem(t, b, h, i, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape, scale=1.0: (  # noqa: E731
        torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)
    return (r(h, h, scale=1.2 / h**0.5), r(h, i, scale=1 / i**0.5), r(h, scale=0.3),
            r(t, b, i), r(b, h, scale=0.5), r(t, b, h, scale=0.5))


def _torch_rnn(W, U, b):
    h, i = U.shape
    rnn = nn.RNN(i, h, nonlinearity="tanh").to(W.dtype)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(W)
        rnn.weight_ih_l0.copy_(U)
        rnn.bias_ih_l0.copy_(b)
        rnn.bias_hh_l0.zero_()
    return rnn


def _autograd(W, U, b, xs, h0, targets):
    """Loss and gradients of the same loss by autograd through torch.nn.RNN."""
    rnn = _torch_rnn(W, U, b)
    hs, _ = rnn(xs, h0[None])
    loss = 0.5 * ((hs - targets) ** 2).sum() / xs.shape[1]
    gW, gU, gb = torch.autograd.grad(loss, [rnn.weight_hh_l0, rnn.weight_ih_l0, rnn.bias_ih_l0])
    return loss.detach(), {"W": gW, "U": gU, "b": gb}


@pytest.mark.parametrize(("t", "b", "h", "i"), SIZES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_forward_matches_nn_rnn(t, b, h, i, dtype):
    W, U, bias, xs, h0, _ = _problem(t, b, h, i, dtype, seed=t * 1000 + b * 100 + h * 10 + i)
    want, _ = _torch_rnn(W, U, bias)(xs, h0[None])
    got = rnn_forward(W, U, bias, xs, h0)
    assert got.dtype == dtype and got.shape == (t, b, h)
    tol = {"rtol": 1e-12, "atol": 1e-13} if dtype == torch.float64 else {"rtol": 1e-5,
                                                                           "atol": 1e-6}
    torch.testing.assert_close(got, want.detach(), **tol)


@pytest.mark.parametrize("name", ["bptt_gradients", "rtrl_gradients"])
@pytest.mark.parametrize(("t", "b", "h", "i"), SIZES + [(t, 2, 3, 5) for t in (3, 8, 20)])
def test_by_hand_gradients_match_autograd_float64(name, t, b, h, i):
    problem = _problem(t, b, h, i, torch.float64, seed=t * 1000 + b * 100 + h * 10 + i)
    loss, grads = NS[name](*problem)
    want_loss, want_grads = _autograd(*problem)
    assert loss.shape == () and loss.dtype == torch.float64
    torch.testing.assert_close(loss, want_loss, rtol=1e-12, atol=1e-13)
    assert set(grads) == {"W", "U", "b"}
    for key, want in want_grads.items():
        assert grads[key].shape == want.shape and grads[key].dtype == torch.float64
        torch.testing.assert_close(grads[key], want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["bptt_gradients", "rtrl_gradients"])
@pytest.mark.parametrize(("t", "b", "h", "i"), [(1, 2, 3, 2), (30, 1, 4, 3), (17, 3, 2, 5)])
def test_by_hand_gradients_float32(name, t, b, h, i):
    problem = _problem(t, b, h, i, torch.float32, seed=7 + t)
    loss, grads = NS[name](*problem)
    want_loss, want_grads = _autograd(*(p.double() for p in problem))
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), want_loss, rtol=1e-5, atol=1e-6)
    for key, want in want_grads.items():
        assert grads[key].dtype == torch.float32
        torch.testing.assert_close(grads[key].double(), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("t", "b", "h", "i"), SIZES)
def test_rtrl_equals_bptt(t, b, h, i):
    problem = _problem(t, b, h, i, torch.float64, seed=99 + t)
    loss_r, grads_r = rtrl_gradients(*problem)
    loss_b, grads_b = bptt_gradients(*problem)
    torch.testing.assert_close(loss_r, loss_b, rtol=1e-13, atol=0.0)
    for key in ("W", "U", "b"):
        torch.testing.assert_close(grads_r[key], grads_b[key], rtol=1e-11, atol=1e-13)


def test_by_hand_gradients_use_no_autograd():
    """Both algorithms run with autograd switched off and on inputs that do not require
    gradients, so no graph exists for them to use."""
    problem = _problem(9, 2, 3, 4, torch.float64, seed=3)
    want_loss, want_grads = _autograd(*problem)
    with torch.no_grad():
        for fn in (bptt_gradients, rtrl_gradients):
            loss, grads = fn(*problem)
            assert not loss.requires_grad
            torch.testing.assert_close(loss, want_loss, rtol=1e-12, atol=1e-13)
            for key, want in want_grads.items():
                torch.testing.assert_close(grads[key], want, rtol=1e-10, atol=1e-12)
