"""Hidden checks for unit 4.1 `transformer` (Vaswani et al., 2017).

Every check compares the learner's code with the master solution on seeded inputs (several
batch shapes, Lq ≠ Lk, dv ≠ d, length-1 sequences, float32 and float64, causal and padding
masks, gradients) and, on a mismatch, looks the output up in the mistake bank below. Padding
masks are built so that no row is fully blocked, neither as given nor with its polarity
inverted (a fully blocked row is NaN by definition), so that an inverted mask is diagnosed on
them. Both the attention and the multi-head module return their weights too, which are
compared as well.
The master's multi-head attention was checked once, outside the course, to equal
``torch.nn.MultiheadAttention(batch_first=True)`` with ``in_proj_weight = cat(q, k, v)`` and the
same ``out_proj``, with and without biases, padding and causal masks.
"""

import torch

from course.grading.cell_checks import require_layout
from course.grading.dsl import (
    ATTENTION_ATEN,
    ATTENTION_CALLS,
    TRANSFORMER_LAYERS,
    Call,
    Device,
    Forbid,
    Inspect,
    Make,
    Mistake,
    check,
)
from course.grading.dsl import FLOAT_DTYPES as DTYPES

UNIT = "transformer"

FORBIDDEN = [
    Forbid(calls=ATTENTION_CALLS + TRANSFORMER_LAYERS, aten=ATTENTION_ATEN),
]

MISTAKES = [
    Mistake(
        "scale-by-d",
        "Your output matches scores divided by d instead of √d. The paper scales the dot "
        "products by 1/√d_k: divide by math.sqrt(d), with d = q.shape[-1].",
        {"/ math.sqrt(d)": "/ d"},
    ),
    Mistake(
        "no-scaling",
        "Your output matches unscaled dot products q·kᵀ. Divide the scores by √d "
        "(d = q.shape[-1]) before the softmax.",
        {" / math.sqrt(d)": ""},
    ),
    Mistake(
        "softmax-over-queries",
        "Your weights match a softmax taken over the query axis (dim=-2): each column sums to "
        "one instead of each row. Normalise over the keys, the last axis (dim=-1).",
        {"torch.softmax(scores, dim=-1)": "torch.softmax(scores, dim=-2)"},
    ),
    Mistake(
        "no-softmax",
        "Your output matches values averaged with the raw scores: the softmax is missing. "
        "Turn the scaled scores into weights with a softmax over the keys, then compute "
        "weights @ v.",
        {"weights = torch.softmax(scores, dim=-1)": "weights = scores"},
    ),
    Mistake(
        "mask-after-softmax",
        "Your weights match zeroing the blocked entries after the softmax: the remaining "
        "weights of a row no longer sum to one. Set blocked scores to −inf before the softmax.",
        {
            "    if mask is not None:\n        scores = scores.masked_fill(~mask, "
            "float(\"-inf\"))\n    weights = torch.softmax(scores, dim=-1)\n":
            "    weights = torch.softmax(scores, dim=-1)\n    if mask is not None:\n"
            "        weights = weights.masked_fill(~mask, 0.0)\n"
        },
    ),
    Mistake(
        "mask-polarity",
        "Your output matches blocking the positions where the mask is True. In this course "
        "True means 'may attend': block where the mask is False (masked_fill(~mask, -inf)).",
        {"masked_fill(~mask, ": "masked_fill(mask, "},
    ),
    Mistake(
        "causal-upper",
        "Your mask is upper-triangular: it lets each query see the future and hides the past. "
        "Query i may attend to keys j ≤ i: keep the lower triangle (torch.tril).",
        {".tril()": ".triu()"},
    ),
    Mistake(
        "causal-no-diagonal",
        "Your mask blocks the diagonal: a query may also attend to its own position (j ≤ i, "
        "not j < i). Keep the diagonal (tril with diagonal=0).",
        {".tril()": ".tril(-1)"},
    ),
    Mistake(
        "split-heads-without-transpose",
        "Your output matches heads split by reshaping (B, L, d_model) straight to "
        "(B, h, L, d_k), which mixes positions and features. View as (B, L, h, d_k), then "
        "transpose to (B, h, L, d_k); undo it the same way when merging the heads.",
        {
            "q = self.q_proj(query).view(B, Lq, h, d_head).transpose(1, 2)":
            "q = self.q_proj(query).reshape(B, h, Lq, d_head)",
            "k = self.k_proj(key).view(B, Lk, h, d_head).transpose(1, 2)":
            "k = self.k_proj(key).reshape(B, h, Lk, d_head)",
            "v = self.v_proj(value).view(B, Lk, h, d_head).transpose(1, 2)":
            "v = self.v_proj(value).reshape(B, h, Lk, d_head)",
            "heads.transpose(1, 2).reshape(B, Lq, self.d_model)":
            "heads.reshape(B, Lq, self.d_model)",
        },
    ),
    Mistake(
        "merge-heads-without-transpose",
        "Your heads are split correctly but merged by reshaping (B, h, Lq, d_k) straight to "
        "(B, Lq, d_model). Transpose back to (B, Lq, h, d_k) first, then reshape.",
        {
            "heads.transpose(1, 2).reshape(B, Lq, self.d_model)":
            "heads.reshape(B, Lq, self.d_model)"
        },
    ),
    Mistake(
        "no-output-projection",
        "Your output matches the concatenated heads without the final projection. Apply "
        "out_proj (W^O) to the concatenation.",
        {"return self.out_proj(concat), weights": "return concat, weights"},
    ),
    Mistake(
        "single-head",
        "Your output matches one head of width d_model: num_heads was ignored. Split the "
        "projections into num_heads heads of width d_model // num_heads (each scaled by "
        "1/√d_k of its own width).",
        {
            "h, d_head = self.num_heads, self.d_model // self.num_heads":
            "h, d_head = 1, self.d_model"
        },
    ),
    Mistake(
        "keys-from-query",
        "Your output matches keys and values computed from the query input (self-attention "
        "only). Project key with k_proj and value with v_proj: in cross-attention they differ "
        "from the query.",
        {"self.k_proj(key)": "self.k_proj(query)", "self.v_proj(value)": "self.v_proj(query)"},
    ),
    Mistake(
        "sin-cos-swapped",
        "Your encodings have cosines in the even columns and sines in the odd ones. The paper "
        "puts sin in columns 2i and cos in columns 2i+1.",
        {
            "pe[:, 0::2] = torch.sin(angle)\n    pe[:, 1::2] = torch.cos(angle)":
            "pe[:, 0::2] = torch.cos(angle)\n    pe[:, 1::2] = torch.sin(angle)"
        },
    ),
    Mistake(
        "sin-cos-concatenated",
        "Your encodings put all the sines in the first half and all the cosines in the second "
        "half. Interleave them: sin in the even columns 2i, cos in the odd columns 2i+1.",
        {
            "pe[:, 0::2] = torch.sin(angle)\n    pe[:, 1::2] = torch.cos(angle)":
            "pe = torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)"
        },
    ),
    Mistake(
        "exponent-i-not-2i",
        "Your frequencies match the exponent i/d_model instead of 2i/d_model. Column pair i "
        "uses 10000^(2i/d_model): the exponent runs over the even numbers 0, 2, 4, …",
        {"torch.arange(0, d_model, 2, dtype": "torch.arange(0, d_model // 2, dtype"},
    ),
]



