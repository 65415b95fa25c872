"""Hidden checks for unit 3.8 `bahdanau-attention` (Bahdanau, Cho & Bengio, 2014).

Every check compares the learner's code with the master solution on seeded inputs, with the
modules built on both sides from one state dict written here from the contract's submodule
names: several sizes including batch 1, a single source position (S = 1), enc_dim = dec_dim and
enc_dim ≠ dec_dim, float32 and float64, without a mask and with padding masks whose first row is
fully real and whose other rows are padded (every row keeps at least one real token; a fully
padded row has no defined softmax). On a mismatch the output is looked up in the mistake bank.
A further check states in words that the weights sum to 1 over S and are exactly 0 at padding.
The layouts (parameter names and shapes, not the random initial values) are compared exactly
through a driver.

The decoder checks run through the driver ``bahdanau_attention.decode``, which replaces the
forward of the learner's ``attention`` submodule by a grader-owned additive attention reading
the same parameters: the decoder is judged on its own, so one mistake in ``AdditiveAttention``
does not sink the decoder's points (gradients still reach every learner parameter).
There is no library additive attention to compare with; `tests/test_oracle_bahdanau_attention.py`
compares the master with the paper's equations written out one sample and one position at a
time (and the decoder with a step loop on ``torch.nn.GRUCell``), in float64.
"""

import math

import torch

from course.grading.dsl import ATTENTION_ATEN, ATTENTION_CALLS, Call, Forbid, Make, Mistake, check
from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import dtype_word as _dt

UNIT = "bahdanau-attention"

FORBIDDEN = [
    Forbid(calls=ATTENTION_CALLS, aten=ATTENTION_ATEN),
]

