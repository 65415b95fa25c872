"""Hidden checks for unit 4.13 `moe-transformer` (Switch routing, Fedus et al., 2021; Shen et
al., 2023).

``switch_route`` is compared with the master on seeded logits whose columns are skewed so that
some experts overflow: token counts 1 to 16, one to five experts (E = 1 included), capacity
factors whose capacity ``ceil(c·N/E)`` is an integer before rounding (where an off-by-one in the
admission rule shows and flooring does not) and ones where it is not (where flooring shows),
float32 and float64. Edge cases: a capacity hit exactly by one expert and overflowed by one
token at another, a capacity of at least N (nothing dropped), a single token, a single expert,
integer logits with many ties and all-zero logits (ties go to the lower index), and the
gradient of the gate w.r.t. the logits. Every capacity factor used gives the same capacity
whichever order ``c·N/E`` is evaluated in, so learners are not judged on rounding.

``load_balancing_loss`` is compared on softmax rows with expert indices drawn independently of
them (so a loss that recomputes the argmax shows) and some experts empty, forward and the
gradient w.r.t. the probabilities (E·f_i/N: f carries no gradient), plus the balanced (loss 1)
and collapsed (loss E) extremes.

``MoEFeedForward`` is built from a copied state dict whose router favours some experts on the
grader's inputs (which share a mean offset), so that tokens are dropped: 3-D inputs first (a
capacity computed from the batch size instead of the number of tokens shows), then 2-D, 1-D
and batch 1; outputs (y, aux_loss), gradients w.r.t. x and every parameter, the rows each expert
receives (the kept tokens routed to it, never more than the capacity), and a grader-owned Adam
loop that trains only the router on the learner's aux_loss from a collapsed start: the
reference then keeps 0.25 → 0.84-1.00 of the tokens (see ``BALANCE_KEPT``).

The master was compared with ``transformers``' ``SwitchTransformersTop1Router`` and
``load_balancing_loss_func`` (built from a config) and with a per-token Python loop in
``tests/test_oracle_moe_transformer.py``. ``transformers`` is not forbidden here because
importing it would cost every grading process seconds; grouped matmuls, which would do the
dispatch, are.
"""

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import MOE_ATEN, MOE_CALLS, Call, Forbid, Make, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "moe-transformer"

FORBIDDEN = [Forbid(calls=MOE_CALLS, aten=MOE_ATEN)]

