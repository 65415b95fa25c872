# %% [markdown]
# # 3.3 Learning to forget — exercise
#
# Gers, Schmidhuber & Cummins (2000) fed an LSTM one endless stream of *embedded Reber
# strings*, with no marker telling it where one string stops and the next begins. The 1997
# cell, whose state can only be added to ($c_t = c_{t-1} + i_t \odot g_t$), let its state grow
# without bound and broke down; a learned **forget gate** $f_t$ that scales the old state,
#
# $$c_t = f_t \odot c_{t-1} + i_t \odot g_t, \qquad
#   f_t = \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}),$$
#
# lets the cell reset itself at the end of each string. You will write the grammar that makes
# the data (Tasks 1–3) and the cell with a switchable forget gate (Task 4).
#
# ## The Reber grammar
#
# Strings over the seven symbols `BTSXPVE`. The transition table of the *plain* grammar (the
# paper's transition diagram) is given below as `REBER`: `REBER[state]` maps each symbol that
# may be read in `state` to the state it leads to. Reading starts in state 0 and a string is
# complete when it reaches state 7, which has no way out:
#
# | state | symbol → next state |
# |---|---|
# | 0 | B → 1 |
# | 1 | T → 2, P → 3 |
# | 2 | S → 2, X → 4 |
# | 3 | T → 3, V → 5 |
# | 4 | X → 3, S → 6 |
# | 5 | P → 4, V → 6 |
# | 6 | E → 7 |
# | 7 | (none: complete) |
#
# So `BTXSE`, `BPVVE` and `BTSSXXTVVE` are plain Reber strings. An **embedded** Reber string is
# `B`, then `T` or `P`, then a complete plain Reber string (with its own `B` and `E`), then
# **the same** `T` or `P` as the second symbol, then `E`: `BTBTXSETE` and `BPBPVVEPE` are
# embedded strings, `BTBPVVEPE` is not. Predicting the second-to-last symbol requires
# remembering the second symbol across the whole inner string.

# %%
import math

import torch
from torch import nn

SYMBOLS = "BTSXPVE"

# The plain Reber grammar: REBER[state] = {symbol: next state}; start 0, complete at 7.
REBER: dict[int, dict[str, int]] = {
    0: {"B": 1},
    1: {"T": 2, "P": 3},
    2: {"S": 2, "X": 4},
    3: {"T": 3, "V": 5},
    4: {"X": 3, "S": 6},
    5: {"P": 4, "V": 6},
    6: {"E": 7},
    7: {},
}

# %% [markdown]
# ## Task 1 — `reber_next`
#
# Given a `prefix` (a `str`, possibly empty), return the **set** of symbols that can come next:
# the symbols `a` such that `prefix + a` is still the beginning of some grammatical string (of
# the embedded grammar when `embedded=True`, of the plain one when `embedded=False`). Two
# consequences of this definition: a complete string has nothing after it (the empty set), and
# so does a `prefix` that is not the beginning of any grammatical string (for example `"BX"`, or
# one containing a character outside `BTSXPVE`): return `set()`, do not raise.

