# %% [markdown]
# # 4.7 LoRA — exercise
#
# Hu et al. (2021) fine-tune a large pre-trained model without touching its weights. A frozen
# linear layer $h = W_0 x$ (with $W_0 \in \mathbb{R}^{d \times k}$, $d$ outputs, $k$ inputs)
# gets a trainable update of rank $r \ll \min(d, k)$, written as the product of two thin
# matrices:
#
# $$h = W_0 x + \frac{\alpha}{r}\, B A x, \qquad A \in \mathbb{R}^{r \times k}, \quad
#   B \in \mathbb{R}^{d \times r}.$$
#
# $A$ starts random and $B$ starts at zero, so at the start of fine-tuning $BA = 0$ and the
# adapted model computes exactly what the pre-trained one did. Only $A$ and $B$ are trained:
# $r(d + k)$ numbers instead of $dk$. The factor $\alpha / r$ keeps the size of the update
# roughly independent of the rank, so that $\alpha$ need not be re-tuned when $r$ changes.
# After training, the update can be **merged**, $W = W_0 + \frac{\alpha}{r} BA$: the adapted
# layer is then an ordinary linear layer, with no extra cost at inference (and it can be
# **unmerged** again to swap in another task's adapter).
#
# The names and conventions follow `peft`'s LoRA layer (`lora_A`, `lora_B`, `scaling`,
# `merge`, `unmerge`), so that an adapter written here could be loaded there. You will write
# the adapted layer, a function that puts adapters into a model, and one that collects their
# parameters for the optimizer.
#
# Rows and columns: in PyTorch a batch of inputs is a row per example, $x \in
# \mathbb{R}^{\dots \times k}$, and `nn.Linear` stores $W_0$ as `weight` of shape
# $(d, k)$ = (out_features, in_features) and computes $x W_0^\top + b$. The update is then
# $\frac{\alpha}{r}\, (x A^\top) B^\top$.
#
# Not allowed: `torch.nn.utils.parametrize` (`register_parametrization`,
# `remove_parametrizations`), which would hide the merge; and of course `peft` itself.

# %%
import math

import torch
from torch import nn

# %% [markdown]
# ## Task 1 — `LoRALinear`
#
# Wrap a given `nn.Linear` (the pre-trained layer, kept as the submodule `base`):
#
# 1. **Freeze** it: set `requires_grad` to False on its weight and bias.
# 2. Create `lora_A`, a Parameter of shape (r, in_features), initialised like the weight of
#    an `nn.Linear`: `nn.init.kaiming_uniform_(·, a=math.sqrt(5))`, i.e. uniform on
#    $\pm 1/\sqrt{\text{in\_features}}$; and `lora_B`, a Parameter of shape
#    (out_features, r), all **zeros**. Both in the dtype and on the device of `base.weight`.
# 3. Store `scaling` $= \alpha / r$ and `merged = False`.
# 4. `forward(x)` $= \text{base}(x) + \text{scaling} \cdot (x A^\top) B^\top$, or just
#    $\text{base}(x)$ once merged (the update is then inside `base.weight`).
# 5. `merge()` adds $\text{scaling} \cdot BA$ to `base.weight` **in place** and sets
#    `merged = True`; `unmerge()` subtracts it again and sets `merged = False`. Calling
#    `merge()` on a merged layer, or `unmerge()` on an unmerged one, changes nothing.

# %%
class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update (Hu et al., 2021).

    Args:
        base: the pre-trained ``nn.Linear(in_features, out_features)`` (with or without a
            bias), float32 or float64, on any device. It is kept as the submodule ``base``
            (the very object passed in, not a copy) and frozen: ``requires_grad`` False on
            ``base.weight`` and ``base.bias``.
        r: the rank, an int >= 1.
        alpha: the scale α (an int or float); the update is multiplied by
            ``scaling = alpha / r`` (a float: 16 / 4 = 4.0, 1 / 3 = 0.333…).

    Attributes (names are part of the contract; the checks read them and copy values into
    ``lora_A`` and ``lora_B``):
        ``base``: the given layer. ``lora_A``: ``nn.Parameter`` (r, in_features), initialised
        like an ``nn.Linear`` weight, ``nn.init.kaiming_uniform_(lora_A, a=math.sqrt(5))``
        (uniform on ±1/√in_features; checked statistically, so any draw with that
        distribution passes). ``lora_B``: ``nn.Parameter`` (out_features, r), zeros. Both in
        the dtype (float32 or float64) and on the device of ``base.weight``, and trainable.
        ``scaling``: float, alpha / r. ``merged``: bool, False at first. The module's
        parameters are exactly ``base.weight``, ``base.bias`` (if any), ``lora_A`` and
        ``lora_B``.

    ``forward(x)``: x (..., in_features), any number of leading dimensions (none included),
    in the dtype of the layer. Returns (..., out_features) in that dtype and on that device:
    ``base(x) + scaling · (x @ lora_Aᵀ) @ lora_Bᵀ`` when not merged, ``base(x)`` when merged.
    Differentiable w.r.t. x, lora_A and lora_B (autograd); ``base.weight`` and ``base.bias``
    receive no gradient (their ``.grad`` stays None).

    ``merge()``: if not merged, adds ``scaling · lora_B @ lora_A`` (out_features, in_features)
    to ``base.weight`` in place (the same Parameter object keeps the new values, still
    frozen) and sets ``merged = True``; a no-op when already merged. ``unmerge()``: if merged,
    subtracts that same product and sets ``merged = False``; a no-op when not merged. Both
    are called with autograd enabled, as in a training script: change the values under
    ``torch.no_grad()`` so that ``base.weight`` stays a frozen leaf without autograd history.
    Neither returns anything.

    Forbidden: ``torch.nn.utils.parametrize`` and ``peft``.
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)  # W0 and its bias stay frozen
        self.r = r
        self.alpha = alpha
        self.scaling = alpha / r
        like = {"dtype": base.weight.dtype, "device": base.weight.device}
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **like))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, **like))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # like nn.Linear's weight
        self.merged = False
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        h = self.base(x)  # W0 x + b
        if self.merged:
            return h  # the update is already inside base.weight
        return h + self.scaling * (x @ self.lora_A.T) @ self.lora_B.T  # + (alpha / r) B A x
        # END SOLUTION

    def merge(self) -> None:
        # BEGIN SOLUTION
        if self.merged:
            return
        with torch.no_grad():
            self.base.weight += self.scaling * (self.lora_B @ self.lora_A)  # W0 + (alpha/r) BA
        self.merged = True
        # END SOLUTION

    def unmerge(self) -> None:
        # BEGIN SOLUTION
        if not self.merged:
            return
        with torch.no_grad():
            self.base.weight -= self.scaling * (self.lora_B @ self.lora_A)  # back to W0
        self.merged = False
        # END SOLUTION


