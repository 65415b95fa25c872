"""Hidden checks for unit 4.6 `gpt-3` (Brown et al., 2020).

``sample_next``: tokens are compared exactly with the reference's under the same generator
seed (the docstring fixes the draw: one ``torch.multinomial`` over the vocabulary-ordered
probabilities, on the CPU). Logits are float32-exact values and are redrawn until no partial
sum of the sorted (or unsorted) kept probabilities, correct or under a banked temperature
mistake, lies within 1e-4 of top_p, so no rounding decides what top-p keeps. Top-k cases with
integer logits have ties at the k-th value on purpose. A grader-owned driver calls the sampler
several times with one generator (a greedy call must not draw). A statistical check compares
the frequencies of 20,000 draws with the filtered distribution computed here from the
equations: each kept token within 5 standard deviations, sd = sqrt(p(1 - p)/n) (a correct
sampler fails one such bound with probability about 6e-7), every filtered token never drawn.

``KVCache`` and ``CausalSelfAttention``: a driver (``course/grading/drivers/gpt_3.py``) fills
the learner's cache with chunks and reports what each append returned and ``len(cache)``; it
runs a stack of the learner's attention layers with copied weights once over the whole
sequence and once piece by piece (a prompt, single tokens, several tokens at once) through one
cache per layer: the grader's own correct cache for the attention's checks, the learner's
``KVCache`` for the combined check. Incremental outputs are compared with the reference at
every position and with the learner's own full recomputation.

``fit_power_law``: exact power laws are recovered; noisy ones give the least-squares line of
the logs. Inputs as float32 and float64 tensors and as lists.
"""

import math

import torch

from course.grading.cell_checks import require_layout
from course.grading.dsl import (
    ATTENTION_ATEN,
    ATTENTION_CALLS,
    Call,
    Forbid,
    Gen,
    Inspect,
    Make,
    Mistake,
    check,
)

UNIT = "gpt-3"

FORBIDDEN = [
    Forbid(calls=ATTENTION_CALLS, aten=ATTENTION_ATEN),
]

