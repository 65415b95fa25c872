"""Hidden checks for unit 3.3 `forget-gate` (Gers, Schmidhuber & Cummins, 2000).

The grammar tasks are compared exactly with the master solution through the drivers of
``course.grading.drivers.forget_gate``: the next-symbol set after every prefix of many seeded
plain and embedded strings, and after corrupted ones; ``is_reber`` on grammatical strings and
on corruptions of them (one symbol changed, dropped, inserted or swapped, truncations, the
wrong repeated T/P, the inner string alone, text after the end, foreign characters). The
sampler is checked statistically against the course's own automaton (``course.data.reber``):
300 draws all grammatical, and 600 draws using every edge (a correct sampler whose rarest
edge has probability p per string fails with probability at most 30·(1 − p)^600: about 5e-34
for uniform choices, whose rarest edge has p = 1/8; about 4e-7 for p = 0.03). Its mistakes are
diagnosed by symptom: the bank's variants are run on the same draws and the one showing the
same kind of failure gives the hint.

The cell is compared with the master, which equals ``torch.nn.LSTMCell`` with the forget gate
on and the 1997 cell (f ≡ 1) with it off (see tests/test_oracle_forget_gate.py), with copied
state dicts, in both settings, forward and gradients (input, state, parameters), float32 and
float64, batch 1, H = 1, bias off, and unrolled over 30 steps with a large cell state, where a
forget gate that is only close to 1 shows.
"""

import math

import torch

from course.data import reber as grammar
from course.grading.cell_checks import require_layout, require_uniform_init
from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import (
    LSTM_ATEN,
    LSTM_CALLS,
    Call,
    Forbid,
    Gen,
    Inspect,
    Make,
    Mistake,
    check,
)
from course.grading.dsl import dtype_word as _dt

UNIT = "forget-gate"

FORBIDDEN = [
    Forbid(calls=LSTM_CALLS, aten=LSTM_ATEN),
]

