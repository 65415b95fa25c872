"""Hidden checks for unit 3.9 `mixture-of-experts` (Shazeer et al., 2017).

Every check compares the learner's code with the master solution on seeded inputs: several
batch sizes (batch 1 included), numbers of experts (odd ones included), k = 1 and k = E,
float32 and float64, forward and gradients. The gating is checked with and without noise and
on rows with ties (integer logits, all-zero gates). The smooth load estimator (Appendix A of
the paper) is checked against the master, which was checked against a Monte Carlo estimate of
P(x, i) when the unit was written (tests/test_oracle_mixture_of_experts.py). The MoE layer is
checked from a copied state dict in eval mode and noise-free training mode (deterministic), for
its dispatch (rows each expert receives), and in noisy training mode against the paper's
formulas for the very noise the learner's layer drew after a seeded ``torch.manual_seed``.
On a mismatch the learner's output is looked up in the mistake bank below.
"""

import torch

from course.grading.compare import Tolerance
from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import MOE_ATEN, MOE_CALLS, Call, Forbid, Make, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "mixture-of-experts"

FORBIDDEN = [Forbid(calls=MOE_CALLS, aten=MOE_ATEN)]

MISTAKES = [
    Mistake(
        "softmax-all-experts",
        "Your gates match a softmax over all E experts with nothing set to zero. Keep only the "
        "k largest entries of H in each row: the other gates must be exactly 0.",
        {"return torch.zeros_like(h).scatter(1, top_indices, kept)":
             "return torch.softmax(h, dim=1)"},
    ),
    Mistake(
        "not-renormalised",
        "Your gates match a softmax over all E experts of which only the k largest are kept, "
        "so a row sums to less than one. Take the softmax over the k kept logits only (the "
        "others count as -inf), so the kept gates are renormalised to sum to one.",
        {
            "top_values, top_indices = h.sort(dim=1, descending=True, stable=True)":
                "top_values, top_indices = torch.softmax(h, dim=1).sort(dim=1, descending=True, "
                "stable=True)",
            "kept = torch.softmax(top_values, dim=1)": "kept = top_values",
        },
    ),
    Mistake(
        "noise-without-softplus",
        "Your gates match noise scaled by x @ w_noise itself. The noise level is "
        "Softplus(x @ w_noise) = log(1 + exp(x @ w_noise)), which is always positive: "
        "H = x @ w_gate + noise * softplus(x @ w_noise).",
        {"h = clean + noise * F.softplus(x @ w_noise)": "h = clean + noise * (x @ w_noise)"},
    ),
    Mistake(
        "ties-topk",
        "Your gates differ only on rows with tied logits, and match torch.topk, which does not "
        "keep the lower index among equal values. Break ties towards the lower expert index, "
        "e.g. with torch.sort(h, dim=1, descending=True, stable=True).",
        {"top_values, top_indices = h.sort(dim=1, descending=True, stable=True)":
             "top_values, top_indices = h.topk(k, dim=1)"},
    ),
    Mistake(
        "biased-variance",
        "Your value matches the biased variance (divided by n). Use the unbiased variance, "
        "divided by n - 1, as torch.var does by default.",
        {"return v.var() / (v.mean() ** 2 + 1e-10)":
             "return v.var(correction=0) / (v.mean() ** 2 + 1e-10)"},
    ),
    Mistake(
        "cv-not-squared",
        "Your value matches the coefficient of variation std/mean itself. The loss uses its "
        "square: var(v) / (mean(v)^2 + 1e-10).",
        {"return v.var() / (v.mean() ** 2 + 1e-10)":
             "return v.std() / (v.mean().abs() + 1e-10)"},
    ),
    Mistake(
        "single-element-nan",
        "For a vector of one element your value is NaN (the unbiased variance of one value "
        "divides by zero). Return 0 when v has a single element.",
        {"    if v.numel() == 1:\n        return torch.zeros((), dtype=v.dtype, device=v.device)\n":
             ""},
    ),
    Mistake(
        "importance-over-experts",
        "Your loss matches importance summed over the experts (dim 1) instead of over the "
        "batch. Importance_i = sum over the batch of G(x)_i: gates.sum(0), a vector of size E.",
        {"importance = gates.sum(0)  # (E,)": "importance = gates.sum(1)  # (E,)"},
    ),
    Mistake(
        "load-thresholds-swapped",
        "Your load matches the two thresholds swapped. For an expert among the top k, the "
        "competitor to beat is the (k+1)-th largest entry of H; for any other expert it is "
        "the k-th largest.",
        {"threshold = torch.where(in_top_k, kth_next, kth)":
             "threshold = torch.where(in_top_k, kth, kth_next)"},
    ),
    Mistake(
        "load-noisy-numerator",
        "Your load matches Phi((H_i - threshold) / softplus(...)), with the noisy logit. "
        "P(x, i) asks how likely expert i wins when its own noise is drawn afresh, so the "
        "numerator uses the clean logit (x @ w_gate)_i.",
        {"z = (clean - threshold) / noise_std": "z = (h - threshold) / noise_std"},
    ),
    Mistake(
        "load-threshold-detached",
        "Your load is right but its gradients match a threshold detached from the graph. "
        "kth_excluding(H, k, i) depends on x, w_gate and w_noise too; let the gradient flow "
        "through it.",
        {"threshold = torch.where(in_top_k, kth_next, kth)":
             "threshold = torch.where(in_top_k, kth_next, kth).detach()"},
    ),
    Mistake(
        "noise-in-eval",
        "Your layer is not deterministic in eval mode: it matches a layer that adds noise "
        "there too. Draw noise only when noisy=True and the module is training "
        "(self.training).",
        {"if self.noisy and self.training:": "if self.noisy:"},
    ),
    Mistake(
        "hard-load-in-training",
        "In noisy training your aux_loss matches the hard count of routed tokens as the "
        "load. When noise was drawn, use the smooth, differentiable smooth_load(x, w_gate, "
        "w_noise, noise, k).",
        {"load = smooth_load(x, self.w_gate, self.w_noise, noise, self.k)":
             "load = (gates > 0).sum(0).to(x.dtype)"},
    ),
    Mistake(
        "no-load-loss",
        "Your aux_loss matches the importance loss alone. Add the load loss: "
        "aux_loss = importance_loss(gates, loss_coef) + loss_coef * cv_squared(load).",
        {"aux_loss = importance_loss(gates, self.loss_coef) + self.loss_coef * cv_squared(load)":
             "aux_loss = importance_loss(gates, self.loss_coef)"},
    ),
    Mistake(
        "unweighted-experts",
        "Your output matches the plain sum of the chosen experts' outputs. Weight each "
        "expert's output by its gate: y = sum_e gates[:, e] * expert_e(x).",
        {"y = y.index_add(0, rows, gates[rows, e : e + 1] * out)":
             "y = y.index_add(0, rows, out)"},
    ),
    Mistake(
        "dense-dispatch",
        "Your output is right, but your experts ran on every token, not only on the tokens "
        "routed to them. Call experts[e] on the rows with gates[:, e] > 0 only: sparse "
        "dispatch is the point of the layer.",
        {
            "            out = expert(x[rows])\n"
            "            y = y.index_add(0, rows, gates[rows, e : e + 1] * out)\n":
                "            y = y + gates[:, e : e + 1] * expert(x)\n",
        },
    ),
]

