"""Hidden checks for unit 5.11 `latent-diffusion` (Rombach et al., 2021).

Every check compares the learner's code with the master on seeded inputs and, on a mismatch,
looks the output up in the mistake bank below.

- ``CrossAttention``: the state dict's layout (names, shapes, dtypes of ``to_q.weight``,
  ``to_k.weight``, ``to_v.weight``, ``to_out.weight``, ``to_out.bias``) for the defaults
  (heads 8, dim_head 64), a context_dim of its own and context_dim=None; then, with a copied
  state dict in float32 and float64, cross-attention over shapes where N ≠ M, N = 1, M = 1,
  heads 1 and several, and query_dim, heads·dim_head and dim_head all different (so that
  every wrong scale shows), plus one case with context_dim = query_dim (on which keys taken
  from x instead of the context still run, and are diagnosed); self-attention with
  ``context`` omitted; gradients w.r.t. x, context and every parameter. Weights are scaled so
  that the scores spread over a few units and the softmax is far from uniform.
- ``classifier_free_guidance``: scales 0, 1, 3 and 7.5, a fractional one, a per-sample (B, 1)
  tensor of scales, several shapes and both dtypes; gradients w.r.t. both predictions.
- ``drop_condition``: fixed seeded generators (``Gen(seed)``), so that the learner's draws are
  the reference's, on (B, D) conditions with a (D,) null, (B, M, D) with (M, D), (B,) labels
  with a 0-dim null label, (1, D) and (B, D) nulls, batch 1; p = 0 (nothing dropped, the
  output equals cond) and p = 1 (everything dropped); p set exactly to one of the draws (that
  sample keeps its condition: drop iff u < p); gradients w.r.t. cond and null_cond. Inputs
  must come back unchanged (the probe checks that).

The master was compared with ``diffusers``' ``Attention`` (query_dim, cross_attention_dim,
heads, dim_head, bias=False, out_bias=True) with the weights copied, self and cross, in
``tests/test_oracle_latent_diffusion.py``.
"""

import torch

from course.grading.dsl import (
    ATTENTION_ATEN,
    ATTENTION_CALLS,
    TRANSFORMER_LAYERS,
    Call,
    Forbid,
    Gen,
    Make,
    Mistake,
    check,
)
from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import dtype_word as _dt

UNIT = "latent-diffusion"

FORBIDDEN = [
    Forbid(calls=ATTENTION_CALLS + TRANSFORMER_LAYERS, aten=ATTENTION_ATEN),
]