MISTAKES = [
    # -- sample_next
    Mistake(
        "top-p-excludes-crossing",
        "Your tokens match a top-p filter that drops the token whose probability makes the "
        "total reach top_p. Keep a token when the mass of the tokens sorted before it is still "
        "below top_p: the crossing token belongs to the nucleus.",
        {"drop_sorted = before >= top_p": "drop_sorted = (before + sorted_probs >= top_p) & "
         "(before > 0)"},
    ),
    Mistake(
        "temperature-after-softmax",
        "Your tokens match a temperature applied to the probabilities after the softmax "
        "(softmax(z) / τ): the draw renormalises it away, and top-p then sums wrong masses. "
        "Divide the logits by τ before the softmax.",
        {"    logits = logits / temperature\n": "",
         "probs = torch.softmax(logits, dim=-1)\n": "probs = torch.softmax(logits, dim=-1) / "
         "temperature\n"},
    ),
    Mistake(
        "temperature-multiplied",
        "Your tokens match logits multiplied by the temperature. Divide them by it: τ < 1 "
        "sharpens the distribution, τ > 1 flattens it.",
        {"logits = logits / temperature": "logits = logits * temperature"},
    ),
    Mistake(
        "top-k-drops-ties",
        "Your tokens match a top-k that keeps exactly k tokens (the indices torch.topk "
        "returns) and drops the ones tied with the k-th. Keep every token whose logit is at "
        "least the k-th largest value.",
        {"kth = logits.topk(top_k, dim=-1).values[:, -1:]  # the k-th largest logit of each row\n"
         "        logits = logits.masked_fill(logits < kth, float(\"-inf\"))":
         "keep = logits.topk(top_k, dim=-1).indices\n"
         "        logits = torch.full_like(logits, float(\"-inf\")).scatter(-1, keep, "
         "logits.gather(-1, keep))"},
    ),
    Mistake(
        "top-p-unsorted",
        "Your tokens match a top-p filter that sums the probabilities in vocabulary order. "
        "Sort each row by probability, largest first, before taking the cumulative sum, and "
        "map the decision back to the vocabulary order.",
        {"sorted_probs, order = probs.sort(dim=-1, descending=True)":
         "sorted_probs, order = probs, torch.arange(probs.shape[-1], device=probs.device)"
         ".expand_as(probs)"},
    ),
    Mistake(
        "draw-without-generator",
        "Your tokens match a draw from torch's global generator: the generator argument is "
        "not passed on. Call torch.multinomial(probs, 1, generator=generator).",
        {"torch.multinomial(probs.cpu(), 1, generator=generator)":
         "torch.multinomial(probs.cpu(), 1)"},
    ),
    Mistake(
        "greedy-draws",
        "Your greedy decoding (temperature 0) makes a random draw (e.g. top_k = 1 and "
        "sampling), which moves the generator on, so the draws after it differ. With "
        "temperature 0 return logits.argmax(dim=-1) and draw nothing.",
        {"return logits.argmax(dim=-1)  # greedy: no draw":
         "temperature, top_k, top_p = 1.0, 1, None"},
    ),
    # -- KVCache
    Mistake(
        "cache-overwrites",
        "Your cache keeps only the keys and values of the last append. Concatenate the new "
        "ones after the cached ones along the time axis (torch.cat([...], dim=2)).",
        {"self.k = torch.cat([self.k, k], dim=2)": "self.k = k",
         "self.v = torch.cat([self.v, v], dim=2)": "self.v = v"},
    ),
    Mistake(
        "cache-new-first",
        "Your cache puts the new positions before the cached ones. Time runs forward: "
        "torch.cat([cached, new], dim=2).",
        {"torch.cat([self.k, k], dim=2)": "torch.cat([k, self.k], dim=2)",
         "torch.cat([self.v, v], dim=2)": "torch.cat([v, self.v], dim=2)"},
    ),
    Mistake(
        "cache-length-counts-calls",
        "Your len(cache) counts the calls to append, not the positions: an append of T "
        "positions must add T (k.shape[2]).",
        {"self.length += k.shape[2]": "self.length += 1"},
    ),
    # -- CausalSelfAttention
    Mistake(
        "cache-positions-not-offset",
        "Your cached attention treats the new rows as positions 0 … T − 1: query i sees keys "
        "j ≤ i only, not the whole past. With P positions cached, row i is position P + i and "
        "may attend to keys j ≤ P + i (a mask of shape (T, P + T), tril with diagonal = P).",
        {"tril(diagonal=past)": "tril()"},
    ),
    Mistake(
        "cache-offset-after-append",
        "Your offset P is read after appending, so it already counts the new positions: each "
        "query of a chunk also sees the later tokens of its own chunk. Take P = len(cache) "
        "before cache.append(k, v).",
        {"        past = 0 if cache is None else len(cache)  # P: positions before x[:, 0]\n"
         "        if cache is not None:\n"
         "            k, v = cache.append(k, v)  # (B, h, P + T, d_head)\n":
         "        if cache is not None:\n"
         "            k, v = cache.append(k, v)  # (B, h, P + T, d_head)\n"
         "        past = 0 if cache is None else len(cache)  # P: positions before x[:, 0]\n"},
    ),
    Mistake(
        "cache-positions-off-by-one",
        "Your causal mask is shifted by one position: query P + i also attends to key "
        "P + i + 1, the next token. Query P + i may attend to keys j ≤ P + i: "
        "tril(diagonal=P), not P + 1.",
        {"tril(diagonal=past)": "tril(diagonal=past + 1)"},
    ),
    Mistake(
        "scale-by-d-model",
        "Your output matches scores divided by √d_model. Each head scales its own dot "
        "products by 1/√d_head, d_head = d_model // n_head.",
        {"/ math.sqrt(d_head)": "/ math.sqrt(self.d_model)"},
    ),
    Mistake(
        "qkv-order",
        "Your output matches c_attn's output read as keys, queries, values. GPT-2's c_attn "
        "gives queries, then keys, then values: q, k, v = c_attn(x).split(d_model, dim=2).",
        {"q, k, v = self.c_attn(x).split(self.d_model, dim=2)":
         "k, q, v = self.c_attn(x).split(self.d_model, dim=2)"},
    ),
    # -- fit_power_law
    Mistake(
        "fit-linear-space",
        "Your (a, alpha) match a straight line fitted to N and L themselves. A power law is a "
        "straight line only on log-log axes: fit log L against log N, then a = exp(intercept) "
        "and alpha = −slope.",
        {"x = torch.log(torch.as_tensor(n, dtype=torch.float64))":
         "x = torch.as_tensor(n, dtype=torch.float64)",
         "y = torch.log(torch.as_tensor(losses, dtype=torch.float64))":
         "y = torch.as_tensor(losses, dtype=torch.float64)",
         "float(torch.exp(intercept))": "float(intercept)"},
    ),
    Mistake(
        "alpha-sign",
        "Your alpha has the wrong sign: it is the slope itself. log L = log a − α log N, so "
        "alpha = −slope (positive when the loss falls with N).",
        {"float(-slope)": "float(slope)"},
    ),
    Mistake(
        "intercept-not-exponentiated",
        "Your a matches log a, the intercept of the line. Return a = exp(intercept).",
        {"float(torch.exp(intercept))": "float(intercept)"},
    ),
    Mistake(
        "fit-log10-exp",
        "Your a matches a fit with base-10 logarithms whose intercept is then exponentiated "
        "with e. Use natural logs throughout (or 10 ** intercept with log10): a = "
        "exp(intercept of the natural-log fit).",
        {"x = torch.log(torch.as_tensor(n, dtype=torch.float64))":
         "x = torch.log10(torch.as_tensor(n, dtype=torch.float64))",
         "y = torch.log(torch.as_tensor(losses, dtype=torch.float64))":
         "y = torch.log10(torch.as_tensor(losses, dtype=torch.float64))"},
    ),
]

