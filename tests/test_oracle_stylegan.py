"""Unit 5.2 `stylegan`: the master against independent implementations.

- ``adain``: equals ``F.instance_norm`` (no affine, eps given) followed by the style's scale
  and bias applied sample by sample in a Python loop, and a loop over every (sample,
  channel) with ``torch.var_mean(unbiased=False)``; a per-sample call never sees another
  sample (batch independence); styles (1, 0) give plain instance norm.
- ``pixel_norm``: a loop over samples (and positions) dividing by the root mean square
  computed with ``torch.linalg.vector_norm``; the result has mean square 1 − eps/(ms + eps).
- ``MappingNetwork``: an ``nn.Sequential`` of ``nn.Linear`` / ``nn.LeakyReLU(0.2)`` layers
  loaded with the same state dict, after the loop pixel norm.
- ``truncate``: ``torch.lerp(w_avg, w, psi)``; ψ = 0 gives w_avg exactly and ψ = 1 gives w.
- ``style_mix``: a loop filling layer by layer.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("stylegan")).namespace
pixel_norm, adain, truncate = NS["pixel_norm"], NS["adain"], NS["truncate"]
style_mix, MappingNetwork = NS["style_mix"], NS["MappingNetwork"]


def _maps(g, shape, dtype):
    B, C = shape[:2]
    spread = 0.2 + 2 * torch.rand(B, C, 1, 1, generator=g, dtype=torch.float64)
    offset = 3 * torch.randn(B, C, 1, 1, generator=g, dtype=torch.float64)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * spread + offset).to(dtype)


SHAPES = [(1, 1, 2, 2), (2, 3, 4, 5), (5, 4, 1, 7), (3, 2, 6, 6), (2, 3, 1, 1)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("eps", [1e-8, 0.3])
def test_adain_is_instance_norm_then_style(shape, dtype, eps):
    g = torch.Generator().manual_seed(sum(shape))
    B, C = shape[:2]
    x = _maps(g, shape, dtype)
    s = (1 + torch.randn(B, C, generator=g, dtype=torch.float64)).to(dtype)
    b = torch.randn(B, C, generator=g, dtype=torch.float64).to(dtype)
    ours = adain(x, s, b, eps=eps)
    assert ours.shape == x.shape and ours.dtype == dtype

    if shape[2] * shape[3] > 1:
        normed = F.instance_norm(x, eps=eps)  # no running stats, no affine
    else:  # instance_norm refuses one position; x − μ is 0 there
        normed = torch.zeros_like(x)
    want = torch.empty_like(x)
    for i in range(B):  # styles applied one sample at a time
        want[i] = normed[i] * s[i].view(C, 1, 1) + b[i].view(C, 1, 1)
    torch.testing.assert_close(ours, want)

    loop = torch.empty_like(x)
    for i in range(B):
        for c in range(C):
            var, mean = torch.var_mean(x[i, c], unbiased=False)
            loop[i, c] = s[i, c] * (x[i, c] - mean) / torch.sqrt(var + eps) + b[i, c]
    torch.testing.assert_close(ours, loop)

    for i in range(B):  # each sample alone gives the same rows: no batch statistics
        torch.testing.assert_close(adain(x[i:i + 1], s[i:i + 1], b[i:i + 1], eps=eps),
                                   ours[i:i + 1])


def test_adain_identity_style_is_instance_norm():
    g = torch.Generator().manual_seed(3)
    x = _maps(g, (4, 3, 5, 5), torch.float64)
    ones, zeros = torch.ones(4, 3, dtype=torch.float64), torch.zeros(4, 3, dtype=torch.float64)
    out = adain(x, ones, zeros)
    torch.testing.assert_close(out, F.instance_norm(x, eps=1e-8))
    torch.testing.assert_close(out.mean(dim=(2, 3)), zeros, atol=1e-12, rtol=0)
    torch.testing.assert_close(out.var(dim=(2, 3), unbiased=False), ones)


@pytest.mark.parametrize("shape", [(1, 5), (4, 8), (3, 1), (2, 3, 4, 4), (5, 512)])
@pytest.mark.parametrize("eps", [1e-8, 0.5])
def test_pixel_norm_loop(shape, eps):
    g = torch.Generator().manual_seed(shape[-1])
    z = 2 * torch.randn(shape, generator=g, dtype=torch.float64)
    ours = pixel_norm(z, eps=eps)
    flat = z.movedim(1, -1).reshape(-1, shape[1])  # one row per (sample, position)
    rows = []
    for v in flat:
        rms = torch.sqrt(torch.linalg.vector_norm(v) ** 2 / v.numel() + eps)
        rows.append(v / rms)
    want = torch.stack(rows).reshape(z.movedim(1, -1).shape).movedim(-1, 1)
    torch.testing.assert_close(ours, want)
    ms = (z**2).mean(dim=1)
    torch.testing.assert_close((ours**2).mean(dim=1), ms / (ms + eps))


@pytest.mark.parametrize("args", [(8, 6, 3), (5, 7, 1), (16, 16, 8)])
def test_mapping_network_is_a_sequential(args):
    torch.manual_seed(sum(args))
    z_dim, w_dim, n = args
    net = MappingNetwork(z_dim, w_dim, n).double()
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Linear(z_dim if i == 0 else w_dim, w_dim), nn.LeakyReLU(0.2)]
    seq = nn.Sequential(*layers).double()
    seq.load_state_dict({f"{2 * i}.{k}": v for (name, v) in net.state_dict().items()
                         for i, k in [(int(name.split(".")[1]), name.split(".")[2])]})
    z = 3 * torch.randn(6, z_dim, dtype=torch.float64)
    rms = z.pow(2).mean(1, keepdim=True).add(1e-8).sqrt()
    torch.testing.assert_close(net(z), seq(z / rms))
    assert set(net.state_dict()) == {f"layers.{i}.{k}" for i in range(n)
                                     for k in ("weight", "bias")}


@pytest.mark.parametrize("psi", [0.0, 0.3, 0.7, 1.0, 1.4])
def test_truncate_is_lerp(psi):
    g = torch.Generator().manual_seed(int(psi * 10))
    w = torch.randn(5, 3, 4, generator=g, dtype=torch.float64)
    w_avg = torch.randn(4, generator=g, dtype=torch.float64) + 2
    out = truncate(w, w_avg, psi)
    torch.testing.assert_close(out, torch.lerp(w_avg.expand_as(w), w, psi))
    if psi == 0.0:
        assert torch.equal(out, w_avg.expand_as(w))
    if psi == 1.0:
        torch.testing.assert_close(out, w, atol=1e-15, rtol=0)


@pytest.mark.parametrize("num_layers", [1, 4, 7])
def test_style_mix_loop(num_layers):
    g = torch.Generator().manual_seed(num_layers)
    w1 = torch.randn(3, 5, generator=g)
    w2 = torch.randn(3, 5, generator=g)
    for crossover in range(num_layers + 1):
        want = torch.empty(3, num_layers, 5)
        for layer in range(num_layers):
            want[:, layer] = w1 if layer < crossover else w2
        assert torch.equal(style_mix(w1, w2, crossover, num_layers), want)
