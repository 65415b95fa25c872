"""Unit 5.3 `stylegan2`: the master's ``modulated_conv2d`` against independent
implementations, in float64.

- A per-sample loop that never builds a per-sample weight: it scales the INPUT channels of
  x[b] by the style, convolves with the shared weight (``F.conv2d``, batch of one), and, for
  demodulation, divides each output channel o by sqrt(Σ_i s_{b,i}² Σ_{kh,kw} w_{o,i}² + ε),
  the norm computed separately from the styles and the weight (the paper's Figure 2c/d
  reading: modulation and demodulation as scalings of activations).
- An explicit convolution with no ``F.conv2d`` at all: zero-pad, cut every k×k window with
  ``Tensor.unfold``, and contract windows with the per-sample weights by ``einsum``.
- ``torch.autograd.gradcheck`` of x, weight and styles, in both modes.
- The master itself does what the docstring calls the expected way: one ``conv2d`` call with
  ``groups=B`` per batch (counted with a ``TorchFunctionMode``; the hidden checks cannot count
  calls, so this is proven for the master only, not enforced on learners).

Both oracles are first shown to tell a wrong variant (styles on the output channels, norm
summed over the output channels) from the right one, so that the comparisons can fail.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from course import catalogue
from course.grading.checks import reference

modulated_conv2d = reference(catalogue.find("stylegan2")).namespace["modulated_conv2d"]

CASES = [(1, 3, 4, 6, 5, 1), (1, 4, 4, 5, 5, 3), (1, 2, 3, 7, 6, 5), (3, 3, 5, 6, 6, 1),
         (4, 4, 4, 5, 7, 3), (2, 3, 2, 6, 5, 5), (5, 2, 6, 4, 4, 3)]


def _draw(b, c_in, c_out, h, w, k, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c_in, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(c_out, c_in, k, k, generator=g, dtype=torch.float64)
    styles = 1 + 0.8 * torch.randn(b, c_in, generator=g, dtype=torch.float64)
    return x, weight, styles


def loop_oracle(x, weight, styles, demodulate=True, eps=1e-8, on_output=False):
    """One sample at a time: scale activations, not weights."""
    k = weight.shape[-1]
    outs = []
    for b in range(x.shape[0]):
        s = styles[b]
        if on_output:  # a wrong variant, to show this oracle can tell
            y = F.conv2d(x[b : b + 1], weight, padding=k // 2) * s.view(1, -1, 1, 1)
        else:
            y = F.conv2d(x[b : b + 1] * s.view(1, -1, 1, 1), weight, padding=k // 2)
        if demodulate:
            energy = (weight**2).sum(dim=(2, 3))  # (C_out, C_in): Σ_{kh,kw} w²
            sigma = torch.sqrt(energy @ (s**2) + eps)  # (C_out,)
            y = y / sigma.view(1, -1, 1, 1)
        outs.append(y)
    return torch.cat(outs, dim=0)


def unfold_oracle(x, weight, styles, demodulate=True, eps=1e-8, sum_over_output=False):
    """No F.conv2d: windows cut with Tensor.unfold, contracted with einsum."""
    b, c_in, h, w = x.shape
    k = weight.shape[-1]
    p = k // 2
    wb = torch.einsum("oikl,bi->boikl", weight, styles)
    if demodulate:
        dims = (1, 3, 4) if sum_over_output else (2, 3, 4)
        wb = wb / torch.sqrt((wb**2).sum(dim=dims, keepdim=True) + eps)
    padded = torch.zeros(b, c_in, h + 2 * p, w + 2 * p, dtype=x.dtype)
    padded[:, :, p : p + h, p : p + w] = x
    windows = padded.unfold(2, k, 1).unfold(3, k, 1)  # (B, C_in, H, W, k, k)
    return torch.einsum("bihwkl,boikl->bohw", windows, wb)


@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
@pytest.mark.parametrize("demodulate", [True, False])
def test_matches_per_sample_loop(case, demodulate):
    x, weight, styles = _draw(*case, seed=sum(case))
    ours = modulated_conv2d(x, weight, styles, demodulate=demodulate)
    assert ours.shape == (case[0], case[2], case[3], case[4]) and ours.dtype == torch.float64
    torch.testing.assert_close(ours, loop_oracle(x, weight, styles, demodulate), rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
@pytest.mark.parametrize("demodulate", [True, False])
def test_matches_unfold_matmul(case, demodulate):
    x, weight, styles = _draw(*case, seed=100 + sum(case))
    ours = modulated_conv2d(x, weight, styles, demodulate=demodulate)
    torch.testing.assert_close(ours, unfold_oracle(x, weight, styles, demodulate), rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("eps", [0.5, 3.0])
def test_large_eps_and_zero_styles(eps):
    x, weight, styles = _draw(3, 4, 5, 6, 6, 3, seed=7)
    styles = styles.clone()
    styles[0] = 0.0
    ours = modulated_conv2d(x, weight, styles, eps=eps)
    torch.testing.assert_close(ours, loop_oracle(x, weight, styles, eps=eps))
    torch.testing.assert_close(ours, unfold_oracle(x, weight, styles, eps=eps))
    default = modulated_conv2d(x, weight, styles)
    assert torch.isfinite(default).all() and (default[0] == 0).all()


def test_oracles_can_fail():
    x, weight, styles = _draw(3, 4, 4, 5, 5, 3, seed=11)
    ours = modulated_conv2d(x, weight, styles)
    assert not torch.allclose(ours, loop_oracle(x, weight, styles, on_output=True), atol=1e-3)
    assert not torch.allclose(ours, unfold_oracle(x, weight, styles, sum_over_output=True),
                              atol=1e-3)


def test_inputs_untouched_and_float32_kept():
    x, weight, styles = (t.float() for t in _draw(2, 3, 4, 5, 5, 3, seed=3))
    copies = [t.clone() for t in (x, weight, styles)]
    out = modulated_conv2d(x, weight, styles)
    assert out.dtype == torch.float32
    for given, copy in zip((x, weight, styles), copies):
        assert torch.equal(given, copy)
    torch.testing.assert_close(out.double(), loop_oracle(x.double(), weight.double(),
                                                         styles.double()), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("demodulate", [True, False])
def test_gradcheck(demodulate):
    x, weight, styles = (t.requires_grad_() for t in _draw(2, 2, 3, 4, 3, 3, seed=5))
    assert torch.autograd.gradcheck(
        lambda a, w, s: modulated_conv2d(a, w, s, demodulate=demodulate),
        (x, weight, styles),
    )


class _ConvCalls(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.groups = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.conv2d, F.conv2d, torch.nn.functional.conv2d):
            self.groups.append(kwargs.get("groups", args[6] if len(args) > 6 else 1))
        return func(*args, **kwargs)


@pytest.mark.parametrize("b", [1, 4])
def test_master_is_one_grouped_convolution(b):
    x, weight, styles = _draw(b, 3, 5, 6, 6, 3, seed=b)
    with _ConvCalls() as calls:
        modulated_conv2d(x, weight, styles)
    assert calls.groups == [b]
    with _ConvCalls() as calls:  # the counter sees a per-sample loop, so this test can fail
        loop_oracle(x, weight, styles)
    assert calls.groups == [1] * b
