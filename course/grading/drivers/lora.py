"""Drivers for unit 4.7 `lora`.

``LoRALinear`` takes a layer object (the frozen ``nn.Linear``), which a probe cannot carry, so
every check of it goes through a driver here: the driver builds the grader's ``nn.Linear`` with
the given weight and bias (on the learner's device, in the weight's dtype), wraps it in the
learner's ``LoRALinear``, copies the given ``lora_A`` and ``lora_B`` in where the check fixes
them, and reports what it observes: outputs, gradients, the weight after ``merge`` and
``unmerge``, parameter names, shapes, dtypes and flags, or a short training run's losses.

``apply_lora`` and ``lora_parameters`` are driven on a grader-owned model (a two-block
transformer-like tree of ``nn.Linear``, ``nn.LayerNorm`` and ``nn.Embedding``) with a
grader-owned stand-in for ``LoRALinear`` (:class:`LoRALinear` below: the constructor and the
attributes of the contract, frozen ``base``, ``lora_A``, ``lora_B``; no forward pass), put in
place of the learner's class in the learner's namespace for the duration of the call, so that a
mistake in the learner's ``LoRALinear`` costs only that task's checks.

Drivers run where learner code runs and return plain data (tensors, numbers, strings, flags),
never verdicts; the grader compares in its own process.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from course.grading.drivers.modules import StandIn
from course.grading.probes import ProbeError, cotangents, lookup

# -- LoRALinear -------------------------------------------------------------------------------


def _linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    """The grader's pre-trained layer: ``nn.Linear`` holding ``weight`` (out, in) and ``bias``."""
    out_features, in_features = weight.shape
    base = nn.Linear(in_features, out_features, bias=bias is not None, device=weight.device,
                     dtype=weight.dtype)
    with torch.no_grad():
        base.weight.copy_(weight)
        if bias is not None:
            base.bias.copy_(bias)
    return base


def _adapter(ns: dict, base: nn.Linear, r: int, alpha, lora_A=None, lora_B=None) -> nn.Module:
    """The learner's ``LoRALinear(base, r, alpha)``, with ``lora_A`` / ``lora_B`` copied in."""
    layer = lookup(ns, "LoRALinear")(base, r, alpha)
    if not isinstance(layer, nn.Module):
        raise ProbeError("LoRALinear(base, r, alpha) should build a torch.nn.Module")
    want = {"lora_A": (r, base.in_features), "lora_B": (base.out_features, r)}
    for name, value in (("lora_A", lora_A), ("lora_B", lora_B)):
        if value is None:
            continue
        param = getattr(layer, name, None)
        if not isinstance(param, torch.Tensor):
            raise ProbeError(f"LoRALinear has no tensor attribute `{name}`")
        if tuple(param.shape) != tuple(value.shape):
            raise ProbeError(
                f"could not copy the grader's {name} into your layer: your {name} has shape "
                f"{tuple(param.shape)}, expected {want[name]} (lora_A is (r, in_features), "
                "lora_B is (out_features, r))"
            )
        with torch.no_grad():
            param.copy_(value)
    return layer


def _output(layer: nn.Module, x: torch.Tensor, what: str = "forward(x)") -> torch.Tensor:
    out = layer(x)
    if not isinstance(out, torch.Tensor):
        raise ProbeError(f"LoRALinear.{what} should return a tensor")
    return out


def layout(ns: dict, weight: torch.Tensor, bias: torch.Tensor | None, r: int, alpha) -> dict:
    """Parameter names with shape, dtype and requires_grad; ``scaling``; ``merged``; whether
    ``base`` is the very layer passed in."""
    base = _linear(weight, bias)
    layer = _adapter(ns, base, r, alpha)
    params = {
        name: {"shape": [int(s) for s in p.shape], "dtype": str(p.dtype).replace("torch.", ""),
               "requires_grad": bool(p.requires_grad)}
        for name, p in layer.named_parameters()
    }
    scaling = getattr(layer, "scaling", None)
    merged = getattr(layer, "merged", None)
    return {
        "parameters": params,
        "scaling": float(scaling) if isinstance(scaling, (int, float)) else repr(scaling),
        "merged": merged if isinstance(merged, bool) else repr(merged),
        "base is the layer passed in": getattr(layer, "base", None) is base,
    }


def initial(ns: dict, in_features: int, out_features: int, r: int, alpha, device) -> dict:
    """``lora_A`` and ``lora_B`` of a freshly built layer (float32), for the statistics."""
    base = nn.Linear(in_features, out_features, device=device)
    layer = _adapter(ns, base, r, alpha)
    return {"lora_A": getattr(layer, "lora_A", None), "lora_B": getattr(layer, "lora_B", None)}


def fresh(ns: dict, weight, bias, r: int, alpha, x: torch.Tensor) -> dict:
    """The output of a freshly built layer (its own random lora_A, its own lora_B) and its
    lora_B: with B = 0 the output is base(x)."""
    layer = _adapter(ns, _linear(weight, bias), r, alpha)
    return {"output": _output(layer, x), "lora_B": getattr(layer, "lora_B", None)}