# %%
def reber_next(prefix: str, embedded: bool = True) -> set[str]:
    """The legal next symbols after ``prefix`` in the (embedded) Reber grammar.

    Args:
        prefix: a string over ``"BTSXPVE"`` (any string is allowed; may be empty).
        embedded: the embedded grammar (``B``, ``T``/``P``, a plain string, the same
            ``T``/``P``, ``E``) when True, the plain grammar of ``REBER`` when False.

    Returns:
        A ``set`` of one-character strings: every symbol ``a`` such that ``prefix + a`` begins
        some grammatical string. ``set()`` after a complete string and after any ``prefix``
        that begins no grammatical string. Never raises for a ``str`` prefix.

    Examples: ``reber_next("")`` is ``{"B"}``; ``reber_next("BTBTX", embedded=True)`` is
    ``{"S", "X"}``; ``reber_next("BTBTXSE")`` is ``{"T"}``; ``reber_next("BPVVE",
    embedded=False)`` is ``set()``.
    """
    # BEGIN SOLUTION
    if not embedded:
        state = 0
        for symbol in prefix:
            if symbol not in REBER[state]:
                return set()
            state = REBER[state][symbol]
        return set(REBER[state])
    # embedded: B, then T or P, then a plain string, then the same T or P, then E
    if prefix == "":
        return {"B"}
    if prefix[0] != "B":
        return set()
    if len(prefix) == 1:
        return {"T", "P"}
    branch, inner = prefix[1], prefix[2:]
    if branch not in ("T", "P"):
        return set()
    end = inner.find("E")  # E occurs in a plain string only as its last symbol
    if end < 0:
        return reber_next(inner, embedded=False)  # still inside the plain string
    if "E" not in reber_next(inner[:end], embedded=False):
        return set()
    tail = inner[end + 1:]
    if tail == "":
        return {branch}  # the second T/P must repeat the first
    if tail == branch:
        return {"E"}
    return set()
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `is_reber`
#
# Return `True` exactly when `s` is a complete grammatical string: for the embedded grammar
# that means the outer `E` has been read, not only the inner string's `E`. The empty string
# and strings with foreign characters are not grammatical. You may build on `reber_next`.

# %%
def is_reber(s: str, embedded: bool = True) -> bool:
    """Whether ``s`` is a complete string of the (embedded) Reber grammar.

    Args:
        s: any string.
        embedded: the embedded grammar when True, the plain grammar of ``REBER`` when False.

    Returns:
        A Python ``bool``: True iff ``s`` is a whole grammatical string (not merely a prefix
        of one, and nothing after its end). ``is_reber("BTBTXSETE")`` is True,
        ``is_reber("BTBTXSE")`` (the inner string only) and ``is_reber("BTBTXSEPE")`` (the
        second T/P does not repeat the first) are False; ``is_reber("BTXSE",
        embedded=False)`` is True.
    """
    # BEGIN SOLUTION
    if s == "":
        return False
    # grammatical = every symbol was legal, and nothing may follow the last one
    legal = s[-1] in reber_next(s[:-1], embedded)
    return legal and not reber_next(s, embedded)
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `sample_reber`
#
# Draw one random grammatical string. Any strategy is fine (the checks do **not** compare your
# strings with ours), as long as
#
# - every string you return is grammatical (`is_reber(s, embedded)` holds), and
# - every edge of the grammar (every row and symbol of the table above, and for the embedded
#   grammar each of them inside the `T` branch and inside the `P` branch, plus the outer `B`,
#   `T`, `P`, repeated `T`, repeated `P` and final `E`) has a positive probability.
#
# Draw every random number from `generator` (for example
# `torch.randint(n, (1,), generator=generator)`), so that your results are reproducible.
# Choosing uniformly among the legal next symbols at each step, and uniformly between `T` and
# `P` for the embedded branch, does all of this.

# %%
def sample_reber(generator: torch.Generator, embedded: bool = True) -> str:
    """One random string of the (embedded) Reber grammar.

    Args:
        generator: a ``torch.Generator`` (on the CPU); take all randomness from it. Which
            draws you make, and in what order, is up to you: the checks look at the strings,
            never at the draws.
        embedded: an embedded string when True, a plain one when False.

    Returns:
        A ``str`` over ``"BTSXPVE"`` with ``is_reber(s, embedded)`` True. Any strategy that
        yields only grammatical strings and every edge with positive probability is correct.
        The checks call ``sample_reber`` repeatedly with one generator: all of 300 strings
        must be grammatical, and each edge of the grammar (12 plain, 30 embedded) must occur
        at least once in 600 strings. An edge with probability 3% per string is missed with
        probability about 1e-8; uniform choices give every edge at least 12% per string.
    """
    # BEGIN SOLUTION
    def choose(options):
        return options[int(torch.randint(len(options), (1,), generator=generator))]

    state, symbols = 0, []
    while REBER[state]:  # walk the diagram until the state with no way out
        symbol = choose(sorted(REBER[state], key=SYMBOLS.index))
        symbols.append(symbol)
        state = REBER[state][symbol]
    inner = "".join(symbols)
    if not embedded:
        return inner
    branch = choose(["T", "P"])
    return "B" + branch + inner + branch + "E"
    # END SOLUTION


