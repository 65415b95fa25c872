"""Hidden checks for unit 5.5 `vq-vae` (van den Oord, Vinyals & Kavukcuoglu, 2017).

Every check runs the learner's code on seeded inputs, in float32 and float64.

- ``quantize``: z of shapes (N, D), batch 1, a single vector (D,), 3-D and 4-D leading dims,
  D = 1, K = 1; codes and vectors drawn from N(0, 1) and redrawn until, for every vector,
  the nearest and second-nearest squared distances differ by at least 1e-3 (so that rounding,
  the expanded form ‖z‖² − 2 z·e + ‖e‖², or a square root cannot change the argmin). Mixed
  dtypes (z float32 with a float64 codebook and the reverse): z_q must keep z's dtype. Exact
  ties, on small dyadic numbers where every form of the distance is exact: vectors halfway
  between two codes, duplicated codes, a codebook of identical codes; the lowest index wins.
- The straight-through gradient, explicitly: the probe back-propagates Σ w·z_q with fixed
  weights w (``cotangents``); the gradient w.r.t. z must be w itself, and the codebook must
  receive none (None or zeros).
- ``vq_losses``: random indices (codes chosen several times or never) and nearest-code
  indices, β in {0.25, 0.5, 2, 0.1} (never 1, where a misplaced β would go unseen); forward
  values, gradients w.r.t. z and the codebook compared with the master, and the stop-gradients
  checked in closed form: with cotangents c₀, c₁ of the two losses, the gradient w.r.t. z must
  be c₁·2β(z − e)/n only (none from the codebook loss: with β = 0 it must be exactly zero) and
  the gradient w.r.t. the codebook c₀·Σ 2(e − z)/n only (none from the commitment loss).

The master was compared, in ``tests/test_oracle_vq_vae.py``, with a per-vector Python loop
for ``quantize`` and with ``F.mse_loss`` on explicitly detached tensors (and autograd) for
``vq_losses``.
"""

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Mistake, check
from course.grading.dsl import dtype_word as _dt
from course.grading.probes import cotangents

UNIT = "vq-vae"

FORBIDDEN = [
    Forbid(
        calls=("torch.nn.functional.mse_loss", "torch.nn.MSELoss"),
        aten=("mse_loss",),
        within=("vq_losses",),
    ),
]