MISTAKES = [
    # -- CrossAttention
    Mistake(
        "scale-by-sqrt-inner",
        "Your attention matches scores divided by sqrt(heads·dim_head), the width of all "
        "heads together. Each head scales its dot products by the square root of its own "
        "width: divide by sqrt(dim_head).",
        {"/ math.sqrt(d)": "/ math.sqrt(h * d)"},
    ),
    Mistake(
        "scale-by-sqrt-query-dim",
        "Your attention matches scores divided by sqrt(query_dim), the width of the input "
        "tokens. The dot products are between queries and keys of one head, dim_head wide: "
        "divide by sqrt(dim_head).",
        {"/ math.sqrt(d)": "/ math.sqrt(self.to_q.in_features)"},
    ),
    Mistake(
        "no-scaling",
        "Your attention matches unscaled scores q·kᵀ. Divide them by sqrt(dim_head) before "
        "the softmax.",
        {" / math.sqrt(d)  # (B, h, N, M)": "  # (B, h, N, M)"},
    ),
    Mistake(
        "softmax-over-queries",
        "Your attention matches a softmax over the query axis (dim=-2): each key's weights "
        "sum to one instead of each query's. Normalise the (B, heads, N, M) scores over the "
        "M keys, the last axis.",
        {"torch.softmax(scores, dim=-1)": "torch.softmax(scores, dim=-2)"},
    ),
    Mistake(
        "heads-without-transpose",
        "Your attention matches heads split by reshaping (B, L, heads·dim_head) straight to "
        "(B, heads, L, dim_head) (and merged back the same way), which mixes tokens and "
        "features. View as (B, L, heads, dim_head), then transpose to (B, heads, L, "
        "dim_head); to merge, transpose back before reshaping to (B, N, heads·dim_head).",
        {"return t.view(B, L, h, d).transpose(1, 2)": "return t.reshape(B, h, L, d)",
         "out.transpose(1, 2).reshape(B, N, h * d)": "out.reshape(B, N, h * d)"},
    ),
    Mistake(
        "context-ignored",
        "Your cross-attention matches keys and values computed from x, not from the "
        "context: it is self-attention whatever context is given. Queries come from x, keys "
        "and values from context (x only when context is None).",
        {"k = split(self.to_k(context))": "k = split(self.to_k(x))",
         "v = split(self.to_v(context))": "v = split(self.to_v(x))"},
    ),
    Mistake(
        "qkv-bias",
        "Your module's state dict has biases on to_q, to_k and to_v. The query, key and "
        "value projections have no bias (nn.Linear(..., bias=False)); only to_out has one.",
        {"self.to_q = nn.Linear(query_dim, inner, bias=False)":
         "self.to_q = nn.Linear(query_dim, inner)",
         "self.to_k = nn.Linear(context_dim, inner, bias=False)":
         "self.to_k = nn.Linear(context_dim, inner)",
         "self.to_v = nn.Linear(context_dim, inner, bias=False)":
         "self.to_v = nn.Linear(context_dim, inner)"},
    ),
    Mistake(
        "kv-from-query-dim",
        "Your to_k and to_v take query_dim inputs even when context_dim is given. They map "
        "the context's tokens: nn.Linear(context_dim, inner, bias=False), with context_dim "
        "defaulting to query_dim only when it is None.",
        {"self.to_k = nn.Linear(context_dim, inner, bias=False)":
         "self.to_k = nn.Linear(query_dim, inner, bias=False)",
         "self.to_v = nn.Linear(context_dim, inner, bias=False)":
         "self.to_v = nn.Linear(query_dim, inner, bias=False)"},
    ),
    # -- classifier_free_guidance
    Mistake(
        "guidance-reversed",
        "Your guidance matches eps_cond + scale·(eps_uncond − eps_cond): the two predictions "
        "swapped, which steers away from the condition. Start from the unconditional "
        "prediction and move towards the conditional one: eps_uncond + scale·(eps_cond − "
        "eps_uncond).",
        {"eps_uncond + scale * (eps_cond - eps_uncond)":
         "eps_cond + scale * (eps_uncond - eps_cond)"},
    ),
    Mistake(
        "guidance-w-convention",
        "Your guidance matches (1 + scale)·eps_cond − scale·eps_uncond, Ho & Salimans' form "
        "with w = scale. Here scale is s = 1 + w, as in LDM and diffusers: eps_uncond + "
        "scale·(eps_cond − eps_uncond), so that scale 1 gives eps_cond.",
        {"eps_uncond + scale * (eps_cond - eps_uncond)":
         "eps_cond + scale * (eps_cond - eps_uncond)"},
    ),
    Mistake(
        "guidance-missing-parentheses",
        "Your guidance matches eps_uncond + scale·eps_cond − eps_uncond = scale·eps_cond "
        "(parentheses missing): the scale multiplies the difference eps_cond − eps_uncond.",
        {"eps_uncond + scale * (eps_cond - eps_uncond)":
         "eps_uncond + scale * eps_cond - eps_uncond"},
    ),
    # -- drop_condition
    Mistake(
        "drop-when-above-p",
        "Your drops match dropping the samples whose draw is above p, i.e. with probability "
        "1 − p. Drop sample i when u[i] < p, so that p = 0 keeps every condition and p = 1 "
        "drops them all.",
        {"drop = (u < p).to(cond.device)": "drop = (u > p).to(cond.device)"},
    ),
    Mistake(
        "drop-at-equal",
        "Your drops are right except where a draw equals p exactly: that sample should keep "
        "its condition. The rule is strict: drop when u[i] < p (not <=).",
        {"drop = (u < p).to(cond.device)": "drop = (u <= p).to(cond.device)"},
    ),
    Mistake(
        "one-draw-for-batch",
        "Your drops match one draw for the whole batch (every condition dropped or none). "
        "Draw one number per sample: u = torch.rand(B, generator=generator), and drop sample "
        "i when u[i] < p.",
        {"u = torch.rand((B,), generator=generator)": "u = torch.rand(1, generator=generator)",
         "drop = drop.reshape((B,) + (1,) * (cond.dim() - 1))":
         "drop = drop.reshape((1,) * cond.dim())"},
    ),
    Mistake(
        "draw-per-entry",
        "Your drops match one draw per entry of cond (torch.rand(cond.shape)), which replaces "
        "single features rather than whole conditions. Draw one number per sample, "
        "u = torch.rand(B, generator=generator), and replace all of sample i's condition.",
        {"u = torch.rand((B,), generator=generator)":
         "u = torch.rand(cond.shape, generator=generator)",
         "drop = drop.reshape((B,) + (1,) * (cond.dim() - 1))": "drop = drop"},
    ),
    Mistake(
        "drop-in-place",
        "Your drop_condition writes the null condition into the caller's cond tensor. Return "
        "a new tensor (torch.where(mask, null_cond, cond)) and leave cond unchanged.",
        {"return torch.where(drop, null_cond, cond)":
         "cond.copy_(torch.where(drop, null_cond, cond))\n    return cond"},
    ),
]