# MoE checks start with float64: a layer that draws noise where it should not is then
# recognised (the grader's copy draws the same float64 numbers after the same seed).
DTYPES_F64_FIRST = [torch.float64, torch.float32]
# (B, d, E, k): batch 1, k = 1, k = E, odd E, d = 1
GATE_SIZES = [(4, 3, 5, 2), (1, 2, 3, 1), (7, 4, 6, 6), (3, 1, 2, 1), (6, 5, 7, 4)]
FEW_SIZES = [(4, 3, 5, 2), (1, 2, 3, 1), (6, 5, 7, 4)]
# (B, input_dim, output_dim, E, hidden, k)
MOE_SIZES = [(8, 4, 3, 5, 6, 2), (1, 3, 2, 4, 5, 1), (6, 2, 4, 3, 3, 3), (9, 5, 1, 7, 4, 4)]


def _gating_inputs(grader, b, d, e, dtype):
    x = grader.randn(b, d, dtype=dtype)
    w_gate = grader.randn(d, e, dtype=dtype)
    w_noise = grader.randn(d, e, dtype=dtype, scale=0.5)
    noise = grader.randn(b, e, dtype=dtype)
    return x, w_gate, w_noise, noise


# -- Task 1: noisy_top_k_gating -------------------------------------------------------------