MISTAKES = [
    # -- quantize
    Mistake(
        "argmax-distance",
        "Your indices pick the FARTHEST code: argmax of the distance. The nearest code is the "
        "argmin of ||z − e_k||² over k.",
        {"torch.argmin(dist, dim=1)": "torch.argmax(dist, dim=1)"},
    ),
    Mistake(
        "ties-highest-index",
        "Your indices are right except on exact ties (a vector halfway between two codes, or "
        "a duplicated code), where you return the highest index. Ties go to the LOWEST index, "
        "as torch.argmin returns the first minimum (a strict < in a loop, not <=).",
        {"torch.argmin(dist, dim=1)": "(dist.shape[1] - 1 - torch.argmin(dist.flip(1), dim=1))"},
    ),
    Mistake(
        "indices-flat",
        "Your indices are flattened to one row per vector, shape (N,), instead of z.shape[:-1] "
        "(e.g. (B, H, W) for latents of shape (B, H, W, D), and a 0-dim tensor for a single "
        "vector (D,)). Reshape them to z.shape[:-1].",
        {"indices = torch.argmin(dist, dim=1).reshape(z.shape[:-1])":
         "indices = torch.argmin(dist, dim=1)",
         "e = codebook[indices].to(z.dtype)": "e = codebook[indices].reshape(z.shape).to(z.dtype)"},
    ),
    Mistake(
        "zq-dtype-lost",
        "Your z_q takes the codebook's dtype (or the promoted one) when it differs from z's: "
        "float32 z with a float64 codebook gives float64 z_q. Cast codebook[indices] to "
        "z.dtype before forming z + (e − z).detach().",
        {"e = codebook[indices].to(z.dtype)": "e = codebook[indices]"},
    ),
    # before no-straight-through: the grader's diagnosis compares only the gradients a
    # mistake has, and z_q = e has none w.r.t. z
    Mistake(
        "straight-through-detach-wrong-side",
        "Your z_q matches z.detach() + (e − z): the detach is on the wrong term, so the "
        "gradient w.r.t. z is −w instead of w and the codebook gets w. Detach the whole "
        "correction: z_q = z + (e − z).detach().",
        {"z_q = z + (e - z).detach()": "z_q = z.detach() + (e - z)"},
    ),
    Mistake(
        "no-straight-through",
        "Your z_q is codebook[indices] itself: its values are right, but no gradient reaches z "
        "(and the codebook gets one instead). Use the straight-through estimator, "
        "z_q = z + (codebook[indices] − z).detach(): forward the code, backward the identity.",
        {"z_q = z + (e - z).detach()": "z_q = e"},
    ),
    Mistake(
        "codebook-grad-through-zq",
        "Your z_q gives the codebook a gradient (e.g. z_q = e + (z − z.detach())): the gradient "
        "w.r.t. z is right, but the decoder's gradient also reaches the codes. In VQ-VAE the "
        "codebook learns only from the codebook loss: detach the whole difference, "
        "z_q = z + (e − z).detach().",
        {"z_q = z + (e - z).detach()": "z_q = e + (z - z.detach())"},
    ),
    # -- vq_losses
    Mistake(
        "stop-gradients-swapped",
        "Your losses have the right values but their gradients go the wrong way: the codebook "
        "loss trains z and the commitment loss trains the codebook. codebook_loss = "
        "mean((e − z.detach())²) (z detached: only the codes move), commitment_loss = "
        "β·mean((z − e.detach())²) (the codes detached: only the encoder moves).",
        {"((e - z.detach()) ** 2).mean()": "((e.detach() - z) ** 2).mean()",
         "((z - e.detach()) ** 2).mean()": "((z.detach() - e) ** 2).mean()"},
    ),
    Mistake(
        "beta-on-codebook-term",
        "Your β multiplies the codebook loss instead of the commitment loss. β weighs the "
        "commitment term only: (mean((e − sg[z])²), β·mean((z − sg[e])²)).",
        {"codebook_loss = ((e": "codebook_loss = beta * ((e",
         "commitment_loss = beta * ((z": "commitment_loss = ((z"},
    ),
    Mistake(
        "beta-missing",
        "Your commitment loss is not multiplied by β: it equals the codebook loss. "
        "commitment_loss = beta · mean((z − e.detach())²).",
        {"commitment_loss = beta * ((z": "commitment_loss = ((z"},
    ),
    Mistake(
        "loss-summed",
        "Your losses are sums of the squared errors. Both are means over all z.numel() "
        "elements (a mean squared error), so they do not grow with the batch or the latent "
        "grid.",
        {"((e - z.detach()) ** 2).mean()": "((e - z.detach()) ** 2).sum()",
         "((z - e.detach()) ** 2).mean()": "((z - e.detach()) ** 2).sum()"},
    ),
    Mistake(
        "loss-norm-per-vector",
        "Your losses are D times too large: they average the squared norm ||z_i − e||² over "
        "the vectors (a sum over the last axis, then a mean). Average the squared error over "
        "all elements instead: ((e − z.detach())**2).mean().",
        {"((e - z.detach()) ** 2).mean()": "((e - z.detach()) ** 2).sum(-1).mean()",
         "((z - e.detach()) ** 2).mean()": "((z - e.detach()) ** 2).sum(-1).mean()"},
    ),
]


# -- inputs -------------------------------------------------------------------------------