MISTAKES = [
    # -- switch_route
    Mistake(
        "capacity-floor",
        "Your capacity is rounded down: it matches int(c·N/E). The Switch capacity is "
        "C = ceil(capacity_factor · N / E) (math.ceil), so with 7 tokens, 2 experts and c = 1 "
        "each expert takes 4 tokens, not 3.",
        {"capacity = math.ceil(capacity_factor * num_tokens / num_experts)":
             "capacity = int(capacity_factor * num_tokens / num_experts)"},
    ),
    Mistake(
        "capacity-off-by-one",
        "Your experts take one token fewer than their capacity: your kept matches "
        "rank < C with a 1-based rank. Token n is kept when at most C − 1 earlier tokens "
        "chose the same expert, i.e. each expert takes its first C tokens.",
        {"kept = rank <= capacity": "kept = rank < capacity"},
    ),
    Mistake(
        "priority-by-probability",
        "Your kept tokens match admitting each expert's tokens by decreasing router "
        "probability (batch-prioritised routing). Switch routing, as asked here, admits them "
        "in position order: the first C tokens (in row order) that chose an expert are kept.",
        {"    rank = (chosen.cumsum(0) * chosen).sum(1)":
             "    order = torch.argsort(gate, descending=True, stable=True)\n"
             "    rank = torch.empty_like(expert)\n"
             "    rank[order] = (chosen[order].cumsum(0) * chosen[order]).sum(1)"},
    ),
    Mistake(
        "dropped-keep-gate",
        "Your gate is not zero for dropped tokens. A token beyond its expert's capacity gets "
        "kept False and gate exactly 0 (and so no gradient).",
        {"gate = torch.where(kept, gate, torch.zeros_like(gate))": "gate = gate"},
    ),
    Mistake(
        "softmax-over-tokens",
        "Your gates match a softmax over the tokens (dim 0) instead of over the experts. "
        "Each token's router probabilities p_n = softmax(h_n) sum to one over its E experts: "
        "softmax along the last dimension.",
        {"probs = torch.softmax(router_logits, dim=-1)":
             "probs = torch.softmax(router_logits, dim=0)"},
    ),
    # -- load_balancing_loss
    Mistake(
        "loss-without-E",
        "Your loss matches Σ f_i·P_i without the factor E. The Switch loss is "
        "E · Σ_i f_i·P_i, which is 1 for a uniform router whatever the number of experts.",
        {"return num_experts * (f * P).sum()": "return (f * P).sum()"},
    ),
    Mistake(
        "loss-counts",
        "Your loss matches f_i taken as the number of tokens routed to expert i instead of "
        "their fraction. Divide the counts by the number of tokens N.",
        {"f = counts.to(router_probs.dtype) / num_tokens": "f = counts.to(router_probs.dtype)"},
    ),
    Mistake(
        "loss-f-from-argmax",
        "Your f matches the argmax of router_probs rather than the expert tensor you were "
        "given. Count the tokens per expert from the `expert` argument (in a real layer it is "
        "the routing actually used).",
        {"counts = nn.functional.one_hot(expert, num_experts).sum(0)":
             "counts = nn.functional.one_hot(router_probs.argmax(1), num_experts).sum(0)"},
    ),
    Mistake(
        "loss-f-from-probs",
        "Your loss matches E · Σ P_i², with f replaced by the mean probabilities. f_i is the "
        "fraction of tokens whose expert is i, a count with no gradient; only P_i is "
        "differentiable.",
        {"f = counts.to(router_probs.dtype) / num_tokens": "f = router_probs.mean(0)"},
    ),
    # -- MoEFeedForward
    Mistake(
        "capacity-from-batch",
        "Your layer's capacity matches ceil(c · B / E) with B = x.shape[0], the batch size. "
        "Every leading position of x is a token: the capacity is ceil(c · N / E) with N the "
        "number of tokens, x.numel() // dim (route the flattened (N, dim) tokens).",
        {"expert, gate, kept = switch_route(logits, self.capacity_factor)":
             "expert, gate, kept = switch_route(logits, self.capacity_factor * x.shape[0] / "
             "logits.shape[0])"},
    ),
    Mistake(
        "gates-not-applied",
        "Your output matches the experts' outputs without their gates. Multiply each kept "
        "token's expert output by its gate g_n = p_{n, e_n}: that is also how the router gets "
        "a gradient from the main loss.",
        {"y = y.index_add(0, rows, gate[rows, None] * out)": "y = y.index_add(0, rows, out)"},
    ),
    Mistake(
        "dropped-copy-input",
        "For a dropped token your output is x itself. The layer's output for a dropped token "
        "is 0: the block adds it to its residual, x + y, so the token passes through "
        "unchanged; returning x would count it twice.",
        {"        aux_loss = load_balancing_loss(":
             "        y = torch.where(kept[:, None], y, tokens)\n"
             "        aux_loss = load_balancing_loss("},
    ),
    Mistake(
        "dense-experts",
        "Your output is right, but your experts ran on every token. Call experts[i] only on "
        "the kept tokens routed to it, at most C rows: the fixed capacity is what makes the "
        "expert computation a fixed-size, sparse batch.",
        {"            rows = torch.nonzero(kept & (expert == i)).squeeze(1)  # kept tokens of "
         "expert i\n"
         "            if rows.numel() == 0:\n"
         "                continue\n"
         "            out = ffn(tokens[rows])\n"
         "            y = y.index_add(0, rows, gate[rows, None] * out)  # y_n = g_n "
         "FFN_{e_n}(x_n)\n":
             "            y = y + (gate * (expert == i))[:, None] * ffn(tokens)\n"},
    ),
    Mistake(
        "aux-detached",
        "Your aux_loss gives the router no gradient: it matches the loss computed on detached "
        "probabilities. P_i must stay differentiable; it is how the loss balances the router.",
        {"aux_loss = load_balancing_loss(torch.softmax(logits, dim=-1), expert)":
             "aux_loss = load_balancing_loss(torch.softmax(logits, dim=-1).detach(), expert)"},
    ),
]

