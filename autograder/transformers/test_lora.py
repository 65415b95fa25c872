"""Hidden checks for unit 4.7 `lora` (Hu et al., 2021).

``LoRALinear`` is built from a layer object, which a probe cannot carry, so its checks go
through the grader-owned drivers of ``course/grading/drivers/lora.py``: the grader's
``nn.Linear`` holds seeded weights, the learner's ``LoRALinear`` wraps it, the grader's
``lora_A`` and ``lora_B`` are copied in (``lora_B`` non-zero, so that the update shows), and
the driver reports outputs, gradients (of the output contracted with a fixed cotangent), the
weight and flags after ``merge`` / ``unmerge``, the parameter layout, or a short training run.
Shapes cover one to three input dimensions (batch 1 included), ranks 1 to 8 (one larger than
in_features), α/r above, below and equal to 1, layers with and without a bias, float32 and
float64. Every merge check starts with a square layer, on which a merge that adds the
transposed update runs and can be diagnosed, and with α/r ≠ 1, on which a missing scaling
shows. The random initialisation is checked statistically (``lora_A`` uniform on
±1/√in_features, ``lora_B`` zero); its mistakes are diagnosed by running the bank's variants on
the same draws.

``apply_lora`` and ``lora_parameters`` run on a grader-owned model with a grader-owned stand-in
for ``LoRALinear`` (structure only), so each task is graded on its own. The model's names tell
peft's matching rule (``name == t`` or ``name.endswith("." + t)``) from a plain ``endswith`` and
from a substring test.

The master was compared with ``peft``'s LoRA layer (A and B copied) in
``tests/test_oracle_lora.py``; ``peft`` is not forbidden here because importing it takes about
five seconds, which every grading process would pay.
"""

import math

import torch

from course.grading.dsl import Call, Device, Forbid, Mistake, check

UNIT = "lora"

FORBIDDEN = [
    Forbid(calls=(
        "torch.nn.utils.parametrize.register_parametrization",
        "torch.nn.utils.parametrize.remove_parametrizations",
    )),
]