def _separated(grader, lead: tuple, k: int, d: int, margin: float = 1e-3):
    """z (lead..., d) and a codebook (k, d), float64, redrawn until every vector's nearest
    and second-nearest squared distances differ by at least ``margin``."""
    for _ in range(200):
        z = grader.randn(*lead, d)
        codebook = grader.randn(k, d)
        if k == 1:
            return z, codebook
        dist = ((z.reshape(-1, d)[:, None, :] - codebook[None]) ** 2).sum(-1)
        two = dist.topk(2, dim=1, largest=False).values
        if bool(((two[:, 1] - two[:, 0]) >= margin).all()):
            return z, codebook
    raise AssertionError("could not draw separated inputs")  # never with these sizes


def _nearest(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    d = z.shape[-1]
    dist = ((z.reshape(-1, d)[:, None, :].double() - codebook[None].double()) ** 2).sum(-1)
    return dist.argmin(dim=1).reshape(z.shape[:-1])


# (leading dims, K, D): N > 1 first, then batch 1, a single vector, K = 1, D = 1
Q_SHAPES = [((6,), 5, 3), ((2, 5), 7, 3), ((2, 3, 4), 6, 2), ((9,), 4, 1), ((1,), 3, 4),
            ((), 4, 3), ((3, 2), 1, 5)]


# -- quantize -----------------------------------------------------------------------------


@check(points=2, public=True, task="quantize")
def test_quantize(grader):
    """quantize returns the nearest codes and their indices (shape z.shape[:-1], int64)"""
    for lead, k, d in Q_SHAPES:
        for dtype in DTYPES:
            z, codebook = _separated(grader, lead, k, d)
            z, codebook = z.to(dtype), codebook.to(dtype)
            grader.compare(Call("quantize", (z, codebook)),
                           case=f"quantize(z{[*lead, d]}, codebook[{k}, {d}]), {_dt(dtype)}",
                           )


@check(points=1, task="quantize")
def test_quantize_mixed_dtypes(grader):
    """quantize keeps z's dtype for z_q when the codebook has another dtype"""
    for lead, k, d in [((5,), 4, 3), ((2, 3), 6, 2), ((), 3, 4)]:
        for z_dtype, c_dtype in [(torch.float32, torch.float64), (torch.float64, torch.float32)]:
            z, codebook = _separated(grader, lead, k, d)
            z, codebook = z.to(z_dtype), codebook.to(c_dtype)
            grader.compare(Call("quantize", (z, codebook)),
                           case=f"quantize({_dt(z_dtype)} z{[*lead, d]}, {_dt(c_dtype)} "
                           f"codebook[{k}, {d}])")


def _tie_cases():
    """(name, z, codebook) on dyadic numbers: every distance is exact in float32."""
    line = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    z_line = torch.tensor([[0.5, 0.0], [2.0, 0.0], [0.5, 0.25], [2.0, -0.5], [1.0, 0.0]])
    dup = torch.tensor([[2.0, 2.0], [0.5, -1.0], [-1.0, 0.0], [0.5, -1.0], [0.5, -1.0]])
    z_dup = torch.tensor([[[0.5, -0.75], [0.25, -1.0]], [[-1.0, 0.25], [2.0, 1.5]],
                          [[0.75, -1.0], [-0.25, -0.5]]])
    square = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    z_square = torch.tensor([[0.0, 0.0], [0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])
    same = torch.tensor([[0.25, -0.5, 1.0]]).repeat(4, 1)
    z_same = torch.tensor([[1.0, 1.0, 1.0], [0.25, -0.5, 1.0], [-2.0, 0.0, 0.5]])
    return [
        ("vectors halfway between two codes on a line", z_line, line),
        ("a code duplicated three times", z_dup, dup),
        ("four codes around the origin, vectors equidistant from two or all", z_square, square),
        ("a codebook of four identical codes", z_same, same),
    ]


@check(points=1, public=True, task="quantize")
def test_quantize_ties(grader):
    """quantize breaks exact ties towards the lowest index"""
    for name, z, codebook in _tie_cases():
        for dtype in DTYPES:
            grader.compare(Call("quantize", (z.to(dtype), codebook.to(dtype))),
                           case=f"quantize with exact ties: {name}, z{list(z.shape)}, "
                           f"{_dt(dtype)}")


def _zero_or_none(g) -> bool:
    return g is None or not bool(g.abs().gt(0).any())


def _same_grad(a, b) -> bool:
    if _zero_or_none(a) or _zero_or_none(b):
        return _zero_or_none(a) and _zero_or_none(b)
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=1e-3, atol=1e-6)


def _same_outcome(mine, other) -> bool:
    """The banked outcome ``other`` gives the learner's gradients (and outputs)."""
    try:
        outs = zip(mine.out, other.out)
        if not all(a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=1e-3,
                                                         atol=1e-6) for a, b in outs):
            return False
        return all(_same_grad(mine.grads.get(n), other.grads.get(n)) for n in mine.grads)
    except Exception:
        return False


