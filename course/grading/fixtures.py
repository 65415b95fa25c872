"""Grader-owned objects that probes hand to learner code (stand-in models and the like).

They live in the ``course`` package so that the isolated child can build them; they hold no
reference solution. Each is deterministic and works in any floating dtype and on any device.
"""

from __future__ import annotations

import torch
from torch import nn


class ToyEpsModel(nn.Module):
    """A fixed, smooth, time-dependent stand-in for an ε-prediction network.

    ``model(x_t, t)`` with x_t (B, ...) and t a LongTensor (B,): returns
    ``tanh(a·x_t + b·sin(x_t)) · (1 + t / scale)`` with constants chosen per call site.
    Asserts that t is a LongTensor of shape (B,), as the DDPM contract requires.
    """

    def __init__(self, a: float = 0.7, b: float = 0.3, scale: float = 50.0) -> None:
        super().__init__()
        self.a, self.b, self.scale = a, b, scale
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, torch.Tensor) or t.dtype != torch.long:
            raise TypeError("the model must be called as model(x_t, t) with t a LongTensor")
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must have shape (B,) = ({x.shape[0]},), got {tuple(t.shape)}")
        shape = (-1,) + (1,) * (x.dim() - 1)
        gain = 1 + t.to(x.dtype).view(shape) / self.scale
        return torch.tanh(self.a * x + self.b * torch.sin(x)) * gain


class GaussianOptimalEps(nn.Module):
    """The exact ε-predictor for data distributed N(mean, std²) per coordinate.

    For x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε with x_0 ~ N(μ, s²), E[ε | x_t] =
    √(1−ᾱ_t) (x_t − √ᾱ_t μ) / (ᾱ_t s² + 1 − ᾱ_t). A correct DDPM sampler driven by this model
    produces samples whose mean and variance approach μ and s².
    """

    def __init__(self, mean: float, std: float, alphas_cumprod: torch.Tensor) -> None:
        super().__init__()
        self.mean, self.std = mean, std
        self.alphas_cumprod = alphas_cumprod.double().cpu()

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, torch.Tensor) or t.dtype != torch.long:
            raise TypeError("the model must be called as model(x_t, t) with t a LongTensor")
        abar = self.alphas_cumprod[t.cpu()].to(device=x.device, dtype=x.dtype)
        abar = abar.view((-1,) + (1,) * (x.dim() - 1))
        var = abar * self.std**2 + 1 - abar
        return torch.sqrt(1 - abar) * (x - torch.sqrt(abar) * self.mean) / var


class StandInLSTMCell(nn.Module):
    """A correct LSTM cell with given weights (``torch.nn.LSTMCell``'s layout and equations,
    gates input, forget, cell, output), written with elementary operations so that a unit
    forbidding the library cells can hand it to the learner's ``lstm_forward``: a mistake in
    the learner's own cell then costs only the cell's checks.

    ``cell(x, state=None) -> (h, c)``, x (B, I), state a pair of (B, H) tensors or None.
    """

    def __init__(self, weight_ih: torch.Tensor, weight_hh: torch.Tensor,
                 bias_ih: torch.Tensor | None = None, bias_hh: torch.Tensor | None = None) -> None:
        super().__init__()
        self.weight_ih, self.weight_hh = weight_ih, weight_hh
        self.bias_ih, self.bias_hh = bias_ih, bias_hh
        self.hidden_size = weight_hh.shape[1]

    def forward(self, x: torch.Tensor, state=None):
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        h, c = state
        pre = x @ self.weight_ih.T + h @ self.weight_hh.T
        if self.bias_ih is not None:
            pre = pre + self.bias_ih + self.bias_hh
        i, f, g, o = pre.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class StandInPrior(nn.Module):
    """A text-conditioned prior ``model(x_t, t, text_emb) -> (B, D)`` with given weights: two
    linear layers with a tanh between them, fed [x_t, text_emb, sin(t/period), cos(t/period)]
    (the layout of unit 5.16's given ``TinyPrior``), so that the checks of ``prior_loss`` do
    not depend on the learner's copy of that class.

    The weights become this module's parameters (gradients w.r.t. them are checked). Raises
    unless t is a (B,) LongTensor and text_emb has x_t's shape.
    """

    def __init__(self, inp_weight: torch.Tensor, inp_bias: torch.Tensor,
                 out_weight: torch.Tensor, out_bias: torch.Tensor, period: float = 10.0) -> None:
        super().__init__()
        self.inp_weight, self.inp_bias = nn.Parameter(inp_weight), nn.Parameter(inp_bias)
        self.out_weight, self.out_bias = nn.Parameter(out_weight), nn.Parameter(out_bias)
        self.period = period

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, torch.Tensor) or t.dtype != torch.long or t.shape != x_t.shape[:1]:
            raise TypeError("call the prior as model(x_t, t, text_emb) with t a (B,) LongTensor")
        if text_emb.shape != x_t.shape:
            raise ValueError(f"text_emb must have x_t's shape {tuple(x_t.shape)}, "
                             f"got {tuple(text_emb.shape)}")
        phase = t.to(x_t.dtype)[:, None] / self.period
        h = torch.cat([x_t, text_emb, torch.sin(phase), torch.cos(phase)], dim=-1)
        hidden = torch.tanh(h @ self.inp_weight.T + self.inp_bias)
        return hidden @ self.out_weight.T + self.out_bias


def _check_step(x_t: torch.Tensor, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor) or t.dtype != torch.long or t.shape != x_t.shape[:1]:
        raise TypeError("call the classifier as classifier(x_t, t), t a (B,) LongTensor")


class StandInLinearClassifier(nn.Module):
    """``classifier(x_t, t) -> (B, C)`` logits flatten(x_t)·Wᵀ + b with given weights, the
    same at every step (the layout of unit 5.10's given ``LinearClassifier``)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(weight), nn.Parameter(bias)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        _check_step(x_t, t)
        return x_t.flatten(1) @ self.weight.T + self.bias


class StandInNoiseAwareClassifier(nn.Module):
    """``classifier(x_t, t) -> (B, C)``: Linear → tanh → Linear on [flatten(x_t),
    sin(t/period), cos(t/period)] with given weights (unit 5.10's ``NoiseAwareClassifier``)."""

    def __init__(self, inp_weight: torch.Tensor, inp_bias: torch.Tensor,
                 out_weight: torch.Tensor, out_bias: torch.Tensor, period: float = 10.0) -> None:
        super().__init__()
        self.inp_weight, self.inp_bias = nn.Parameter(inp_weight), nn.Parameter(inp_bias)
        self.out_weight, self.out_bias = nn.Parameter(out_weight), nn.Parameter(out_bias)
        self.period = period

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        _check_step(x_t, t)
        phase = t.to(x_t.dtype)[:, None] / self.period
        h = torch.cat([x_t.flatten(1), torch.sin(phase), torch.cos(phase)], dim=1)
        return torch.tanh(h @ self.inp_weight.T + self.inp_bias) @ self.out_weight.T + self.out_bias


FIXTURES = {"ToyEpsModel": ToyEpsModel, "GaussianOptimalEps": GaussianOptimalEps,
            "StandInLSTMCell": StandInLSTMCell, "StandInPrior": StandInPrior,
            "StandInLinearClassifier": StandInLinearClassifier,
            "StandInNoiseAwareClassifier": StandInNoiseAwareClassifier}


def build(name: str, kwargs: dict, device: torch.device) -> object:
    obj = FIXTURES[name](**kwargs)
    return obj.to(device) if isinstance(obj, nn.Module) else obj