@check(points=2, public=True, task="noisy_top_k_gating")
def test_gating_clean(grader):
    """noisy_top_k_gating without noise: softmax over the top k of x @ w_gate, zeros elsewhere"""
    for b, d, e, k in GATE_SIZES:
        for dtype in DTYPES:
            x, w_gate, w_noise, _ = _gating_inputs(grader, b, d, e, dtype)
            grader.compare(
                Call("noisy_top_k_gating", (x, w_gate, w_noise, k)),
                case=f"noisy_top_k_gating B={b} d={d} E={e} k={k}, noise=None, {_dt(dtype)}",
            )


@check(points=2, public=True, task="noisy_top_k_gating")
def test_gating_noisy(grader):
    """noisy_top_k_gating with noise: H = x @ w_gate + noise * softplus(x @ w_noise)"""
    for b, d, e, k in GATE_SIZES:
        for dtype in DTYPES:
            x, w_gate, w_noise, noise = _gating_inputs(grader, b, d, e, dtype)
            grader.compare(
                Call("noisy_top_k_gating", (x, w_gate, w_noise, k, noise)),
                case=f"noisy_top_k_gating B={b} d={d} E={e} k={k}, with noise, {_dt(dtype)}",
            )


@check(points=1, task="noisy_top_k_gating")
def test_gating_ties(grader):
    """noisy_top_k_gating breaks ties in H towards the lower expert index"""
    for b, d, e, k in [(6, 3, 5, 2), (3, 2, 4, 1), (5, 4, 7, 4)]:
        for dtype in DTYPES:
            # small integers: many equal logits in every row
            x = grader.randint(-1, 2, (b, d)).to(dtype)
            w_gate = grader.randint(-1, 2, (d, e)).to(dtype)
            grader.compare(
                Call("noisy_top_k_gating", (x, w_gate, None, k)),
                case=f"noisy_top_k_gating with tied integer logits B={b} E={e} k={k}, "
                f"{_dt(dtype)}",
            )
            zeros = torch.zeros(d, e, dtype=dtype)
            grader.compare(
                Call("noisy_top_k_gating", (x, zeros, zeros, k, torch.zeros(b, e, dtype=dtype))),
                case=f"noisy_top_k_gating with all logits 0 (zero weights and noise) B={b} "
                f"E={e} k={k}, {_dt(dtype)}",
            )


@check(points=2, task="noisy_top_k_gating")
def test_gating_gradients(grader):
    """noisy_top_k_gating gradients w.r.t. x, w_gate and w_noise through the kept logits"""
    for b, d, e, k in FEW_SIZES:
        for dtype in DTYPES:
            x, w_gate, w_noise, noise = _gating_inputs(grader, b, d, e, dtype)
            grader.compare(
                Call("noisy_top_k_gating", (x, w_gate, w_noise, k, noise), grad=(0, 1, 2)),
                case=f"d/dx, d/dw_gate, d/dw_noise of noisy_top_k_gating B={b} E={e} k={k}, "
                f"with noise, {_dt(dtype)}",
            )
            if dtype == torch.float64:
                grader.compare(
                    Call("noisy_top_k_gating", (x, w_gate, w_noise, k), grad=(0, 1)),
                    case=f"d/dx, d/dw_gate of noisy_top_k_gating B={b} E={e} k={k}, "
                    f"noise=None, {_dt(dtype)}",
                )


# -- Task 2: cv_squared ---------------------------------------------------------------------


@check(points=1, public=True, task="cv_squared")
def test_cv_squared(grader):
    """cv_squared = unbiased var / (mean^2 + 1e-10), 0 for one element"""
    for n in (1, 2, 5, 13):
        for dtype in DTYPES:
            v = grader.rand(n, dtype=dtype) * 5
            grader.compare(Call("cv_squared", (v,)),
                           case=f"cv_squared of {n} positive values, {_dt(dtype)}")
    for n in (3, 8):
        w = grader.randn(n, dtype=torch.float64)
        grader.compare(Call("cv_squared", (w,)), case=f"cv_squared of {n} signed values, float64")
    for dtype in DTYPES:
        grader.compare(Call("cv_squared", (torch.full((6,), 2.5, dtype=dtype),)),
                       case=f"cv_squared of a constant vector, {_dt(dtype)}")
        grader.compare(Call("cv_squared", (torch.zeros(5, dtype=dtype),)),
                       case=f"cv_squared of an all-zero vector, {_dt(dtype)}")


