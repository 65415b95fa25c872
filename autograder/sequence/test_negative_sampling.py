"""Hidden checks for unit 3.5 `negative-sampling` (Mikolov, Sutskever, Chen, Corrado & Dean,
2013).

Every check compares the learner's functions with the master solution on seeded inputs and, on
a mismatch, looks the output up in the mistake bank below:

- ``noise_distribution`` on counts of dtype int64, int32, float32 and float64 (zero counts,
  V = 1, V up to 1,000), the default power and powers 0, 0.5, 1 and 2; the result must be
  float64 on the counts' device (the docstring says so; convert first, then compute);
- ``negative_sampling_loss`` forward and gradients w.r.t. all three inputs over batch 1, K = 1,
  D = 1 and odd sizes in float32 and float64, and at large scores (±100 in both dtypes, ±200
  in float32, ±1000 in float64), where ``log(sigmoid(·))`` overflows; vectors with planted
  scores are built so that each term's score is exactly what the case label says;
- ``keep_probability`` over shapes (a scalar included), frequencies from 1e-9 to 1, f = 0,
  f = t exactly, the default t and other thresholds;
- ``phrase_score`` over shapes, discounts 0, 2.5 and 5, and bigrams rarer than the discount.

The master agrees with an independent formula (``tests/test_oracle_negative_sampling.py``):
the loss with ``torch.nn.functional.binary_cross_entropy_with_logits`` and the noise
distribution with NumPy. Nothing here draws random numbers on the learner's side.
"""

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "negative-sampling"

FORBIDDEN = [
    Forbid(
        calls=(
            "torch.binary_cross_entropy_with_logits",
            "torch.nn.BCEWithLogitsLoss",
            "torch.nn.BCELoss",
            "torch.nn.functional.binary_cross_entropy",
            "torch.nn.functional.binary_cross_entropy_with_logits",
        ),
        aten=("binary_cross_entropy_with_logits", "binary_cross_entropy"),
        within=("negative_sampling_loss",),
    ),
]

