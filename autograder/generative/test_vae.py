"""Hidden checks for unit 5.4 `vae` (Kingma & Welling, 2013).

Every check compares the learner's code with the master on seeded inputs, in float32 and
float64, and on a mismatch looks the output up in the mistake bank below.

- ``reparameterize``: shapes (B, L) with batch 1, one latent, odd sizes, a 3-D and a 1-D
  batch; log-variances with a spread of 1.5 (so that exp(logvar), exp(½·logvar) and logvar
  itself all differ); gradients w.r.t. mu, logvar and noise; the inputs must come back
  unchanged (the probe checks that).
- ``gaussian_kl``: the same kinds of shapes, (B, C, L) and (B, 2, 2, 2) latents where the
  sum runs over every non-batch dimension, (B,) latents, and the prior itself (mu = 0,
  logvar = 0, KL exactly 0); gradients.
- ``negative_elbo``: binary and grey images, flattened (B, D) and (B, 1, H, W), latents of
  other shapes than the images, batch 1; logits of ±20 to ±60, where a naive
  log(sigmoid(ℓ)) is −inf in both dtypes; gradients w.r.t. the logits, mu and logvar, also
  with logits exactly 0 (where a BCE written with clamp and abs has a one-sided derivative).
- ``VAE``: the state dict's layout (names, shapes, dtypes) against the master's, then
  ``VAE(D, H, L)`` cast to float32 / float64 with a copied state dict whose weights are large
  enough that tanh and ReLU, logits and probabilities, swapped heads and a missing noise
  term all change the outputs: ``forward(x, noise)`` (the three outputs) and the gradients
  w.r.t. x, noise and every parameter.

The master was compared, in ``tests/test_oracle_vae.py``, with
``torch.distributions.kl_divergence(Normal(mu, exp(½·logvar)), Normal(0, 1))`` summed over the
non-batch dimensions, with a negative ELBO built from ``torch.distributions.Bernoulli``'s
log-likelihood, with the moments of many reparameterised draws, and with a VAE written as
explicit matrix products from the same weights.
"""

import torch

from course.grading.cell_checks import require_state_layout
from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Forbid, Make, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "vae"

FORBIDDEN = [
    # the closed-form KL is the exercise
    Forbid(
        calls=(
            "torch.distributions.kl.kl_divergence",
            "torch.distributions.kl_divergence",
            "torch.nn.functional.kl_div",
            "torch.kl_div",
        ),
        aten=("kl_div",),
    ),
]

