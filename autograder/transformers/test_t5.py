"""Hidden checks for unit 4.4 `t5` (Raffel et al., 2019).

``relative_position_bucket``: bucket ids compared exactly with the reference over every offset
in wide ranges (far beyond ``max_distance``, so the cap shows), for encoder (bidirectional) and
decoder (causal) settings, even and odd ``num_buckets``, and over shapes: (Lq, Lk) offset
matrices j − i, batch dimensions, a 0-d tensor, an empty tensor. Every setting in these checks
gives the same buckets whether the logarithm is taken in float32 or float64, per element with
``math.log`` or as a difference of logarithms (``tests/test_oracle_t5.py`` proves it), so only
the bucketing itself is judged.

``T5RelativeBias``: the parameter layout, then the forward value and the gradient w.r.t. the
copied ``embedding.weight`` in float32 and float64, Lq ≠ Lk first (so that a transposed bias
shows as such), Lq = 1 and Lk = 1, default and other settings. These checks run the module
through a grader-owned driver (``course/grading/drivers/t5.py``) that binds
``relative_position_bucket`` to a lookup in tables the grader computed with the reference, so a
wrong bucket function costs its own task only.

``span_corrupt``: the syllabus leaves the draws to the unit; the exercise fixes them (two
``torch.randperm`` calls, noise spans first), so under a supplied generator the learner's
``(inputs, targets)`` are compared with the reference's exactly, and ``tokens`` is read back
after the call. Independently of the draws, a check verifies on the learner's output alone that
it is a valid corruption (sizes, consecutive sentinels, non-empty spans, the tokens recovered),
and a statistical check over 400 draws compares the mean length of the first noise span and of
the first kept run with their exact expectations under uniformly random cuts, within 5 standard
errors.

The master's bucket function equals ``transformers``' ``T5Attention._relative_position_bucket``
and its bias ``T5Attention.compute_bias`` (weights copied), and its span corruption is checked
against a from-the-definition loop, in ``tests/test_oracle_t5.py``.
"""

import math

import torch

from course.grading.cell_checks import require_layout
from course.grading.dsl import Call, Forbid, Gen, Inspect, Make, Mistake, check

UNIT = "t5"

# Nothing in torch buckets relative positions or corrupts spans. transformers' own
# T5Attention._relative_position_bucket cannot be watched: importing its module needs
# ctypes.dlopen, which the sandbox refuses (so it is unavailable to graded code anyway, and the
# import would cost seconds per grading run). What is forbidden instead is the shortcut that
# skips the formula: looking n up in a table of precomputed bucket boundaries.
FORBIDDEN = [
    Forbid(
        calls=("torch.bucketize", "torch.searchsorted"),
        aten=("bucketize", "searchsorted"),
        within=("relative_position_bucket",),
    ),
]