# %% [markdown]
# ## Task 2 — `apply_lora`
#
# Put adapters into a whole model, the way `peft` does with a list of `target_modules`:
# every `nn.Linear` submodule whose qualified name (as `model.named_modules()` gives it,
# e.g. `blocks.0.attn.q_proj`) **is** one of `target_names` or **ends with** `"." + name` for
# one of them is replaced, in its parent, by `LoRALinear(that_linear, r, alpha)`. So
# `"q_proj"` matches `blocks.0.attn.q_proj` and `blocks.1.attn.q_proj`, `"1.attn.q_proj"`
# only the second, and `"proj"` neither (`q_proj` does not end with `.proj`). Modules that
# match but are not `nn.Linear` (a LayerNorm, a whole block) are left alone. Every other
# parameter of the model is frozen, so that only the new `lora_A` and `lora_B` train.

# %%
def apply_lora(model: nn.Module, target_names, r: int, alpha: float) -> nn.Module:
    """Replace the targeted ``nn.Linear`` layers of ``model`` by ``LoRALinear`` adapters.

    Args:
        model: any ``nn.Module``; modified in place.
        target_names: a list (or tuple) of names. A submodule with qualified name ``name``
            (from ``model.named_modules()``) is targeted when it is an ``nn.Linear`` and
            ``name == t`` or ``name.endswith("." + t)`` for some t in target_names (peft's
            rule for a list of names). An empty list targets nothing.
        r, alpha: passed to ``LoRALinear(linear, r, alpha)`` for every targeted layer.

    Returns:
        the same ``model`` object, in which every targeted layer has been replaced (as the
        same attribute of its parent) by a ``LoRALinear`` wrapping that very layer, and in
        which every parameter that is not a ``lora_A`` or ``lora_B`` of a new adapter has
        ``requires_grad`` False: the adapters' ``lora_A`` and ``lora_B`` are the only
        trainable parameters (also biases, norms, embeddings, heads are frozen, as peft does).

    The checks use a grader-owned stand-in for ``LoRALinear`` (the same constructor, the same
    ``base``, ``lora_A``, ``lora_B``), so this task is graded on its own: what counts is which
    layers are replaced and which parameters stay trainable.
    """
    # BEGIN SOLUTION
    for p in model.parameters():
        p.requires_grad_(False)  # freeze everything; only the new A and B will train
    targets = [
        name for name, module in model.named_modules()
        if isinstance(module, nn.Linear)
        and any(name == t or name.endswith("." + t) for t in target_names)
    ]
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha))
    return model
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `lora_parameters`
#
# The optimizer of a LoRA fine-tuning run gets only the adapters' parameters. Collect the
# `lora_A` and `lora_B` of every `LoRALinear` in a model, each once.

# %%
def lora_parameters(model: nn.Module) -> list:
    """The ``lora_A`` and ``lora_B`` Parameters of every ``LoRALinear`` inside ``model``.

    Args:
        model: an ``nn.Module`` (typically after :func:`apply_lora`; the model itself may be a
            ``LoRALinear``).

    Returns:
        a list of ``nn.Parameter`` objects (the model's own, not copies): both matrices of
        every adapter, each once, in any order; nothing else, even when other parameters are
        trainable too (a classification head unfrozen for fine-tuning is not an adapter
        parameter). An empty list when the model has no adapters.

    The checks build the adapters with a grader-owned stand-in for ``LoRALinear`` (same
    attributes), so this task is graded on its own.
    """
    # BEGIN SOLUTION
    return [p for module in model.modules() if isinstance(module, LoRALinear)
            for p in (module.lora_A, module.lora_B)]
    # END SOLUTION