def _qkv(grader, batch, lq, lk, d, dv, dtype):
    q = grader.randn(*batch, lq, d, dtype=dtype)
    k = grader.randn(*batch, lk, d, dtype=dtype)
    v = grader.randn(*batch, lk, dv, dtype=dtype)
    return q, k, v


def _lengths_mask(grader, lk, lead=()):
    """Padding mask (*lead, Lk): the first n keys of each row allowed, 1 ≤ n < Lk, so that
    neither the mask nor its inverse blocks a whole row."""
    n = grader.randint(1, lk, lead + (1,))
    return torch.arange(lk) < n


def _random_mask(grader, lq, lk):
    """(Lq, Lk) mask with an allowed and a blocked key in every row."""
    mask = grader.rand(lq, lk) > 0.5
    mask[:, 0] = True
    mask[:, -1] = False
    return mask


def _causal(L):
    return torch.ones(L, L, dtype=torch.bool).tril()


# (batch dims, Lq, Lk, d, dv)
ATTN_SHAPES = [
    ((), 4, 4, 8, 8),
    ((3,), 5, 7, 4, 6),
    ((2, 3), 3, 6, 8, 5),
    ((1,), 1, 5, 4, 4),
    ((2,), 6, 1, 3, 2),
    ((2, 1, 2), 4, 3, 16, 4),
]


@check(points=2, public=True, task="scaled_dot_product_attention")
def test_attention(grader):
    """scaled_dot_product_attention returns (out, weights) like the reference, without a mask"""
    for batch, lq, lk, d, dv in ATTN_SHAPES:
        for dtype in DTYPES:
            q, k, v = _qkv(grader, batch, lq, lk, d, dv, dtype)
            grader.compare(
                Call("scaled_dot_product_attention", (q, k, v)),
                case=f"q{list(q.shape)}, k{list(k.shape)}, v{list(v.shape)}, {dtype}",
            )