MISTAKES = [
    # -- noise_distribution -------------------------------------------------------------
    Mistake(
        "power-after-normalising",
        "Your distribution matches (c/Σc)^p: the power was applied after normalising, so it "
        "no longer sums to 1. Raise the counts to the power first, then divide by the sum of "
        "the powered counts: c^p / Σ c^p.",
        {
            "weights = counts.to(torch.float64) ** power\n    return weights / weights.sum()":
            "weights = counts.to(torch.float64)\n    return (weights / weights.sum()) ** power",
        },
    ),
    Mistake(
        "normalised-by-raw-counts",
        "Your distribution matches c^p / Σ c: the powered counts divided by the sum of the raw "
        "counts. Normalise by the sum of the powered counts, Σ c^p, so that it sums to 1.",
        {"return weights / weights.sum()": "return weights / counts.sum()"},
    ),
    Mistake(
        "power-ignored",
        "Your distribution matches the exponent 3/4 whatever `power` says. Use the `power` "
        "argument (0.75 is only its default; power=1 is the unigram distribution, power=0 the "
        "uniform one).",
        {"counts.to(torch.float64) ** power": "counts.to(torch.float64) ** 0.75"},
    ),
    Mistake(
        "noise-not-float64",
        "Your distribution has the right values but not dtype float64 (it keeps the counts' "
        "dtype, or torch's default float32 for integer counts). Convert the counts with "
        ".to(torch.float64) before raising them to the power.",
        {"counts.to(torch.float64) ** power": "counts ** power"},
    ),
    # -- negative_sampling_loss ---------------------------------------------------------
    Mistake(
        "negative-sign-missing",
        "Your loss matches log σ(+u_k·v_c) for the noise words: the minus sign inside the "
        "sigmoid of the negatives is missing. A noise word should get a LOW score, so its "
        "term is log σ(−u_k·v_c) = log(1 − σ(u_k·v_c)).",
        {"F.logsigmoid(-score_neg)": "F.logsigmoid(score_neg)"},
    ),
    Mistake(
        "log-of-sigmoid",
        "Your loss is right for moderate scores but overflows for large ones: it matches "
        "log(sigmoid(s)), which is log(0) = −inf once σ(s) underflows (s below about −104 in "
        "float32, −745 in float64), and whose gradient is then NaN. Use the stable "
        "torch.nn.functional.logsigmoid(s) (or −softplus(−s)).",
        {
            "F.logsigmoid(score_pos) + F.logsigmoid(-score_neg)":
            "torch.log(torch.sigmoid(score_pos)) + torch.log(torch.sigmoid(-score_neg))",
        },
    ),
    Mistake(
        "log-one-minus-sigmoid",
        "Your loss matches log(1 − σ(u_k·v_c)) for the noise words, computed literally: "
        "1 − σ(s) rounds to 0 once s is large (about 17 in float32, 37 in float64), giving "
        "−inf and inaccurate values before that. The same quantity is log σ(−s): use "
        "torch.nn.functional.logsigmoid(−s).",
        {"F.logsigmoid(-score_neg)": "torch.log(1 - torch.sigmoid(score_neg))"},
    ),
    Mistake(
        "batch-sum",
        "Your loss matches the SUM over the batch. Average the per-pair losses over the B "
        "pairs (a mean), so that the loss does not grow with the batch size.",
        {"return -log_likelihood.mean()": "return -log_likelihood.sum()"},
    ),
    Mistake(
        "mean-over-negatives",
        "Your loss matches an average over the K noise words. The objective SUMS the K terms "
        "log σ(−u_k·v_c) of a pair (each noise word counts fully); only the batch is averaged.",
        {"F.logsigmoid(-score_neg).sum(dim=-1)": "F.logsigmoid(-score_neg).mean(dim=-1)"},
    ),
    Mistake(
        "loss-not-negated",
        "Your value matches the log-likelihood itself, without the leading minus: that is "
        "the quantity to maximise. Return the loss, −[log σ(u_o·v_c) + Σ_k log σ(−u_k·v_c)], "
        "averaged over the batch.",
        {"return -log_likelihood.mean()": "return log_likelihood.mean()"},
    ),
    Mistake(
        "positive-sign-flipped",
        "Your loss matches log σ(−u_o·v_c) for the true context word. The true pair should "
        "get a HIGH score: its term is log σ(+u_o·v_c); only the noise words get the minus.",
        {"F.logsigmoid(score_pos)": "F.logsigmoid(-score_pos)"},
    ),
    Mistake(
        "negatives-scored-against-context",
        "Your loss matches noise words scored against the context vector, u_k·u_o. Every score "
        "pairs an output vector with the centre word's input vector: u_k·v_c.",
        {"center.unsqueeze(-1)": "context.unsqueeze(-1)"},
    ),
    Mistake(
        "no-reduction",
        "Your loss has one value per pair, shape (B,). Return a single number (a 0-dim "
        "tensor): the mean over the batch.",
        {"return -log_likelihood.mean()": "return -log_likelihood"},
    ),
    # -- keep_probability ---------------------------------------------------------------
    Mistake(
        "discard-probability",
        "Your output matches 1 − √(t/f), the paper's probability of DISCARDING a word. Return "
        "the probability of keeping it: min(1, √(t/f)).",
        {
            "return torch.sqrt(t / freq).clamp(max=1.0)":
            "return (1.0 - torch.sqrt(t / freq)).clamp(min=0.0)",
        },
    ),
    Mistake(
        "keep-not-clipped",
        "Your output matches √(t/f) without the cap at 1: for words rarer than t it exceeds 1 "
        "(and is inf at f = 0). A probability is at most 1: min(1, √(t/f)).",
        {"torch.sqrt(t / freq).clamp(max=1.0)": "torch.sqrt(t / freq)"},
    ),
    Mistake(
        "word2vec-c-formula",
        "Your output matches the formula of the word2vec C code, (√(f/t) + 1)·t/f. The paper "
        "(and this exercise) uses min(1, √(t/f)).",
        {
            "torch.sqrt(t / freq).clamp(max=1.0)":
            "((torch.sqrt(freq / t) + 1) * t / freq).clamp(max=1.0)",
        },
    ),
    Mistake(
        "keep-without-sqrt",
        "Your output matches min(1, t/f), without the square root. Keep a word with "
        "probability min(1, √(t/f)).",
        {"torch.sqrt(t / freq).clamp(max=1.0)": "(t / freq).clamp(max=1.0)"},
    ),
    # -- phrase_score -------------------------------------------------------------------
    Mistake(
        "delta-ignored",
        "Your score matches n_ab / (n_a·n_b), without the discount. Subtract δ from the bigram "
        "count first: (n_ab − δ) / (n_a·n_b).",
        {"return (n_ab - delta) / (n_a * n_b)": "return n_ab / (n_a * n_b)"},
    ),
    Mistake(
        "delta-precedence",
        "Your score matches n_ab − δ/(n_a·n_b): the division binds before the subtraction. "
        "Put the numerator in parentheses: (n_ab − δ) / (n_a·n_b).",
        {"return (n_ab - delta) / (n_a * n_b)": "return n_ab - delta / (n_a * n_b)"},
    ),
    Mistake(
        "denominator-sum",
        "Your score matches (n_ab − δ)/(n_a + n_b). The denominator is the PRODUCT of the "
        "unigram counts, n_a·n_b: the count expected for independent words, up to a constant.",
        {"(n_a * n_b)": "(n_a + n_b)"},
    ),
]



# -- noise_distribution --------------------------------------------------------------------

