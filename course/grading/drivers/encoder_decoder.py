"""Drivers for unit 3.6 `encoder-decoder`.

:func:`two_steps_from_zero` runs a cell from no state, then one more step from the state it
returned: the first step checks the zero start, the second tells apart mistakes that coincide
when h = 0 (where W_hn (r ⊙ h) and r ⊙ (W_hn h) both vanish).

:func:`logits_with_standin_cell` checks the wiring of an implementation's ``EncoderDecoder``
apart from its ``GRUCell``: while the model is built, the namespace's name ``GRUCell`` is bound
to :class:`StandInGRUCell`, a grader-owned cell with ``torch.nn.GRUCell``'s layout and
equations written in elementary operations (so it trips no forbidden-call rule). A model that
creates its cells by calling ``GRUCell(...)`` (as the exercise says) then runs on a correct
cell, and one mistake in the learner's cell does not sink the model's check. The name is
restored afterwards, whatever happens.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from course.grading.probes import ProbeError, lookup


class StandInGRUCell(nn.Module):
    """``torch.nn.GRUCell``'s parameters (gate order reset, update, new) and equations."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        bound = 1.0 / math.sqrt(hidden_size)
        for param in self.parameters():
            nn.init.uniform_(param, -bound, bound)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        gi = x @ self.weight_ih.T
        gh = h @ self.weight_hh.T
        if self.bias_ih is not None:
            gi = gi + self.bias_ih
            gh = gh + self.bias_hh
        i_r, i_z, i_n = gi.chunk(3, dim=1)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h


def two_steps_from_zero(
    ns: dict, cell: nn.Module, x1: torch.Tensor, x2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``h1 = cell(x1)`` (no state given), ``h2 = cell(x2, h1)``; returns ``(h1, h2)``."""
    h1 = cell(x1)
    return h1, cell(x2, h1)


def logits_with_standin_cell(
    ns: dict,
    args: tuple,
    state_dict: dict[str, torch.Tensor],
    src: torch.Tensor,
    tgt_in: torch.Tensor,
) -> torch.Tensor:
    """Build ``EncoderDecoder(*args)`` with ``GRUCell`` bound to the stand-in cell, cast it to
    the state dict's dtype, load the state dict, and return the logits of ``(src, tgt_in)``."""
    cls = lookup(ns, "EncoderDecoder")
    had = "GRUCell" in ns
    saved = ns.get("GRUCell")
    ns["GRUCell"] = StandInGRUCell
    try:
        model = cls(*args)
    finally:
        if had:
            ns["GRUCell"] = saved
        else:
            del ns["GRUCell"]
    if not isinstance(model, nn.Module):
        raise ProbeError("EncoderDecoder(...) should build a torch.nn.Module")
    dtype = next(iter(state_dict.values())).dtype
    model = model.to(device=src.device, dtype=dtype)
    try:
        model.load_state_dict({k: v.to(src.device) for k, v in state_dict.items()})
    except RuntimeError as exc:
        raise ProbeError(
            f"could not load the grader's weights into EncoderDecoder: {exc}"
        ) from None
    return model(src, tgt_in)