MISTAKES = [
    # -- LoRALinear: the update and its scale
    Mistake(
        "scaling-alpha",
        "Your layer scales the update by α instead of α/r. LoRA multiplies BA by "
        "scaling = alpha / r, so that changing the rank does not change the size of the update.",
        {"self.scaling = alpha / r": "self.scaling = alpha"},
    ),
    Mistake(
        "ab-shapes-swapped",
        "Your lora_A is (in_features, r) and lora_B (r, out_features): the shapes are swapped. "
        "peft's convention, used here, is lora_A (r, in_features) and lora_B (out_features, r), "
        "so that B @ A has the shape of base.weight and the update is (x @ Aᵀ) @ Bᵀ.",
        {
            "torch.empty(r, base.in_features, **like)": "torch.empty(base.in_features, r, **like)",
            "torch.zeros(base.out_features, r, **like)":
            "torch.zeros(r, base.out_features, **like)",
            "(x @ self.lora_A.T) @ self.lora_B.T": "(x @ self.lora_A) @ self.lora_B",
            "self.base.weight += self.scaling * (self.lora_B @ self.lora_A)":
            "self.base.weight += self.scaling * (self.lora_A @ self.lora_B).T",
            "self.base.weight -= self.scaling * (self.lora_B @ self.lora_A)":
            "self.base.weight -= self.scaling * (self.lora_A @ self.lora_B).T",
        },
    ),
    Mistake(
        "merge-order-swapped",
        "Your merge adds Aᵀ Bᵀ, the transpose of the update, to base.weight. The forward pass "
        "multiplies x by Aᵀ then Bᵀ, which is x (BA)ᵀ: the weight (out_features, in_features) "
        "gains scaling · lora_B @ lora_A.",
        {
            "self.base.weight += self.scaling * (self.lora_B @ self.lora_A)":
            "self.base.weight += self.scaling * (self.lora_A.T @ self.lora_B.T)",
            "self.base.weight -= self.scaling * (self.lora_B @ self.lora_A)":
            "self.base.weight -= self.scaling * (self.lora_A.T @ self.lora_B.T)",
        },
    ),
    Mistake(
        "merge-without-scaling",
        "Your merge adds lora_B @ lora_A without the scaling: the merged layer no longer "
        "computes what the unmerged one did. Merge (and unmerge) scaling · lora_B @ lora_A.",
        {
            "self.base.weight += self.scaling * (self.lora_B @ self.lora_A)":
            "self.base.weight += self.lora_B @ self.lora_A",
            "self.base.weight -= self.scaling * (self.lora_B @ self.lora_A)":
            "self.base.weight -= self.lora_B @ self.lora_A",
        },
    ),
    # -- LoRALinear: freezing
    Mistake(
        "base-not-frozen",
        "Your layer leaves base.weight and base.bias trainable (requires_grad True), so they "
        "receive gradients and an optimizer would change the pre-trained weights. Freeze them "
        "in __init__: p.requires_grad_(False) for every p in base.parameters().",
        {"        for p in self.base.parameters():\n"
         "            p.requires_grad_(False)  # W0 and its bias stay frozen\n": ""},
    ),
    # -- LoRALinear: merge / unmerge
    Mistake(
        "unmerge-adds-again",
        "Your unmerge adds the update a second time instead of subtracting it. unmerge() "
        "must restore the original weight: base.weight -= scaling · lora_B @ lora_A.",
        {"self.base.weight -= self.scaling": "self.base.weight += self.scaling"},
    ),
    Mistake(
        "merged-forward-adds-update",
        "Your forward adds the low-rank update even after merge(), when it is already inside "
        "base.weight: the merged layer counts it twice. Once merged, forward(x) is base(x).",
        {"        if self.merged:\n            return h  # the update is already inside "
         "base.weight\n": ""},
    ),
    Mistake(
        "merge-not-a-no-op",
        "Your merge() adds the update again when the layer is already merged. Check the flag "
        "first: merge() on a merged layer changes nothing.",
        {"        if self.merged:\n            return\n": ""},
    ),
    Mistake(
        "unmerge-not-a-no-op",
        "Your unmerge() subtracts the update from a layer that was never merged, which "
        "destroys the pre-trained weight. Check the flag first: unmerge() on an unmerged layer "
        "changes nothing.",
        {"        if not self.merged:\n            return\n": ""},
    ),
    Mistake(
        "merge-new-parameter",
        "Your merge() puts a new nn.Parameter into base.weight instead of changing the old one "
        "in place; the new one is trainable (requires_grad True) and an optimizer or a caller "
        "holding the old Parameter no longer sees the weight. Update it in place under "
        "torch.no_grad(): base.weight += scaling · lora_B @ lora_A.",
        {"self.base.weight += self.scaling * (self.lora_B @ self.lora_A)":
         "self.base.weight = nn.Parameter(self.base.weight + self.scaling * "
         "(self.lora_B @ self.lora_A))"},
    ),
    # -- LoRALinear: initialisation
    Mistake(
        "b-initialised-randomly",
        "Your lora_B starts random. LoRA starts B at zero, so that BA = 0 and the adapted model "
        "computes exactly what the pre-trained one did before fine-tuning; only A is random.",
        {"        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # like nn.Linear's "
         "weight\n":
         "        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # like nn.Linear's "
         "weight\n        nn.init.kaiming_uniform_(self.lora_B, a=math.sqrt(5))\n"},
    ),
    Mistake(
        "kaiming-without-a",
        "Your lora_A is uniform on ±√6/√in_features: that is kaiming_uniform_ with its default "
        "a = 0. An nn.Linear weight uses a = √5, which gives ±1/√in_features: "
        "nn.init.kaiming_uniform_(lora_A, a=math.sqrt(5)).",
        {"nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))":
         "nn.init.kaiming_uniform_(self.lora_A)"},
    ),
    Mistake(
        "a-zero-init",
        "Your lora_A starts at zero, like lora_B. With both zero, the gradient of each is "
        "multiplied by the other and is zero too: nothing ever trains. Only B starts at zero; "
        "A is random (kaiming-uniform, a = √5).",
        {
            "torch.empty(r, base.in_features, **like)": "torch.zeros(r, base.in_features, **like)",
            "        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # like nn.Linear's "
            "weight\n": "",
        },
    ),
    # -- apply_lora
    Mistake(
        "apply-lora-substring",
        "Your apply_lora adapts every nn.Linear whose name *contains* a target (t in name), "
        "e.g. mlp.fc_gate for 'fc'. A module is targeted when its name equals a target or ends "
        "with '.' + target.",
        {'name == t or name.endswith("." + t)': "t in name"},
    ),
    Mistake(
        "apply-lora-plain-endswith",
        "Your apply_lora adapts every nn.Linear whose name ends with a target's letters "
        "(name.endswith(t)), e.g. attn.q_proj for 'proj'. peft's rule, used here, matches whole "
        "name components: name == t or name.endswith('.' + t).",
        {'name == t or name.endswith("." + t)': "name.endswith(t)"},
    ),
    Mistake(
        "apply-lora-no-freeze",
        "Your apply_lora leaves the model's other parameters trainable (embeddings, norms, "
        "untargeted layers, the head). LoRA freezes every parameter except the adapters' "
        "lora_A and lora_B.",
        {"    for p in model.parameters():\n        p.requires_grad_(False)  # freeze "
         "everything; only the new A and B will train\n": ""},
    ),
    Mistake(
        "apply-lora-freeze-after",
        "Your apply_lora freezes the model after adding the adapters, which freezes lora_A and "
        "lora_B too: nothing is left to train. Freeze first, then add the adapters (or freeze "
        "everything but them).",
        {
            "    for p in model.parameters():\n        p.requires_grad_(False)  # freeze "
            "everything; only the new A and B will train\n": "",
            "        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha))\n"
            "    return model\n":
            "        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha))\n"
            "    for p in model.parameters():\n        p.requires_grad_(False)\n"
            "    return model\n",
        },
    ),
    # -- lora_parameters
    Mistake(
        "lora-params-all-trainable",
        "Your lora_parameters returns every trainable parameter, which includes a head (or "
        "anything else) unfrozen for fine-tuning. Return the lora_A and lora_B of the "
        "LoRALinear modules only.",
        {"    return [p for module in model.modules() if isinstance(module, LoRALinear)\n"
         "            for p in (module.lora_A, module.lora_B)]\n":
         "    return [p for p in model.parameters() if p.requires_grad]\n"},
    ),
    Mistake(
        "lora-params-only-a",
        "Your lora_parameters returns only the lora_A matrices. Each adapter has two trainable "
        "matrices: lora_A and lora_B.",
        {"for p in (module.lora_A, module.lora_B)]": "for p in (module.lora_A,)]"},
    ),
]