MISTAKES = [
    # -- relative_position_bucket
    Mistake(
        "halves-swapped",
        "Your buckets put keys to the LEFT of the query (δ < 0) in the upper half. With "
        "bidirectional=True the upper half, buckets num_buckets//2 and up, is for keys to the "
        "right, δ = key − query > 0: bucket = (δ > 0) · num_buckets after halving.",
        {"(relative_position > 0).long() * num_buckets": "(relative_position < 0).long() * "
         "num_buckets"},
    ),
    Mistake(
        "zero-offset-in-upper-half",
        "Your buckets put δ = 0 (the query's own position) in the upper half. Only keys "
        "strictly to the right, δ > 0, go there: (relative_position > 0), not >= 0.",
        {"(relative_position > 0).long() * num_buckets": "(relative_position >= 0).long() * "
         "num_buckets"},
    ),
    Mistake(
        "buckets-not-halved",
        "Your bidirectional buckets reach up to 2·num_buckets − 1: num_buckets was not halved. "
        "An encoder splits its num_buckets into two halves, num_buckets //= 2, before "
        "anything else (max_exact included) is computed.",
        {"        num_buckets = num_buckets // 2  # one half for each side\n": ""},
    ),
    Mistake(
        "log-bucket-not-capped",
        "Your buckets keep growing for offsets beyond max_distance. Cap the logarithmic bucket "
        "at num_buckets − 1 (of the halved num_buckets when bidirectional): every |δ| ≥ "
        "max_distance shares the last bucket.",
        {"    large = large.clamp(max=num_buckets - 1)  # every offset beyond max_distance: "
         "last bucket\n": ""},
    ),
    Mistake(
        "cap-off-by-one",
        "Your cap lets the logarithmic bucket reach num_buckets, one past the last bucket. "
        "Cap at num_buckets − 1: min(max_exact + …, num_buckets − 1).",
        {"large.clamp(max=num_buckets - 1)": "large.clamp(max=num_buckets)"},
    ),
    Mistake(
        "log-bucket-rounded",
        "Your logarithmic buckets match rounding to the nearest integer. T5 truncates: "
        "max_exact + ⌊log(n/max_exact) / log(max_distance/max_exact) · (num_buckets − "
        "max_exact)⌋, i.e. .to(torch.long) on the non-negative value, not torch.round.",
        {"(log_ratio * (num_buckets - max_exact)).to(torch.long)":
         "torch.round(log_ratio * (num_buckets - max_exact)).to(torch.long)"},
    ),
    Mistake(
        "log-ratio-wrong",
        "Your logarithmic buckets match dividing by log(max_distance). The denominator is "
        "log(max_distance / max_exact), so that n = max_distance lands exactly at the end of "
        "the bucket range.",
        {"/ max_exact) / math.log(max_distance / max_exact)\n":
         "/ max_exact) / math.log(max_distance)\n"},
    ),
    Mistake(
        "causal-future-kept",
        "Your causal buckets measure the distance to keys on the RIGHT (n = max(δ, 0)). A "
        "decoder looks left: n = max(−δ, 0) with δ = key − query, so earlier keys get "
        "growing buckets and every later key shares bucket 0.",
        {"n = (-relative_position).clamp(min=0)": "n = relative_position.clamp(min=0)"},
    ),
    Mistake(
        "causal-absolute-offset",
        "Your causal buckets use |δ|, so keys to the right get the same buckets as keys to the "
        "left. With bidirectional=False, n = max(−δ, 0): every δ > 0 is bucket 0.",
        {"n = (-relative_position).clamp(min=0)": "n = relative_position.abs()"},
    ),
    # -- T5RelativeBias
    Mistake(
        "bias-sign-reversed",
        "Your bias matches relative positions query − key. T5 uses δ = key position − query "
        "position: relative_position[i, j] = j − i, with i the query (row) and j the key "
        "(column).",
        {"relative_position = key_position - query_position  # (Lq, Lk): j - i":
         "relative_position = query_position - key_position  # (Lq, Lk): j - i"},
    ),
    Mistake(
        "bias-transposed",
        "Your bias has shape (1, h, Lk, Lq): queries and keys are swapped. Build the offsets "
        "as an (Lq, Lk) matrix, look them up to (Lq, Lk, h) and permute(2, 0, 1) to "
        "(h, Lq, Lk).",
        {"values.permute(2, 0, 1).unsqueeze(0)": "values.permute(2, 1, 0).unsqueeze(0)"},
    ),
    Mistake(
        "bias-heads-last",
        "Your bias has shape (1, Lq, Lk, h): the embedding lookup's head axis was left last. "
        "Move it to the front, permute(2, 0, 1), then add the batch axis: (1, h, Lq, Lk).",
        {"values.permute(2, 0, 1).unsqueeze(0)": "values.unsqueeze(0)"},
    ),
    Mistake(
        "bias-bidirectional-ignored",
        "Your causal (bidirectional=False) bias matches the encoder's bucketing: the module's "
        "bidirectional flag is not passed on. Call relative_position_bucket(..., "
        "bidirectional=self.bidirectional, num_buckets=…, max_distance=…).",
        {"            bidirectional=self.bidirectional,\n": ""},
    ),
    # -- span_corrupt
    Mistake(
        "sentinels-reused",
        "Your corruption uses the same sentinel for every span. Each span gets its own, in "
        "order: span i is replaced by sentinel_ids[i], and the targets are sentinel_ids[0], "
        "span 0, sentinel_ids[1], span 1, …",
        {"sentinel = tokens.new_tensor([sentinel_ids[i]])":
         "sentinel = tokens.new_tensor([sentinel_ids[0]])"},
    ),
    Mistake(
        "targets-without-sentinels",
        "Your targets are the hidden tokens alone. Each span in the targets is preceded by its "
        "sentinel, so the decoder knows which gap it is filling: sentinel_ids[0], span 0, "
        "sentinel_ids[1], span 1, …",
        {"targets += [sentinel, tokens[start:start + noise]]":
         "targets += [tokens[start:start + noise]]"},
    ),
    Mistake(
        "noise-count-truncated",
        "Your number of noise tokens matches int(L · noise_density), rounded down. Use "
        "Python's round: num_noise = round(L · noise_density) (then kept in [1, L − 1]).",
        {"round(length * noise_density)": "int(length * noise_density)"},
    ),
    Mistake(
        "span-count-truncated",
        "Your number of spans matches int(num_noise / mean_span_length), rounded down. Use "
        "Python's round: num_spans = max(1, round(num_noise / mean_span_length)).",
        {"round(num_noise / mean_span_length))  # at least one span":
         "int(num_noise / mean_span_length))  # at least one span"},
    ),
    Mistake(
        "noise-first",
        "Your layout starts with a noise span. As in T5, the sequence is keep run 1, noise "
        "span 1, keep run 2, noise span 2, …: it starts with kept tokens and ends with noise.",
        {"        inputs += [tokens[start:start + keep], sentinel]  # keep run i, then its "
         "sentinel\n        start += keep\n"
         "        targets += [sentinel, tokens[start:start + noise]]  # the sentinel, then its "
         "span\n        start += noise\n":
         "        targets += [sentinel, tokens[start:start + noise]]  # the sentinel, then its "
         "span\n        start += noise\n"
         "        inputs += [sentinel, tokens[start:start + keep]]  # keep run i, then its "
         "sentinel\n        start += keep\n"},
    ),
    Mistake(
        "draws-swapped",
        "Your spans match the two draws made in the other order. Cut the noise tokens first "
        "(randperm(num_noise − 1)), then the kept tokens (randperm(num_keep − 1)).",
        {"    noise_lengths = segment(num_noise, num_spans)  # first draw: the noise spans\n"
         "    keep_lengths = segment(num_keep, num_spans)  # second draw: the kept runs\n":
         "    keep_lengths = segment(num_keep, num_spans)  # second draw: the kept runs\n"
         "    noise_lengths = segment(num_noise, num_spans)  # first draw: the noise spans\n"},
    ),
    Mistake(
        "generator-ignored",
        "Your spans are not drawn from the supplied generator (they match torch's global "
        "generator). Pass it on: torch.randperm(total - 1, generator=generator).",
        {"order = torch.randperm(total - 1, generator=generator)":
         "order = torch.randperm(total - 1)"},
    ),
    Mistake(
        "cuts-unsorted",
        "Your span lengths match cut points taken in the permutation's order, unsorted: some "
        "'lengths' come out negative. Sort the first parts − 1 entries of the permutation "
        "before turning them into lengths.",
        {"order[: parts - 1].sort().values + 1": "order[: parts - 1] + 1"},
    ),
]