# %% [markdown]
# ## Task 4 — `ForgetLSTMCell`
#
# The cell of unit 3.2 (`LSTMCell`, the layout of `torch.nn.LSTMCell`) with a switch for the
# forget gate. The parameters are exactly 3.2's: `weight_ih` $(4H, I)$, `weight_hh` $(4H, H)$,
# `bias_ih` and `bias_hh` $(4H,)$ (none of the two biases when `bias=False`), gate order
# **input, forget, cell (candidate), output** along the first dimension, both biases added,
# every parameter initialised uniformly in $[-1/\sqrt{H}, 1/\sqrt{H}]$. They are the same
# **in both settings**, so a state dict copies across.
#
# - `forget_gate=True` (default): the modern cell, $c_t = f_t \odot c_{t-1} + i_t \odot g_t$
#   with $f_t = \sigma(\cdot)$ from rows $H{:}2H$; it equals `torch.nn.LSTMCell`.
# - `forget_gate=False`: the 1997 cell, $c_t = c_{t-1} + i_t \odot g_t$: the forget gate is
#   held at **exactly** 1 (not $\sigma$ of something large). Rows $H{:}2H$ of the weights and
#   biases then stay in the module but have no effect, and their gradients are zero.
#
# In both settings $i_t, o_t = \sigma(\cdot)$, $g_t = \tanh(\cdot)$ and
# $h_t = o_t \odot \tanh(c_t)$.

# %%
class ForgetLSTMCell(nn.Module):
    """An LSTM step with a switchable forget gate, in the layout of ``torch.nn.LSTMCell``.

    Args:
        input_size: size I of each input vector.
        hidden_size: size H of the hidden and cell states.
        bias: if False, the cell has no ``bias_ih`` / ``bias_hh`` parameters.
        forget_gate: if True (default), c = f·c_prev + i·g with a learned forget gate f; if
            False, the 1997 cell c = c_prev + i·g (f held at exactly 1).

    Parameters (gate order input, forget, cell, output along the first dimension; the same
    names and shapes whatever ``forget_gate`` is): ``weight_ih`` (4H, I), ``weight_hh``
    (4H, H), ``bias_ih`` (4H,), ``bias_hh`` (4H,), all initialised uniformly in
    [-1/sqrt(H), 1/sqrt(H)]; no buffers. Keep the flag as the attribute ``forget_gate``.

    ``forward(x, state=None)``: x is (B, I); state a pair ``(h, c)`` of (B, H) tensors, or
    None for zeros. Returns the new pair ``(h, c)``, each (B, H), in x's dtype and device.
    Differentiable w.r.t. the input, the state and every parameter (checked in float32 and
    float64, against float64 results, with the usual tolerances).

    Forbidden: ``torch.nn.LSTMCell``, ``torch.nn.LSTM``, ``torch.lstm_cell``, ``torch.lstm``
    and anything in ``torch._VF``.
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, forget_gate: bool = True
    ) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.forget_gate = forget_gate
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        bound = 1.0 / math.sqrt(hidden_size)
        for param in self.parameters():
            nn.init.uniform_(param, -bound, bound)
        # END SOLUTION

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # BEGIN SOLUTION
        if state is None:
            zeros = torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
            state = (zeros, zeros)
        h_prev, c_prev = state
        gates = x @ self.weight_ih.T + h_prev @ self.weight_hh.T
        if self.bias_ih is not None:
            gates = gates + self.bias_ih + self.bias_hh
        i, f, g, o = gates.chunk(4, dim=1)
        i = torch.sigmoid(i)
        g = torch.tanh(g)
        o = torch.sigmoid(o)
        if self.forget_gate:
            f = torch.sigmoid(f)
            c = f * c_prev + i * g  # Gers et al. (2000): the forget gate scales the old state
        else:
            c = c_prev + i * g  # Hochreiter & Schmidhuber (1997): f = 1, the bare carousel
        h = o * torch.tanh(c)
        return h, c
        # END SOLUTION