DTYPES = [torch.float32, torch.float64]
MARGIN = 1e-4  # the closest a partial sum of kept probabilities may come to top_p


def _dt(dtype):
    return str(dtype).replace("torch.", "")


# -- sample_next: inputs -----------------------------------------------------------------------

def _filtered(z: torch.Tensor, temperature: float, top_k, top_p) -> torch.Tensor:
    """The distribution sample_next draws from, from the equations (float64, rows)."""
    z = z.double() / temperature
    if top_k is not None and top_k < z.shape[-1]:
        kth = z.sort(dim=-1, descending=True).values[:, top_k - 1:top_k]
        z = torch.where(z >= kth, z, torch.full_like(z, -math.inf))
    p = torch.softmax(z, dim=-1)
    if top_p is not None:
        for r in range(p.shape[0]):
            mass = 0.0  # probability of the tokens kept so far, most probable first
            for index in p[r].argsort(descending=True).tolist():
                if mass >= top_p:
                    p[r, index] = 0.0
                else:
                    mass += float(p[r, index])
    return p / p.sum(dim=-1, keepdim=True)


def _partial_sums(p: torch.Tensor) -> list[torch.Tensor]:
    """Cumulative sums of each row sorted (descending) and in vocabulary order."""
    return [p.sort(dim=-1, descending=True).values.cumsum(-1), p.cumsum(-1)]


def _top_p_safe(z: torch.Tensor, temperature: float, top_k, top_p) -> bool:
    """No partial sum (correct, or under the banked temperature mistakes) near top_p."""
    if top_p is None:
        return True
    z = z.double()

    def kept(scaled):
        if top_k is not None and top_k < scaled.shape[-1]:
            kth = scaled.sort(dim=-1, descending=True).values[:, top_k - 1:top_k]
            scaled = torch.where(scaled >= kth, scaled, torch.full_like(scaled, -math.inf))
        return torch.softmax(scaled, dim=-1)

    candidates = [kept(z / temperature), kept(z) / temperature, kept(z * temperature)]
    sums = [s for p in candidates for s in _partial_sums(p)]
    return all(float((s - top_p).abs().min()) >= MARGIN for s in sums)