MISTAKES = [
    Mistake(
        "branch-not-repeated",
        "Your answers match an embedded grammar in which the T or P after the inner string "
        "need not repeat the one after the first B. The embedded string is B, T or P, a plain "
        "string, then the SAME T or P, then E: after the inner E only the first branch symbol "
        "may follow.",
        {"return {branch}  # the second T/P": "return {\"T\", \"P\"}  # the second T/P",
         "if tail == branch:": "if tail in (\"T\", \"P\"):"},
    ),
    Mistake(
        "e-accepted-early",
        "Your is_reber matches one that accepts a string as soon as it reads an E. In the "
        "embedded grammar the inner string's E is not the end: BTBTXSE still needs TE. A "
        "string is complete only when nothing may follow it.",
        {"return legal and not reber_next(s, embedded)":
         "return legal and s[-1] == \"E\""},
    ),
    Mistake(
        "prefix-accepted",
        "Your is_reber matches one that accepts every legal prefix (BTX, BTBTXS, ...). A "
        "grammatical string must also be complete: nothing may follow its last symbol.",
        {"return legal and not reber_next(s, embedded)": "return legal"},
    ),
    Mistake(
        "stream-continues",
        "Your reber_next matches one that offers B after a complete plain string, as in the "
        "continual stream of the lecture. For a single string nothing may follow its E: "
        "return the empty set.",
        {"        return set(REBER[state])\n": "        return set(REBER[state]) or {\"B\"}\n"},
    ),
    Mistake(
        "embedded-flag-ignored",
        "Your reber_next matches the plain grammar even when embedded=True. The embedded "
        "grammar wraps a plain string: B, T or P, the plain string, the same T or P, E.",
        {"    if not embedded:\n        state = 0": "    if True:\n        state = 0"},
    ),
    Mistake(
        "sampler-branch-redrawn",
        "Your samples include embedded strings whose second-to-last symbol does not repeat "
        "the second (BT...PE or BP...TE): the closing T/P must be the same symbol as the "
        "opening one, not a fresh draw.",
        {"return \"B\" + branch + inner + branch + \"E\"":
         "return \"B\" + branch + inner + choose([\"T\", \"P\"]) + \"E\""},
    ),
    Mistake(
        "forget-off-still-gated",
        "With forget_gate=False your cell matches c = σ(z_f)·c_prev + i·g: the forget gate is "
        "still applied. The 1997 cell has no forget gate: hold f at exactly 1, "
        "c = c_prev + i·g.",
        {"            c = c_prev + i * g  # Hochreiter":
         "            c = torch.sigmoid(f) * c_prev + i * g  # Hochreiter"},
    ),
    Mistake(
        "forget-off-near-one",
        "With forget_gate=False your cell matches one whose forget gate is close to 1 but not "
        "equal to it (here σ(z_f + 10), as a very large forget bias would give): the old state "
        "still leaks a little every step, which adds up over many steps from a large state. "
        "Hold f at exactly 1: c = c_prev + i·g.",
        {"            c = c_prev + i * g  # Hochreiter":
         "            c = torch.sigmoid(f + 10.0) * c_prev + i * g  # Hochreiter"},
    ),
    Mistake(
        "forget-off-zero",
        "With forget_gate=False your cell matches c = i·g: the old state is dropped (f = 0). "
        "Without a forget gate the cell keeps all of its old state: f = 1, c = c_prev + i·g.",
        {"            c = c_prev + i * g  # Hochreiter": "            c = i * g  # Hochreiter"},
    ),
    Mistake(
        "forget-on-missing",
        "With forget_gate=True your cell matches c = c_prev + i·g, the 1997 cell. With the "
        "forget gate on, scale the old state by f = σ(z_f) from rows H:2H: c = f·c_prev + i·g.",
        {"c = f * c_prev + i * g  # Gers": "c = c_prev + i * g  # Gers"},
    ),
    Mistake(
        "gate-order-fi",
        "Your output matches the cell with the input and forget gates swapped. The layout of "
        "torch.nn.LSTMCell is input, forget, cell, output: rows 0:H of the stacked weights "
        "are the input gate, rows H:2H the forget gate.",
        {"i, f, g, o = gates.chunk(4, dim=1)": "f, i, g, o = gates.chunk(4, dim=1)"},
    ),
    Mistake(
        "gate-order-ifog",
        "Your output matches the gate order input, forget, output, cell (i, f, o, g). "
        "torch.nn.LSTMCell stacks the candidate before the output gate: i, f, g, o.",
        {"i, f, g, o = gates.chunk(4, dim=1)": "i, f, o, g = gates.chunk(4, dim=1)"},
    ),
    Mistake(
        "candidate-sigmoid",
        "Your output matches a sigmoid on the candidate g. The gates use the sigmoid, the "
        "candidate uses tanh, so that it can also lower the cell state.",
        {"g = torch.tanh(g)": "g = torch.sigmoid(g)"},
    ),
    Mistake(
        "no-tanh-on-cell",
        "Your output matches h = o·c, without the tanh. Squash the cell state before the "
        "output gate: h = o·tanh(c).",
        {"h = o * torch.tanh(c)": "h = o * c"},
    ),
    Mistake(
        "dropped-bias-hh",
        "Your output matches the cell with bias_hh left out. Add both biases, bias_ih and "
        "bias_hh, to the gate pre-activations, as torch.nn.LSTMCell does.",
        {"gates = gates + self.bias_ih + self.bias_hh": "gates = gates + self.bias_ih"},
    ),
]

# (B, I, H): batch 1, H = 1, I > H and I < H
SIZES = [(4, 3, 5), (1, 1, 1), (2, 7, 4), (1, 8, 16)]


def _kind(embedded):
    return "embedded" if embedded else "plain"


# -- the grammar ---------------------------------------------------------------------------

def _strings(grader, n, embedded):
    """``n`` distinct grammatical strings drawn with a seeded generator."""
    g = torch.Generator().manual_seed(grader.seed())
    found: list[str] = []
    for _ in range(20 * n):
        s = grammar.sample_reber(g, embedded)
        if s not in found:
            found.append(s)
        if len(found) == n:
            break
    return found


def _fixed(embedded):
    if embedded:
        return ["BTBTXSETE", "BPBPVVEPE", "BTBPVPXVVETE", "BPBTSSXXTVPSEPE",
                "BTBPTTVPXTVPSETE"]
    return ["BTXSE", "BPVVE", "BTSSXXTVVE", "BPVPXVPXVPXVVE", "BTXXVPSE", "BPTTVVE"]


def _prefixes(strings):
    out: list[str] = []
    for s in strings:
        for k in range(len(s) + 1):
            if s[:k] not in out:
                out.append(s[:k])
    return out