MISTAKES = [
    # -- reparameterize
    Mistake(
        "std-is-exp-logvar",
        "Your z matches mu + exp(logvar)·noise: exp(logvar) is the variance σ², not the "
        "standard deviation. The noise is scaled by σ = exp(½·logvar) = sqrt(exp(logvar)).",
        {"std = torch.exp(0.5 * logvar)": "std = torch.exp(logvar)"},
    ),
    Mistake(
        "noise-ignored",
        "Your z (or your VAE's output) matches z = mu: the noise was ignored. The "
        "reparameterised sample is z = mu + exp(½·logvar)·noise; without the noise the "
        "model is a plain autoencoder and the KL term has nothing to regularise.",
        {"return mu + std * noise": "return mu"},
    ),
    Mistake(
        "noise-in-place",
        "Your reparameterize changes the noise tensor in place (mul_, add_, *=): the values "
        "are right but the caller's ε is overwritten, and autograd refuses in-place "
        "operations on tensors that require grad. Compute mu + std * noise into a new tensor.",
        {"return mu + std * noise": "return noise.mul_(std).add_(mu)"},
    ),
    # -- gaussian_kl
    Mistake(
        "kl-sign",
        "Your KL matches +½·Σ(1 + logvar − mu² − exp(logvar)), which is ≤ 0. That sum is "
        "MINUS twice the KL: KL = −½·Σ(1 + logvar − mu² − exp(logvar)) ≥ 0, zero at the prior.",
        {"return -0.5 * per_dim": "return 0.5 * per_dim"},
    ),
    Mistake(
        "kl-mean-over-latents",
        "Your KL matches the mean over the latent dimensions instead of their sum. The KL of "
        "a diagonal gaussian is the SUM of the per-dimension KLs (the dimensions are "
        "independent): sum over every dimension except the batch.",
        {"per_dim.reshape(per_dim.shape[0], -1).sum(dim=1)":
         "per_dim.reshape(per_dim.shape[0], -1).mean(dim=1)"},
    ),
    Mistake(
        "kl-last-dim-only",
        "Your KL is right for (B, L) latents but not for latents with more dimensions (or "
        "for (B,) latents): you sum over the last dimension only. Sum over every dimension "
        "except the first, e.g. per_dim.reshape(B, -1).sum(dim=1), so the result is (B,).",
        {"per_dim.reshape(per_dim.shape[0], -1).sum(dim=1)": "per_dim.sum(dim=-1)"},
    ),
    Mistake(
        "kl-logvar-as-log-std",
        "Your KL matches −½·Σ(1 + 2·logvar − mu² − exp(2·logvar)): logvar was read as log σ. "
        "It is log σ², the log of the variance: σ² = exp(logvar) and log σ² = logvar.",
        {"1 + logvar - mu**2 - torch.exp(logvar)":
         "1 + 2 * logvar - mu**2 - torch.exp(2 * logvar)"},
    ),
    Mistake(
        "kl-missing-one",
        "Your KL is off by ½ per latent dimension: the 1 in −½·Σ(1 + logvar − mu² − "
        "exp(logvar)) is missing (it comes from the entropy of q). Without it the KL of the "
        "prior with itself is not 0.",
        {"1 + logvar - mu**2 - torch.exp(logvar)": "logvar - mu**2 - torch.exp(logvar)"},
    ),
    # -- negative_elbo
    Mistake(
        "bce-on-probabilities",
        "Your loss matches binary cross-entropy with logits applied to sigmoid(x_logits): "
        "the sigmoid was applied twice. x_logits are logits; pass them straight to "
        "F.binary_cross_entropy_with_logits (or use softplus(ℓ) − x·ℓ).",
        {'F.binary_cross_entropy_with_logits(x_logits, x, reduction="none")':
         'F.binary_cross_entropy_with_logits(torch.sigmoid(x_logits), x, reduction="none")'},
    ),
    Mistake(
        "bce-kinked",
        "Your loss is right in value, but its gradient w.r.t. x_logits is wrong where a logit "
        "is exactly 0: max(ℓ, 0) − x·ℓ + log1p(exp(−|ℓ|)) written with clamp (or relu) and "
        "abs has corners at 0, and autograd takes one-sided derivatives there (1 and 0) that "
        "do not add up to the true σ(0) − x. Use F.binary_cross_entropy_with_logits, or "
        "softplus(ℓ) − x·ℓ with F.softplus, which has no corner.",
        {'F.binary_cross_entropy_with_logits(x_logits, x, reduction="none")':
         "x_logits.clamp(min=0) - x * x_logits + torch.log1p(torch.exp(-x_logits.abs()))"},
    ),
    Mistake(
        "bce-naive-log-sigmoid",
        "Your loss is right for moderate logits but infinite (or NaN) for large ones: "
        "log(sigmoid(ℓ)) and log(1 − sigmoid(ℓ)) underflow to log(0) once |ℓ| is large. Use "
        "a stable form: F.binary_cross_entropy_with_logits, or softplus(ℓ) − x·ℓ.",
        {'F.binary_cross_entropy_with_logits(x_logits, x, reduction="none")':
         "-(x * torch.log(torch.sigmoid(x_logits))"
         " + (1 - x) * torch.log(1 - torch.sigmoid(x_logits)))"},
    ),
    Mistake(
        "reconstruction-mean-over-pixels",
        "Your loss matches the cross-entropy averaged over the pixels. −log p(x | z) of an "
        "image is the SUM over its pixels; a mean shrinks the reconstruction term by the "
        "number of pixels and lets the KL term dominate (blurry, collapsed codes).",
        {"bce.reshape(bce.shape[0], -1).sum(dim=1)": "bce.reshape(bce.shape[0], -1).mean(dim=1)"},
    ),
    Mistake(
        "kl-summed-over-batch",
        "Your loss matches the reconstruction averaged over the batch but the KL summed over "
        "it. Both terms belong to each image's ELBO: add them per image, then average over "
        "the batch.",
        {"(reconstruction + gaussian_kl(mu, logvar)).mean()":
         "reconstruction.mean() + gaussian_kl(mu, logvar).sum()"},
    ),
    Mistake(
        "elbo-summed-over-batch",
        "Your loss matches the sum over the batch. Return the mean over the batch of the "
        "per-image negative ELBO, so the loss (and the learning rate) does not depend on the "
        "batch size.",
        {"(reconstruction + gaussian_kl(mu, logvar)).mean()":
         "(reconstruction + gaussian_kl(mu, logvar)).sum()"},
    ),
    Mistake(
        "kl-term-missing",
        "Your loss matches the reconstruction term alone: the KL term is missing. The "
        "negative ELBO is the cross-entropy summed over pixels PLUS gaussian_kl(mu, logvar).",
        {"(reconstruction + gaussian_kl(mu, logvar)).mean()": "reconstruction.mean()"},
    ),
    Mistake(
        "elbo-not-negated",
        "Your loss matches the ELBO itself (minus the value expected): minimising it would "
        "make the data less likely. Return the NEGATIVE ELBO, cross-entropy + KL.",
        {"(reconstruction + gaussian_kl(mu, logvar)).mean()":
         "(-reconstruction - gaussian_kl(mu, logvar)).mean()"},
    ),
    # -- VAE
    Mistake(
        "relu-not-tanh",
        "Your VAE's outputs match ReLU hidden units. This exercise follows the paper: one "
        "hidden layer of tanh units in the encoder and in the decoder (nn.Tanh()).",
        {"nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.Tanh())":
         "nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU())",
         "nn.Tanh(), nn.Linear(hidden_dim, input_dim)":
         "nn.ReLU(), nn.Linear(hidden_dim, input_dim)"},
    ),
    Mistake(
        "decoder-returns-probabilities",
        "Your VAE's x_logits match sigmoid(decoder(z)): probabilities, not logits. forward "
        "returns the decoder's raw output; negative_elbo applies the sigmoid inside the "
        "cross-entropy (apply torch.sigmoid yourself only to look at the images).",
        {"x_logits = self.decoder(z)": "x_logits = torch.sigmoid(self.decoder(z))"},
    ),
    Mistake(
        "heads-swapped",
        "Your VAE matches mu taken from fc_logvar and logvar from fc_mu. mu = fc_mu(h) and "
        "logvar = fc_logvar(h): the names are the contract (the grader's weights are loaded "
        "by name).",
        {"mu, logvar = self.fc_mu(h), self.fc_logvar(h)":
         "mu, logvar = self.fc_logvar(h), self.fc_mu(h)"},
    ),
    Mistake(
        "outputs-out-of-order",
        "Your VAE returns (x_logits, logvar, mu). The order is (x_logits, mu, logvar).",
        {"return x_logits, mu, logvar": "return x_logits, logvar, mu"},
    ),
]