@check(points=1, public=True, task="scaled_dot_product_attention")
def test_attention_padding_mask(grader):
    """scaled_dot_product_attention with padding masks of shape (Lk,), (Lq, Lk), (B, 1, 1, Lk)"""
    for dtype in DTYPES:
        q, k, v = _qkv(grader, (3,), 4, 6, 8, 5, dtype)
        grader.compare(
            Call("scaled_dot_product_attention", (q, k, v, _lengths_mask(grader, 6))),
            case=f"q{list(q.shape)}, k{list(k.shape)}, mask of shape (Lk,), {dtype}",
        )
        grader.compare(
            Call("scaled_dot_product_attention", (q, k, v, _random_mask(grader, 4, 6))),
            case=f"q{list(q.shape)}, k{list(k.shape)}, mask of shape (Lq, Lk), {dtype}",
        )
        q, k, v = _qkv(grader, (2, 3), 5, 4, 4, 4, dtype)
        mask = _lengths_mask(grader, 4, (2,))[:, None, None, :]
        grader.compare(
            Call("scaled_dot_product_attention", (q, k, v, mask)),
            case=f"q{list(q.shape)}, k{list(k.shape)}, mask of shape {list(mask.shape)}, {dtype}",
        )


@check(points=1, public=True, task="scaled_dot_product_attention")
def test_attention_causal_mask(grader):
    """scaled_dot_product_attention with a causal (L, L) mask over batch dimensions"""
    for batch, L, d in [((), 5, 4), ((2,), 1, 3), ((2, 2), 6, 8)]:
        for dtype in DTYPES:
            q, k, v = _qkv(grader, batch, L, L, d, d + 1, dtype)
            grader.compare(
                Call("scaled_dot_product_attention", (q, k, v, _causal(L))),
                case=f"q{list(q.shape)} with a causal mask, {dtype}",
            )


@check(points=2, task="scaled_dot_product_attention")
def test_attention_gradients(grader):
    """gradients of scaled_dot_product_attention w.r.t. q, k and v, with and without masks"""
    for dtype in DTYPES:
        q, k, v = _qkv(grader, (2,), 3, 5, 4, 6, dtype)
        grader.compare(
            Call("scaled_dot_product_attention", (q, k, v), grad=(0, 1, 2)),
            case=f"d/dq, d/dk, d/dv, q{list(q.shape)}, k{list(k.shape)}, {dtype}",
        )
        mask = _random_mask(grader, 3, 5)
        grader.compare(
            Call("scaled_dot_product_attention", (q, k, v, mask), grad=(0, 1, 2)),
            case=f"d/dq, d/dk, d/dv with an (Lq, Lk) padding mask, {dtype}",
        )
        q, k, v = _qkv(grader, (2, 2), 5, 5, 4, 3, dtype)
        grader.compare(
            Call("scaled_dot_product_attention", (q, k, v, _causal(5)), grad=(0, 1, 2)),
            case=f"d/dq, d/dk, d/dv with a causal mask, q{list(q.shape)}, {dtype}",
        )


@check(points=1, public=True, task="causal_mask")
def test_causal_mask(grader):
    """causal_mask(L) is the boolean lower triangle, diagonal included"""
    for L in (1, 2, 5, 8):
        grader.compare(
            Call("causal_mask", (L,), {"device": Device()}),
            case=f"causal_mask({L})",
            exact=True,
        )


@check(points=1, public=True, task="MultiHeadAttention")
def test_mha_parameters(grader):
    """MultiHeadAttention has q_proj, k_proj, v_proj, out_proj of shape (d_model, d_model)"""
    # names, shapes and dtypes only: fresh weights depend on the order the layers are made in
    for args, kwargs in [((8, 2), {}), ((12, 3), {"bias": False}), ((4, 1), {})]:
        bias = kwargs.get("bias", True)
        require_layout(
            grader, Inspect(Make("MultiHeadAttention", args, kwargs)),
            case=f"MultiHeadAttention{args} {kwargs or ''}".strip(),
            advice=f"Make q_proj, k_proj, v_proj and out_proj nn.Linear(d_model, d_model, "
                   f"bias={bias}) and no other parameters.",
        )


def _mha_state(grader, d_model, dtype, bias=True):
    state = {}
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        state[f"{name}.weight"] = grader.randn(d_model, d_model, dtype=dtype, scale=d_model**-0.5)
        if bias:
            state[f"{name}.bias"] = grader.randn(d_model, dtype=dtype, scale=0.1)
    return state


def _mha(grader, d_model, heads, dtype, bias=True):
    state = _mha_state(grader, d_model, dtype, bias)
    kwargs = {} if bias else {"bias": False}
    return Make("MultiHeadAttention", (d_model, heads), kwargs, state_dict=state, dtype=dtype)