def _logits(grader, rows, vocab, dtype, temperature=1.0, top_k=None, top_p=None, scale=2.0):
    """Float32-exact random logits, redrawn until top-p's decisions are clear."""
    for _ in range(200):
        z = (grader.randn(rows, vocab) * scale).float().double()
        if _top_p_safe(z, temperature, top_k, top_p):
            return z.to(dtype)
    raise RuntimeError("could not draw logits away from the top-p boundary")  # pragma: no cover


def _tied_logits(grader, rows, vocab, dtype, levels=4):
    """Integer logits in 0 … levels − 1: ties everywhere, at the k-th value too."""
    return grader.randint(0, levels, (rows, vocab)).to(dtype)


def _options(temperature, top_k, top_p):
    kw = {"temperature": temperature}
    if top_k is not None:
        kw["top_k"] = top_k
    if top_p is not None:
        kw["top_p"] = top_p
    return kw


def _sample_case(grader, logits, temperature=1.0, top_k=None, top_p=None, note=""):
    kw = _options(temperature, top_k, top_p)
    words = ", ".join(f"{k}={v}" for k, v in kw.items())
    grader.compare(
        Call("sample_next", (logits,), {**kw, "generator": Gen(grader.seed())}), exact=True,
        case=f"sample_next(logits{list(logits.shape)}{note}, {words}, seeded generator), "
        f"{_dt(logits.dtype)}",
    )


# -- sample_next: checks -----------------------------------------------------------------------

@check(points=2, public=True, task="sample_next")
def test_sample_temperature(grader):
    """sample_next draws the reference's tokens under a seeded generator, temperature only"""
    for (rows, vocab), temperature in [((64, 7), 0.7), ((1, 5), 1.0), ((16, 50), 1.5),
                                        ((3, 2), 2.0)]:
        for dtype in DTYPES:
            _sample_case(grader, _logits(grader, rows, vocab, dtype), temperature)


@check(points=1, public=True, task="sample_next")
def test_sample_greedy(grader):
    """temperature 0 returns each row's argmax (first index among ties), filters or not"""
    for dtype in DTYPES:
        _sample_case(grader, _logits(grader, 12, 9, dtype), 0.0)
        _sample_case(grader, _tied_logits(grader, 20, 6, dtype), 0.0, note=" with ties")
        _sample_case(grader, _logits(grader, 1, 4, dtype), 0.0, top_k=2, top_p=0.5)


@check(points=2, public=True, task="sample_next")
def test_sample_top_k(grader):
    """top_k keeps the tokens at or above the k-th largest tempered logit (ties kept), k ≥ V all"""
    for dtype in DTYPES:
        _sample_case(grader, _tied_logits(grader, 48, 8, dtype), 1.0, top_k=3,
                     note=" with ties at the k-th")
        _sample_case(grader, _tied_logits(grader, 32, 5, dtype), 0.8, top_k=1,
                     note=" with ties at the top")
        for rows, vocab, k, temperature in [(32, 10, 3, 1.0), (1, 6, 1, 0.8), (48, 4, 9, 1.3)]:
            _sample_case(grader, _logits(grader, rows, vocab, dtype), temperature, top_k=k)


@check(points=2, public=True, task="sample_next")
def test_sample_top_p(grader):
    """top_p keeps the smallest most-probable set whose mass reaches top_p, crossing token kept"""
    for rows, vocab, p, temperature in [(32, 10, 0.9, 1.0), (16, 20, 0.5, 0.8), (8, 6, 0.01, 1.0),
                                         (1, 30, 0.75, 1.2), (48, 5, 0.3, 1.0)]:
        for dtype in DTYPES:
            z = _logits(grader, rows, vocab, dtype, temperature, top_p=p)
            _sample_case(grader, z, temperature, top_p=p)


@check(points=1, task="sample_next")
def test_sample_top_k_and_top_p(grader):
    """top_k, then top_p on the renormalised rest, with temperatures ≠ 1"""
    for rows, vocab, k, p, temperature in [(32, 12, 5, 0.8, 0.7), (16, 8, 6, 0.5, 1.5),
                                            (1, 20, 10, 0.9, 1.0), (24, 6, 2, 0.7, 1.0)]:
        for dtype in DTYPES:
            z = _logits(grader, rows, vocab, dtype, temperature, top_k=k, top_p=p)
            _sample_case(grader, z, temperature, top_k=k, top_p=p)