# (N, E, capacity factor); the first of each list has an integer c·N/E
ROUTE_CASES = [
    (8, 4, 1.0),  # C = 2
    (7, 2, 1.0),  # 3.5 -> 4
    (13, 5, 1.25),  # 3.25 -> 4
    (16, 3, 0.75),  # 4
    (9, 4, 1.5),  # 3.375 -> 4
    (1, 3, 1.0),  # batch 1: C = 1
    (5, 1, 0.5),  # one expert: 2.5 -> 3
    (12, 5, 2.0),  # 4.8 -> 5
]


def _skewed_logits(grader, n, e, dtype, skew=1.5):
    """Normal logits plus a column offset, so that some experts get more than their share."""
    return (grader.randn(n, e) + grader.randn(e, scale=skew)).to(dtype)


def _route(logits, c, **kwargs):
    return Call("switch_route", (logits, c), **kwargs)


# -- Task 1: switch_route -------------------------------------------------------------------


@check(points=2, public=True, task="switch_route")
def test_route(grader):
    """switch_route: top-1 expert, its softmax probability, capacity ceil(c·N/E) in row order"""
    for n, e, c in ROUTE_CASES:
        for dtype in DTYPES:
            logits = _skewed_logits(grader, n, e, dtype)
            grader.compare(_route(logits, c),
                           case=f"switch_route(logits[{n}, {e}], {c}), {_dt(dtype)}")


@check(points=1, task="switch_route")
def test_route_capacity_edges(grader):
    """switch_route at a capacity hit exactly, a capacity >= N, one token and one expert"""
    # N = 8, E = 4, c = 1: C = 2; expert 0 gets exactly 2 tokens, expert 1 gets 3 (the third
    # is dropped), expert 2 two and expert 3 one
    targets = torch.tensor([1, 0, 2, 1, 0, 3, 1, 2])
    for dtype in DTYPES:
        logits = (grader.randn(8, 4, scale=0.3) + 3.0 * torch.eye(4)[targets]).to(dtype)
        grader.compare(_route(logits, 1.0),
                       case=f"switch_route with capacity 2 hit exactly by expert 0 and "
                       f"exceeded by one token at expert 1 (N=8, E=4, c=1.0), {_dt(dtype)}")
    for n, e, c, what in [(6, 3, 3.0, "c = E: C = N"), (5, 2, 4.0, "c·N/E = 10 > N"),
                          (1, 4, 1.0, "a single token"), (1, 1, 0.5, "one token, one expert"),
                          (6, 1, 1.0, "one expert, C = N"), (6, 1, 0.5, "one expert, C = 3")]:
        for dtype in DTYPES:
            logits = _skewed_logits(grader, n, e, dtype)
            grader.compare(_route(logits, c),
                           case=f"switch_route(logits[{n}, {e}], {c}) ({what}), {_dt(dtype)}")


@check(points=1, task="switch_route")
def test_route_ties(grader):
    """switch_route breaks ties towards the lower expert index (integer and all-zero logits)"""
    for n, e, c in [(12, 4, 1.0), (9, 3, 1.25), (6, 5, 2.0)]:
        for dtype in DTYPES:
            logits = grader.randint(-1, 2, (n, e)).to(dtype)
            grader.compare(_route(logits, c),
                           case=f"switch_route of tied integer logits[{n}, {e}], c={c}, "
                           f"{_dt(dtype)}")
            grader.compare(_route(torch.zeros(n, e, dtype=dtype), c),
                           case=f"switch_route of all-zero logits[{n}, {e}] (every token "
                           f"chooses expert 0), c={c}, {_dt(dtype)}")


@check(points=2, task="switch_route")
def test_route_gradients(grader):
    """the gate is differentiable w.r.t. the logits (zero gradient for dropped tokens)"""
    for n, e, c in [(8, 4, 1.0), (7, 2, 1.0), (1, 3, 1.0), (10, 3, 0.5), (5, 1, 0.5)]:
        for dtype in DTYPES:
            logits = _skewed_logits(grader, n, e, dtype)
            grader.compare(_route(logits, c, grad=(0,)),
                           case=f"d gate / d logits of switch_route(logits[{n}, {e}], {c}), "
                           f"{_dt(dtype)}")


# -- Task 2: load_balancing_loss ------------------------------------------------------------


