"""Unit 4.7 `lora`: the master against ``peft``'s LoRA implementation (a test-only dependency;
models are built from configs, nothing downloads).

- ``LoRALinear`` equals ``peft.tuners.lora.layer.Linear`` (made by ``get_peft_model`` with
  ``lora_dropout=0``) with the base weights, A and B copied: the output and the gradients
  w.r.t. the input, A and B, in float64, over shapes with one to three input dimensions,
  with and without a bias, ranks 1 to 8 and several α;
- ``merge`` / ``unmerge`` leave the same weight as peft's ``merge`` / ``unmerge``;
- a fresh adapter starts like peft's: B exactly zero, A uniform within ±1/√in_features (the
  draws themselves differ: peft builds an ``nn.Linear`` for A first, which consumes the
  generator), and the adapted layer's output equals the base layer's;
- ``apply_lora`` adapts the same modules and leaves the same parameters trainable as
  ``get_peft_model`` with ``target_modules`` = the same list (peft's matching rule: the name
  equals a target or ends with "." + target), and ``lora_parameters`` returns exactly the
  parameters peft leaves trainable.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course import catalogue
from course.grading.checks import reference

peft = pytest.importorskip("peft")

NS = reference(catalogue.find("lora")).namespace
PEFT_PREFIX = "base_model.model."


class _One(nn.Module):
    def __init__(self, layer: nn.Linear) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)


def _peft_layer(base: nn.Linear, r: int, alpha):
    config = peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=["layer"], lora_dropout=0.0)
    model = peft.get_peft_model(_One(base), config)
    layer = model.base_model.model.layer
    assert isinstance(layer, peft.tuners.lora.layer.Linear)
    return layer


def _pair(in_f, out_f, r, alpha, bias, seed):
    """(ours, peft's, base weight) with the same base, A and B (B non-zero), float64."""
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(out_f, in_f, generator=g, dtype=torch.float64) / math.sqrt(in_f)
    b = torch.randn(out_f, generator=g, dtype=torch.float64) * 0.1
    A = torch.randn(r, in_f, generator=g, dtype=torch.float64) / math.sqrt(in_f)
    B = torch.randn(out_f, r, generator=g, dtype=torch.float64) * 0.5

    def base():
        lin = nn.Linear(in_f, out_f, bias=bias, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(weight)
            if bias:
                lin.bias.copy_(b)
        return lin

    ours = NS["LoRALinear"](base(), r, alpha)
    theirs = _peft_layer(base(), r, alpha).double()
    with torch.no_grad():
        ours.lora_A.copy_(A)
        ours.lora_B.copy_(B)
        theirs.lora_A["default"].weight.copy_(A)
        theirs.lora_B["default"].weight.copy_(B)
    return ours, theirs, weight


CASES = [  # in, out, r, alpha, bias, leading dims
    (6, 5, 2, 4, True, (3,)),
    (8, 8, 4, 16, True, (2, 3)),
    (5, 3, 1, 1, False, (1,)),
    (7, 4, 3, 1, True, ()),
    (16, 12, 8, 8, True, (4,)),
    (3, 9, 5, 2.5, False, (2,)),
]


@pytest.mark.parametrize(("in_f", "out_f", "r", "alpha", "bias", "lead"), CASES)
def test_forward_and_gradients_equal_peft(in_f, out_f, r, alpha, bias, lead):
    ours, theirs, _ = _pair(in_f, out_f, r, alpha, bias, seed=in_f * 31 + r)
    assert ours.scaling == pytest.approx(theirs.scaling["default"], rel=1e-15)
    g = torch.Generator().manual_seed(7)
    x = torch.randn(*lead, in_f, generator=g, dtype=torch.float64)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = ours(x1), theirs(x2)
    torch.testing.assert_close(y1, y2, rtol=1e-12, atol=1e-12)
    cot = torch.randn(y1.shape, generator=g, dtype=torch.float64)
    (y1 * cot).sum().backward()
    (y2 * cot).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.lora_A.grad, theirs.lora_A["default"].weight.grad,
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.lora_B.grad, theirs.lora_B["default"].weight.grad,
                               rtol=1e-12, atol=1e-12)
    assert ours.base.weight.grad is None and theirs.base_layer.weight.grad is None


@pytest.mark.parametrize(("in_f", "out_f", "r", "alpha", "bias", "lead"), CASES)
def test_merge_and_unmerge_equal_peft(in_f, out_f, r, alpha, bias, lead):
    ours, theirs, weight = _pair(in_f, out_f, r, alpha, bias, seed=in_f * 17 + r)
    x = torch.randn(*lead, in_f, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    before = ours(x)
    ours.merge()
    theirs.merge()
    assert ours.merged and theirs.merged
    torch.testing.assert_close(ours.base.weight, theirs.base_layer.weight, rtol=1e-12,
                               atol=1e-12)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours(x), before, rtol=1e-12, atol=1e-12)
    ours.unmerge()
    theirs.unmerge()
    assert not ours.merged and not theirs.merged
    torch.testing.assert_close(ours.base.weight, theirs.base_layer.weight, rtol=1e-12,
                               atol=1e-12)
    torch.testing.assert_close(ours.base.weight, weight, rtol=1e-12, atol=1e-12)


def test_fresh_adapter_starts_like_peft():
    in_f, out_f, r = 200, 30, 16
    torch.manual_seed(0)
    ours = NS["LoRALinear"](nn.Linear(in_f, out_f), r, 8)
    theirs = _peft_layer(nn.Linear(in_f, out_f), r, 8)
    bound = 1 / math.sqrt(in_f)
    for A, B in ((ours.lora_A, ours.lora_B),
                 (theirs.lora_A["default"].weight, theirs.lora_B["default"].weight)):
        A, B = A.detach(), B.detach()
        assert tuple(A.shape) == (r, in_f) and tuple(B.shape) == (out_f, r)
        assert bool((B == 0).all())
        assert float(A.abs().max()) <= bound * (1 + 1e-6)
        assert float(A.abs().max()) > 0.95 * bound  # it fills the interval (3200 draws)
        # both uniform on ±bound: variance bound²/3 within 10 %
        assert float(A.double().var()) == pytest.approx(bound**2 / 3, rel=0.1)
    x = torch.randn(5, in_f)
    torch.testing.assert_close(ours(x), ours.base(x), rtol=0, atol=0)
    torch.testing.assert_close(theirs(x), theirs.base_layer(x), rtol=0, atol=0)


class _Attention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d)
                                                                for _ in range(4))