DTYPES = [torch.float32, torch.float64]


def _dt(dtype):
    return str(dtype).replace("torch.", "")


# -- relative_position_bucket ------------------------------------------------------------------

def _bucket_call(rel, bidirectional, num_buckets, max_distance, defaults=False):
    if defaults:
        return Call("relative_position_bucket", (rel,))
    return Call("relative_position_bucket", (rel,),
                {"bidirectional": bidirectional, "num_buckets": num_buckets,
                 "max_distance": max_distance})


def _offsets(reach: int, far: int) -> torch.Tensor:
    """Every offset in [-reach, reach], then a few far ones (±far, ±10·far)."""
    return torch.cat([torch.arange(-reach, reach + 1),
                      torch.tensor([-10 * far, -far, far, 10 * far])])


# (num_buckets, max_distance); all of them float32/float64-safe (tests/test_oracle_t5.py)
BIDIRECTIONAL = [(16, 64), (11, 40), (6, 12), (32, 16), (24, 100)]
CAUSAL = [(8, 20), (13, 50), (64, 256), (7, 10), (20, 200)]


@check(points=2, public=True, task="relative_position_bucket")
def test_bucket_bidirectional(grader):
    """relative_position_bucket(δ) with bidirectional=True equals the reference's bucket ids"""
    rel = _offsets(300, 1000)
    grader.compare(_bucket_call(rel, True, 32, 128, defaults=True), exact=True,
                   case="relative_position_bucket(δ = -300 … 300 and ±1000, ±10000), default "
                   "settings (bidirectional, 32 buckets, max_distance 128), int64")
    for num_buckets, max_distance in BIDIRECTIONAL:
        rel = _offsets(3 * max_distance, 5 * max_distance)
        grader.compare(_bucket_call(rel, True, num_buckets, max_distance), exact=True,
                       case=f"relative_position_bucket(δ = -{3 * max_distance} … "
                       f"{3 * max_distance} and far ones, bidirectional=True, "
                       f"num_buckets={num_buckets}, max_distance={max_distance}), int64")


