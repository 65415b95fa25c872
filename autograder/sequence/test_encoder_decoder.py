"""Hidden checks for unit 3.6 `encoder-decoder` (Cho et al., 2014).

Every check compares the learner's code with the master solution, whose ``GRUCell`` equals
``torch.nn.GRUCell`` (forward and gradients, float64: tests/test_oracle_encoder_decoder.py) and
whose ``EncoderDecoder`` equals the same model built from ``torch.nn.GRU`` layers. Inputs are
seeded: modules built from a copied state dict, several sizes including batch 1, H = 1, S = 1
and T = 1, float32 and float64, with and without an initial state and with bias off. On a
mismatch the learner's output is looked up in the mistake bank below.

The model checks run the learner's own ``GRUCell`` inside the learner's ``EncoderDecoder`` (and
say so); ``test_model_with_standin_cell`` runs the learner's model with a grader-owned correct
cell bound to the name ``GRUCell`` instead, so the wiring is graded apart from the cell.
"""

import math

from course.grading.cell_checks import require_layout, require_uniform_init
from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Inspect, Make, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "encoder-decoder"

FORBIDDEN = [
    Forbid(
        # torch._VF.gru_cell is the very object torch.gru_cell; the last name listed for an
        # object is the one feedback shows, so the public names come last.
        calls=(
            "torch._VF.gru",
            "torch._VF.gru_cell",
            "torch.nn.GRU",
            "torch.nn.GRUCell",
            "torch.gru",
            "torch.gru_cell",
        ),
        aten=("gru_cell", "_thnn_fused_gru_cell", "gru"),
    ),
]