MISTAKES = [
    # -- AdditiveAttention -----------------------------------------------------------------
    Mistake(
        "softmax-over-batch",
        "Your weights match a softmax taken over the batch axis (dim=0): each source position's "
        "weights sum to one across the batch instead of each row across the source. Normalise "
        "the (B, S) scores over the source positions, dim=1.",
        {"torch.softmax(scores, dim=1)": "torch.softmax(scores, dim=0)"},
    ),
    Mistake(
        "mask-after-softmax",
        "Your weights match zeroing the padded positions after the softmax: the remaining "
        "weights of a padded row no longer sum to one. Set the padded scores to −inf before "
        "the softmax, so that it renormalises over the real tokens.",
        {
            "        if src_mask is not None:\n"
            "            scores = scores.masked_fill(~src_mask, float(\"-inf\"))\n"
            "        weights = torch.softmax(scores, dim=1)":
            "        weights = torch.softmax(scores, dim=1)\n"
            "        if src_mask is not None:\n"
            "            weights = weights.masked_fill(~src_mask, 0.0)"
        },
    ),
    Mistake(
        "mask-polarity",
        "Your output matches masking the positions where src_mask is True. True marks a real "
        "token that may be attended; block the positions where the mask is False "
        "(masked_fill(~src_mask, -inf)).",
        {"masked_fill(~src_mask, ": "masked_fill(src_mask, "},
    ),
    Mistake(
        "mask-with-zero",
        "Your output matches padded scores set to 0 instead of −inf: exp(0) = 1, so padding "
        "still gets weight. Fill the padded scores with float('-inf') so their weights are "
        "exactly 0.",
        {'float("-inf")': "0.0"},
    ),
    Mistake(
        "context-from-scores",
        "Your context matches the annotations summed with the raw scores e_j as coefficients. "
        "Weight them with the softmax weights α_j (which sum to one): c = Σ_j α_j h_j.",
        {"(weights.unsqueeze(-1) * enc_outputs)": "(scores.unsqueeze(-1) * enc_outputs)"},
    ),
    Mistake(
        "wdec-on-encoder",
        "Your output matches W_dec applied to the encoder outputs and W_enc to the decoder "
        "state. W_enc (no bias) maps each annotation h_j, W_dec (with bias) maps the decoder "
        "state s: e_j = v·tanh(W_dec s + W_enc h_j).",
        {"keys = self.W_enc(enc_outputs)": "keys = self.W_dec(enc_outputs)",
         "query = self.W_dec(dec_state)": "query = self.W_enc(dec_state)"},
    ),
    Mistake(
        "no-tanh",
        "Your output matches scores without the tanh: e_j = v·(W_dec s + W_enc h_j) is linear, "
        "so the score is no longer a learned similarity. Apply tanh before v.",
        {"self.v(torch.tanh(query + keys))": "self.v(query + keys)"},
    ),
    Mistake(
        "w-enc-bias",
        "Your AdditiveAttention has a bias in W_enc. The contract gives W_enc no bias "
        "(nn.Linear(enc_dim, attn_dim, bias=False)): W_dec's bias already shifts every score's "
        "hidden layer, so a second one would be redundant.",
        {"self.W_enc = nn.Linear(enc_dim, attn_dim, bias=False)":
         "self.W_enc = nn.Linear(enc_dim, attn_dim)"},
    ),
    # -- AttentionDecoder ------------------------------------------------------------------
    Mistake(
        "attend-with-init-state",
        "Your decoder matches attending with the initial state s_0 at every step. Query the "
        "attention with the previous state s_{t−1}, which changes from step to step.",
        {"self.attention(state, enc_outputs, src_mask)":
         "self.attention(init_state, enc_outputs, src_mask)"},
    ),
    Mistake(
        "state-not-carried",
        "Your decoder matches every step starting again from s_0: the new state is never fed "
        "into the next step. Carry s_t from each step to the next (for the attention and the "
        "GRU cell alike).",
        {"            state = self.cell(torch.cat([x, context], dim=-1), state)      # s_t\n"
         "            logits.append(self.out(torch.cat([state, ":
         "            new_state = self.cell(torch.cat([x, context], dim=-1), state)  # s_t\n"
         "            logits.append(self.out(torch.cat([new_state, "},
    ),
    Mistake(
        "output-from-old-state",
        "Your logits match the output layer reading the previous state s_{t−1}. Update the "
        "state first, then compute logits_t = out([s_t; c_t; x_t]) from the new state.",
        {"            state = self.cell(torch.cat([x, context], dim=-1), state)      # s_t\n"
         "            logits.append(self.out(torch.cat([state, context, x], dim=-1)))\n":
         "            logits.append(self.out(torch.cat([state, context, x], dim=-1)))\n"
         "            state = self.cell(torch.cat([x, context], dim=-1), state)      # s_t\n"},
    ),
    Mistake(
        "cell-input-order",
        "Your decoder matches the GRU cell fed [c_t; x_t]. The contract's order is the "
        "embedding first, then the context: cell(cat([x_t, c_t], dim=-1), s_{t−1}).",
        {"self.cell(torch.cat([x, context], dim=-1), state)":
         "self.cell(torch.cat([context, x], dim=-1), state)"},
    ),
    Mistake(
        "mask-not-passed",
        "Your decoder matches attention without the source mask: padded source positions get "
        "weight. Pass src_mask on to self.attention at every step.",
        {"self.attention(state, enc_outputs, src_mask)": "self.attention(state, enc_outputs)"},
    ),
    Mistake(
        "weights-batch-first",
        "Your attention weights are stacked batch first, (B, T, S). Stack them along a new "
        "first (time) dimension: weights has shape (T, B, S), like the logits (T, B, V).",
        {"torch.stack(weights)": "torch.stack(weights, dim=1)"},
    ),
    Mistake(
        "state-detached",
        "Your outputs are right but your gradients match a decoder state detached between "
        "steps. Pass s_t on without .detach(), so that gradients flow through every step.",
        {"logits.append(self.out(torch.cat([state, context, x], dim=-1)))":
         "logits.append(self.out(torch.cat([state, context, x], dim=-1)))\n"
         "            state = state.detach()"},
    ),
]

# (B, S, enc_dim, dec_dim, attn_dim): enc = dec first, batch 1, S = 1, odd sizes
ATTN_SIZES = [(3, 5, 4, 4, 6), (1, 1, 3, 5, 2), (2, 7, 6, 3, 5), (4, 1, 2, 2, 3),
              (1, 6, 5, 7, 4)]
# (B, S, enc_dim, dec_dim, attn_dim) for the masked cases: S >= 2 except one S = 1 row set
MASK_SIZES = [(3, 5, 4, 4, 6), (4, 6, 3, 5, 2), (2, 3, 6, 3, 5), (1, 4, 2, 2, 3),
              (3, 1, 3, 2, 4)]
# (T, B, S, V, E, enc_dim, H, attn_dim)
DEC_SIZES = [(4, 3, 5, 7, 3, 4, 6, 5), (1, 1, 1, 5, 2, 3, 4, 2), (6, 2, 4, 9, 4, 5, 3, 4),
             (3, 1, 6, 6, 5, 2, 5, 3)]
DEC_MASK_SIZES = [(5, 3, 6, 7, 3, 4, 6, 5), (3, 2, 4, 6, 4, 5, 3, 4), (2, 4, 3, 5, 2, 3, 4, 2)]