def _like(got):
    """A matcher for ``grader.banked_mistake``: the banked outcome equals ``got``."""
    return lambda other: _same_outcome(got, other)


@check(points=2, public=True, task="quantize")
def test_quantize_straight_through(grader):
    """straight-through: d Σ w·z_q / dz = w exactly, and the codebook gets no gradient"""
    for lead, k, d in [((6,), 5, 3), ((2, 3), 4, 2), ((1,), 3, 3), ((), 2, 4)]:
        for dtype in DTYPES:
            z, codebook = _separated(grader, lead, k, d)
            z, codebook = z.to(dtype), codebook.to(dtype)
            case = (f"gradients of quantize(z{[*lead, d]}, codebook[{k}, {d}]) w.r.t. z and "
                    f"the codebook, {_dt(dtype)}")
            probe = Call("quantize", (z, codebook), grad=(0, 1))
            got = grader.compare(probe, case=case)  # z_q, indices, and d/dz = the weights w
            w = cotangents([torch.zeros(z.shape, dtype=torch.float64)])[0]
            g_z, g_cb = got.grads.get("arg0"), got.grads.get("arg1")
            if g_z is None or not torch.equal(g_z.double(), w):
                grader.fail("d z_q / d z must be exactly the identity (the straight-through "
                            "estimator): the gradient of Σ w·z_q w.r.t. z should be w itself.",
                            mistake=grader.banked_mistake(probe, _like(got)),
                            case=case)
            if not _zero_or_none(g_cb):
                grader.fail(
                    "the codebook received a gradient through z_q (largest "
                    f"|d Σ w·z_q / d codebook| = {float(g_cb.abs().max()):.3g}). z_q must pass "
                    "the gradient to z only; the codebook is trained by the codebook loss. "
                    "Detach the whole difference: z_q = z + (codebook[indices] − z).detach().",
                    mistake=grader.banked_mistake(probe, _like(got)),
                    case=case)


# -- vq_losses ----------------------------------------------------------------------------

# (leading dims, K, D, beta, nearest indices?): N > 1 first
L_CASES = [((6,), 4, 3, 0.25, False), ((2, 5), 7, 3, 0.5, True), ((2, 3, 2), 5, 2, 2.0, False),
           ((8,), 3, 1, 0.1, True), ((1,), 1, 2, 0.25, True), ((), 3, 4, 0.5, False)]


def _loss_inputs(grader, lead, k, d, nearest, dtype):
    z = grader.randn(*lead, d, dtype=dtype)
    codebook = grader.randn(k, d, dtype=dtype)
    idx = _nearest(z, codebook) if nearest else grader.randint(0, k, lead)
    return z, codebook, idx


def _loss_case(lead, k, d, beta, nearest, dtype, what="vq_losses"):
    kind = "nearest" if nearest else "random"
    return (f"{what}(z{[*lead, d]}, codebook[{k}, {d}], {kind} indices, beta={beta}), "
            f"{_dt(dtype)}")