MISTAKES = [
    # -- the cell ---------------------------------------------------------------------------
    Mistake(
        "reset-before-matmul",
        "Your output matches the reset gate applied to h before W_hn, n = tanh(W_in x + b_in "
        "+ W_hn (r ⊙ h) + b_hn): the form written in Cho et al. (2014). torch.nn.GRUCell "
        "(and this exercise) applies it after the product: n = tanh(W_in x + b_in "
        "+ r ⊙ (W_hn h + b_hn)).",
        {
            "n = torch.tanh(i_n + r * h_n)":
            "n = torch.tanh(i_n + (r * h) @ self.weight_hh[2 * self.hidden_size:].T"
            " + (0 if self.bias_hh is None else self.bias_hh[2 * self.hidden_size:]))",
        },
    ),
    Mistake(
        "update-swapped",
        "Your output matches h' = z ⊙ n + (1 − z) ⊙ h, with z and 1 − z swapped. In "
        "torch.nn.GRUCell the update gate z keeps the old state: h' = (1 − z) ⊙ n + z ⊙ h.",
        {"return (1 - z) * n + z * h": "return z * n + (1 - z) * h"},
    ),
    Mistake(
        "gate-order-zr",
        "Your output matches the cell with the reset and update gates swapped (order update, "
        "reset, new). PyTorch's layout is reset, update, new: rows 0:H of the stacked weights "
        "and biases are the reset gate, rows H:2H the update gate.",
        {
            "i_r, i_z, i_n = gi.chunk(3, dim=1)": "i_z, i_r, i_n = gi.chunk(3, dim=1)",
            "h_r, h_z, h_n = gh.chunk(3, dim=1)": "h_z, h_r, h_n = gh.chunk(3, dim=1)",
        },
    ),
    Mistake(
        "gate-order-nrz",
        "Your output matches the gate order new, reset, update (candidate first). PyTorch "
        "stacks the candidate last: reset, update, new, so rows 2H:3H belong to n.",
        {
            "i_r, i_z, i_n = gi.chunk(3, dim=1)": "i_n, i_r, i_z = gi.chunk(3, dim=1)",
            "h_r, h_z, h_n = gh.chunk(3, dim=1)": "h_n, h_r, h_z = gh.chunk(3, dim=1)",
        },
    ),
    Mistake(
        "dropped-bias-hh",
        "Your output matches the cell with bias_hh left out. torch.nn.GRUCell uses both "
        "biases: b_hr and b_hz are added to the gates and b_hn inside the reset product.",
        {"            gh = gh + self.bias_hh\n": ""},
    ),
    Mistake(
        "dropped-bias-ih",
        "Your output matches the cell with bias_ih left out. torch.nn.GRUCell uses both "
        "biases: b_ir, b_iz and b_in are added to the input parts of the gates and candidate.",
        {"            gi = gi + self.bias_ih\n": ""},
    ),
    Mistake(
        "bias-hn-outside-reset",
        "Your output matches n = tanh(W_in x + b_in + b_hn + r ⊙ W_hn h): both biases summed "
        "up front, as an LSTM allows. In a GRU the two biases differ for the candidate: b_hn "
        "belongs inside the reset product, n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)).",
        {
            "            gi = gi + self.bias_ih\n            gh = gh + self.bias_hh\n":
            "            gi = gi + self.bias_ih + self.bias_hh\n",
        },
    ),
    Mistake(
        "reset-on-input-too",
        "Your output matches n = tanh(r ⊙ (W_in x + b_in + W_hn h + b_hn)): the reset gate "
        "scales the input part too. It only scales the recurrent part: n = tanh(W_in x + b_in "
        "+ r ⊙ (W_hn h + b_hn)).",
        {"n = torch.tanh(i_n + r * h_n)": "n = torch.tanh(r * (i_n + h_n))"},
    ),
    Mistake(
        "candidate-sigmoid",
        "Your output matches a sigmoid on the candidate n. The gates r and z use the sigmoid, "
        "the candidate uses tanh.",
        {"n = torch.tanh(i_n + r * h_n)": "n = torch.sigmoid(i_n + r * h_n)"},
    ),
    # -- the model --------------------------------------------------------------------------
    Mistake(
        "encoder-state-not-carried",
        "Your logits match an encoder that starts every step from h = 0, so c only sees the "
        "last source token. Feed the state each encoder step returns into the next step.",
        {"h = self.encoder(x_t, h)": "h = self.encoder(x_t)"},
    ),
    Mistake(
        "context-not-fed",
        "Your logits match a decoder whose input at each step is [e'(u_t), s_{t−1}] instead "
        "of [e'(u_t), c]. The decoder sees the fixed context c at every step: its input is "
        "the target embedding concatenated with c.",
        {"torch.cat([e_t, c], dim=1)": "torch.cat([e_t, s], dim=1)"},
    ),
    Mistake(
        "init-without-tanh",
        "Your logits match a decoder that starts from s_0 = init(c), without the tanh. Use "
        "s_0 = tanh(init(c)).",
        {"s = torch.tanh(self.init(c))": "s = self.init(c)"},
    ),
    Mistake(
        "init-is-context",
        "Your logits match a decoder that starts from s_0 = c itself. Start it from "
        "s_0 = tanh(init(c)), through the Linear layer `init`.",
        {"s = torch.tanh(self.init(c))": "s = c"},
    ),
    Mistake(
        "output-order",
        "Your logits match out([s_t, c, e'(u_t)]). The output layer reads the decoder state, "
        "then the target embedding, then the context: out([s_t, e'(u_t), c]).",
        {"torch.cat([s, e_t, c], dim=1)": "torch.cat([s, c, e_t], dim=1)"},
    ),
    Mistake(
        "output-from-previous-state",
        "Your logits match out([s_{t−1}, e'(u_t), c]), read from the decoder state before "
        "the step. Update the decoder state first, then compute the logits from s_t.",
        {
            "            s = self.decoder(torch.cat([e_t, c], dim=1), s)\n"
            "            logits.append(self.out(torch.cat([s, e_t, c], dim=1)))\n":
            "            logits.append(self.out(torch.cat([s, e_t, c], dim=1)))\n"
            "            s = self.decoder(torch.cat([e_t, c], dim=1), s)\n",
        },
    ),
    Mistake(
        "target-source-embedding",
        "Your logits match a decoder that embeds tgt_in with src_embed. The target tokens "
        "have their own embedding, tgt_embed.",
        {"self.tgt_embed(tgt_in)": "self.src_embed(tgt_in)"},
    ),
    Mistake(
        "logits-batch-first",
        "Your logits are (B, T, V): stacked batch first. Stack the steps along a new first "
        "dimension: logits has shape (T, B, V).",
        {"torch.stack(logits)": "torch.stack(logits, dim=1)"},
    ),
]

# (B, I, H): batch 1, H = 1, I > H and I < H
SIZES = [(4, 3, 5), (1, 1, 1), (2, 6, 4), (1, 8, 16), (3, 2, 7)]
FEW_SIZES = [(4, 3, 5), (1, 1, 1), (1, 8, 16)]
# (V, E, H, S, T, B): E != H so that concatenation orders differ; S = 1, T = 1, batch 1
MODEL_SIZES = [(7, 3, 5, 4, 3, 2), (5, 2, 3, 1, 1, 1), (11, 4, 6, 6, 5, 1), (6, 5, 2, 3, 7, 3)]


def _cell_weights(grader, i, h, dtype, bias=True):
    """A state dict of nn.GRUCell(i, h, bias) with entries of order 1/sqrt(h)."""
    scale = 1.0 / math.sqrt(h)
    state = {
        "weight_ih": grader.randn(3 * h, i, dtype=dtype, scale=scale),
        "weight_hh": grader.randn(3 * h, h, dtype=dtype, scale=scale),
    }
    if bias:
        state["bias_ih"] = grader.randn(3 * h, dtype=dtype, scale=scale)
        state["bias_hh"] = grader.randn(3 * h, dtype=dtype, scale=scale)
    return state