DTYPES = [torch.float32, torch.float64]


def _dt(dtype):
    return str(dtype).replace("torch.", "")


def _layer_args(grader, in_f, out_f, r, dtype, bias=True, b_scale=0.5):
    """(weight, bias, lora_A, lora_B) with lora_B non-zero, so that the update shows."""
    weight = grader.randn(out_f, in_f, dtype=dtype, scale=in_f ** -0.5)
    b = grader.randn(out_f, dtype=dtype, scale=0.1) if bias else None
    lora_A = grader.randn(r, in_f, dtype=dtype, scale=in_f ** -0.5)
    lora_B = grader.randn(out_f, r, dtype=dtype, scale=b_scale)
    return weight, b, lora_A, lora_B


def _describe(in_f, out_f, r, alpha, bias):
    return (f"LoRALinear(nn.Linear({in_f}, {out_f}{'' if bias else ', bias=False'}), "
            f"r={r}, alpha={alpha})")


# -- LoRALinear: layout and initialisation --------------------------------------------------

@check(points=1, public=True, task="LoRALinear")
def test_layout(grader):
    """LoRALinear's parameters (names, shapes, dtypes, requires_grad), scaling, merged and base"""
    for in_f, out_f, r, alpha, bias, dtype in [(6, 4, 2, 4, True, torch.float32),
                                               (5, 5, 1, 1, False, torch.float64),
                                               (10, 3, 8, 16, True, torch.float64),
                                               (3, 7, 4, 2.5, True, torch.float32)]:
        weight, b, _, _ = _layer_args(grader, in_f, out_f, r, dtype, bias)
        grader.compare(Call("@lora.layout", (weight, b, r, alpha)), exact=True,
                       case=f"layout of {_describe(in_f, out_f, r, alpha, bias)}, {_dt(dtype)}")