def _attn_state(grader, enc, dec, attn, dtype):
    """A state dict of AdditiveAttention(enc, dec, attn), entries of order 1/sqrt(fan-in)."""
    return {
        "W_enc.weight": grader.randn(attn, enc, dtype=dtype, scale=1 / math.sqrt(enc)),
        "W_dec.weight": grader.randn(attn, dec, dtype=dtype, scale=1 / math.sqrt(dec)),
        "W_dec.bias": grader.randn(attn, dtype=dtype, scale=0.5),
        "v.weight": grader.randn(1, attn, dtype=dtype, scale=2 / math.sqrt(attn)),
    }


def _attention(grader, enc, dec, attn, dtype):
    return Make("AdditiveAttention", (enc, dec, attn),
                state_dict=_attn_state(grader, enc, dec, attn, dtype), dtype=dtype)


def _mask(grader, b, s):
    """(B, S) bool: row 0 fully real, every other row a random length in 1..S-1 (S if S = 1)."""
    lengths = [s] + [int(grader.randint(1, max(s, 2), (1,))) for _ in range(b - 1)]
    return torch.arange(s)[None, :] < torch.tensor(lengths)[:, None]


def _dec_state(grader, v, e, enc, h, a, dtype):
    state = {"embedding.weight": grader.randn(v, e, dtype=dtype)}
    state.update({f"attention.{k}": t
                  for k, t in _attn_state(grader, enc, h, a, dtype).items()})
    scale = 1 / math.sqrt(h)
    state.update({
        "cell.weight_ih": grader.randn(3 * h, e + enc, dtype=dtype, scale=scale),
        "cell.weight_hh": grader.randn(3 * h, h, dtype=dtype, scale=scale),
        "cell.bias_ih": grader.randn(3 * h, dtype=dtype, scale=scale),
        "cell.bias_hh": grader.randn(3 * h, dtype=dtype, scale=scale),
        "out.weight": grader.randn(v, h + enc + e, dtype=dtype,
                                   scale=1 / math.sqrt(h + enc + e)),
        "out.bias": grader.randn(v, dtype=dtype, scale=0.1),
    })
    return state


def _decoder(grader, v, e, enc, h, a, dtype):
    return Make("AttentionDecoder", (v, e, enc, h, a),
                state_dict=_dec_state(grader, v, e, enc, h, a, dtype), dtype=dtype)


def _decode_args(grader, size, dtype, masked):
    t, b, s, v, e, enc, h, a = size
    args = (_decoder(grader, v, e, enc, h, a, dtype), grader.randint(0, v, (t, b)),
            grader.randn(b, s, enc, dtype=dtype), grader.randn(b, h, dtype=dtype, scale=0.5))
    if masked:
        args += (_mask(grader, b, s),)
    return args


def _dec_name(size):
    t, b, s, v, e, enc, h, a = size
    return (f"AttentionDecoder(V={v}, E={e}, enc={enc}, H={h}, A={a}) on T={t}, B={b}, "
            f"S={s}")


# -- AdditiveAttention ---------------------------------------------------------------------
@check(points=1, public=True, task="AdditiveAttention")
def test_attention_layout(grader):
    """AdditiveAttention has W_enc (no bias), W_dec (with bias) and v (no bias)"""
    for args in [(4, 6, 5), (1, 1, 1), (7, 3, 2)]:
        grader.compare(Call("@modules.layout", ("AdditiveAttention", args)),
                       case=f"parameter names/shapes of AdditiveAttention{args}", exact=True)


@check(points=2, public=True, task="AdditiveAttention")
def test_attention_forward(grader):
    """context and weights with copied weights, no mask: batch 1, S = 1, enc_dim ≠ dec_dim"""
    for b, s, enc, dec, a in ATTN_SIZES:
        for dtype in DTYPES:
            args = (grader.randn(b, dec, dtype=dtype), grader.randn(b, s, enc, dtype=dtype))
            grader.compare(
                Call(_attention(grader, enc, dec, a, dtype), args),
                case=f"AdditiveAttention({enc}, {dec}, {a}) on s[{b}, {dec}], "
                f"h[{b}, {s}, {enc}], no mask, {_dt(dtype)}",
            )


@check(points=2, public=True, task="AdditiveAttention")
def test_attention_mask(grader):
    """with a padding mask (a fully real row and padded rows), context and weights"""
    for b, s, enc, dec, a in MASK_SIZES:
        for dtype in DTYPES:
            mask = _mask(grader, b, s)
            args = (grader.randn(b, dec, dtype=dtype), grader.randn(b, s, enc, dtype=dtype),
                    mask)
            grader.compare(
                Call(_attention(grader, enc, dec, a, dtype), args),
                case=f"AdditiveAttention({enc}, {dec}, {a}) on s[{b}, {dec}], "
                f"h[{b}, {s}, {enc}], lengths {mask.sum(1).tolist()}, {_dt(dtype)}",
            )


