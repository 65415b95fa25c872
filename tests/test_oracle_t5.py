"""Unit 4.4 `t5`: the master against independent implementations.

- ``relative_position_bucket`` equals ``transformers``' ``T5Attention._relative_position_bucket``
  (the Mesh TensorFlow scheme T5 was trained with) for every offset in a wide range, encoder and
  decoder, over many even and odd ``num_buckets`` and ``max_distance``, on 1-D and 2-D inputs;
- ``T5RelativeBias`` equals ``T5Attention.compute_bias`` of a ``T5Attention`` built from a
  ``T5Config`` (no download) with its ``relative_attention_bias`` weights copied, for the encoder
  (``is_decoder=False``) and the decoder, with gradients;
- ``span_corrupt`` equals T5's own construction written out from its preprocessing code
  (``random_spans_noise_mask``: cut lengths from a shuffled indicator, ``cumsum`` and a segment
  sum; then ``noise_span_to_unique_sentinel`` / ``nonnoise_span_to_unique_sentinel``), fed with
  the same two ``randperm`` draws, over many sizes and seeds;
- every setting the hidden checks use is free of float32 / float64 knife edges, as the checks
  claim: the bucket ids do not depend on the precision or on how the logarithm is written, and
  ``round(L · density)`` gives the same count in float32 and float64.
"""

from __future__ import annotations

import importlib
import math

import pytest
import torch

from course import catalogue
from course.grading.checks import reference

NS = reference(catalogue.find("t5")).namespace
CHECKS = importlib.import_module("autograder.transformers.test_t5")

transformers = pytest.importorskip("transformers")
from transformers import T5Config  # noqa: E402
from transformers.models.t5.modeling_t5 import T5Attention  # noqa: E402

HF_BUCKET = T5Attention._relative_position_bucket


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("num_buckets", [4, 5, 6, 8, 11, 16, 32, 33, 64])
@pytest.mark.parametrize("max_distance", [8, 12, 20, 50, 128, 300])
def test_bucket_equals_transformers(bidirectional, num_buckets, max_distance):
    half = num_buckets // 2 if bidirectional else num_buckets
    if half // 2 == 0 or max_distance <= half // 2:
        pytest.skip("degenerate setting (max_exact = 0 or max_distance ≤ max_exact)")
    rel = torch.arange(-3000, 3001)
    got = NS["relative_position_bucket"](rel, bidirectional, num_buckets, max_distance)
    want = HF_BUCKET(rel, bidirectional=bidirectional, num_buckets=num_buckets,
                     max_distance=max_distance)
    assert got.dtype == torch.int64 and torch.equal(got, want)
    assert int(got.min()) >= 0 and int(got.max()) < num_buckets
    matrix = torch.arange(17)[None, :] - torch.arange(23)[:, None]
    assert torch.equal(NS["relative_position_bucket"](matrix, bidirectional, num_buckets,
                                                      max_distance),
                       HF_BUCKET(matrix, bidirectional, num_buckets, max_distance))


def test_bucket_defaults_equal_transformers():
    rel = torch.arange(-500, 501)
    assert torch.equal(NS["relative_position_bucket"](rel), HF_BUCKET(rel))


@pytest.mark.parametrize("is_decoder", [False, True])
@pytest.mark.parametrize(("heads", "num_buckets", "max_distance", "Lq", "Lk"),
                         [(3, 8, 20, 5, 9), (2, 32, 128, 40, 40), (1, 11, 16, 1, 30),
                          (4, 16, 64, 70, 3)])
