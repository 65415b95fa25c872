"""Drivers for unit 3.8 `bahdanau-attention`.

- :func:`decode` runs the learner's ``AttentionDecoder`` (built and loaded by the probe) with the
  forward of its ``attention`` submodule replaced by the grader's own additive attention, which
  reads the very same parameters (``attention.W_enc``, ``attention.W_dec``, ``attention.v``). The
  decoder checks therefore judge the decoder alone: a mistake in the learner's
  ``AdditiveAttention`` costs points in the attention checks only, and gradients still reach
  every parameter of the learner's module.

It runs where learner code runs and returns plain tensors, never verdicts.
"""

from __future__ import annotations

import torch
from torch import nn

from course.grading.probes import ProbeError


def _additive(attn: nn.Module):
    """e_j = v·tanh(W_dec s + W_enc h_j), masked to -inf, softmax over S, context = Σ α_j h_j."""

    def forward(dec_state, enc_outputs, src_mask=None):
        keys = attn.W_enc(enc_outputs)
        query = attn.W_dec(dec_state)[:, None, :]
        scores = attn.v(torch.tanh(keys + query))[..., 0]
        if src_mask is not None:
            scores = torch.where(src_mask, scores, torch.full_like(scores, float("-inf")))
        alpha = torch.softmax(scores, dim=-1)
        return torch.einsum("bs,bsd->bd", alpha, enc_outputs), alpha

    return forward


def decode(ns: dict, decoder, tgt_in, enc_outputs, init_state, src_mask=None):
    """``decoder(tgt_in, enc_outputs, init_state, src_mask)`` with a correct attention."""
    if not isinstance(decoder, nn.Module):
        raise ProbeError("AttentionDecoder(...) should build a torch.nn.Module")
    attn = getattr(decoder, "attention", None)
    if not isinstance(attn, nn.Module) or not all(
        isinstance(getattr(attn, name, None), nn.Linear) for name in ("W_enc", "W_dec", "v")
    ):
        raise ProbeError(
            "AttentionDecoder needs a submodule `attention` (an AdditiveAttention) whose W_enc, "
            "W_dec and v are nn.Linear layers"
        )
    attn.forward = _additive(attn)
    if src_mask is None:
        return decoder(tgt_in, enc_outputs, init_state)
    return decoder(tgt_in, enc_outputs, init_state, src_mask)
