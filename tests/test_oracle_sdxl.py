"""Unit 5.13 `sdxl`: the master against diffusers (test-only, built from configs, no download).

- ``timestep_embedding``: equals ``diffusers.models.embeddings.get_timestep_embedding`` with
  ``flip_sin_to_cos=True, downscale_freq_shift=0`` (SDXL's ``Timesteps(256, True, 0)``), on
  integer and fractional steps, even and odd widths, several ``max_period`` values, and
  differs from it when the layout is flipped or the frequencies are shifted (the comparison
  can fail).
- ``micro_conditioning``: equals what SDXL's UNet does to ``add_time_ids``: diffusers'
  ``Timesteps`` module (``add_time_proj``) applied to the flattened six numbers per image,
  reshaped to (B, 6·dim).
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")
from diffusers.models.embeddings import Timesteps, get_timestep_embedding  # noqa: E402

from course import catalogue  # noqa: E402
from course.grading.checks import reference  # noqa: E402

NS = reference(catalogue.find("sdxl")).namespace
timestep_embedding, micro_conditioning = NS["timestep_embedding"], NS["micro_conditioning"]


@pytest.mark.parametrize(("b", "dim", "max_period"), [(1, 8, 10000), (7, 32, 10000),
                                                      (5, 9, 10000), (4, 256, 10000),
                                                      (3, 10, 100), (3, 1, 10000)])
def test_timestep_embedding_matches_diffusers(b, dim, max_period):
    g = torch.Generator().manual_seed(dim + b)
    for t in (torch.randint(0, 1000, (b,), generator=g),
              torch.rand(b, generator=g) * 1000):
        ours = timestep_embedding(t, dim, max_period)
        theirs = get_timestep_embedding(t, dim, flip_sin_to_cos=True, downscale_freq_shift=0,
                                        max_period=max_period)
        assert ours.shape == (b, dim) and ours.dtype == torch.float32
        torch.testing.assert_close(ours, theirs, rtol=0, atol=2e-4)


def test_timestep_embedding_float64_matches_diffusers_closely():
    # diffusers works in float32; the master keeps float64, which is closer to the exact value
    t = torch.linspace(0, 999.5, 41, dtype=torch.float64)
    ours = timestep_embedding(t, 64)
    theirs = get_timestep_embedding(t, 64, flip_sin_to_cos=True, downscale_freq_shift=0)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, theirs.double(), rtol=0, atol=2e-4)


def test_oracle_can_fail():
    t = torch.arange(0, 1000, 37)
    ours = timestep_embedding(t, 16)
    flipped = get_timestep_embedding(t, 16, flip_sin_to_cos=False, downscale_freq_shift=0)
    shifted = get_timestep_embedding(t, 16, flip_sin_to_cos=True, downscale_freq_shift=1)
    assert (ours - flipped).abs().max() > 0.5
    assert (ours - shifted).abs().max() > 0.5


@pytest.mark.parametrize(("b", "dim"), [(1, 256), (4, 8), (3, 7)])
def test_micro_conditioning_matches_sdxl_add_time_ids(b, dim):
    g = torch.Generator().manual_seed(b * dim)
    orig = torch.randint(256, 2048, (b, 2), generator=g)
    crop = torch.randint(0, 400, (b, 2), generator=g)
    target = torch.randint(512, 1100, (b, 2), generator=g)
    ours = micro_conditioning(orig, crop, target, dim)
    # diffusers' UNet2DConditionModel, addition_embed_type="text_time":
    # time_embeds = add_time_proj(time_ids.flatten()).reshape((B, -1))
    add_time_proj = Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=0)
    time_ids = torch.cat([orig, crop, target], dim=1)
    theirs = add_time_proj(time_ids.flatten()).reshape((b, -1))
    assert ours.shape == (b, 6 * dim)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=5e-4)