# -- CrossAttention ---------------------------------------------------------------------------

def _state(grader, query_dim, context_dim, heads, dim_head, dtype):
    inner = heads * dim_head
    return {
        "to_q.weight": grader.randn(inner, query_dim, dtype=dtype, scale=1.5 * query_dim**-0.5),
        "to_k.weight": grader.randn(inner, context_dim, dtype=dtype,
                                    scale=1.5 * context_dim**-0.5),
        "to_v.weight": grader.randn(inner, context_dim, dtype=dtype, scale=context_dim**-0.5),
        "to_out.weight": grader.randn(query_dim, inner, dtype=dtype, scale=inner**-0.5),
        "to_out.bias": grader.randn(query_dim, dtype=dtype, scale=0.3),
    }


def _attn(grader, query_dim, context_dim, heads, dim_head, dtype):
    args = (query_dim, context_dim, heads, dim_head)
    state = _state(grader, query_dim, context_dim or query_dim, heads, dim_head, dtype)
    return Make("CrossAttention", args, state_dict=state, dtype=dtype)


# (B, N, M, query_dim, context_dim, heads, dim_head): query_dim, heads·dim_head and dim_head
# all differ where heads > 1, so that each wrong scale gives other numbers
CROSS = [
    (2, 4, 6, 7, 7, 2, 5),  # first: context_dim = query_dim, on which keys from x still run
    (2, 5, 3, 8, 6, 3, 4),
    (1, 4, 7, 6, 10, 2, 5),
    (3, 1, 2, 5, 3, 4, 3),
    (2, 6, 4, 9, 9, 1, 5),
    (2, 3, 1, 8, 4, 2, 6),
]

# (B, N, query_dim, heads, dim_head)
SELF = [
    (2, 5, 8, 2, 3),
    (1, 7, 6, 3, 4),
    (3, 1, 4, 4, 2),
    (2, 4, 10, 1, 6),
]


def _layout(grader, args, kwargs, case):
    """The state dict's names, shapes and dtypes equal the reference's; a banked mistake with
    the learner's very layout names the slip."""
    probe = Call("@modules.state", ("CrossAttention", args, kwargs))

    def shapes(out):
        return {k: (tuple(v.shape), _dt(v.dtype)) for k, v in out.items()}

    expected = shapes(grader.reference(probe, float64=False).out)
    have = shapes(grader.learner(probe, case).out)
    if have != expected:
        mistake = grader.banked_mistake(probe, lambda o: shapes(o.out) == have)
        grader.fail(
            f"the state dict (name: (shape, dtype)) is {have}, expected {expected}. "
            "CrossAttention holds to_q = nn.Linear(query_dim, inner, bias=False), to_k and "
            "to_v = nn.Linear(context_dim, inner, bias=False), to_out = nn.Linear(inner, "
            "query_dim) with a bias, inner = heads·dim_head, float32, and nothing else.",
            mistake=mistake, case=case)
    grader.cases.append(case)