@check(points=2, public=True, task="load_balancing_loss")
def test_loss(grader):
    """load_balancing_loss = E · Σ f_i P_i, forward and gradient w.r.t. router_probs"""
    for n, e in [(8, 4), (1, 3), (9, 1), (12, 5), (5, 7), (16, 2)]:
        for dtype in DTYPES:
            probs = torch.softmax(_skewed_logits(grader, n, e, torch.float64), dim=1).to(dtype)
            expert = grader.randint(0, e, (n,))  # not the argmax; some experts get none
            grader.compare(Call("load_balancing_loss", (probs, expert), grad=(0,)),
                           case=f"load_balancing_loss(probs[{n}, {e}], random expert[{n}]), "
                           f"{_dt(dtype)}")


@check(points=1, task="load_balancing_loss")
def test_loss_extremes(grader):
    """load_balancing_loss is 1 for a uniform router and E for one collapsed onto one expert"""
    for n, e in [(8, 4), (6, 3), (10, 5)]:
        for dtype in DTYPES:
            uniform = torch.full((n, e), 1.0 / e, dtype=dtype)
            balanced = torch.arange(n) % e
            grader.compare(Call("load_balancing_loss", (uniform, balanced), grad=(0,)),
                           case=f"load_balancing_loss of uniform probs[{n}, {e}] with the "
                           f"tokens spread evenly, {_dt(dtype)}")
            collapsed = torch.zeros(n, e, dtype=dtype)
            collapsed[:, e - 1] = 1.0
            grader.compare(Call("load_balancing_loss",
                                (collapsed, torch.full((n,), e - 1, dtype=torch.int64)),
                                grad=(0,)),
                           case=f"load_balancing_loss of probs[{n}, {e}] all on expert "
                           f"{e - 1}, {_dt(dtype)}")


# -- Task 3: MoEFeedForward -----------------------------------------------------------------

# (shape of x, dim, hidden, E, capacity factor); 3-D first, with N/B and c·N/E chosen so that
# the capacity from the batch, the off-by-one and flooring give three different capacities
MOE_CASES = [
    ((2, 6, 4), 4, 5, 3, 1.5),  # N = 12: C = 6 (from the batch: 1)
    ((3, 5, 3), 3, 4, 4, 1.0),  # N = 15: 3.75 -> 4
    ((7, 4), 4, 3, 3, 1.25),  # 2.92 -> 3
    ((4,), 4, 6, 2, 1.0),  # a single token
    ((1, 1, 5), 5, 3, 2, 2.0),  # batch 1, one token
    ((2, 4, 2), 2, 3, 1, 1.0),  # one expert: nothing dropped
]


def _moe_state(grader, dim, hidden, e, dtype):
    state = {"router.weight": grader.randn(e, dim, dtype=dtype, scale=0.7)}
    for i in range(e):
        state[f"experts.{i}.0.weight"] = grader.randn(hidden, dim, dtype=dtype, scale=dim**-0.5)
        state[f"experts.{i}.0.bias"] = grader.randn(hidden, dtype=dtype, scale=0.1)
        state[f"experts.{i}.2.weight"] = grader.randn(dim, hidden, dtype=dtype,
                                                      scale=hidden**-0.5)
        state[f"experts.{i}.2.bias"] = grader.randn(dim, dtype=dtype, scale=0.1)
    return state


def _moe(grader, dim, hidden, e, c, dtype):
    return Make("MoEFeedForward", (dim, hidden, e), {"capacity_factor": c},
                state_dict=_moe_state(grader, dim, hidden, e, dtype), dtype=dtype)


def _x(grader, shape, dtype):
    # a shared offset: the router then favours the experts whose row has the largest sum
    return (grader.randn(*shape) + 1.0).to(dtype)


def _describe(shape, dim, hidden, e, c):
    return f"MoEFeedForward({dim}, {hidden}, {e}, capacity_factor={c}) on x{list(shape)}"


@check(points=1, public=True, task="MoEFeedForward")
def test_moe_layout(grader):
    """MoEFeedForward has router.weight (E, dim) and experts.<i>.{0,2}.{weight,bias}, no buffers"""
    for args, kwargs in [((4, 6, 3), {}), ((2, 3, 1), {"capacity_factor": 2.0}),
                         ((5, 2, 4), {})]:
        grader.compare(Call("@modules.layout", ("MoEFeedForward", args, kwargs)),
                       case=f"parameter names and shapes of MoEFeedForward"
                       f"{args}{', ' + str(kwargs) if kwargs else ''}, float32", exact=True)


