# %% [markdown]
# # 5.4 Variational autoencoders — exercise
#
# Kingma & Welling (2013) fit a latent-variable model $p_\theta(x, z) = p(z)\, p_\theta(x \mid z)$
# with a standard normal prior $p(z) = \mathcal N(0, I)$ and a neural decoder, and train it
# together with a neural **encoder** $q_\phi(z \mid x)$ that guesses which codes could have
# produced an image. The encoder outputs a diagonal gaussian,
# $q_\phi(z \mid x) = \mathcal N(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))$, given by its
# mean $\mu$ and its **log-variance** $\log\sigma^2$ (called `logvar` below). Both networks
# maximise the evidence lower bound
#
# $$\log p_\theta(x) \;\ge\; \mathcal L(x) =
#   \mathbb E_{q_\phi(z \mid x)}\big[\log p_\theta(x \mid z)\big]
#   - D_\text{KL}\big(q_\phi(z \mid x) \,\|\, p(z)\big).$$
#
# Two pieces make this trainable by plain back-propagation:
#
# - the **reparameterisation trick**: draw $\epsilon \sim \mathcal N(0, I)$ and set
#   $z = \mu + \sigma \odot \epsilon$ with $\sigma = \exp(\tfrac12 \log\sigma^2)$, so that
#   $z$ is a differentiable function of $\mu$ and $\log\sigma^2$;
# - the KL term in **closed form** for two gaussians (the paper's Appendix B):
#   $-D_\text{KL} = \tfrac12 \sum_j \big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big)$.
#
# With a Bernoulli decoder, $\log p_\theta(x \mid z)$ is minus the binary cross-entropy between
# the image and the decoder's per-pixel probabilities $\operatorname{sigmoid}(\text{logits})$.
# You train with one sample of $\epsilon$ per image, the paper's estimator with $L = 1$, and
# **minimise** the negative ELBO.
#
# Everywhere in this exercise the noise $\epsilon$ is an argument: your code draws no random
# numbers. Not allowed: `torch.distributions.kl_divergence` (and
# `torch.distributions.kl.kl_divergence`) and `torch.nn.functional.kl_div`; write the closed
# form yourself. `torch.nn.functional.binary_cross_entropy_with_logits`, `softplus`,
# `logsigmoid`, `nn.Linear`, `nn.Sequential` and `nn.Tanh` are fine.

# %%
import torch
import torch.nn.functional as F
from torch import nn

# %% [markdown]
# ## Task 1 — `reparameterize`
#
# The sample of the encoder's gaussian as a differentiable function of its parameters:
#
# $$z = \mu + \sigma \odot \epsilon, \qquad \sigma = \exp\big(\tfrac12 \log\sigma^2\big).$$
#
# `logvar` is the log of the **variance**, not of the standard deviation: the standard deviation
# is $\exp(\tfrac12\,\text{logvar})$, never $\exp(\text{logvar})$.

# %%
def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """A draw from N(mu, exp(logvar)), written as mu + exp(½·logvar)·noise.

    Args:
        mu: (B, ...) the means μ, float32 or float64, on any device.
        logvar: (B, ...) the log-variances log σ², same shape, dtype and device as ``mu``.
        noise: (B, ...) standard normal draws ε, same shape, dtype and device as ``mu``.

    Returns:
        (B, ...) z = mu + exp(0.5 * logvar) * noise, elementwise, in mu's dtype and on its
        device. It must be differentiable w.r.t. mu and logvar (the checks back-propagate to
        both, and to noise); the inputs are not changed (no in-place operations on them).
        It draws no random numbers: the noise is given.
    """
    # BEGIN SOLUTION
    std = torch.exp(0.5 * logvar)  # σ = exp(½ log σ²)
    return mu + std * noise
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `gaussian_kl`
#
# The KL divergence from the encoder's diagonal gaussian to the standard normal prior, one
# number per example, **summed** over every latent dimension (over every dimension but the
# first, the batch, if the latents have more than one):
#
# $$D_\text{KL}\big(\mathcal N(\mu, \operatorname{diag}\sigma^2) \,\|\, \mathcal N(0, I)\big)
#   = -\tfrac12 \sum_j \big(1 + \log\sigma^2_j - \mu_j^2 - \sigma^2_j\big)
#   \;\ge 0 .$$
#
# Derivation: per dimension, $\mathbb E_q[\log q(z)] = -\tfrac12\log 2\pi - \tfrac12(1 +
# \log\sigma^2)$ and $\mathbb E_q[\log p(z)] = -\tfrac12 \log 2\pi - \tfrac12(\mu^2 +
# \sigma^2)$; their difference is the formula above. It is zero exactly when $\mu = 0$ and
# $\sigma^2 = 1$.