# -- inputs -------------------------------------------------------------------------------


def _gaussian(grader, shape, dtype):
    """(mu, logvar) with spreads 1.2 and 1.5: exp(logvar) and exp(½·logvar) differ clearly."""
    return (grader.randn(*shape, dtype=dtype, scale=1.2),
            grader.randn(*shape, dtype=dtype, scale=1.5))


def _shape(shape):
    return list(shape)


# -- reparameterize -----------------------------------------------------------------------

REPARAM_SHAPES = [(4, 3), (1, 1), (7, 2), (1, 5), (3, 2, 5), (6,)]


@check(points=2, public=True, task="reparameterize")
def test_reparameterize(grader):
    """reparameterize(mu, logvar, noise) = mu + exp(½·logvar)·noise, elementwise"""
    for shape in REPARAM_SHAPES:
        for dtype in DTYPES:
            mu, logvar = _gaussian(grader, shape, dtype)
            noise = grader.randn(*shape, dtype=dtype)
            grader.compare(Call("reparameterize", (mu, logvar, noise)),
                           case=f"reparameterize(mu{_shape(shape)}, logvar, noise), "
                           f"{_dt(dtype)}")


@check(points=1, task="reparameterize")
def test_reparameterize_gradients(grader):
    """gradients of reparameterize w.r.t. mu, logvar and noise"""
    for shape in [(5, 2), (1, 3), (2, 3, 2)]:
        for dtype in DTYPES:
            mu, logvar = _gaussian(grader, shape, dtype)
            noise = grader.randn(*shape, dtype=dtype)
            grader.compare(Call("reparameterize", (mu, logvar, noise), grad=(0, 1, 2)),
                           case=f"d/dmu, d/dlogvar, d/dnoise of reparameterize on "
                           f"{_shape(shape)}, {_dt(dtype)}")


# -- gaussian_kl --------------------------------------------------------------------------

KL_SHAPES = [(4, 2), (1, 1), (6, 5), (1, 7), (9, 3)]


@check(points=2, public=True, task="gaussian_kl")
def test_gaussian_kl(grader):
    """gaussian_kl(mu, logvar) = −½·Σ_latent(1 + logvar − mu² − exp(logvar)), shape (B,)"""
    for shape in KL_SHAPES:
        for dtype in DTYPES:
            mu, logvar = _gaussian(grader, shape, dtype)
            grader.compare(Call("gaussian_kl", (mu, logvar)),
                           case=f"gaussian_kl(mu{_shape(shape)}, logvar), {_dt(dtype)}")
    for dtype in DTYPES:
        zeros = torch.zeros(3, 4, dtype=dtype)
        grader.compare(Call("gaussian_kl", (zeros, zeros.clone())),
                       case=f"gaussian_kl at the prior (mu = 0, logvar = 0, [3, 4]), "
                       f"{_dt(dtype)}: exactly 0")