@check(points=2, public=True, task="MoEFeedForward")
def test_moe_forward(grader):
    """MoEFeedForward forward from a copied state dict: (y, aux_loss), dropped rows zero"""
    for shape, dim, hidden, e, c in MOE_CASES:
        for dtype in DTYPES:
            moe = _moe(grader, dim, hidden, e, c, dtype)
            grader.compare(Call(moe, (_x(grader, shape, dtype),)),
                           case=f"{_describe(shape, dim, hidden, e, c)}, {_dt(dtype)}")


@check(points=2, task="MoEFeedForward")
def test_moe_gradients(grader):
    """MoEFeedForward gradients of (y, aux_loss) w.r.t. x and every parameter"""
    for (shape, dim, hidden, e, c), dtype in zip(MOE_CASES[:4], [torch.float64, torch.float32] * 2):
        grader.compare(Call(_moe(grader, dim, hidden, e, c, dtype), (_x(grader, shape, dtype),),
                            grad=(0, "params")),
                       case=f"d/dx, d/dparams of {_describe(shape, dim, hidden, e, c)}, "
                       f"{_dt(dtype)}")


@check(points=1, task="MoEFeedForward")
def test_moe_dispatch(grader):
    """each expert runs once, on exactly the kept tokens routed to it (at most C rows)"""
    for (shape, dim, hidden, e, c), dtype in zip(MOE_CASES[:3], [torch.float64, torch.float32,
                                                                 torch.float32]):
        grader.compare(Call("@moe_transformer.dispatch_counts",
                            (_moe(grader, dim, hidden, e, c, dtype), _x(grader, shape, dtype))),
                       case=f"rows given to each expert of {_describe(shape, dim, hidden, e, c)}"
                       f", {_dt(dtype)}", exact=True)


# the reference, over draws like these with seeds 0-19, keeps 0.25-0.27 of the tokens at the
# start (almost all on one expert, C = N/4) and 0.84-1.00 after 100 steps; the aux loss falls
# from 3.7-4.0 to 0.99-1.14. A loss without gradient leaves both unchanged.
BALANCE_KEPT = 0.6
BALANCE_STEPS, BALANCE_LR = 100, 0.05


@check(points=2, task="MoEFeedForward")
def test_moe_balancing_trains(grader):
    """training the router on aux_loss alone spreads a collapsed routing: fewer tokens dropped"""
    dim, hidden, e, n = 8, 8, 4, 64
    state = _moe_state(grader, dim, hidden, e, torch.float32)
    state["router.weight"] = grader.randn(e, dim, dtype=torch.float32, scale=0.1)
    state["router.weight"][0] += 1.0  # every token starts on expert 0
    x = _x(grader, (n, dim), torch.float32)
    moe = Make("MoEFeedForward", (dim, hidden, e), {"capacity_factor": 1.0}, state_dict=state,
               dtype=torch.float32)
    case = (f"MoEFeedForward({dim}, {hidden}, {e}, capacity_factor=1.0) on x[{n}, {dim}], "
            f"float32, its router trained by the grader on aux_loss alone (Adam, lr "
            f"{BALANCE_LR}, {BALANCE_STEPS} full-batch steps) from a router that sends every "
            "token to expert 0")
    got = grader.learner(Call("@moe_transformer.balance", (moe, x, BALANCE_STEPS, BALANCE_LR)),
                         case)
    kept = got.out["fraction kept"]
    before, after = float(kept[0]), float(kept[-1])
    if after < BALANCE_KEPT:
        mistake = grader.banked_mistake(
            Call("@moe_transformer.balance", (moe, x, BALANCE_STEPS, BALANCE_LR)),
            lambda o: float(o.out["fraction kept"][-1]) < BALANCE_KEPT)
        grader.fail(f"the experts received {before:.2f} of the tokens before training and "
                    f"{after:.2f} after; the target is at least {BALANCE_KEPT}. The balancing "
                    "loss must give the router a gradient through P_i that spreads the tokens.",
                    mistake=mistake, case=case)
    grader.cases.append(f"{case}: kept {before:.2f} -> {after:.2f}")