def test_bias_equals_compute_bias(is_decoder, heads, num_buckets, max_distance, Lq, Lk):
    config = T5Config(d_model=8 * heads, d_kv=8, num_heads=heads,
                      relative_attention_num_buckets=num_buckets,
                      relative_attention_max_distance=max_distance, is_decoder=is_decoder)
    hf = T5Attention(config, has_relative_attention_bias=True).double()
    ours = NS["T5RelativeBias"](heads, num_buckets, max_distance,
                                bidirectional=not is_decoder).double()
    weight = torch.randn(num_buckets, heads, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(heads * Lq + Lk))
    with torch.no_grad():
        hf.relative_attention_bias.weight.copy_(weight)
        ours.embedding.weight.copy_(weight)
    got, want = ours(Lq, Lk), hf.compute_bias(Lq, Lk)
    assert got.shape == (1, heads, Lq, Lk)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    cot = torch.randn(got.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (got * cot).sum().backward()
    (want * cot).sum().backward()
    torch.testing.assert_close(ours.embedding.weight.grad, hf.relative_attention_bias.weight.grad,
                               rtol=1e-12, atol=1e-12)


# -- span corruption, written out from T5's preprocessors -----------------------------------------

def _t5_segment_lengths(num_items, num_segments, perm):
    """T5's ``_random_segmentation``: a 0/1 'first in segment' vector (the ones at the shuffled
    positions), its cumulative sum as segment ids, and the segment sizes."""
    first_in_segment = torch.zeros(num_items, dtype=torch.long)
    first_in_segment[perm[: num_segments - 1] + 1] = 1
    segment_id = torch.cumsum(first_in_segment, 0)
    return torch.bincount(segment_id, minlength=num_segments)


def _t5_noise_mask(length, noise, spans, generator):
    noise_lengths = _t5_segment_lengths(noise, spans,
                                        torch.randperm(noise - 1, generator=generator))
    keep_lengths = _t5_segment_lengths(length - noise, spans,
                                       torch.randperm(length - noise - 1, generator=generator))
    interleaved = torch.stack([keep_lengths, noise_lengths], dim=1).reshape(-1)
    span_starts = torch.cumsum(interleaved, 0)[:-1]
    span_start_indicator = torch.zeros(length, dtype=torch.long)
    span_start_indicator[span_starts] = 1
    span_num = torch.cumsum(span_start_indicator, 0)
    return span_num % 2 == 1


def _t5_to_unique_sentinel(tokens, noise_mask, sentinels):
    """T5's ``noise_span_to_unique_sentinel``: the first token of each noise span becomes the
    next sentinel, the rest of the span is dropped."""
    prev_is_noise = torch.cat([torch.tensor([False]), noise_mask[:-1]])
    first_noise = noise_mask & ~prev_is_noise
    subsequent_noise = noise_mask & prev_is_noise
    index = torch.cumsum(first_noise.long(), 0) - 1
    out = torch.where(first_noise, sentinels[index.clamp(min=0)], tokens)
    return out[~subsequent_noise]


def _sizes(L, density, mean):
    noise = min(max(round(L * density), 1), L - 1)
    return noise, max(1, round(noise / mean))


CASES = [(L, density, mean) for L in (2, 3, 5, 9, 16, 37, 64, 150)
         for density in (0.1, 0.15, 0.3, 0.5) for mean in (1, 2, 3, 5.5)]


@pytest.mark.parametrize(("L", "density", "mean"), CASES)
def test_span_corrupt_equals_t5_construction(L, density, mean):
    noise, spans = _sizes(L, density, mean)
    if spans > L - noise:
        pytest.skip("more spans than kept tokens")
    sentinels = torch.arange(999, 999 - spans, -1)  # T5: vocab_size - 1, vocab_size - 2, ...
    for seed in range(4):
        tokens = torch.randint(0, 900, (L,), generator=torch.Generator().manual_seed(100 + seed))
        before = tokens.clone()
        got = NS["span_corrupt"](tokens, density, mean, sentinels.tolist(),
                                 generator=torch.Generator().manual_seed(seed))
        mask = _t5_noise_mask(L, noise, spans, torch.Generator().manual_seed(seed))
        assert int(mask.sum()) == noise and not mask[0] and mask[-1]
        inputs = _t5_to_unique_sentinel(tokens, mask, sentinels)
        targets = _t5_to_unique_sentinel(tokens, ~mask, sentinels)
        assert torch.equal(got[0], inputs) and torch.equal(got[1], targets)
        assert torch.equal(tokens, before)
        assert got[0].dtype == got[1].dtype == torch.int64


def test_span_corrupt_paper_example():
    """The paper's Figure 2 example, in the layout of T5's code (which always ends with a noise
    span): 'Thank you [for inviting] me to your party [last week]' becomes the inputs 'Thank you
    <X> me to your party <Y>' and the targets '<X> for inviting <Y> last week'. Ten tokens at
    density 0.4 and mean span 2 give 4 noise tokens in 2 spans, so 1 layout in 15 is this one:
    it turns up among the first seeds."""
    words = "Thank you for inviting me to your party last week".split()
    names = {100: "<X>", 99: "<Y>"}
    seen = []
    for seed in range(200):
        inputs, targets = NS["span_corrupt"](torch.arange(10), 0.4, 2, [100, 99],
                                             generator=torch.Generator().manual_seed(seed))
        shown_in = " ".join(names.get(t, words[t] if t < 10 else "?") for t in inputs.tolist())
        shown_out = " ".join(names.get(t, words[t] if t < 10 else "?") for t in targets.tolist())
        seen.append((shown_in, shown_out))
    assert ("Thank you <X> me to your party <Y>", "<X> for inviting <Y> last week") in seen
    assert len(set(seen)) == 15  # every layout of 2 + 2 noise and 6 = a + b kept tokens


# -- the hidden checks' settings are free of precision knife edges --------------------------------

def _bucket_variants(n, num_buckets, max_distance):
    max_exact = num_buckets // 2
    values = []
    for dtype in (torch.float32, torch.float64):
        x = n.to(dtype)
        values.append(torch.log(x / max_exact) / math.log(max_distance / max_exact))
        values.append((torch.log(x) - math.log(max_exact))
                      / (math.log(max_distance) - math.log(max_exact)))
        values.append(torch.log2(x / max_exact) / math.log2(max_distance / max_exact))
    values.append(torch.tensor([math.log(v / max_exact) / math.log(max_distance / max_exact)
                                if v > 0 else -1.0 for v in n.tolist()]))
    out = []
    for v in values:
        large = (max_exact + torch.floor(v * (num_buckets - max_exact)).clamp(min=-1).long())
        out.append(torch.where(n < max_exact, n, large.clamp(max=num_buckets - 1)))
    return out


SETTINGS = ([(nb, md, True) for nb, md in CHECKS.BIDIRECTIONAL + [(32, 128), (8, 20), (11, 16),
                                                                   (16, 10), (16, 64)]]
            + [(nb, md, False) for nb, md in CHECKS.CAUSAL + [(32, 128), (8, 20), (6, 12),
                                                              (16, 64)]])


@pytest.mark.parametrize(("num_buckets", "max_distance", "bidirectional"), SETTINGS)
def test_check_settings_have_no_precision_knife_edges(num_buckets, max_distance, bidirectional):
    half = num_buckets // 2 if bidirectional else num_buckets
    n = torch.arange(0, 20001)
    first, *others = _bucket_variants(n, half, max_distance)
    for other in others:
        assert torch.equal(first, other)


def test_check_span_sizes_have_no_precision_knife_edges():
    for L, density, mean in CHECKS.SPAN_CASES + CHECKS.SPAN_EDGES + [(30, 0.3, 3), (16, 0.15, 1)]:
        x64 = L * density
        x32 = float(torch.tensor(L, dtype=torch.float32) * torch.tensor(density,
                                                                        dtype=torch.float32))
        assert round(x64) == round(x32), (L, density)
        noise = min(max(round(x64), 1), L - 1)
        assert round(noise / mean) == round(float(torch.tensor(noise / mean,
                                                               dtype=torch.float32)))