@check(points=2, public=True, task="vq_losses")
def test_vq_losses(grader):
    """vq_losses = (mean((e − z)²), β·mean((z − e)²)), means over all elements"""
    for lead, k, d, beta, nearest in L_CASES:
        for dtype in DTYPES:
            z, codebook, idx = _loss_inputs(grader, lead, k, d, nearest, dtype)
            grader.compare(Call("vq_losses", (z, codebook, idx, beta)),
                           case=_loss_case(lead, k, d, beta, nearest, dtype))
    z, codebook, idx = _loss_inputs(grader, (4,), 3, 2, True, torch.float64)
    grader.compare(Call("vq_losses", (z, codebook, idx)),
                   case="vq_losses(z[4, 2], codebook[3, 2], nearest indices) with the default "
                   "beta, float64")


@check(points=2, task="vq_losses")
def test_vq_losses_gradients(grader):
    """gradients of both losses w.r.t. z and the codebook, as the master's"""
    for lead, k, d, beta, nearest in L_CASES[:4]:
        for dtype in DTYPES:
            z, codebook, idx = _loss_inputs(grader, lead, k, d, nearest, dtype)
            grader.compare(Call("vq_losses", (z, codebook, idx, beta), grad=(0, 1)),
                           case=_loss_case(lead, k, d, beta, nearest, dtype,
                                           "d/dz, d/dcodebook of vq_losses"))


def _close(got, want: torch.Tensor, dtype) -> bool:
    got = torch.zeros_like(want) if got is None else got.double()
    if got.shape != want.shape:
        return False
    rtol, atol = (1e-4, 1e-7) if dtype == torch.float32 else (1e-9, 1e-13)
    return bool(torch.allclose(got, want, rtol=rtol, atol=atol))


@check(points=2, task="vq_losses")
def test_vq_losses_stop_gradients(grader):
    """codebook_loss trains only the codebook, commitment_loss only z (closed form)"""
    cases = [((6,), 4, 3, 0.25, False), ((2, 3), 5, 2, 0.5, True), ((5,), 3, 2, 0.0, True),
             ((2, 2, 2), 4, 3, 2.0, False), ((1,), 2, 3, 0.0, False)]
    c0, c1 = (c.double() for c in cotangents([torch.zeros(()), torch.zeros(())]))
    for lead, k, d, beta, nearest in cases:
        for dtype in DTYPES:
            z, codebook, idx = _loss_inputs(grader, lead, k, d, nearest, dtype)
            case = _loss_case(lead, k, d, beta, nearest, dtype,
                              "closed-form gradients of vq_losses")
            probe = Call("vq_losses", (z, codebook, idx, beta), grad=(0, 1))
            got = grader.learner(probe, case)
            z64, e = z.double(), codebook.double()[idx]
            n = z.numel()
            # loss 0 (codebook) only → codebook; loss 1 (commitment) only → z
            want_z = c1 * beta * 2 * (z64 - e) / n
            want_cb = torch.zeros(k, d, dtype=torch.float64).index_add_(
                0, idx.reshape(-1), (c0 * 2 * (e - z64) / n).reshape(-1, d))
            g_z, g_cb = got.grads.get("arg0"), got.grads.get("arg1")
            if not _close(g_z, want_z, dtype):
                extra = (" With beta = 0 it must be exactly zero." if beta == 0 else "")
                grader.fail(
                    "the gradient w.r.t. z must come from the commitment loss alone, "
                    "2·beta·(z − codebook[indices]) / z.numel() (times that loss's weight in "
                    "the check); the codebook loss must give z none, since z is detached in "
                    f"it.{extra}",
                    mistake=grader.banked_mistake(probe, _like(got)),
                    case=case)
            if not _close(g_cb, want_cb, dtype):
                grader.fail(
                    "the gradient w.r.t. the codebook must come from the codebook loss alone, "
                    "Σ_{i: indices_i = j} 2·(codebook[j] − z_i) / z.numel() for code j (times "
                    "that loss's weight in the check, zero for unused codes); the commitment "
                    "loss must give the codebook none, since the codes are detached in it.",
                    mistake=grader.banked_mistake(probe, _like(got)),
                    case=case)
            grader.cases.append(case)