@check(points=1, task="sample_next")
def test_sample_draw_sequence(grader):
    """six sample_next calls sharing one generator, two of them greedy, give our tokens in order"""
    settings = [_options(1.0, None, None), _options(0.0, None, None), _options(0.8, 3, None),
                _options(0.0, None, 0.5), _options(1.0, None, 0.7), _options(1.2, 4, 0.9)]
    for dtype in DTYPES:
        logits = [_logits(grader, 6, 9, dtype, s["temperature"] or 1.0, s.get("top_k"),
                          s.get("top_p")) for s in settings]
        grader.compare(
            Call("@gpt_3.sample_many", (logits, settings, Gen(grader.seed()))), exact=True,
            case=f"{len(settings)} calls of sample_next(logits[6, 9], ...) with one seeded "
            f"generator: {settings}, {_dt(dtype)}",
        )


@check(points=2, task="sample_next")
def test_sample_frequencies(grader):
    """frequencies of 20,000 draws match the filtered distribution (5 sd); filtered never drawn"""
    n = 20_000
    rows = [
        (torch.tensor([2.0, 1.5, 1.0, 0.5, 0.0, -1.0]), 0.8, 4, 0.8),
        (torch.tensor([0.3, -0.4, 1.1, 0.0, 0.7]), 2.0, None, None),
        (torch.tensor([1.0, 3.0, -2.0, 2.2, 0.4, 2.9, -0.5]), 1.0, None, 0.6),
        (torch.tensor([1.0, 2.0, 2.0, 0.0, 2.0, -1.0]), 1.0, 2, None),
    ]
    for z, temperature, k, p in rows:
        for dtype in DTYPES:
            logits = z.to(dtype).expand(n, -1).clone()
            kw = _options(temperature, k, p)
            words = ", ".join(f"{key}={value}" for key, value in kw.items())
            case = (f"{n} draws of sample_next(logits {z.tolist()} in every row, {words}), "
                    f"{_dt(dtype)}")
            got = grader.learner(Call("sample_next", (logits,),
                                      {**kw, "generator": Gen(grader.seed())}), case)
            tokens = got.out
            grader.require(isinstance(tokens, torch.Tensor) and tuple(tokens.shape) == (n,)
                           and tokens.dtype == torch.int64,
                           f"{case}: expected a LongTensor of shape ({n},)")
            grader.require(bool(((tokens >= 0) & (tokens < len(z))).all()),
                           f"{case}: token ids outside 0 … {len(z) - 1}")
            freq = torch.bincount(tokens, minlength=len(z)).double() / n
            want = _filtered(z[None], temperature, k, p)[0]
            for token, (f, q) in enumerate(zip(freq.tolist(), want.tolist())):
                if q == 0.0:
                    grader.require(f == 0.0, f"{case}: token {token} is filtered out (its "
                                   f"probability is 0) but was drawn {f:.2%} of the time")
                    continue
                bound = 5 * math.sqrt(q * (1 - q) / n)
                grader.require(abs(f - q) <= bound,
                               f"{case}: token {token} drawn {f:.4f} of the time, expected "
                               f"{q:.4f} ± {bound:.4f} (5 standard deviations)")
            grader.cases.append(case)


# -- KVCache -----------------------------------------------------------------------------------

def _chunks(grader, B, h, d, sizes, dtype):
    ks = [grader.randn(B, h, t, d, dtype=dtype) for t in sizes]
    vs = [grader.randn(B, h, t, d, dtype=dtype) for t in sizes]
    return ks, vs