@check(points=2, public=True, task="relative_position_bucket")
def test_bucket_causal(grader):
    """relative_position_bucket(δ) with bidirectional=False equals the reference's bucket ids"""
    rel = _offsets(300, 1000)
    grader.compare(_bucket_call(rel, False, 32, 128), exact=True,
                   case="relative_position_bucket(δ = -300 … 300 and far ones, "
                   "bidirectional=False, num_buckets=32, max_distance=128), int64")
    for num_buckets, max_distance in CAUSAL:
        rel = _offsets(3 * max_distance, 5 * max_distance)
        grader.compare(_bucket_call(rel, False, num_buckets, max_distance), exact=True,
                       case=f"relative_position_bucket(δ = -{3 * max_distance} … "
                       f"{3 * max_distance} and far ones, bidirectional=False, "
                       f"num_buckets={num_buckets}, max_distance={max_distance}), int64")


def _offset_matrix(Lq, Lk):
    return torch.arange(Lk)[None, :] - torch.arange(Lq)[:, None]


@check(points=1, task="relative_position_bucket")
def test_bucket_shapes(grader):
    """relative_position_bucket keeps the input's shape: (Lq, Lk) matrices, batches, 0-d, empty"""
    cases = [
        (_offset_matrix(7, 12), True, 8, 20, "the (7, 12) offset matrix j - i"),
        (_offset_matrix(12, 5), False, 8, 20, "the (12, 5) offset matrix j - i"),
        (_offset_matrix(1, 1), True, 32, 128, "the (1, 1) offset matrix"),
        (grader.randint(-60, 61, (2, 3, 4)), True, 16, 64, "random offsets of shape (2, 3, 4)"),
        (grader.randint(-60, 61, (3, 1, 5)), False, 16, 64, "random offsets of shape (3, 1, 5)"),
        (torch.tensor(-7), True, 32, 128, "a 0-d tensor δ = -7"),
        (torch.tensor(9), False, 6, 12, "a 0-d tensor δ = 9"),
        (torch.zeros(0, dtype=torch.long), True, 32, 128, "an empty tensor of shape (0,)"),
    ]
    for rel, bidirectional, num_buckets, max_distance, what in cases:
        grader.compare(_bucket_call(rel, bidirectional, num_buckets, max_distance), exact=True,
                       case=f"relative_position_bucket({what}, bidirectional={bidirectional}, "
                       f"num_buckets={num_buckets}, max_distance={max_distance}), int64")


# -- T5RelativeBias ----------------------------------------------------------------------------

def _bias_kwargs(num_buckets, max_distance, bidirectional):
    kwargs = {}
    if num_buckets != 32:
        kwargs["num_buckets"] = num_buckets
    if max_distance != 128:
        kwargs["max_distance"] = max_distance
    if not bidirectional:
        kwargs["bidirectional"] = False
    return kwargs


@check(points=1, public=True, task="T5RelativeBias")
def test_bias_layout(grader):
    """T5RelativeBias holds exactly embedding.weight of shape (num_buckets, num_heads)"""
    for heads, num_buckets, max_distance, bidirectional in [(4, 32, 128, True), (2, 8, 20, False),
                                                            (1, 11, 16, True)]:
        kwargs = _bias_kwargs(num_buckets, max_distance, bidirectional)
        require_layout(
            grader, Inspect(Make("T5RelativeBias", (heads,), kwargs)),
            case=f"T5RelativeBias({heads}{''.join(f', {k}={v}' for k, v in kwargs.items())})",
            advice=f"Make embedding = nn.Embedding(num_buckets, num_heads) = "
                   f"nn.Embedding({num_buckets}, {heads}) and no other parameters.",
        )