# %%
def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) ‖ N(0, I)) per example, in closed form.

    Args:
        mu: (B, ...) the means, float32 or float64, on any device; usually (B, latent_dim),
            but any shape with the batch first works, (B,) included (one latent each).
        logvar: (B, ...) the log-variances log σ², same shape, dtype and device.

    Returns:
        (B,) tensor, in mu's dtype and on its device: entry b is
        −½ · Σ (1 + logvar − mu² − exp(logvar)) over every element of example b (every
        dimension except the first), a sum, not a mean. Differentiable w.r.t. mu and
        logvar; the inputs are not changed.

    Forbidden: ``torch.distributions.kl_divergence`` and ``torch.nn.functional.kl_div``.
    """
    # BEGIN SOLUTION
    per_dim = 1 + logvar - mu**2 - torch.exp(logvar)
    return -0.5 * per_dim.reshape(per_dim.shape[0], -1).sum(dim=1)
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `negative_elbo`
#
# The loss to minimise on a batch: minus the single-sample ELBO of each image, averaged over
# the batch,
#
# $$-\mathcal L = \frac1B \sum_{b=1}^{B} \Big[ \sum_i \operatorname{BCE}(\ell_{bi}, x_{bi})
#   + D_\text{KL}\big(q(z \mid x_b) \,\|\, p(z)\big) \Big], \qquad
#   \operatorname{BCE}(\ell, x) = -x \log \operatorname{sigmoid}(\ell) - (1 - x)\log\big(1 -
#   \operatorname{sigmoid}(\ell)\big),$$
#
# where $\ell$ are the decoder's **logits** (before any sigmoid) and $i$ runs over every pixel of
# an image. The reconstruction term is a **sum** over pixels (it is $-\log p(x \mid z)$ of the
# whole image) and so is the KL term over latents; only the batch is averaged. Compute the BCE
# from the logits in a numerically stable way (`F.binary_cross_entropy_with_logits` with
# `reduction="none"`, or $\operatorname{softplus}(\ell) - x\ell$): the checks use logits as
# large as ±60, where $\log(\operatorname{sigmoid}(\ell))$ computed naively is $-\infty$.

# %%
def negative_elbo(
    x: torch.Tensor, x_logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
) -> torch.Tensor:
    """Minus the ELBO with a Bernoulli decoder, averaged over the batch.

    Args:
        x: (B, ...) the images, float32 or float64, values in [0, 1] (binary or grey: the
            cross-entropy is used as it is for both); e.g. (B, 64) flattened 8×8 digits.
        x_logits: (B, ...) the decoder's logits for the pixels, same shape, dtype and device
            as ``x`` (not probabilities: no sigmoid has been applied).
        mu: (B, ...) the encoder's means, same dtype and device.
        logvar: (B, ...) the encoder's log-variances, same shape as ``mu``.

    Returns:
        0-dim tensor in x's dtype and on its device: the mean over the batch of
        [Σ over every pixel of BCE-with-logits(x_logits, x) + gaussian_kl(mu, logvar)],
        where BCE-with-logits(ℓ, x) = −x·log σ(ℓ) − (1 − x)·log(1 − σ(ℓ)) computed stably
        (finite and exact for |ℓ| up to at least 60 in float32 and float64).
        Differentiable w.r.t. x_logits, mu and logvar (keep it a tensor: no ``.item()``);
        the inputs are not changed.

    Forbidden: ``torch.distributions.kl_divergence`` and ``torch.nn.functional.kl_div``.
    """
    # BEGIN SOLUTION
    bce = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none")
    reconstruction = bce.reshape(bce.shape[0], -1).sum(dim=1)  # −log p(x | z), per image
    return (reconstruction + gaussian_kl(mu, logvar)).mean()
    # END SOLUTION


# %% [markdown]
# ## Task 4 — `VAE`
#
# The paper's model for binary images (its Appendix C), with one hidden layer of tanh units in
# each network:
#
# $$h = \tanh(W_1 x + b_1), \qquad \mu = W_\mu h + b_\mu, \qquad \log\sigma^2 = W_\sigma h +
#   b_\sigma, \qquad z = \mu + \sigma \odot \epsilon,$$
# $$\ell = W_3 \tanh(W_2 z + b_2) + b_3 \quad\text{(the logits of } p_\theta(x \mid z)\text{)}.$$
#
# The layer layout is fixed (the checks copy a state dict into your module), so build exactly
# these submodules, in these `nn.Sequential` positions, with $D$ = `input_dim`,
# $H$ = `hidden_dim` and $L$ = `latent_dim`:
#
# - `encoder` = `nn.Sequential(nn.Linear(D, H), nn.Tanh())`: keys `encoder.0.weight` (H, D),
#   `encoder.0.bias` (H);
# - `fc_mu` = `nn.Linear(H, L)`: `fc_mu.weight` (L, H), `fc_mu.bias` (L);
# - `fc_logvar` = `nn.Linear(H, L)`: `fc_logvar.weight` (L, H), `fc_logvar.bias` (L);
# - `decoder` = `nn.Sequential(nn.Linear(L, H), nn.Tanh(), nn.Linear(H, D))`: keys
#   `decoder.0.weight` (H, L), `decoder.0.bias` (H), `decoder.2.weight` (D, H),
#   `decoder.2.bias` (D).
#
# The decoder ends with the linear layer: it returns **logits**, and `negative_elbo` turns them
# into the Bernoulli log-likelihood. To look at an image, apply `torch.sigmoid` yourself.

# %%
class VAE(nn.Module):
    """The variational autoencoder of Kingma & Welling (2013) for flattened images.

    Args:
        input_dim: D, the number of pixels of a flattened image (64 for 8×8 digits).
        hidden_dim: H, the width of the one hidden layer of the encoder and of the decoder.
        latent_dim: L, the dimension of the code z.

    Submodules (names, order inside the ``nn.Sequential`` and shapes are the contract: the
    checks build ``VAE(input_dim, hidden_dim, latent_dim)``, cast it to float32 or float64 and
    load a state dict with exactly these keys):

    - ``encoder`` = ``nn.Sequential(nn.Linear(D, H), nn.Tanh())``: keys ``encoder.0.weight``
      (H, D) and ``encoder.0.bias`` (H,);
    - ``fc_mu`` = ``nn.Linear(H, L)``: ``fc_mu.weight`` (L, H), ``fc_mu.bias`` (L,);
    - ``fc_logvar`` = ``nn.Linear(H, L)``: ``fc_logvar.weight`` (L, H), ``fc_logvar.bias`` (L,);
    - ``decoder`` = ``nn.Sequential(nn.Linear(L, H), nn.Tanh(), nn.Linear(H, D))``: keys
      ``decoder.0.weight`` (H, L), ``decoder.0.bias`` (H,), ``decoder.2.weight`` (D, H),
      ``decoder.2.bias`` (D,).

    No other parameters or persistent buffers, no dropout; the activation is tanh (the
    paper's), not ReLU. How the weights are initialised is not checked (PyTorch's default
    is fine).

    ``forward(x, noise)``:
        x: (B, input_dim) flattened images in the module's dtype (float32, or float64 when
        the checks cast the module with ``.to(torch.float64)``), on its device; B >= 1.
        noise: (B, latent_dim) standard normal draws ε, same dtype and device.
        Returns the tuple ``(x_logits, mu, logvar)``, in this order:
        ``h = encoder(x)``, ``mu = fc_mu(h)`` (B, latent_dim), ``logvar = fc_logvar(h)``
        (B, latent_dim), ``z = mu + exp(½·logvar)·noise`` (your :func:`reparameterize`), and
        ``x_logits = decoder(z)`` (B, input_dim): logits, no sigmoid. The checks compare the
        three outputs and their gradients w.r.t. x, noise and every parameter: keep it
        differentiable (autograd, no ``.detach()``). It draws no random numbers itself.
    """

    def __init__(self, input_dim: int, hidden_dim: int, latent_dim: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.encoder = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.Tanh())
        self.fc_mu = nn.Linear(hidden_dim, latent_dim)
        self.fc_logvar = nn.Linear(hidden_dim, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim), nn.Tanh(), nn.Linear(hidden_dim, input_dim)
        )
        # END SOLUTION

    def forward(
        self, x: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # BEGIN SOLUTION
        h = self.encoder(x)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)  # q(z | x) = N(mu, exp(logvar))
        z = reparameterize(mu, logvar, noise)
        x_logits = self.decoder(z)  # logits of p(x | z)
        return x_logits, mu, logvar
        # END SOLUTION