@check(points=2, public=True, task="KVCache")
def test_cache_append(grader):
    """KVCache.append returns all keys/values so far (time on dim 2); len counts positions"""
    for B, h, d, steps in [(2, 3, 4, 5), (1, 1, 2, 3), (3, 2, 8, 1)]:
        for dtype in DTYPES:
            ks, vs = _chunks(grader, B, h, d, [1] * steps, dtype)
            grader.compare(
                Call("@gpt_3.fill_cache", (ks, vs)), exact=True,
                case=f"{steps} appends of k, v [{B}, {h}, 1, {d}] to a fresh KVCache(), "
                f"{_dt(dtype)}",
            )


@check(points=1, task="KVCache")
def test_cache_chunks(grader):
    """KVCache with appends of several positions at once: len(cache) is the number of positions"""
    for B, h, d, sizes in [(2, 2, 4, [4, 1, 3, 2]), (1, 3, 2, [6]), (2, 1, 3, [2, 2, 1])]:
        for dtype in DTYPES:
            ks, vs = _chunks(grader, B, h, d, sizes, dtype)
            grader.compare(
                Call("@gpt_3.fill_cache", (ks, vs)), exact=True,
                case=f"appends of {sizes} positions ([{B}, {h}, T, {d}]) to a fresh KVCache(), "
                f"{_dt(dtype)}",
            )


# -- CausalSelfAttention -----------------------------------------------------------------------

def _attn_state(grader, d_model, dtype):
    return {
        "c_attn.weight": grader.randn(3 * d_model, d_model, dtype=dtype, scale=d_model**-0.5),
        "c_attn.bias": grader.randn(3 * d_model, dtype=dtype, scale=0.1),
        "c_proj.weight": grader.randn(d_model, d_model, dtype=dtype, scale=d_model**-0.5),
        "c_proj.bias": grader.randn(d_model, dtype=dtype, scale=0.1),
    }


def _attention(grader, d_model, n_head, dtype):
    return Make("CausalSelfAttention", (d_model, n_head),
                state_dict=_attn_state(grader, d_model, dtype), dtype=dtype)


# (B, T, d_model, n_head)
ATTN_SHAPES = [(2, 5, 8, 2), (1, 1, 4, 1), (3, 7, 12, 3), (1, 6, 16, 4)]


@check(points=1, public=True, task="CausalSelfAttention")
def test_attention_layout(grader):
    """CausalSelfAttention has c_attn (3d, d) and c_proj (d, d), both with biases, nothing else"""
    for d_model, n_head in [(8, 2), (12, 3), (4, 1)]:
        require_layout(
            grader, Inspect(Make("CausalSelfAttention", (d_model, n_head))),
            case=f"CausalSelfAttention({d_model}, {n_head})",
            advice="Make c_attn = nn.Linear(d_model, 3 * d_model) and c_proj = "
                   "nn.Linear(d_model, d_model), with biases, and no other parameters.",
        )


@check(points=2, public=True, task="CausalSelfAttention")
def test_attention_forward(grader):
    """CausalSelfAttention(x) without a cache, copied weights: causal attention over x"""
    for B, T, d_model, n_head in ATTN_SHAPES:
        for dtype in DTYPES:
            module = _attention(grader, d_model, n_head, dtype)
            x = grader.randn(B, T, d_model, dtype=dtype)
            grader.compare(Call(module, (x,)),
                           case=f"CausalSelfAttention({d_model}, {n_head}) on x{list(x.shape)}, "
                           f"no cache, {_dt(dtype)}")


@check(points=1, task="CausalSelfAttention")
def test_attention_gradients(grader):
    """gradients of CausalSelfAttention (no cache) w.r.t. x and every parameter"""
    for B, T, d_model, n_head in [(2, 4, 8, 2), (1, 3, 6, 3)]:
        for dtype in DTYPES:
            module = _attention(grader, d_model, n_head, dtype)
            x = grader.randn(B, T, d_model, dtype=dtype)
            grader.compare(Call(module, (x,), grad=(0, "params")),
                           case=f"d/dx, d/dparams of CausalSelfAttention({d_model}, {n_head}) "
                           f"on x{list(x.shape)}, {_dt(dtype)}")