@check(points=1, task="gaussian_kl")
def test_gaussian_kl_every_dimension(grader):
    """gaussian_kl sums over every non-batch dimension: (B, C, L), (B, 2, 2, 2) and (B,)"""
    for shape in [(2, 3, 4), (1, 2, 2, 2), (5, 1, 3), (6,), (1,)]:
        for dtype in DTYPES:
            mu, logvar = _gaussian(grader, shape, dtype)
            grader.compare(Call("gaussian_kl", (mu, logvar)),
                           case=f"gaussian_kl(mu{_shape(shape)}, logvar), {_dt(dtype)}")


@check(points=1, task="gaussian_kl")
def test_gaussian_kl_gradients(grader):
    """gradients of gaussian_kl w.r.t. mu and logvar"""
    for shape in [(4, 3), (1, 2), (2, 2, 3)]:
        for dtype in DTYPES:
            mu, logvar = _gaussian(grader, shape, dtype)
            grader.compare(Call("gaussian_kl", (mu, logvar), grad=(0, 1)),
                           case=f"d/dmu, d/dlogvar of gaussian_kl on {_shape(shape)}, "
                           f"{_dt(dtype)}")


# -- negative_elbo ------------------------------------------------------------------------

# (image shape, latent shape, binary images?)
ELBO_SHAPES = [
    ((4, 6), (4, 2), True),
    ((1, 1), (1, 1), True),
    ((5, 64), (5, 2), False),
    ((3, 1, 3, 3), (3, 4), True),
    ((2, 10), (2, 3, 2), False),
    ((7, 5), (7, 3), False),
]


def _images(grader, shape, binary, dtype):
    u = grader.rand(*shape)
    return ((u > 0.5).double() if binary else u).to(dtype)


def _elbo_inputs(grader, xshape, zshape, binary, dtype, logit_scale=2.0):
    x = _images(grader, xshape, binary, dtype)
    logits = grader.randn(*xshape, dtype=dtype, scale=logit_scale)
    mu, logvar = _gaussian(grader, zshape, dtype)
    return x, logits, mu, logvar


def _elbo_case(xshape, zshape, binary, dtype, extra=""):
    kind = "binary" if binary else "grey"
    return (f"negative_elbo(x{_shape(xshape)} {kind}, x_logits, mu{_shape(zshape)}, logvar)"
            f"{extra}, {_dt(dtype)}")


@check(points=2, public=True, task="negative_elbo")
def test_negative_elbo(grader):
    """negative_elbo = batch mean of [Σ_pixels BCE-with-logits + gaussian_kl], a 0-dim tensor"""
    for xshape, zshape, binary in ELBO_SHAPES:
        for dtype in DTYPES:
            args = _elbo_inputs(grader, xshape, zshape, binary, dtype)
            grader.compare(Call("negative_elbo", args),
                           case=_elbo_case(xshape, zshape, binary, dtype))


def _large_logits(grader, shape, dtype):
    """Logits of magnitude 20 to 60, both signs."""
    size = 20 + 40 * grader.rand(*shape)
    sign = torch.where(grader.rand(*shape) < 0.5, -1.0, 1.0).double()
    return (sign * size).to(dtype)


@check(points=1, task="negative_elbo")
def test_negative_elbo_large_logits(grader):
    """negative_elbo stays finite and exact for logits of ±20 to ±60 (a stable BCE)"""
    for xshape, zshape, binary in [((4, 6), (4, 2), True), ((2, 8), (2, 3), False),
                                   ((1, 3), (1, 1), True)]:
        for dtype in DTYPES:
            x = _images(grader, xshape, binary, dtype)
            logits = _large_logits(grader, xshape, dtype)
            mu, logvar = _gaussian(grader, zshape, dtype)
            grader.compare(Call("negative_elbo", (x, logits, mu, logvar)),
                           case=_elbo_case(xshape, zshape, binary, dtype,
                                           " with logits of ±20 to ±60"))