# in_features, out_features, r: n = r · in values of lora_A
INIT = (300, 20, 32)


def _init_symptom(out, in_f, out_f, r):
    """(message, symptom) of a fresh layer's lora_A and lora_B; (None, None) when they look
    right. For n draws from U(-b, b) the mean has sd b/√(3n) and the biased variance has mean
    b²/3 and sd about b²·√(4/(45n)); each 5-sd bound fails a correct init with probability
    about 6e-7."""
    items = out if isinstance(out, dict) else {}
    A, B = (items.get(k) for k in ("lora_A", "lora_B"))
    if not isinstance(A, torch.Tensor) or not isinstance(B, torch.Tensor):
        return "lora_A and lora_B should be tensors (nn.Parameter)", ("missing",)
    if tuple(A.shape) != (r, in_f) or tuple(B.shape) != (out_f, r):
        return (f"lora_A has shape {tuple(A.shape)} and lora_B {tuple(B.shape)}, expected "
                f"{(r, in_f)} and {(out_f, r)}", ("shapes",))
    if A.dtype != torch.float32 or B.dtype != torch.float32:
        return (f"lora_A is {_dt(A.dtype)} and lora_B {_dt(B.dtype)}; with a float32 base "
                "both should be float32 (base.weight's dtype)", ("dtype",))
    if bool((B != 0).any()):
        return "lora_B is not all zeros; it must start at zero", ("B not zero",)
    a = A.double().flatten()
    n, bound = a.numel(), 1 / math.sqrt(in_f)
    if bool((a == 0).all()):
        return "lora_A is all zeros; it must start random", ("A zero",)
    if not bool(a.max() > a.min()):
        return f"lora_A is constant ({float(a[0]):.4g}); it must start random", ("A constant",)
    top = float(a.abs().max())
    mean, var = float(a.mean()), float(a.var(unbiased=False))

    def uniform_on(b):
        return (top <= b * (1 + 1e-6) and abs(mean) <= 5 * b / math.sqrt(3 * n)
                and abs(var - b * b / 3) <= 5 * b * b * math.sqrt(4 / (45 * n)))

    if uniform_on(bound):
        return None, None
    if uniform_on(math.sqrt(6) * bound):
        kind = ("A uniform on √6/√in",)
    elif top > bound * (1 + 1e-6):
        kind = ("A too wide",)
    else:
        kind = ("A not uniform",)
    return (f"lora_A ({n} values) has max |value| {top:.4g}, mean {mean:.3g} and variance "
            f"{var:.4g}; kaiming-uniform with a = √5 (nn.Linear's weight init) is uniform on "
            f"±1/√in_features = ±{bound:.4g}: mean 0, variance {bound * bound / 3:.4g} "
            f"(allowed ±{5 * bound * bound * math.sqrt(4 / (45 * n)):.2g}, 5 standard "
            "deviations)", kind)


@check(points=1, public=True, task="LoRALinear")
def test_initialisation(grader):
    """a fresh LoRALinear's lora_A is uniform on ±1/√in_features (statistics) and lora_B is zero"""
    in_f, out_f, r = INIT
    probe = Call("@lora.initial", (in_f, out_f, r, 8, Device()))
    case = (f"lora_A and lora_B of a fresh {_describe(in_f, out_f, r, 8, True)}, float32 "
            f"({r * in_f} values of lora_A)")
    got = grader.learner(probe, case)
    message, symptom = _init_symptom(got.out, in_f, out_f, r)
    if message is None:
        grader.cases.append(case)
        return
    mistake = grader.banked_mistake(  # the bank's variants on the same draws
        probe, lambda o: _init_symptom(o.out, in_f, out_f, r)[1] == symptom)
    grader.fail(message, mistake=mistake, case=case)



@check(points=1, public=True, task="LoRALinear")
def test_fresh_layer_is_base(grader):
    """a fresh LoRALinear (its own lora_A, lora_B = 0) returns base(x), and its lora_B is zero"""
    for in_f, out_f, r, alpha, lead in [(6, 4, 2, 4, (3,)), (8, 8, 8, 16, (2, 5)),
                                        (5, 3, 1, 1, (1,))]:
        for dtype in DTYPES:
            weight, b, _, _ = _layer_args(grader, in_f, out_f, r, dtype)
            x = grader.randn(*lead, in_f, dtype=dtype)
            grader.compare(Call("@lora.fresh", (weight, b, r, alpha, x)),
                           case=f"fresh {_describe(in_f, out_f, r, alpha, True)} on "
                           f"x{list(x.shape)}, {_dt(dtype)}")