@check(points=1, task="cv_squared")
def test_cv_squared_gradients(grader):
    """cv_squared is differentiable w.r.t. v"""
    for n, dtype in [(2, torch.float64), (5, torch.float32), (16, torch.float64)]:
        v = grader.rand(n, dtype=dtype) * 3 + 0.5
        grader.compare(Call("cv_squared", (v,), grad=(0,)),
                       case=f"d/dv of cv_squared, n={n}, {_dt(dtype)}")


# -- Task 3: importance_loss ----------------------------------------------------------------


@check(points=1, public=True, task="importance_loss")
def test_importance_loss(grader):
    """importance_loss = weight * cv_squared(gates.sum(0)), forward and gradient"""
    for b, e, weight in [(5, 4, 0.1), (1, 3, 1.0), (8, 7, 0.01)]:
        for dtype in DTYPES:
            # not normalised per row, so that summing over the wrong axis shows
            gates = grader.rand(b, e, dtype=dtype)
            grader.compare(
                Call("importance_loss", (gates, weight), grad=(0,)),
                case=f"importance_loss of gates[{b}, {e}], weight={weight}, {_dt(dtype)}",
            )


# -- Task 4: smooth_load --------------------------------------------------------------------


@check(points=2, public=True, task="smooth_load")
def test_smooth_load(grader):
    """smooth_load: sum over the batch of Phi((clean_i - kth_excluding) / softplus)"""
    for b, d, e, k in GATE_SIZES:
        for dtype in DTYPES:
            x, w_gate, w_noise, noise = _gating_inputs(grader, b, d, e, dtype)
            grader.compare(
                Call("smooth_load", (x, w_gate, w_noise, noise, k)),
                case=f"smooth_load B={b} d={d} E={e} k={k}, {_dt(dtype)}",
            )


@check(points=2, task="smooth_load")
def test_smooth_load_gradients(grader):
    """smooth_load is differentiable w.r.t. x, w_gate and w_noise (threshold included)"""
    for b, d, e, k in [(4, 3, 5, 2), (1, 2, 3, 1), (9, 3, 4, 3)]:
        for dtype in DTYPES:
            x, w_gate, w_noise, noise = _gating_inputs(grader, b, d, e, dtype)
            grader.compare(
                Call("smooth_load", (x, w_gate, w_noise, noise, k), grad=(0, 1, 2)),
                case=f"d/dx, d/dw_gate, d/dw_noise of smooth_load B={b} E={e} k={k}, "
                f"{_dt(dtype)}",
            )


# -- Task 5: MoE ----------------------------------------------------------------------------


def _moe_state(grader, d, o, e, hidden, dtype):
    state = {
        "w_gate": grader.randn(d, e, dtype=dtype),
        "w_noise": grader.randn(d, e, dtype=dtype, scale=0.5),
    }
    for i in range(e):
        state[f"experts.{i}.0.weight"] = grader.randn(hidden, d, dtype=dtype, scale=d**-0.5)
        state[f"experts.{i}.0.bias"] = grader.randn(hidden, dtype=dtype, scale=0.1)
        state[f"experts.{i}.2.weight"] = grader.randn(o, hidden, dtype=dtype,
                                                      scale=hidden**-0.5)
        state[f"experts.{i}.2.bias"] = grader.randn(o, dtype=dtype, scale=0.1)
    return state


def _moe(grader, d, o, e, hidden, k, dtype, train, noisy=True, loss_coef=0.1):
    return Make("MoE", (d, o, e, hidden), {"k": k, "noisy": noisy, "loss_coef": loss_coef},
                state_dict=_moe_state(grader, d, o, e, hidden, dtype), dtype=dtype, train=train)


@check(points=1, public=True, task="MoE")
def test_moe_layout(grader):
    """MoE has parameters w_gate, w_noise and experts.<e>.{0,2}.{weight,bias}, no buffers"""
    for args, kwargs in [((4, 3, 5, 6), {}), ((2, 1, 3, 4), {"k": 1, "noisy": False}),
                         ((3, 2, 1, 2), {"k": 1})]:
        extra = "".join(f", {key}={value}" for key, value in kwargs.items())
        grader.compare(Call("@modules.layout", ("MoE", args, kwargs)),
                       case=f"parameter names and shapes of MoE({', '.join(map(str, args))}"
                       f"{extra}), float32", exact=True)