@check(points=1, task="negative_elbo")
def test_negative_elbo_gradients(grader):
    """gradients of negative_elbo w.r.t. x_logits, mu and logvar"""
    for xshape, zshape, binary in [((4, 6), (4, 2), True), ((1, 5), (1, 2), False),
                                   ((3, 1, 2, 2), (3, 2), False)]:
        for dtype in DTYPES:
            args = _elbo_inputs(grader, xshape, zshape, binary, dtype)
            grader.compare(Call("negative_elbo", args, grad=(1, 2, 3)),
                           case="d/dx_logits, d/dmu, d/dlogvar of "
                           + _elbo_case(xshape, zshape, binary, dtype))
    for dtype in DTYPES:  # logits exactly 0, where max(ℓ, 0) and |ℓ| have their corners
        x, logits, mu, logvar = _elbo_inputs(grader, (3, 4), (3, 2), False, dtype)
        logits = torch.where(torch.arange(12).reshape(3, 4) % 2 == 0, 0.0, logits.double())
        grader.compare(Call("negative_elbo", (x, logits.to(dtype), mu, logvar), grad=(1, 2, 3)),
                       case="d/dx_logits, d/dmu, d/dlogvar of "
                       + _elbo_case((3, 4), (3, 2), False, dtype, " with half the logits "
                                    "exactly 0"))


# -- VAE ----------------------------------------------------------------------------------

# (input_dim, hidden_dim, latent_dim), batch
VAE_SHAPES = [((8, 6, 2), 4), ((5, 3, 1), 1), ((12, 7, 3), 5), ((64, 16, 2), 3)]


def _vae_state(grader, args, dtype):
    d, h, latent = args
    return {
        "encoder.0.weight": grader.randn(h, d, dtype=dtype, scale=1.5 * d**-0.5),
        "encoder.0.bias": grader.randn(h, dtype=dtype, scale=0.5),
        "fc_mu.weight": grader.randn(latent, h, dtype=dtype, scale=h**-0.5),
        "fc_mu.bias": grader.randn(latent, dtype=dtype, scale=0.5),
        "fc_logvar.weight": grader.randn(latent, h, dtype=dtype, scale=1.5 * h**-0.5),
        "fc_logvar.bias": grader.randn(latent, dtype=dtype, scale=0.5),
        "decoder.0.weight": grader.randn(h, latent, dtype=dtype, scale=1.5 * latent**-0.5),
        "decoder.0.bias": grader.randn(h, dtype=dtype, scale=0.5),
        "decoder.2.weight": grader.randn(d, h, dtype=dtype, scale=2 * h**-0.5),
        "decoder.2.bias": grader.randn(d, dtype=dtype, scale=0.5),
    }


def _vae(grader, args, dtype):
    return Make("VAE", args, state_dict=_vae_state(grader, args, dtype), dtype=dtype,
                train=False)


def _vae_inputs(grader, args, batch, dtype):
    d, _, latent = args
    return _images(grader, (batch, d), False, dtype), grader.randn(batch, latent, dtype=dtype)


@check(points=1, public=True, task="VAE")
def test_vae_layout(grader):
    """VAE's state dict: encoder.0, fc_mu, fc_logvar, decoder.0, decoder.2 (names, shapes)"""
    for args in [(8, 6, 2), (64, 32, 3)]:
        require_state_layout(
            grader, Call("@modules.state", ("VAE", args)), f"VAE{args} state dict",
            "VAE(input_dim, hidden_dim, latent_dim) holds encoder = nn.Sequential("
            "nn.Linear(input_dim, hidden_dim), nn.Tanh()), fc_mu and fc_logvar = "
            "nn.Linear(hidden_dim, latent_dim), decoder = nn.Sequential(nn.Linear(latent_dim, "
            "hidden_dim), nn.Tanh(), nn.Linear(hidden_dim, input_dim)), all with biases, "
            "float32, and nothing else.",
        )


@check(points=2, public=True, task="VAE")
def test_vae_forward(grader):
    """VAE(x, noise) -> (x_logits, mu, logvar) with copied weights"""
    for args, batch in VAE_SHAPES:
        for dtype in DTYPES:
            x, noise = _vae_inputs(grader, args, batch, dtype)
            grader.compare(Call(_vae(grader, args, dtype), (x, noise)),
                           case=f"VAE{args}(x[{batch}, {args[0]}], noise[{batch}, {args[2]}]), "
                           f"{_dt(dtype)}")


@check(points=2, task="VAE")
def test_vae_gradients(grader):
    """gradients of VAE's outputs w.r.t. x, noise and every parameter"""
    for args, batch in VAE_SHAPES[:3]:
        for dtype in DTYPES:
            x, noise = _vae_inputs(grader, args, batch, dtype)
            grader.compare(Call(_vae(grader, args, dtype), (x, noise), grad=(0, 1, "params")),
                           case=f"d/dx, d/dnoise, d/dparams of VAE{args} on batch {batch}, "
                           f"{_dt(dtype)}")