# -- LoRALinear: forward and gradients --------------------------------------------------------

# (in_features, out_features, r, alpha, bias, leading dimensions of x)
FORWARD = [
    (6, 5, 2, 4, True, (3,)),
    (8, 8, 4, 16, True, (2, 3)),
    (5, 3, 1, 1, False, (1,)),
    (7, 4, 3, 1, True, ()),
    (16, 12, 8, 8, True, (4,)),
    (3, 9, 5, 2.5, True, (2,)),
]


@check(points=2, public=True, task="LoRALinear")
def test_forward(grader):
    """LoRALinear.forward equals base(x) + (α/r)·(x Aᵀ) Bᵀ with copied weights, A and B"""
    for in_f, out_f, r, alpha, bias, lead in FORWARD:
        for dtype in DTYPES:
            weight, b, lora_A, lora_B = _layer_args(grader, in_f, out_f, r, dtype, bias)
            x = grader.randn(*lead, in_f, dtype=dtype)
            grader.compare(Call("@lora.forward", (weight, b, lora_A, lora_B, alpha, x)),
                           case=f"{_describe(in_f, out_f, r, alpha, bias)} on "
                           f"x{list(x.shape)}, {_dt(dtype)}")


@check(points=2, task="LoRALinear")
def test_gradients(grader):
    """gradients w.r.t. x, lora_A and lora_B equal the reference's; base.weight/bias get none"""
    for in_f, out_f, r, alpha, bias, lead in [(6, 5, 2, 4, True, (3,)),
                                              (4, 4, 1, 3, False, (2, 2)),
                                              (9, 2, 6, 2, True, (1,))]:
        for dtype in DTYPES:
            weight, b, lora_A, lora_B = _layer_args(grader, in_f, out_f, r, dtype, bias)
            x = grader.randn(*lead, in_f, dtype=dtype)
            grader.compare(Call("@lora.gradients", (weight, b, lora_A, lora_B, alpha, x)),
                           case=f"gradients of {_describe(in_f, out_f, r, alpha, bias)} on "
                           f"x{list(x.shape)}, {_dt(dtype)}")


# -- LoRALinear: merge and unmerge ----------------------------------------------------------

# square first (a transposed update is then diagnosable), α/r ≠ 1 first (a missing scaling shows)
MERGE = [
    (6, 6, 2, 8, True, (3,)),
    (5, 3, 2, 3, False, (2,)),
    (4, 7, 4, 2, True, (1,)),
]


def _merge_checks(grader, driver, what):
    for in_f, out_f, r, alpha, bias, lead in MERGE:
        for dtype in DTYPES:
            weight, b, lora_A, lora_B = _layer_args(grader, in_f, out_f, r, dtype, bias)
            x = grader.randn(*lead, in_f, dtype=dtype)
            grader.compare(Call(f"@lora.{driver}", (weight, b, lora_A, lora_B, alpha, x)),
                           case=f"{what}, {_describe(in_f, out_f, r, alpha, bias)}, "
                           f"x{list(x.shape)}, {_dt(dtype)}")


@check(points=1, public=True, task="LoRALinear")
def test_merge(grader):
    """merge() adds (α/r)·B A to base.weight in place, sets merged; forward is then base(x)"""
    _merge_checks(grader, "merge", "forward, merge(), the weight and flags, forward again")


@check(points=1, task="LoRALinear")
def test_merge_unmerge_round_trip(grader):
    """merge() then unmerge() gives back the original weight, merged False and the same output"""
    _merge_checks(grader, "round_trip", "merge() then unmerge(): the weight, flags, forward")


@check(points=1, task="LoRALinear")
def test_merge_unmerge_no_ops(grader):
    """unmerge() of an unmerged layer and a second merge() or unmerge() change nothing"""
    _merge_checks(grader, "wrong_state", "unmerge(), merge() twice, unmerge() twice")


# -- LoRALinear: it trains --------------------------------------------------------------------