def _corruptions(grader, strings, embedded):
    """Strings near grammatical ones, most of them not grammatical."""
    out: list[str] = []

    def add(s):
        if s not in out and s not in strings:
            out.append(s)

    for s in strings:
        n = len(s)
        k = int(grader.randint(0, n, (1,)))
        sym = grammar.SYMBOLS[int(grader.randint(0, 7, (1,)))]
        add(s[:k] + sym + s[k + 1:])  # one symbol replaced (sometimes by itself)
        add(s[:k] + s[k + 1:])  # one symbol dropped
        add(s[:k] + sym + s[k:])  # one symbol inserted
        if k + 1 < n:
            add(s[:k] + s[k + 1] + s[k] + s[k + 2:])  # two neighbours swapped
        add(s[:-1])  # the last E missing
        add(s[: max(1, n // 2)])  # cut in the middle
        add(s + "E")
        add(s + s)  # two strings back to back
        if embedded:
            other = "P" if s[1] == "T" else "T"
            add(s[:-2] + other + "E")  # the wrong repeated branch symbol
            add(s[:-2])  # the inner string alone, with the outer B and T/P
            add(s[2:-2])  # the inner plain string alone
            add(s[:-1])
        else:
            add("BT" + s + "TE")  # an embedded string, in the plain grammar
    for s in ["", "E", "B", "BE", "BTE", "btxse", "BTXSA", "BTXSE ", " BTXSE", "BTBTXSETTE",
              "BTBTXSEE", "BTTXSETE", "BBTXSETE"]:
        add(s)
    return out


@check(points=2, public=True, task="reber_next")
def test_next_plain(grader):
    """reber_next(prefix, embedded=False) is exact on every prefix of many plain strings"""
    strings = _fixed(False) + _strings(grader, 40, False)
    prefixes = _prefixes(strings)
    for start in range(0, len(prefixes), 500):
        part = prefixes[start:start + 500]
        grader.compare(
            Call("@forget_gate.next_symbols", (part,), {"embedded": False}),
            case=f"reber_next on {len(part)} prefixes of plain strings (from #{start}), str",
        )


@check(points=2, public=True, task="reber_next")
def test_next_embedded(grader):
    """reber_next(prefix) is exact on every prefix of many embedded strings (the default)"""
    strings = _fixed(True) + _strings(grader, 40, True)
    prefixes = _prefixes(strings)
    for start in range(0, len(prefixes), 500):
        part = prefixes[start:start + 500]
        grader.compare(
            Call("@forget_gate.next_symbols", (part,), {"embedded": True}),
            case=f"reber_next(..., embedded=True) on {len(part)} prefixes of embedded strings "
            f"(from #{start}), str",
        )
    grader.compare(
        Call("@forget_gate.next_symbols", (_prefixes(_fixed(True)),)),
        case="reber_next(prefix) with the default embedded=True on prefixes of 5 strings, str",
    )


@check(points=1, task="reber_next")
def test_next_illegal(grader):
    """reber_next is the empty set after complete strings and after illegal prefixes"""
    for embedded in (False, True):
        strings = _fixed(embedded) + _strings(grader, 20, embedded)
        bad = _corruptions(grader, strings, embedded)
        grader.compare(
            Call("@forget_gate.next_symbols", (bad + strings,), {"embedded": embedded}),
            case=f"reber_next on {len(bad)} corrupted and {len(strings)} complete "
            f"{_kind(embedded)} strings, str",
        )


@check(points=1, public=True, task="is_reber")
def test_is_reber_grammatical(grader):
    """is_reber is True on grammatical strings, plain and embedded"""
    for embedded in (False, True):
        strings = _fixed(embedded) + _strings(grader, 40, embedded)
        grader.compare(
            Call("@forget_gate.recognise", (strings,), {"embedded": embedded}),
            case=f"is_reber on {len(strings)} grammatical {_kind(embedded)} strings, str",
        )
    grader.compare(
        Call("@forget_gate.recognise", (_fixed(True),)),
        case="is_reber(s) with the default embedded=True on 5 embedded strings, str",
    )


@check(points=2, task="is_reber")
def test_is_reber_corrupted(grader):
    """is_reber on corrupted strings: changed, dropped, inserted, swapped, cut, wrong T/P"""
    for embedded in (False, True):
        strings = _fixed(embedded) + _strings(grader, 30, embedded)
        bad = _corruptions(grader, strings, embedded)
        grader.compare(
            Call("@forget_gate.recognise", (bad,), {"embedded": embedded}),
            case=f"is_reber on {len(bad)} corrupted {_kind(embedded)} strings, str",
        )


def _sample_symptom(out, embedded):
    """``(message, symptom)`` for a list of sampled strings: message None when all are
    grammatical and every edge is used; the symptom names the kind of failure."""
    table, start, final = grammar.automaton(embedded)
    bad: list[tuple] = []
    first = None
    for s in out:
        if grammar.is_reber(s, embedded):
            continue
        state = start
        for ch in s:
            if ch not in table[state]:
                allowed = "".join(sorted(table[state], key=grammar.SYMBOLS.index))
                bad.append(("illegal", allowed, ch))
                break
            state = table[state][ch]
        else:
            bad.append(("incomplete",))
        if first is None:
            first = s
    if bad:
        message = (f"{len(bad)} of {len(out)} sampled strings are not grammatical, e.g. "
                   f"{first!r}")
        return message, frozenset(bad)
    used = {edge for s in out for edge in grammar.edges_of(s, embedded)}
    missing = [edge for edge in grammar.edges(embedded) if edge not in used]
    if missing:
        words = ", ".join(f"{sym} from state {state}" for state, sym in missing[:6])
        message = (f"in {len(out)} samples, {len(missing)} of the grammar's "
                   f"{len(grammar.edges(embedded))} edges never occur ({words}"
                   f"{' …' if len(missing) > 6 else ''}). Every edge must have a positive "
                   "probability (e.g. choose uniformly among the legal next symbols).")
        return message, frozenset(("missing",) + tuple(map(str, edge)) for edge in missing)
    return None, frozenset()


def _check_samples(grader, n, embedded, case):
    probe = Call("@forget_gate.samples", (Gen(grader.seed()), n), {"embedded": embedded})
    got = grader.learner(probe, case)
    items = got.out
    grader.require(isinstance(items, list) and len(items) == n,
                   f"{case}: expected {n} strings")
    message, symptom = _sample_symptom(items, embedded)
    if message is None:
        grader.cases.append(case)
        return
    mistake = grader.banked_mistake(  # the bank's variants on the same draws
        probe, lambda o: _sample_symptom(o.out, embedded)[1] == symptom)
    grader.fail(message, mistake=mistake, case=case)



@check(points=1, public=True, task="sample_reber")
def test_samples_grammatical(grader):
    """sample_reber yields only grammatical strings, plain and embedded"""
    for embedded in (False, True):
        _check_samples(grader, 300, embedded,
                       f"300 draws of sample_reber(generator, embedded={embedded}), str")


@check(points=1, task="sample_reber")
def test_samples_cover_edges(grader):
    """600 draws of sample_reber use every edge of the grammar, plain and embedded"""
    for embedded in (False, True):
        _check_samples(grader, 600, embedded,
                       f"600 draws of sample_reber(generator, embedded={embedded}) cover "
                       "every edge, str")


# -- the cell ------------------------------------------------------------------------------

def _weights(grader, i, h, dtype, bias=True):
    scale = 1.0 / math.sqrt(h)
    state = {
        "weight_ih": grader.randn(4 * h, i, dtype=dtype, scale=scale),
        "weight_hh": grader.randn(4 * h, h, dtype=dtype, scale=scale),
    }
    if bias:
        state["bias_ih"] = grader.randn(4 * h, dtype=dtype, scale=scale)
        state["bias_hh"] = grader.randn(4 * h, dtype=dtype, scale=scale)
    return state


def _cell(grader, i, h, dtype, forget_gate, bias=True):
    kwargs = {} if forget_gate is None else {"forget_gate": forget_gate}
    if not bias:
        kwargs["bias"] = False
    return Make("ForgetLSTMCell", (i, h), kwargs, state_dict=_weights(grader, i, h, dtype, bias),
                dtype=dtype)


def _state(grader, b, h, dtype, c_scale=2.0):
    return (grader.randn(b, h, dtype=dtype, scale=0.5),
            grader.randn(b, h, dtype=dtype, scale=c_scale))


@check(points=1, public=True, task="ForgetLSTMCell")
def test_parameters(grader):
    """ForgetLSTMCell has nn.LSTMCell's parameter names and shapes, in both settings"""
    for i, h in [(3, 5), (1, 1), (7, 2)]:
        for forget_gate in (True, False):
            for bias in (True, False):
                probe = Inspect(Make("ForgetLSTMCell", (i, h),
                                     {"bias": bias, "forget_gate": forget_gate}))
                case = f"ForgetLSTMCell({i}, {h}, bias={bias}, forget_gate={forget_gate})"
                require_layout(
                    grader, probe, case,
                    "Use the names and shapes of torch.nn.LSTMCell in both settings: weight_ih "
                    "(4H, I), weight_hh (4H, H), bias_ih and bias_hh (4H,) only when bias=True, "
                    "and no buffers.",
                )


@check(points=1, task="ForgetLSTMCell")
def test_init(grader):
    """every parameter is initialised uniformly in [-1/sqrt(H), 1/sqrt(H)], both settings"""
    for i, h in [(8, 16), (2, 6)]:
        for forget_gate in (True, False):
            probe = Inspect(Make("ForgetLSTMCell", (i, h), {"forget_gate": forget_gate}))
            require_uniform_init(
                grader, probe, f"ForgetLSTMCell({i}, {h}, forget_gate={forget_gate}) as "
                "constructed", h, "torch.nn.LSTMCell")


@check(points=2, public=True, task="ForgetLSTMCell")
def test_forward_with_gate(grader):
    """forget_gate=True (and the default): one step with copied weights matches nn.LSTMCell"""
    for b, i, h in SIZES:
        for dtype in DTYPES:
            for forget_gate in (True, None) if b == 1 else (True,):
                x = grader.randn(b, i, dtype=dtype)
                flag = "default" if forget_gate is None else "forget_gate=True"
                grader.compare(
                    Call(_cell(grader, i, h, dtype, forget_gate), (x, _state(grader, b, h, dtype))),
                    case=f"ForgetLSTMCell({i}, {h}, {flag}) on x[{b}, {i}] with state, "
                    f"{_dt(dtype)}",
                )


@check(points=2, public=True, task="ForgetLSTMCell")
def test_forward_without_gate(grader):
    """forget_gate=False: one step with copied weights is the 1997 cell, c = c_prev + i·g"""
    for b, i, h in SIZES:
        for dtype in DTYPES:
            x = grader.randn(b, i, dtype=dtype)
            grader.compare(
                Call(_cell(grader, i, h, dtype, False), (x, _state(grader, b, h, dtype))),
                case=f"ForgetLSTMCell({i}, {h}, forget_gate=False) on x[{b}, {i}] with state, "
                f"{_dt(dtype)}",
            )


@check(points=1, task="ForgetLSTMCell")
def test_zero_state(grader):
    """ForgetLSTMCell starts from h = c = 0 when no state is given, both settings"""
    for b, i, h in [(4, 3, 5), (1, 1, 1)]:
        for dtype in DTYPES:
            for forget_gate in (True, False):
                x = grader.randn(b, i, dtype=dtype)
                grader.compare(
                    Call(_cell(grader, i, h, dtype, forget_gate), (x,)),
                    case=f"ForgetLSTMCell({i}, {h}, forget_gate={forget_gate}) on x[{b}, {i}] "
                    f"without state, {_dt(dtype)}",
                )


@check(points=2, task="ForgetLSTMCell")
def test_gradients(grader):
    """gradients w.r.t. the input, the state and every parameter, both settings"""
    for b, i, h in [(4, 3, 5), (1, 1, 1), (1, 8, 16)]:
        for dtype in DTYPES:
            for forget_gate in (True, False):
                x = grader.randn(b, i, dtype=dtype)
                grader.compare(
                    Call(_cell(grader, i, h, dtype, forget_gate), (x, _state(grader, b, h, dtype)),
                         grad=(0, (1, 0), (1, 1), "params")),
                    case=f"d/dx, d/dh0, d/dc0, d/dparams of ForgetLSTMCell({i}, {h}, "
                    f"forget_gate={forget_gate}) on x[{b}, {i}], {_dt(dtype)}",
                )


@check(points=1, task="ForgetLSTMCell")
def test_no_bias(grader):
    """ForgetLSTMCell(bias=False): forward and gradients, both settings"""
    for b, i, h in [(3, 4, 5), (1, 2, 3)]:
        for dtype in DTYPES:
            for forget_gate in (True, False):
                x = grader.randn(b, i, dtype=dtype)
                grader.compare(
                    Call(_cell(grader, i, h, dtype, forget_gate, bias=False),
                         (x, _state(grader, b, h, dtype)), grad=(0, "params")),
                    case=f"ForgetLSTMCell({i}, {h}, bias=False, forget_gate={forget_gate}) on "
                    f"x[{b}, {i}], {_dt(dtype)}",
                )


@check(points=2, task="ForgetLSTMCell")
def test_unrolled(grader):
    """the cell stepped 30 times from a large cell state: states and gradients, both settings"""
    for t, b, i, h, dtypes in [(30, 2, 3, 4, DTYPES), (30, 1, 7, 1, [torch.float64])]:
        for dtype in dtypes:
            for forget_gate in (True, False):
                xs = grader.randn(t, b, i, dtype=dtype)
                state = _state(grader, b, h, dtype, c_scale=20.0)
                grader.compare(
                    Call("@forget_gate.unroll", (_cell(grader, i, h, dtype, forget_gate), xs,
                                                 state),
                         grad=(1, (2, 1), "params")),
                    case=f"ForgetLSTMCell({i}, {h}, forget_gate={forget_gate}) over xs[{t}, {b}, "
                    f"{i}] from |c0| ~ 20, {_dt(dtype)}",
                )