def forward(ns: dict, weight, bias, lora_A, lora_B, alpha, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` with the given base, lora_A and lora_B."""
    layer = _adapter(ns, _linear(weight, bias), lora_A.shape[0], alpha, lora_A, lora_B)
    return _output(layer, x)


def gradients(ns: dict, weight, bias, lora_A, lora_B, alpha, x: torch.Tensor) -> dict:
    """The output and the gradients of ⟨output, fixed cotangent⟩ w.r.t. x, lora_A, lora_B,
    and the ``.grad`` left on base.weight and base.bias (None when frozen)."""
    base = _linear(weight, bias)
    layer = _adapter(ns, base, lora_A.shape[0], alpha, lora_A, lora_B)
    with torch.enable_grad():
        x = x.clone().requires_grad_(True)
        out = _output(layer, x)
        if not out.requires_grad:
            raise ProbeError("LoRALinear.forward(x) is not differentiable: its output has no "
                             "autograd history (detached, .data or torch.no_grad() on the way?)")
        [cot] = cotangents([out])
        (out * cot).sum().backward()
    found: dict[str, Any] = {"output": out.detach(), "x": x.grad}
    for name in ("lora_A", "lora_B"):
        found[name] = getattr(layer, name).grad
    found["base.weight"] = base.weight.grad
    if base.bias is not None:
        found["base.bias"] = base.bias.grad
    return found


def _merge_call(layer: nn.Module, method: str) -> None:
    fn = getattr(layer, method, None)
    if fn is None:
        raise ProbeError(f"LoRALinear has no method `{method}`")
    with torch.enable_grad():  # as in a training script
        fn()


def _weight_state(base: nn.Linear, weight_before: torch.Tensor, label: str) -> dict:
    w = base.weight
    return {
        f"weight {label}": torch.Tensor.detach(w).clone(),
        f"weight {label} is the same Parameter": w is weight_before,
        f"weight {label} requires_grad": bool(w.requires_grad),
    }


def merge(ns: dict, weight, bias, lora_A, lora_B, alpha, x: torch.Tensor) -> dict:
    """Forward, ``merge()``, the weight and flags after it, forward again."""
    base = _linear(weight, bias)
    original = base.weight
    layer = _adapter(ns, base, lora_A.shape[0], alpha, lora_A, lora_B)
    found: dict[str, Any] = {"output before merge": _output(layer, x)}
    _merge_call(layer, "merge")
    found.update(_weight_state(base, original, "after merge"))
    found["merged after merge"] = getattr(layer, "merged", None)
    found["output after merge"] = _output(layer, x, "forward(x) after merge()")
    return found


def round_trip(ns: dict, weight, bias, lora_A, lora_B, alpha, x: torch.Tensor) -> dict:
    """``merge()`` then ``unmerge()``: the weight, the flags and the output after both."""
    base = _linear(weight, bias)
    original = base.weight
    layer = _adapter(ns, base, lora_A.shape[0], alpha, lora_A, lora_B)
    _merge_call(layer, "merge")
    _merge_call(layer, "unmerge")
    found = _weight_state(base, original, "after merge and unmerge")
    found["merged after unmerge"] = getattr(layer, "merged", None)
    found["output after unmerge"] = _output(layer, x, "forward(x) after merge(), unmerge()")
    return found


def wrong_state(ns: dict, weight, bias, lora_A, lora_B, alpha, x: torch.Tensor) -> dict:
    """``unmerge()`` on a fresh layer, then ``merge()`` twice, then ``unmerge()`` twice: the
    weight and ``merged`` after each stage, and the output of the twice-merged layer."""
    base = _linear(weight, bias)
    original = base.weight
    layer = _adapter(ns, base, lora_A.shape[0], alpha, lora_A, lora_B)
    found: dict[str, Any] = {}
    _merge_call(layer, "unmerge")
    found.update(_weight_state(base, original, "after unmerge() of an unmerged layer"))
    found["merged after unmerge() of an unmerged layer"] = getattr(layer, "merged", None)
    _merge_call(layer, "merge")
    _merge_call(layer, "merge")
    found.update(_weight_state(base, original, "after merge() twice"))
    found["merged after merge() twice"] = getattr(layer, "merged", None)
    found["output after merge() twice"] = _output(layer, x, "forward(x) after merge() twice")
    _merge_call(layer, "unmerge")
    _merge_call(layer, "unmerge")
    found.update(_weight_state(base, original, "after unmerge() twice"))
    found["merged after unmerge() twice"] = getattr(layer, "merged", None)
    return found


def train(ns: dict, weight, bias, target_weight, x: torch.Tensor, r: int, alpha,
          steps: int = 200, lr: float = 0.02) -> dict:
    """Fit ``LoRALinear(base(weight, bias), r, alpha)`` to the targets ``x @ target_weightᵀ +
    bias`` by full-batch Adam (β = 0.9, 0.999, ε = 1e-8, written out here: constructing a
    ``torch.optim`` optimizer imports torch._dynamo, seconds per grading process) on the mean
    squared error, with every parameter of the layer handed to the optimizer: a frozen one
    receives no gradient, so Adam leaves it alone. Returns the losses and base.weight after
    training."""
    base = _linear(weight, bias)
    layer = _adapter(ns, base, r, alpha)
    with torch.no_grad():
        y = x @ target_weight.T + (bias if bias is not None else 0)
    params = list(layer.parameters())
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    losses = []
    with torch.enable_grad():
        for step in range(1, steps + 1):
            out = _output(layer, x)
            if out.shape != y.shape:
                raise ProbeError(f"LoRALinear.forward(x) returned shape {tuple(out.shape)}, "
                                 f"expected {tuple(y.shape)}")
            loss = ((out - y) ** 2).mean()
            if not loss.requires_grad:
                raise ProbeError("LoRALinear.forward(x) has no autograd history: nothing to "
                                 "train")
            for p in params:
                p.grad = None
            loss.backward()
            with torch.no_grad():
                for p, (m, v) in zip(params, moments):
                    if p.grad is None:
                        continue
                    m.mul_(0.9).add_(p.grad, alpha=0.1)
                    v.mul_(0.999).addcmul_(p.grad, p.grad, value=0.001)
                    m_hat, v_hat = m / (1 - 0.9**step), v / (1 - 0.999**step)
                    p.sub_(lr * m_hat / (v_hat.sqrt() + 1e-8))
            losses.append(loss.detach().double().cpu())
    return {"loss": torch.stack(losses), "base.weight after training":
            torch.Tensor.detach(base.weight).clone()}


# -- apply_lora / lora_parameters: a grader-owned model and stand-in adapter -------------------


class LoRALinear(nn.Module):
    """Grader-owned stand-in with the contract's constructor and attributes (frozen ``base``,
    ``lora_A`` (r, in), ``lora_B`` (out, r), ``scaling``, ``merged``), for the checks of
    ``apply_lora`` and ``lora_parameters``; it has no forward pass (those checks need none)."""

    def __init__(self, base: nn.Linear, r: int, alpha) -> None:
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.lora_A = nn.Parameter(base.weight.new_zeros(r, base.in_features))
        self.lora_B = nn.Parameter(base.weight.new_zeros(base.out_features, r))
        self.scaling = alpha / r
        self.merged = False


class _Attention(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d)
                                                                for _ in range(4))


class _MLP(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d, 2 * d)
        self.fc_gate = nn.Linear(d, 2 * d, bias=False)
        self.proj = nn.Linear(2 * d, d)


class _Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.attn = _Attention(d)
        self.mlp = _MLP(d)


class TinyModel(nn.Module):
    """The grader's model: ``embed``, ``blocks.{0,1}.{norm, attn.{q,k,v,out}_proj, mlp.{fc,
    fc_gate, proj}}``, ``norm``, ``head``."""

    def __init__(self, d: int = 4, vocab: int = 7, classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList([_Block(d), _Block(d)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)


def _model() -> TinyModel:
    return TinyModel().to(dtype=torch.float32)


def apply(ns: dict, target_names: list, r: int, alpha) -> dict:
    """``apply_lora(model, target_names, r, alpha)`` on the grader's model: whether it returns
    the model itself, the names of the adapted modules, whether each adapter wraps the very
    layer that was there, the remaining ``nn.Linear`` names, and the trainable parameters."""
    model = _model()
    before = dict(model.named_modules())
    fn = lookup(ns, "apply_lora")
    with StandIn(ns, fn, "LoRALinear", LoRALinear):
        returned = fn(model, list(target_names), r, alpha)
    adapted = {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}
    return {
        "returns the model it was given": returned is model,
        "adapted modules": sorted(adapted),
        "adapters wrapping the layer that was there": sorted(
            name for name, m in adapted.items() if m.base is before.get(name)),
        "adapter ranks": sorted({int(m.lora_A.shape[0]) for m in adapted.values()}),
        "nn.Linear modules": sorted(name for name, m in model.named_modules()
                                    if isinstance(m, nn.Linear)),
        "trainable parameters": sorted(name for name, p in model.named_parameters()
                                       if p.requires_grad),
    }


def parameters(ns: dict, target_names: list, head_trainable: bool = True) -> dict:
    """``lora_parameters(model)`` on the grader's model adapted (by the grader, with the
    stand-in) at ``target_names``, with everything else frozen except, if
    ``head_trainable``, the classification head. Reports the names of what it returned (by
    identity), how many items, and the names of the adapters' own parameters."""
    model = _model()
    for p in model.parameters():
        p.requires_grad_(False)
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and any(name == t or name.endswith("." + t)
                                                 for t in target_names):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, LoRALinear(module, 2, 4))
    if head_trainable:
        model.head.requires_grad_(True)
    names = {id(p): name for name, p in model.named_parameters()}
    fn = lookup(ns, "lora_parameters")
    with StandIn(ns, fn, "LoRALinear", LoRALinear):
        got = fn(model)
    try:
        items = list(got)
    except TypeError:
        raise ProbeError("lora_parameters(model) should return a list of Parameters") from None
    return {
        "names of the returned parameters": sorted(
            names.get(id(p), "<not a parameter of the model>") for p in items),
        "number of items returned": len(items),
    }