# (B, Lq, Lk, d_model, heads)
MHA_SHAPES = [
    (2, 5, 5, 8, 2),
    (1, 4, 6, 12, 3),
    (3, 1, 3, 8, 4),
    (2, 3, 1, 16, 4),
]


@check(points=2, public=True, task="MultiHeadAttention")
def test_mha_forward(grader):
    """MultiHeadAttention with copied weights: self- and cross-attention, no mask"""
    for B, lq, lk, d_model, heads in MHA_SHAPES:
        for dtype in DTYPES:
            module = _mha(grader, d_model, heads, dtype)
            x = grader.randn(B, lq, d_model, dtype=dtype)
            if lq == lk:
                grader.compare(
                    Call(module, (x, x, x)),
                    case=f"MultiHeadAttention({d_model}, {heads}), self-attention on "
                    f"x{list(x.shape)}, {dtype}",
                )
            key = grader.randn(B, lk, d_model, dtype=dtype)
            value = grader.randn(B, lk, d_model, dtype=dtype)
            grader.compare(
                Call(module, (x, key, value)),
                case=f"MultiHeadAttention({d_model}, {heads}), query{list(x.shape)}, "
                f"key/value{list(key.shape)}, {dtype}",
            )


@check(points=1, task="MultiHeadAttention")
def test_mha_no_bias(grader):
    """MultiHeadAttention(d_model, heads, bias=False) with copied weights"""
    for dtype in DTYPES:
        module = _mha(grader, 12, 3, dtype, bias=False)
        x = grader.randn(2, 4, 12, dtype=dtype)
        kv = grader.randn(2, 4, 12, dtype=dtype)
        grader.compare(Call(module, (x, kv, kv)), case=f"bias=False, x{list(x.shape)}, {dtype}")


@check(points=2, public=True, task="MultiHeadAttention")
def test_mha_masks(grader):
    """MultiHeadAttention with a padding mask (B, 1, 1, Lk) and with a causal mask"""
    for dtype in DTYPES:
        module = _mha(grader, 8, 2, dtype)
        x = grader.randn(3, 4, 8, dtype=dtype)
        kv = grader.randn(3, 6, 8, dtype=dtype)
        pad = _lengths_mask(grader, 6, (3,))[:, None, None, :]
        grader.compare(
            Call(module, (x, kv, kv, pad)),
            case=f"padding mask {list(pad.shape)}, query{list(x.shape)}, key{list(kv.shape)}, "
            f"{dtype}",
        )
        y = grader.randn(2, 5, 8, dtype=dtype)
        grader.compare(
            Call(module, (y, y, y, _causal(5))),
            case=f"causal mask (5, 5), self-attention on x{list(y.shape)}, {dtype}",
        )


@check(points=2, task="MultiHeadAttention")
def test_mha_gradients(grader):
    """gradients of MultiHeadAttention w.r.t. its inputs and all its parameters"""
    for dtype in DTYPES:
        module = _mha(grader, 8, 2, dtype)
        x = grader.randn(2, 3, 8, dtype=dtype)
        key = grader.randn(2, 4, 8, dtype=dtype)
        value = grader.randn(2, 4, 8, dtype=dtype)
        grader.compare(
            Call(module, (x, key, value), grad=(0, 1, 2, "params")),
            case=f"d/dquery, d/dkey, d/dvalue, d/dparams, query{list(x.shape)}, "
            f"key{list(key.shape)}, {dtype}",
        )
        pad = _lengths_mask(grader, 4, (2,))[:, None, None, :]
        grader.compare(
            Call(module, (x, key, value, pad), grad=(0, 1, 2, "params")),
            case=f"gradients with a padding mask {list(pad.shape)}, {dtype}",
        )


@check(points=2, public=True, task="sinusoidal_positions")
def test_positions(grader):
    """sinusoidal_positions(L, d_model) in float32: sin in even, cos in odd columns"""
    for L, d_model in [(1, 2), (5, 4), (7, 16), (20, 32)]:
        grader.compare(
            Call("sinusoidal_positions", (L, d_model), {"device": Device()}),
            case=f"sinusoidal_positions({L}, {d_model})",
        )


@check(points=1, task="sinusoidal_positions")
def test_positions_float64(grader):
    """sinusoidal_positions(L, d_model, dtype=torch.float64)"""
    for L, d_model in [(3, 6), (20, 32)]:
        grader.compare(
            Call(
                "sinusoidal_positions",
                (L, d_model),
                {"dtype": torch.float64, "device": Device()},
            ),
            case=f"sinusoidal_positions({L}, {d_model}, dtype=torch.float64)",
        )