def _counts(grader, v, dtype, zeros=True):
    """Integer-valued counts in [0, 1000) (or [1, 1000)), some zeros, in ``dtype``."""
    counts = grader.randint(0 if zeros else 1, 1000, (v,))
    if zeros and v >= 4:
        counts[1] = 0
    return counts.to(dtype)


COUNT_DTYPES = [torch.int64, torch.int32, torch.float32, torch.float64]


@check(points=2, public=True, task="noise_distribution")
def test_noise_distribution(grader):
    """noise_distribution(counts) is c^0.75 / Σ c^0.75, float64, for integer and float counts"""
    for v in (5, 1, 17, 1000):
        for dtype in COUNT_DTYPES:
            counts = _counts(grader, v, dtype)
            grader.compare(
                Call("noise_distribution", (counts,)),
                case=f"noise_distribution(counts[{v}] of {_dt(dtype)})",
            )
    # a Zipf-like vocabulary, counts spanning six orders of magnitude
    zipf = (1e6 / torch.arange(1, 301, dtype=torch.float64)).round()
    for dtype in (torch.int64, torch.float64):
        grader.compare(
            Call("noise_distribution", (zipf.to(dtype),)),
            case=f"noise_distribution(Zipf counts[300] of {_dt(dtype)})",
        )


@check(points=1, task="noise_distribution")
def test_noise_power(grader):
    """noise_distribution uses its power argument: p = 1 (unigram), 0 (uniform), 0.5 and 2"""
    for power in (1.0, 0.0, 0.5, 2.0):
        for v, dtype in ((7, torch.int64), (1, torch.float64), (40, torch.float32)):
            counts = _counts(grader, v, dtype, zeros=power > 0)
            grader.compare(
                Call("noise_distribution", (counts,), {"power": power}),
                case=f"noise_distribution(counts[{v}] of {_dt(dtype)}, power={power})",
            )


# -- negative_sampling_loss ----------------------------------------------------------------

LOSS_SIZES = [(4, 5, 3), (1, 1, 1), (7, 1, 8), (2, 10, 16), (1, 20, 5), (3, 2, 2)]  # B, K, D


def _vectors(grader, b, k, d, dtype, scale=0.6):
    return (grader.randn(b, d, dtype=dtype, scale=scale),
            grader.randn(b, d, dtype=dtype, scale=scale),
            grader.randn(b, k, d, dtype=dtype, scale=scale))


def _planted(grader, pos, neg, d, dtype):
    """Vectors whose scores are exactly ``pos`` (B,) = u_o·v_c and ``neg`` (B, K) = u_k·v_c
    (in float64, before the cast): v_c has norm 4 and each output vector is s·v_c/|v_c|² plus
    noise orthogonal to v_c."""
    pos = torch.tensor(pos, dtype=torch.float64)
    neg = torch.tensor(neg, dtype=torch.float64)
    b, k = neg.shape
    v = grader.randn(b, d)
    v = 4.0 * v / v.norm(dim=-1, keepdim=True)
    unit = v / 4.0

    def orthogonal_noise(*shape):
        noise = grader.randn(*shape, d)
        direction = unit.view(b, *([1] * (len(shape) - 1)), d)
        return noise - (noise * direction).sum(-1, keepdim=True) * direction

    u_o = pos.unsqueeze(-1) * v / 16.0 + orthogonal_noise(b)
    u_k = neg.unsqueeze(-1) * v.unsqueeze(1) / 16.0 + orthogonal_noise(b, k)
    return v.to(dtype), u_o.to(dtype), u_k.to(dtype)


@check(points=2, public=True, task="negative_sampling_loss")
def test_loss_forward(grader):
    """negative_sampling_loss is the batch mean of −(log σ(u_o·v_c) + Σ_k log σ(−u_k·v_c))"""
    for b, k, d in LOSS_SIZES:
        for dtype in DTYPES:
            grader.compare(
                Call("negative_sampling_loss", _vectors(grader, b, k, d, dtype)),
                case=f"negative_sampling_loss B={b} K={k} D={d}, {_dt(dtype)}",
            )


@check(points=2, task="negative_sampling_loss")
def test_loss_gradients(grader):
    """gradients of the loss w.r.t. center, context and negatives"""
    for b, k, d in LOSS_SIZES:
        for dtype in DTYPES:
            grader.compare(
                Call("negative_sampling_loss", _vectors(grader, b, k, d, dtype, scale=1.0),
                     grad=(0, 1, 2)),
                case=f"d/dcenter, d/dcontext, d/dnegatives B={b} K={k} D={d}, {_dt(dtype)}",
            )