def _tables(grader, Lq, Lk, num_buckets, max_distance):
    """The reference's buckets of every offset in [-(Lq + Lk), Lq + Lk], for both directions
    and each of the module's settings or the defaults (what a module might pass on)."""
    reach = Lq + Lk
    rel = torch.arange(-reach, reach + 1)
    tables = []
    for bidirectional in (True, False):
        for nb in sorted({num_buckets, 32}):
            for md in sorted({max_distance, 128}):
                call = _bucket_call(rel, bidirectional, nb, md)
                out = grader.reference(call, float64=False).out
                tables.append((bidirectional, nb, md, -reach, out))
    return tables


def _bias_call(grader, heads, num_buckets, max_distance, bidirectional, Lq, Lk, dtype,
               grad=False):
    weight = grader.randn(num_buckets, heads, dtype=dtype)
    module = Make("T5RelativeBias", (heads,),
                  _bias_kwargs(num_buckets, max_distance, bidirectional),
                  state_dict={"embedding.weight": weight}, dtype=dtype)
    return Call("@t5.bias_with_given_buckets",
                (module, Lq, Lk, _tables(grader, Lq, Lk, num_buckets, max_distance)),
                grad=("params",) if grad else ())


def _bias_case(heads, num_buckets, max_distance, bidirectional, Lq, Lk, dtype):
    return (f"T5RelativeBias({heads}, num_buckets={num_buckets}, max_distance={max_distance}, "
            f"bidirectional={bidirectional})({Lq}, {Lk}) with copied weights, {_dt(dtype)}")


# (heads, num_buckets, max_distance, bidirectional, Lq, Lk); Lq != Lk first
BIAS_CASES = [
    (2, 8, 20, True, 3, 7),
    (3, 32, 128, False, 6, 4),
    (1, 11, 16, True, 1, 9),
    (4, 32, 128, True, 12, 12),
    (2, 6, 12, False, 9, 1),
    (3, 16, 10, True, 25, 30),
    (2, 8, 20, False, 1, 1),
]


@check(points=2, public=True, task="T5RelativeBias")
def test_bias_forward(grader):
    """T5RelativeBias(Lq, Lk) with copied weights equals the reference's (1, h, Lq, Lk) bias"""
    for case in BIAS_CASES:
        for dtype in DTYPES:
            grader.compare(_bias_call(grader, *case, dtype), case=_bias_case(*case, dtype))


@check(points=1, task="T5RelativeBias")
def test_bias_gradients(grader):
    """gradient of T5RelativeBias(Lq, Lk) w.r.t. embedding.weight (repeated buckets summed)"""
    for case in [(2, 8, 20, True, 4, 11), (3, 6, 12, False, 10, 7), (1, 32, 128, True, 1, 3)]:
        for dtype in DTYPES:
            grader.compare(_bias_call(grader, *case, dtype, grad=True),
                           case=f"d/d embedding.weight of {_bias_case(*case, dtype)}")


# -- span_corrupt ------------------------------------------------------------------------------

def _sizes(L, density, mean):
    noise = min(max(round(L * density), 1), L - 1)
    spans = max(1, round(noise / mean))
    return noise, spans, L - noise


def _tokens(grader, L):
    """L distinct token ids in [10, 10 + 3L), in random order: spans can be told apart."""
    return torch.randperm(3 * L, generator=grader.generator)[:L] + 10


SENTINELS = list(range(999, 949, -1))  # T5 counts its sentinels down from the vocabulary's end


def _span_call(tokens, density, mean, seed, after=False):
    kwargs = {} if seed is None else {"generator": Gen(seed)}
    return Call("span_corrupt", (tokens, density, mean, SENTINELS), kwargs,
                after=(0,) if after else ())