@check(points=1, task="MoE")
def test_moe_gate_init(grader):
    """MoE initialises w_gate and w_noise to zeros"""
    for args in [(4, 3, 5, 6), (7, 2, 3, 4)]:
        grader.compare(Call("@mixture_of_experts.gate_init", (args,)),
                       case=f"w_gate and w_noise of a new MoE{args}, float32", exact=True)


@check(points=2, public=True, task="MoE")
def test_moe_eval_forward(grader):
    """MoE forward in eval mode (no noise) from a copied state dict: (y, aux_loss)"""
    for b, d, o, e, hidden, k in MOE_SIZES:
        for dtype in DTYPES_F64_FIRST:
            x = grader.randn(b, d, dtype=dtype)
            grader.compare(
                Call(_moe(grader, d, o, e, hidden, k, dtype, train=False), (x,)),
                case=f"MoE({d}, {o}, {e}, {hidden}, k={k}).eval() on x[{b}, {d}], {_dt(dtype)}",
            )


@check(points=1, task="MoE")
def test_moe_noise_free_training(grader):
    """MoE(noisy=False) in training mode: deterministic, same (y, aux_loss) as the reference"""
    for (b, d, o, e, hidden, k), dtype in zip(MOE_SIZES[:2], DTYPES):
        x = grader.randn(b, d, dtype=dtype)
        moe = _moe(grader, d, o, e, hidden, k, dtype, train=True, noisy=False,
                   loss_coef=0.5)
        grader.compare(
            Call(moe, (x,)),
            case=f"MoE({d}, {o}, {e}, {hidden}, k={k}, noisy=False).train() on "
            f"x[{b}, {d}], {_dt(dtype)}",
        )


@check(points=2, task="MoE")
def test_moe_gradients(grader):
    """MoE gradients of (y, aux_loss) w.r.t. x and the parameters, eval mode"""
    for (b, d, o, e, hidden, k), dtype in zip(MOE_SIZES, DTYPES_F64_FIRST * 2):
        x = grader.randn(b, d, dtype=dtype)
        grader.compare(
            Call(_moe(grader, d, o, e, hidden, k, dtype, train=False), (x,),
                 grad=(0, "params")),
            case=f"d/dx, d/dparams of MoE({d}, {o}, {e}, {hidden}, k={k}).eval() on "
            f"x[{b}, {d}], {_dt(dtype)}",
        )


@check(points=1, task="MoE")
def test_moe_dispatch(grader):
    """each expert runs only on the tokens routed to it (rows per expert in one forward)"""
    # B * k < E: some expert gets no token, so running every expert on every row shows
    for (b, d, o, e, hidden, k), dtype in [((4, 3, 2, 9, 4, 2), torch.float64),
                                           ((6, 3, 2, 7, 4, 1), torch.float32),
                                           ((5, 2, 3, 11, 3, 2), torch.float32)]:
        x = grader.randn(b, d, dtype=dtype)
        grader.compare(
            Call("@mixture_of_experts.dispatch_counts",
                 (_moe(grader, d, o, e, hidden, k, dtype, train=False), x)),
            case=f"rows given to each expert of MoE({d}, {o}, {e}, {hidden}, k={k}).eval() "
            f"on x[{b}, {d}], {_dt(dtype)}",
            exact=True,
        )


@check(points=2, task="MoE")
def test_moe_noisy_training(grader):
    """MoE in noisy training: one torch.randn(B, E) draw, gates and smooth load from it"""
    for b, d, o, e, hidden, k in MOE_SIZES:
        for dtype in DTYPES_F64_FIRST:
            x = grader.randn(b, d, dtype=dtype)
            loss_coef = 0.3
            seed = grader.seed()
            grader.compare(
                Call("@mixture_of_experts.train_residual",
                     (_moe(grader, d, o, e, hidden, k, dtype, train=True, loss_coef=loss_coef),
                      x, seed, k, loss_coef)),
                case=f"MoE({d}, {o}, {e}, {hidden}, k={k}).train() on x[{b}, {d}] after "
                f"torch.manual_seed({seed}), minus the paper's formulas for that noise, "
                f"{_dt(dtype)}",
                tol=Tolerance(scale=10.0),
            )