@check(points=1, task="AdditiveAttention")
def test_attention_weights_are_a_distribution(grader):
    """the weights sum to 1 over S and are exactly 0 at padded positions"""
    for b, s, enc, dec, a in MASK_SIZES[:3]:
        for dtype in DTYPES:
            mask = _mask(grader, b, s)
            args = (grader.randn(b, dec, dtype=dtype, scale=3.0),
                    grader.randn(b, s, enc, dtype=dtype, scale=3.0), mask)
            case = (f"AdditiveAttention({enc}, {dec}, {a}), B={b}, S={s}, lengths "
                    f"{mask.sum(1).tolist()}, {_dt(dtype)}")
            got = grader.learner(Call(_attention(grader, enc, dec, a, dtype), args), case)
            out = got.out
            grader.require(
                isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], torch.Tensor),
                f"{case}: forward should return a pair (context, weights)",
            )
            w = out[1].double().cpu()

            grader.require(tuple(w.shape) == (b, s),
                           f"{case}: weights have shape {tuple(w.shape)}, expected {(b, s)}")
            grader.require(bool(torch.isfinite(w).all()), f"{case}: weights are not finite")
            sums = w.sum(1)
            tol = 1e-5 if dtype == torch.float32 else 1e-12
            grader.require(
                bool(((sums - 1).abs() <= tol).all()),
                f"{case}: each row of the weights should sum to 1 over the source positions; "
                f"the row sums are {[round(x, 6) for x in sums.tolist()]}",
            )
            padded = w[~mask]
            grader.require(
                bool((padded == 0).all()),
                f"{case}: the weights at padded positions should be exactly 0; found values "
                f"up to {float(padded.abs().max()) if padded.numel() else 0:.3g}. Set the "
                "padded scores to -inf before the softmax.",
            )
            grader.cases.append(case)


@check(points=2, task="AdditiveAttention")
def test_attention_gradients(grader):
    """gradients w.r.t. the decoder state, the encoder outputs and every parameter"""
    for (b, s, enc, dec, a), masked in [(ATTN_SIZES[0], False), (MASK_SIZES[1], True),
                                        (ATTN_SIZES[1], False), (MASK_SIZES[3], True),
                                        (ATTN_SIZES[2], True)]:
        for dtype in DTYPES:
            args = (grader.randn(b, dec, dtype=dtype), grader.randn(b, s, enc, dtype=dtype))
            if masked:
                args += (_mask(grader, b, s),)
            grader.compare(
                Call(_attention(grader, enc, dec, a, dtype), args, grad=(0, 1, "params")),
                case=f"d/ds, d/dh, d/dparams of AdditiveAttention({enc}, {dec}, {a}), "
                f"B={b}, S={s}, {'masked' if masked else 'no mask'}, {_dt(dtype)}",
            )


# -- AttentionDecoder ----------------------------------------------------------------------
@check(points=1, public=True, task="AttentionDecoder")
def test_decoder_layout(grader):
    """AttentionDecoder has embedding, attention, cell and out with the contract's shapes"""
    for args in [(7, 3, 4, 6, 5), (2, 1, 1, 1, 1), (5, 4, 2, 3, 6)]:
        grader.compare(Call("@modules.layout", ("AttentionDecoder", args)),
                       case=f"parameter names/shapes of AttentionDecoder{args}", exact=True)


@check(points=2, public=True, task="AttentionDecoder")
def test_decoder_forward(grader):
    """logits (T, B, V) and weights (T, B, S) with copied weights, without and with a mask"""
    cases = [(size, False) for size in DEC_SIZES] + [(size, True) for size in DEC_MASK_SIZES]
    for size, masked in cases:
        for dtype in DTYPES:
            args = _decode_args(grader, size, dtype, masked)
            lengths = f"lengths {args[4].sum(1).tolist()}" if masked else "no mask"
            grader.compare(Call("@bahdanau_attention.decode", args),
                           case=f"{_dec_name(size)}, {lengths}, {_dt(dtype)}")


@check(points=2, task="AttentionDecoder")
def test_decoder_gradients(grader):
    """gradients through every step w.r.t. the encoder outputs, s_0 and every parameter"""
    cases = [(DEC_SIZES[0], False), (DEC_MASK_SIZES[0], True), (DEC_SIZES[1], False),
             (DEC_SIZES[2], True)]
    for size, masked in cases:
        for dtype in DTYPES:
            args = _decode_args(grader, size, dtype, masked)
            grader.compare(
                Call("@bahdanau_attention.decode", args, grad=(2, 3, "params")),
                case=f"d/dh, d/ds0, d/dparams of {_dec_name(size)}, "
                f"{'masked' if masked else 'no mask'}, {_dt(dtype)}",
            )