def _span_case(L, density, mean, seed):
    noise, spans, _ = _sizes(L, density, mean)
    gen = "generator=None (torch's global generator)" if seed is None else \
        f"Generator(seed={seed})"
    return (f"span_corrupt(tokens[{L}], noise_density={density}, mean_span_length={mean}, "
            f"{gen}): {noise} noise tokens in {spans} span{'s' * (spans > 1)}, int64")


# (L, noise_density, mean_span_length); the first one separates every banked mistake
SPAN_CASES = [(37, 0.15, 3.5), (40, 0.15, 3), (64, 0.15, 3), (30, 0.3, 2), (25, 0.5, 1.5),
              (12, 0.2, 1), (100, 0.15, 3)]
# L = 2, the clamps to [1, L - 1], halves rounded to even, one span, one token per span
SPAN_EDGES = [(2, 0.15, 3), (3, 0.1, 3), (5, 0.9, 3), (10, 0.25, 3), (10, 0.25, 1),
              (8, 0.5, 8), (40, 0.5, 1), (9, 0.5, 2)]


@check(points=2, public=True, task="span_corrupt")
def test_span_draws(grader):
    """span_corrupt under a seeded generator equals the reference exactly; tokens unchanged"""
    for L, density, mean in SPAN_CASES:
        seed = grader.seed()
        grader.compare(_span_call(_tokens(grader, L), density, mean, seed, after=True),
                       exact=True, case=_span_case(L, density, mean, seed))


@check(points=1, task="span_corrupt")
def test_span_edges(grader):
    """span_corrupt on edge sizes (L = 2, clamps, halves to even, one span) and generator=None"""
    for L, density, mean in SPAN_EDGES:
        seed = grader.seed()
        grader.compare(_span_call(_tokens(grader, L), density, mean, seed), exact=True,
                       case=_span_case(L, density, mean, seed))
    for L, density, mean in [(30, 0.3, 3), (16, 0.15, 1)]:
        grader.compare(_span_call(_tokens(grader, L), density, mean, None), exact=True,
                       case=_span_case(L, density, mean, None))


def _parse(tokens, inputs, targets, spans, where):
    """The learner's output checked against the definition; returns (problem or None, noise
    mask). ``tokens`` are distinct and never sentinels."""
    sentinels = SENTINELS[:spans]
    if inputs.dtype != torch.int64 or targets.dtype != torch.int64:
        return (f"{where}: inputs and targets should be int64 like tokens, got "
                f"{inputs.dtype} and {targets.dtype}"), None
    ins, outs = inputs.tolist(), targets.tolist()
    used_in = [t for t in ins if t in SENTINELS]
    used_out = [t for t in outs if t in SENTINELS]
    if used_in != sentinels or used_out != sentinels:
        return (f"{where}: the sentinels in inputs are {used_in} and in targets {used_out}; "
                f"expected sentinel_ids[:{spans}] = {sentinels} in both, each once, in order"), \
            None
    if not outs or outs[0] != sentinels[0]:
        return f"{where}: targets should start with sentinel_ids[0] = {sentinels[0]}", None
    # the spans of the targets, one per sentinel
    found, current = {}, None
    for t in outs:
        if t in SENTINELS:
            current = t
            found[current] = []
        else:
            found[current].append(t)
    if any(not span for span in found.values()):
        return f"{where}: a sentinel in targets is followed by an empty span", None
    rebuilt, mask = [], []
    for t in ins:
        if t in SENTINELS:
            rebuilt += found[t]
            mask += [True] * len(found[t])
        else:
            rebuilt.append(t)
            mask.append(False)
    if rebuilt != tokens.tolist():
        return (f"{where}: putting each target span back in place of its sentinel does not give "
                "the original tokens"), None
    if mask[0] or not mask[-1]:
        return (f"{where}: the sequence should start with kept tokens and end with a noise span "
                f"(T5's layout); the first token is {'noise' if mask[0] else 'kept'} and the "
                f"last {'noise' if mask[-1] else 'kept'}"), None
    return None, torch.tensor(mask)