# the reference, over grader seeds 0-9 of this setting, ends at 1e-9 to 7e-6 of its initial
# loss; a layer whose base is not frozen drifts from W0, one with A = B = 0 stays at 1.0
TRAIN_RATIO = 1e-3


@check(points=2, task="LoRALinear")
def test_trains_low_rank_update(grader):
    """LoRALinear(r=4), trained by the grader, fits a rank-2 change of W0; base.weight unchanged"""
    in_f, out_f, r, alpha, n = 16, 12, 4, 8, 128
    weight = grader.randn(out_f, in_f, scale=in_f ** -0.5).float()
    bias = grader.randn(out_f, scale=0.1).float()
    delta = (grader.randn(out_f, 2, scale=0.5) @ grader.randn(2, in_f, scale=0.5)).float()
    x = grader.randn(n, in_f).float()
    case = (f"{_describe(in_f, out_f, r, alpha, True)}, float32, trained by the grader (Adam, "
            f"lr 0.02, 200 full-batch steps on {n} inputs, mean squared error, every parameter "
            "of the layer given to the optimizer) toward the weight W0 + ΔW, ΔW of rank 2")
    got = grader.learner(Call("@lora.train", (weight, bias, weight + delta, x, r, alpha)), case)
    loss, after = got.out["loss"], got.out["base.weight after training"]
    grader.require(
        torch.equal(after.double(), weight.double()),
        f"{case}: base.weight changed during training (max change "
        f"{float((after.double() - weight.double()).abs().max()):.3g}): the pre-trained "
        "weight must stay frozen, only lora_A and lora_B train.",
    )
    ratio = float(loss[-1] / loss[0])
    grader.require(
        ratio <= TRAIN_RATIO,
        f"{case}: the loss went from {float(loss[0]):.4g} to {float(loss[-1]):.4g}, "
        f"{ratio:.3g} of the initial loss; the target is ≤ {TRAIN_RATIO:g}. Check that "
        "lora_A starts random, lora_B at zero, and that forward adds scaling · (x Aᵀ) Bᵀ.",
    )
    grader.cases.append(f"{case}: final loss {ratio:.2g} of the initial")


# -- apply_lora -------------------------------------------------------------------------------

MODEL = ("the grader's model (embed, blocks.0-1 with norm, attn.q_proj/k_proj/v_proj/out_proj, "
         "mlp.fc/fc_gate/proj; norm, head)")


def _apply(grader, targets, r, alpha):
    grader.compare(Call("@lora.apply", (targets, r, alpha)), exact=True,
                   case=f"apply_lora({MODEL}, {targets}, r={r}, alpha={alpha})")


@check(points=2, public=True, task="apply_lora")
def test_apply_lora(grader):
    """apply_lora adapts exactly the targeted nn.Linear layers and freezes everything else"""
    _apply(grader, ["q_proj", "v_proj"], 2, 4)
    _apply(grader, ["proj", "fc"], 1, 1)


@check(points=1, task="apply_lora")
def test_apply_lora_edges(grader):
    """apply_lora with full dotted names, targets that are not nn.Linear, and no targets"""
    _apply(grader, ["blocks.1.attn.v_proj", "head"], 3, 6)
    _apply(grader, ["attn", "norm", "mlp", "embed"], 2, 2)
    _apply(grader, [], 4, 8)


# -- lora_parameters --------------------------------------------------------------------------

def _params(grader, targets, head_trainable):
    grader.compare(
        Call("@lora.parameters", (targets,), {"head_trainable": head_trainable}), exact=True,
        case=f"lora_parameters of {MODEL} adapted at {targets}, head "
        f"{'trainable' if head_trainable else 'frozen'}")


@check(points=1, public=True, task="lora_parameters")
def test_lora_parameters(grader):
    """lora_parameters returns every adapter's lora_A and lora_B, once each, and nothing else"""
    _params(grader, ["q_proj", "v_proj"], True)
    _params(grader, ["fc"], True)


@check(points=1, task="lora_parameters")
def test_lora_parameters_edges(grader):
    """lora_parameters of a model with no adapters is empty; one adapter gives two Parameters"""
    _params(grader, [], True)
    _params(grader, ["blocks.0.attn.out_proj"], False)