def _cell(grader, i, h, dtype, bias=True):
    kwargs = {} if bias else {"bias": False}
    return Make("GRUCell", (i, h), kwargs, state_dict=_cell_weights(grader, i, h, dtype, bias),
                dtype=dtype)


def _model_weights(grader, v, e, h, dtype):
    """A state dict of EncoderDecoder(v, e, h) as the docstring lays it out."""
    state = {
        "src_embed.weight": grader.randn(v, e, dtype=dtype),
        "tgt_embed.weight": grader.randn(v, e, dtype=dtype),
    }
    for name, state_in in (("encoder", e), ("decoder", e + h)):
        for key, value in _cell_weights(grader, state_in, h, dtype).items():
            state[f"{name}.{key}"] = value
    state["init.weight"] = grader.randn(h, h, dtype=dtype, scale=1 / math.sqrt(h))
    state["init.bias"] = grader.randn(h, dtype=dtype, scale=0.3)
    state["out.weight"] = grader.randn(v, 2 * h + e, dtype=dtype, scale=1 / math.sqrt(2 * h + e))
    state["out.bias"] = grader.randn(v, dtype=dtype, scale=0.3)
    return state


def _tokens(grader, v, s, t, b):
    return grader.randint(0, v, (s, b)), grader.randint(0, v, (t, b))


# -- GRUCell ----------------------------------------------------------------------------------
@check(points=1, public=True, task="GRUCell")
def test_parameters(grader):
    """GRUCell has the parameter names and shapes of torch.nn.GRUCell, with and without bias"""
    for i, h in [(3, 5), (1, 1), (7, 2)]:
        for bias in (True, False):
            require_layout(
                grader, Inspect(Make("GRUCell", (i, h), {"bias": bias})),
                f"GRUCell({i}, {h}, bias={bias})",
                "Use the names and shapes of torch.nn.GRUCell: weight_ih (3H, I), "
                "weight_hh (3H, H), bias_ih and bias_hh (3H,), the biases only when "
                "bias=True, and no buffers.",
            )


@check(points=1, task="GRUCell")
def test_init(grader):
    """every parameter is initialised uniformly in [-1/sqrt(H), 1/sqrt(H)]"""
    for i, h in [(8, 16), (2, 6)]:
        require_uniform_init(grader, Inspect(Make("GRUCell", (i, h))),
                             f"GRUCell({i}, {h}) as constructed", h, "torch.nn.GRUCell")


@check(points=2, public=True, task="GRUCell")
def test_cell_forward(grader):
    """one GRUCell step with copied weights and a given state matches nn.GRUCell"""
    for b, i, h in SIZES:
        for dtype in DTYPES:
            x = grader.randn(b, i, dtype=dtype)
            h0 = grader.randn(b, h, dtype=dtype, scale=0.5)
            grader.compare(
                Call(_cell(grader, i, h, dtype), (x, h0)),
                case=f"GRUCell({i}, {h}) on x[{b}, {i}] with state h[{b}, {h}], {_dt(dtype)}",
            )


@check(points=1, public=True, task="GRUCell")
def test_cell_zero_state(grader):
    """GRUCell starts from h = 0 when no state is given (then one more step from there)"""
    # h1 = cell(x1) checks the zero start; h2 = cell(x2, h1) follows on, because at h = 0 the
    # paper's form of the reset gate and a misplaced b_hn give the same h1.
    for b, i, h in FEW_SIZES:
        for dtype in DTYPES:
            x1, x2 = grader.randn(b, i, dtype=dtype), grader.randn(b, i, dtype=dtype)
            grader.compare(
                Call("@encoder_decoder.two_steps_from_zero", (_cell(grader, i, h, dtype), x1, x2)),
                case=f"h1 = GRUCell({i}, {h})(x1[{b}, {i}]) without state, then "
                f"h2 = cell(x2, h1), {_dt(dtype)}",
            )


@check(points=2, task="GRUCell")
def test_cell_gradients(grader):
    """GRUCell gradients w.r.t. the input, the state and every parameter"""
    for b, i, h in FEW_SIZES + [(3, 2, 7)]:
        for dtype in DTYPES:
            x = grader.randn(b, i, dtype=dtype)
            h0 = grader.randn(b, h, dtype=dtype, scale=0.5)
            grader.compare(
                Call(_cell(grader, i, h, dtype), (x, h0), grad=(0, 1, "params")),
                case=f"d/dx, d/dh, d/dparams of GRUCell({i}, {h}) on x[{b}, {i}] with state, "
                f"{_dt(dtype)}",
            )
            grader.compare(
                Call(_cell(grader, i, h, dtype), (x,), grad=(0, "params")),
                case=f"d/dx, d/dparams of GRUCell({i}, {h}) on x[{b}, {i}] without state, "
                f"{_dt(dtype)}",
            )