class _Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.attn = _Attention(d)
        self.fc = nn.Linear(d, 2 * d)
        self.fc_out = nn.Linear(2 * d, d, bias=False)
        self.proj = nn.Linear(d, d)


class _Model(nn.Module):
    def __init__(self, d=4):
        super().__init__()
        self.embed = nn.Embedding(9, d)
        self.layers = nn.ModuleList([_Block(d) for _ in range(3)])
        self.classifier = nn.Linear(d, 2)


def _ours_names(model: nn.Module) -> tuple[set[str], set[str]]:
    adapted = {n for n, m in model.named_modules() if isinstance(m, NS["LoRALinear"])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    return adapted, trainable


def _peft_names(model: nn.Module) -> tuple[set[str], set[str]]:
    def plain(name: str) -> str:
        name = name.removeprefix(PEFT_PREFIX)
        return (name.replace(".base_layer.", ".base.").replace(".lora_A.default.weight",
                                                                ".lora_A")
                .replace(".lora_B.default.weight", ".lora_B"))

    adapted = {plain(n) for n, m in model.named_modules()
               if isinstance(m, peft.tuners.lora.layer.Linear)}
    trainable = {plain(n) for n, p in model.named_parameters() if p.requires_grad}
    return adapted, trainable


TARGETS = [
    ["q_proj", "v_proj"],
    ["proj"],  # layers.i.proj only, not q_proj: peft matches whole name components
    ["fc", "classifier"],
    ["layers.1.attn.k_proj", "2.fc_out"],
    ["attn.out_proj"],
]


@pytest.mark.parametrize("targets", TARGETS, ids=["+".join(t) for t in TARGETS])
def test_apply_lora_adapts_what_peft_adapts(targets):
    torch.manual_seed(1)
    ours = NS["apply_lora"](_Model(), targets, 2, 4)
    torch.manual_seed(1)
    config = peft.LoraConfig(r=2, lora_alpha=4, target_modules=list(targets), lora_dropout=0.0)
    theirs = peft.get_peft_model(_Model(), config)
    adapted, trainable = _ours_names(ours)
    assert adapted
    assert (adapted, trainable) == _peft_names(theirs)
    got = {id(p) for p in NS["lora_parameters"](ours)}
    assert len(got) == len(NS["lora_parameters"](ours)) == len(trainable)
    assert got == {id(p) for p in ours.parameters() if p.requires_grad}