@check(points=2, public=True, task="span_corrupt")
def test_span_is_valid(grader):
    """span_corrupt's output is a valid corruption: sizes, sentinels in order, tokens recovered"""
    for L, density, mean in SPAN_CASES[:4] + SPAN_EDGES[:3]:
        seed = grader.seed()
        tokens = _tokens(grader, L)
        case = _span_case(L, density, mean, seed)
        got = grader.learner(_span_call(tokens, density, mean, seed), case)
        out = got.out
        grader.require(isinstance(out, tuple) and len(out) == 2
                       and all(isinstance(item, torch.Tensor) for item in out),
                       f"{case}: span_corrupt should return a tuple (inputs, targets) of tensors")
        inputs, targets = out
        noise, spans, keep = _sizes(L, density, mean)
        grader.require(
            inputs.dim() == 1 and len(inputs) == keep + spans,
            f"{case}: inputs has shape {tuple(inputs.shape)}; expected ({keep + spans},): the "
            f"{keep} kept tokens and one sentinel for each of the {spans} spans "
            f"(num_noise = min(max(round(L · noise_density), 1), L − 1) = {noise}, num_spans "
            f"= max(1, round(num_noise / mean_span_length)) = {spans})",
        )
        grader.require(
            targets.dim() == 1 and len(targets) == noise + spans,
            f"{case}: targets has shape {tuple(targets.shape)}; expected ({noise + spans},): "
            f"the {noise} noise tokens and one sentinel before each of the {spans} spans",
        )
        problem, _ = _parse(tokens, inputs, targets, spans, case)
        grader.require(problem is None, problem or "")
        grader.cases.append(case)


def _first_part_moments(total, parts):
    """Mean and variance of the first piece's length when `total` items are cut into `parts`
    non-empty pieces at uniformly random gaps: P(len = x) = C(total − x − 1, parts − 2) /
    C(total − 1, parts − 1)."""
    if parts == 1:
        return float(total), 0.0
    norm = math.comb(total - 1, parts - 1)
    pmf = {x: math.comb(total - x - 1, parts - 2) / norm for x in range(1, total - parts + 2)}
    mean = sum(x * p for x, p in pmf.items())
    return mean, sum((x - mean) ** 2 * p for x, p in pmf.items())


@check(points=1, task="span_corrupt")
def test_span_statistics(grader):
    """over 400 draws, first noise span and first kept run lengths average to their expectations"""
    L, density, mean, draws = 30, 0.3, 3, 400
    noise, spans, keep = _sizes(L, density, mean)  # 9 noise tokens in 3 spans, 21 kept
    tokens = _tokens(grader, L)
    case = (f"{draws} calls of span_corrupt(tokens[{L}], noise_density={density}, "
            f"mean_span_length={mean}) sharing one generator (seed 5)")
    got = grader.learner(Call("@t5.span_layouts", (tokens, density, mean, SENTINELS, draws, 5)),
                         case)
    inputs, targets = got.out["inputs"], got.out["targets"]

    first_noise, first_keep, layouts = [], [], set()
    for i in range(draws):
        problem, mask = _parse(tokens, inputs[i], targets[i], spans, f"{case}, call {i + 1}")
        grader.require(problem is None, problem or "")
        starts = mask.int().diff().tolist()
        first = starts.index(1) + 1  # where the first noise span starts
        rest = mask[first:].tolist() + [False]
        first_keep.append(first)
        first_noise.append(rest.index(False))
        layouts.add(tuple(mask.tolist()))
    # 5 standard errors: a correct implementation fails each bound with probability < 1e-6
    for name, values, total in (("first noise span", first_noise, noise),
                                ("first kept run", first_keep, keep)):
        want, var = _first_part_moments(total, spans)
        got_mean = sum(values) / draws
        bound = 5 * math.sqrt(var / draws)
        grader.require(
            abs(got_mean - want) <= bound,
            f"{case}: the {name} is {got_mean:.3f} tokens long on average; cutting {total} "
            f"tokens into {spans} non-empty pieces at uniformly random gaps gives {want:.3f} "
            f"(allowed ±{bound:.3f}, 5 standard errors). Cut at the first parts − 1 entries of "
            f"torch.randperm(total − 1), sorted.",
        )
    # 28 · 190 = 5320 equally likely layouts: 400 draws repeat a layout only a few times
    grader.require(
        len(layouts) >= 350,
        f"{case}: only {len(layouts)} different layouts in {draws} calls; with the generator "
        "shared between calls, each call should draw new cuts (about 385 different expected)",
    )
    grader.cases.append(case)