@check(points=1, public=True, task="CrossAttention")
def test_attention_layout(grader):
    """CrossAttention's state dict: to_q, to_k, to_v (no biases) and to_out, with their shapes"""
    for args, kwargs in [((16,), {}), ((8, 6, 3, 4), {}), ((6, None, 2, 5), {}),
                         ((5,), {"context_dim": 11, "heads": 2, "dim_head": 3})]:
        words = ", ".join([repr(a) for a in args] + [f"{k}={v}" for k, v in kwargs.items()])
        _layout(grader, args, kwargs, f"CrossAttention({words}) state dict")


def _cross_case(shape, dtype):
    B, N, M, qd, cd, heads, dh = shape
    return (f"CrossAttention({qd}, {cd}, heads={heads}, dim_head={dh})"
            f"(x[{B}, {N}, {qd}], context[{B}, {M}, {cd}]), {_dt(dtype)}")


@check(points=3, public=True, task="CrossAttention")
def test_cross_attention(grader):
    """cross-attention with copied weights: queries from x, keys and values from the context"""
    for shape in CROSS:
        B, N, M, qd, cd, heads, dh = shape
        for dtype in DTYPES:
            x = grader.randn(B, N, qd, dtype=dtype)
            context = grader.randn(B, M, cd, dtype=dtype)
            grader.compare(Call(_attn(grader, qd, cd, heads, dh, dtype), (x, context)),
                           case=_cross_case(shape, dtype))


@check(points=2, public=True, task="CrossAttention")
def test_self_attention(grader):
    """without a context (context_dim None), the layer attends over x itself"""
    for B, N, qd, heads, dh in SELF:
        for dtype in DTYPES:
            x = grader.randn(B, N, qd, dtype=dtype)
            grader.compare(Call(_attn(grader, qd, None, heads, dh, dtype), (x,)),
                           case=f"CrossAttention({qd}, heads={heads}, dim_head={dh})"
                           f"(x[{B}, {N}, {qd}]), {_dt(dtype)}")


@check(points=2, task="CrossAttention")
def test_attention_gradients(grader):
    """gradients w.r.t. x, the context and every parameter, cross and self"""
    for shape in (CROSS[0], CROSS[1], CROSS[3], CROSS[4]):
        B, N, M, qd, cd, heads, dh = shape
        for dtype in DTYPES:
            x = grader.randn(B, N, qd, dtype=dtype)
            context = grader.randn(B, M, cd, dtype=dtype)
            grader.compare(Call(_attn(grader, qd, cd, heads, dh, dtype), (x, context),
                                grad=(0, 1, "params")),
                           case="gradients of " + _cross_case(shape, dtype))
    B, N, qd, heads, dh = SELF[1]
    for dtype in DTYPES:
        x = grader.randn(B, N, qd, dtype=dtype)
        grader.compare(Call(_attn(grader, qd, None, heads, dh, dtype), (x,),
                            grad=(0, "params")),
                       case=f"gradients of CrossAttention({qd}, heads={heads}, "
                       f"dim_head={dh})(x[{B}, {N}, {qd}]), {_dt(dtype)}")


# -- classifier_free_guidance -----------------------------------------------------------------

@check(points=2, public=True, task="classifier_free_guidance")
def test_guidance(grader):
    """classifier_free_guidance = eps_uncond + scale·(eps_cond − eps_uncond), several scales"""
    for shape, scale in [((4, 3), 3.0), ((2, 1, 4, 4), 7.5), ((5,), 0.0), ((3, 6), 1.0),
                         ((1, 2, 3), 2.25), ((6, 2), -0.5)]:
        for dtype in DTYPES:
            eps_u = grader.randn(*shape, dtype=dtype)
            eps_c = grader.randn(*shape, dtype=dtype)
            grader.compare(Call("classifier_free_guidance", (eps_u, eps_c, scale)),
                           case=f"classifier_free_guidance(eps_uncond{list(shape)}, "
                           f"eps_cond{list(shape)}, {scale}), {_dt(dtype)}")