@check(points=2, task="negative_sampling_loss")
def test_loss_large_scores(grader):
    """loss and gradients stay finite and exact at scores of ±100, ±200 (float32), ±1000"""
    cases = [
        # (label, pos (B,), neg (B, K), dtype). The float64 cases come first: a mistake is
        # diagnosed by its float64 output, and log(sigmoid(s)) only overflows there at ±1000
        ("scores ±100", [100.0, -100.0, 3.0], [[100.0, -100.0], [-100.0, 2.0], [100.0, 100.0]],
         torch.float64),
        ("u_o·v_c = ±1000, u_k·v_c moderate", [-1000.0, 1000.0], [[1.5, -2.0], [0.5, 1.0]],
         torch.float64),
        ("u_k·v_c = ±1000, u_o·v_c moderate", [2.0, -1.0], [[1000.0, -1000.0], [1000.0, 0.5]],
         torch.float64),
        ("scores ±100", [100.0, -100.0, 3.0], [[100.0, -100.0], [-100.0, 2.0], [100.0, 100.0]],
         torch.float32),
        ("scores ±200", [-200.0, 200.0], [[200.0, -200.0], [200.0, 1.0]], torch.float32),
    ]
    for label, pos, neg, dtype in cases:
        center, context, negatives = _planted(grader, pos, neg, 4, dtype)
        grader.compare(
            Call("negative_sampling_loss", (center, context, negatives), grad=(0, 1, 2)),
            case=f"negative_sampling_loss and its gradients, {label}, B={len(pos)} "
            f"K={len(neg[0])} D=4, {_dt(dtype)}",
        )


# -- keep_probability ----------------------------------------------------------------------

def _freq(grader, *shape, dtype):
    """Relative frequencies log-uniform in [1e-9, 1]."""
    return (10.0 ** (-9.0 * grader.rand(*shape))).to(dtype)


@check(points=1, public=True, task="keep_probability")
def test_keep_probability(grader):
    """keep_probability(freq) is min(1, √(1e-5 / f)) over shapes and dtypes"""
    for shape in ((50,), (1,), (3, 7), ()):
        for dtype in DTYPES:
            grader.compare(
                Call("keep_probability", (_freq(grader, *shape, dtype=dtype),)),
                case=f"keep_probability(freq{list(shape)}), {_dt(dtype)}",
            )


@check(points=1, task="keep_probability")
def test_keep_threshold_and_edges(grader):
    """keep_probability with other thresholds t, f = 0, f = t and f = 1"""
    for t in (1e-3, 1e-4, 1e-5):
        for dtype in DTYPES:
            freq = torch.cat([
                _freq(grader, 20, dtype=torch.float64),
                torch.tensor([0.0, t, 1.0], dtype=torch.float64),
            ]).to(dtype)
            kwargs = {} if t == 1e-5 else {"t": t}
            grader.compare(
                Call("keep_probability", (freq,), kwargs),
                case=f"keep_probability(freq[23] with f = 0, t, 1; t={t:g}"
                f"{'' if kwargs else ' by default'}), {_dt(dtype)}",
            )


# -- phrase_score --------------------------------------------------------------------------

def _bigrams(grader, *shape, dtype):
    n_a = grader.randint(1, 2000, shape).to(torch.float64)
    n_b = grader.randint(1, 2000, shape).to(torch.float64)
    n_ab = (grader.rand(*shape) * torch.minimum(n_a, n_b)).floor()
    return n_ab.to(dtype), n_a.to(dtype), n_b.to(dtype)


@check(points=1, public=True, task="phrase_score")
def test_phrase_score(grader):
    """phrase_score is (n_ab − δ) / (n_a·n_b) over shapes, dtypes and discounts"""
    for shape in ((30,), (1,), (4, 5)):
        for dtype in DTYPES:
            for delta in (5.0, 0.0, 2.5):
                grader.compare(
                    Call("phrase_score", (*_bigrams(grader, *shape, dtype=dtype), delta)),
                    case=f"phrase_score(counts{list(shape)}, delta={delta}), {_dt(dtype)}",
                )


@check(points=1, task="phrase_score")
def test_phrase_edges(grader):
    """phrase_score for unseen bigrams, bigrams rarer than δ and counts up to a million"""
    n_ab = torch.tensor([0.0, 1.0, 4.0, 5.0, 6.0, 1000.0, 250_000.0, 0.0])
    n_a = torch.tensor([3.0, 1.0, 10.0, 5.0, 2.0, 1e6, 1e6, 1e6])
    n_b = torch.tensor([7.0, 1.0, 10.0, 9.0, 3.0, 4e3, 5e5, 1e6])
    for dtype in DTYPES:
        for delta in (5.0, 0.5):
            grader.compare(
                Call("phrase_score", (n_ab.to(dtype), n_a.to(dtype), n_b.to(dtype), delta)),
                case=f"phrase_score(edge counts[8], delta={delta}), {_dt(dtype)}",
            )