@check(points=1, task="GRUCell")
def test_cell_no_bias(grader):
    """GRUCell(bias=False): forward and gradients with copied weights, batch 1 included"""
    for b, i, h in [(3, 4, 5), (1, 2, 3), (1, 1, 1)]:
        for dtype in DTYPES:
            x = grader.randn(b, i, dtype=dtype)
            h0 = grader.randn(b, h, dtype=dtype, scale=0.5)
            grader.compare(
                Call(_cell(grader, i, h, dtype, bias=False), (x, h0), grad=(0, 1, "params")),
                case=f"GRUCell({i}, {h}, bias=False) on x[{b}, {i}] with state, {_dt(dtype)}",
            )


# -- EncoderDecoder -----------------------------------------------------------------------
@check(points=1, public=True, task="EncoderDecoder")
def test_model_layout(grader):
    """EncoderDecoder has the documented submodules, parameter names and shapes"""
    for v, e, h in [(7, 3, 5), (4, 1, 1), (12, 6, 2)]:
        probe = Call("@modules.layout", ("EncoderDecoder", (v, e, h)))
        case = f"EncoderDecoder({v}, {e}, {h}): parameter names and shapes"
        want = grader.reference(probe, float64=False).out
        got = grader.learner(probe, case).out
        have = {k: tuple(x.tolist()) for k, x in got.items()}
        expected = {k: tuple(x.tolist()) for k, x in want.items()}

        grader.require(
            have == expected,
            f"{case}: found {have}, expected {expected}. Use exactly the submodules of the "
            "docstring: src_embed, tgt_embed (Embedding(V, E)), encoder (GRUCell(E, H)), init "
            "(Linear(H, H)), decoder (GRUCell(E + H, H)) and out (Linear(2H + E, V)).",
        )
        grader.cases.append(case)


@check(points=2, public=True, task="EncoderDecoder")
def test_model_forward(grader):
    """EncoderDecoder logits, with your own GRUCell inside, match the reference (copied weights)"""
    for v, e, h, s, t, b in MODEL_SIZES:
        for dtype in DTYPES:
            src, tgt_in = _tokens(grader, v, s, t, b)
            model = Make("EncoderDecoder", (v, e, h), state_dict=_model_weights(grader, v, e, h,
                                                                               dtype), dtype=dtype)
            grader.compare(
                Call(model, (src, tgt_in)),
                case=f"EncoderDecoder({v}, {e}, {h}) with your GRUCell on src[{s}, {b}], "
                f"tgt_in[{t}, {b}], {_dt(dtype)}",
            )


@check(points=2, public=True, task="EncoderDecoder")
def test_model_with_standin_cell(grader):
    """EncoderDecoder logits with a grader-supplied correct GRUCell in place of yours"""
    # The driver binds the name GRUCell to a correct cell while the learner's model is built,
    # so this check grades the wiring (context, initial state, concatenations) on its own.
    for v, e, h, s, t, b in MODEL_SIZES[:3]:
        for dtype in DTYPES:
            src, tgt_in = _tokens(grader, v, s, t, b)
            grader.compare(
                Call("@encoder_decoder.logits_with_standin_cell",
                     ((v, e, h), _model_weights(grader, v, e, h, dtype), src, tgt_in)),
                case=f"EncoderDecoder({v}, {e}, {h}) with the grader's GRUCell on "
                f"src[{s}, {b}], tgt_in[{t}, {b}], {_dt(dtype)}",
            )


@check(points=2, task="EncoderDecoder")
def test_model_gradients(grader):
    """EncoderDecoder gradients w.r.t. every parameter, with your own GRUCell inside"""
    for v, e, h, s, t, b in [(7, 3, 5, 4, 3, 2), (5, 2, 3, 1, 1, 1), (9, 4, 6, 8, 6, 1)]:
        for dtype in DTYPES:
            src, tgt_in = _tokens(grader, v, s, t, b)
            model = Make("EncoderDecoder", (v, e, h), state_dict=_model_weights(grader, v, e, h,
                                                                               dtype), dtype=dtype)
            grader.compare(
                Call(model, (src, tgt_in), grad=("params",)),
                case=f"d/dparams of EncoderDecoder({v}, {e}, {h}) with your GRUCell on "
                f"src[{s}, {b}], tgt_in[{t}, {b}], {_dt(dtype)}",
            )