def _decode_case(grader, layers, B, d_model, n_head, chunks, dtype, learner_cache):
    states = [_attn_state(grader, d_model, dtype) for _ in range(layers)]
    x = grader.randn(B, sum(chunks), d_model, dtype=dtype)
    whose = "your KVCache" if learner_cache else "the grader's cache"
    case = (f"{layers} residual CausalSelfAttention({d_model}, {n_head}) layer(s) on "
            f"x{list(x.shape)} fed in pieces of {chunks} through {whose} (one per layer), "
            f"against one pass without a cache, {_dt(dtype)}")
    got = grader.compare(Call("@gpt_3.decode", (states, x, chunks, n_head),
                              {"learner_cache": learner_cache}), case=case)
    # the property itself: incremental decoding equals full recomputation, position by position
    full, step = got.out["full"].double(), got.out["incremental"].double()

    rtol, atol = (1e-7, 1e-9) if dtype == torch.float64 else (1e-4, 1e-5)
    bad = ((full - step).abs() > atol + rtol * full.abs()).any(dim=(0, 2))
    grader.require(not bool(bad.any()),
                   f"{case}: the pieces' outputs differ from the full pass at positions "
                   f"{bad.nonzero().flatten().tolist()}")


@check(points=2, public=True, task="CausalSelfAttention")
def test_attention_with_cache(grader):
    """CausalSelfAttention fed in pieces via a grader-owned cache: vs ours, and vs its full pass"""
    for B, d_model, n_head, chunks in [(2, 8, 2, [4, 1, 1, 1]), (1, 4, 1, [1, 1, 1, 1, 1]),
                                       (3, 12, 3, [3, 2, 1, 2]), (2, 8, 4, [6])]:
        for dtype in DTYPES:
            _decode_case(grader, 1, B, d_model, n_head, chunks, dtype, learner_cache=False)


@check(points=2, public=True, task="CausalSelfAttention")
def test_decoding_through_your_cache(grader):
    """your KVCache + attention, a 2-layer stack fed in pieces: vs ours, and vs its full pass"""
    for B, d_model, n_head, chunks in [(2, 8, 2, [5, 1, 1, 1, 1]), (1, 12, 3, [3, 1, 4, 1])]:
        for dtype in DTYPES:
            _decode_case(grader, 2, B, d_model, n_head, chunks, dtype, learner_cache=True)


# -- fit_power_law -----------------------------------------------------------------------------

def _sizes(count, low=1e3, high=1e7):
    return torch.logspace(math.log10(low), math.log10(high), count, dtype=torch.float64)


@check(points=2, public=True, task="fit_power_law")
def test_fit_exact(grader):
    """fit_power_law recovers (a, alpha) of exact power laws L = a·N^−alpha"""
    for count, a, alpha, kind in [(5, 12.0, 0.076, "float64"), (4, 3.5, 0.3, "float32"),
                                  (2, 0.8, 1.2, "list"), (7, 40.0, 0.05, "float64")]:
        n = _sizes(count)
        losses = a * n ** -alpha
        if kind == "float32":
            n, losses = n.float(), losses.float()
        elif kind == "list":
            n, losses = [int(round(v)) for v in n.tolist()], losses.tolist()
        grader.compare(Call("fit_power_law", (n, losses)),
                       case=f"fit_power_law on {count} points of L = {a}·N^-{alpha}, N from 1e3 "
                       f"to 1e7, as {kind}")


@check(points=1, task="fit_power_law")
def test_fit_noisy(grader):
    """fit_power_law on noisy losses returns the least-squares line of log L on log N"""
    for count, a, alpha, kind in [(6, 8.0, 0.1, "float64"), (9, 2.0, 0.5, "float32"),
                                  (4, 5.0, 0.2, "list")]:
        n = _sizes(count, 2e2, 5e5)
        losses = a * n ** -alpha * torch.exp(grader.randn(count, scale=0.05))
        if kind == "float32":
            n, losses = n.float(), losses.float()
        elif kind == "list":
            n, losses = n.tolist(), losses.tolist()
        grader.compare(Call("fit_power_law", (n, losses)),
                       case=f"fit_power_law on {count} noisy points around L = {a}·N^-{alpha}, "
                       f"as {kind}")