@check(points=1, task="classifier_free_guidance")
def test_guidance_tensor_scale_and_gradients(grader):
    """a (B, 1) tensor of per-sample scales; gradients w.r.t. both predictions"""
    for dtype in DTYPES:
        eps_u, eps_c = grader.randn(5, 3, dtype=dtype), grader.randn(5, 3, dtype=dtype)
        scale = torch.tensor([[0.0], [1.0], [2.0], [4.5], [7.5]], dtype=dtype)
        grader.compare(Call("classifier_free_guidance", (eps_u, eps_c, scale)),
                       case=f"classifier_free_guidance(eps_uncond[5, 3], eps_cond[5, 3], "
                       f"scale[5, 1]), {_dt(dtype)}")
        for shape, s in [((4, 3), 3.0), ((2, 2, 3), 0.5)]:
            eps_u, eps_c = grader.randn(*shape, dtype=dtype), grader.randn(*shape, dtype=dtype)
            grader.compare(Call("classifier_free_guidance", (eps_u, eps_c, s), grad=(0, 1)),
                           case=f"gradients of classifier_free_guidance(eps_uncond"
                           f"{list(shape)}, eps_cond{list(shape)}, {s}), {_dt(dtype)}")


# -- drop_condition ---------------------------------------------------------------------------

def _drop_case(cond, null, p, seed):
    return (f"drop_condition(cond{list(cond.shape)} {_dt(cond.dtype)}, "
            f"null_cond{list(null.shape)}, p={p}, generator=Gen({seed}))")


# (cond shape, null shape, p)
DROPS = [
    ((8, 5), (5,), 0.5),
    ((7, 3, 4), (3, 4), 0.3),
    ((10, 2), (1, 2), 0.7),
    ((6, 4), (6, 4), 0.5),
    ((1, 6), (6,), 0.5),
]


@check(points=2, public=True, task="drop_condition")
def test_drop_condition(grader):
    """drop_condition drops each sample whose own draw is below p, one draw per sample"""
    for cond_shape, null_shape, p in DROPS:
        for dtype in DTYPES:
            cond = grader.randn(*cond_shape, dtype=dtype)
            null = grader.randn(*null_shape, dtype=dtype)
            seed = grader.seed()
            grader.compare(Call("drop_condition", (cond, null, p), {"generator": Gen(seed)}),
                           case=_drop_case(cond, null, p, seed), exact=True)
    labels = grader.randint(0, 10, (12,))
    null_label = torch.tensor(10)
    seed = grader.seed()
    grader.compare(Call("drop_condition", (labels, null_label, 0.4), {"generator": Gen(seed)}),
                   case=_drop_case(labels, null_label, 0.4, seed), exact=True)


@check(points=1, task="drop_condition")
def test_drop_extremes(grader):
    """p = 0 keeps every condition and p = 1 drops every one; a draw equal to p keeps"""
    for dtype in DTYPES:
        cond, null = grader.randn(6, 3, dtype=dtype), grader.randn(3, dtype=dtype)
        for p in (0.0, 1.0):
            seed = grader.seed()
            out = grader.compare(Call("drop_condition", (cond, null, p),
                                      {"generator": Gen(seed)}),
                                 case=_drop_case(cond, null, p, seed), exact=True).out
            want = cond if p == 0.0 else null.expand_as(cond)
            grader.require(torch.equal(out.cpu(), want),
                           f"with p = {p} drop_condition must return "
                           f"{'cond itself' if p == 0.0 else 'null_cond in every row'}")
    # p equal to one of the draws: that sample keeps its condition (drop iff u < p)
    for B, k in [(8, 3), (5, 0)]:
        seed = grader.seed()
        u = torch.rand(B, generator=torch.Generator().manual_seed(seed))
        p = float(u[k])
        cond, null = grader.randn(B, 4, dtype=torch.float64), grader.randn(4, dtype=torch.float64)
        grader.compare(Call("drop_condition", (cond, null, p), {"generator": Gen(seed)}),
                       case=_drop_case(cond, null, p, seed) + f", p equal to draw {k}",
                       exact=True)


@check(points=1, task="drop_condition")
def test_drop_gradients(grader):
    """drop_condition is differentiable w.r.t. cond and the null condition"""
    for cond_shape, null_shape, p in (DROPS[0], DROPS[1]):
        for dtype in DTYPES:
            cond = grader.randn(*cond_shape, dtype=dtype)
            null = grader.randn(*null_shape, dtype=dtype)
            seed = grader.seed()
            grader.compare(Call("drop_condition", (cond, null, p), {"generator": Gen(seed)},
                                grad=(0, 1)),
                           case="gradients of " + _drop_case(cond, null, p, seed))
