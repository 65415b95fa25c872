# %% [markdown]
# # 5.7 Diffusion probabilistic models — exercise
#
# Sohl-Dickstein et al. (2015) destroy data with a fixed Markov chain of $T$ small gaussian
# steps and learn a second chain that undoes them. With variances $\beta_t$,
#
# $$q(x_t \mid x_{t-1}) = \mathcal N\big(x_t;\ \sqrt{\alpha_t}\, x_{t-1},\ \beta_t I\big),
#   \qquad \alpha_t = 1 - \beta_t, \qquad \bar\alpha_t = \prod_{s \le t} \alpha_s,$$
#
# so that $q(x_t \mid x_0) = \mathcal N(\sqrt{\bar\alpha_t}\, x_0, (1 - \bar\alpha_t) I)$.
# Training maximises a variational bound whose terms compare each learned reverse step
# $p_\theta(x_{t-1} \mid x_t)$ with the reverse step of the forward chain *when $x_0$ is
# known*, the posterior $q(x_{t-1} \mid x_t, x_0)$. Both are gaussians, so each term is a KL
# divergence between two gaussians, in closed form. You write the two pieces: the posterior's
# mean and variance, and the gaussian KL.
#
# Steps are **0-indexed** as in unit 5.8 (ddpm): $t = 0, \dots, T - 1$, `betas[t]` is the
# paper's $\beta_{t+1}$, and $\bar\alpha_{-1} = 1$ (nothing has been noised before the first
# step).
#
# Not allowed: `torch.distributions` (its `kl_divergence` and `Normal` would do Task 2 for
# you). Write the formulas with elementary tensor operations.

# %%
import torch

# %% [markdown]
# ## Task 1 — `q_posterior`
#
# By Bayes, $q(x_{t-1} \mid x_t, x_0) \propto q(x_t \mid x_{t-1})\, q(x_{t-1} \mid x_0)$, a
# product of two gaussians in $x_{t-1}$; the lecture derives
#
# $$q(x_{t-1} \mid x_t, x_0) = \mathcal N\big(x_{t-1};\ \tilde\mu_t,\ \tilde\beta_t I\big),
#   \qquad
#   \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1 - \bar\alpha_t}\, x_0
#               + \frac{\sqrt{\alpha_t}\,(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t}\, x_t,
#   \qquad
#   \tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\, \beta_t .$$
#
# Compute $\alpha$, $\bar\alpha$ and $\bar\alpha_{t-1}$ (with $\bar\alpha_{-1} = 1$: at
# $t = 0$ the posterior is a point mass at $x_0$) from `betas`, gather the coefficients of
# each sample's own step `t[i]`, reshape them to $(B, 1, \dots, 1)$ so that they broadcast
# over the trailing dimensions, and only then cast them to the data's dtype.

# %%
def q_posterior(x0, x_t, t, betas):
    """Mean and variance of the forward-process posterior q(x_{t−1} | x_t, x_0).

    Args:
        x0: (B, ...) clean data, float32 or float64, on any device.
        x_t: (B, ...) the noised data at step t, same shape, dtype and device as x0.
        t: (B,) LongTensor of steps, 0-indexed, each in [0, T): sample i is at step t[i];
            on x0's device (index betas with it on betas' device).
        betas: (T,) the variance schedule β_0, …, β_{T−1}, usually float64 (like
            ``linear_beta_schedule`` of unit 5.8), in (0, 1).

    Returns:
        ``(mean, variance)``, both (B, ...) like x_t, in **x0's dtype** and on x0's device:

        - mean = sqrt(ᾱ_{t−1})·β_t/(1 − ᾱ_t)·x0 + sqrt(α_t)·(1 − ᾱ_{t−1})/(1 − ᾱ_t)·x_t,
        - variance = β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t)·β_t, the same number repeated over each
          sample's trailing dimensions (broadcast to x_t's full shape, not (B, 1, …, 1)),

        with α_t = 1 − β_t, ᾱ_t = α_0·…·α_t and ᾱ_{−1} = 1, so that at t = 0 the mean is x0
        and the variance 0. (Do not read ᾱ_{t−1} as ``alphas_cumprod[t - 1]`` unguarded: at
        t = 0 that wraps around to the last step.)

    Dtype and precision: compute α, ᾱ and the coefficients in betas' dtype (float64 for the
    paper's schedule, where 1 − ᾱ_0 = β_0 = 1e-4 loses four digits in float32) and cast
    the gathered coefficients to x0's dtype and device before combining them with the data;
    float32 data with a float64 schedule give float32 results. The mean must stay
    differentiable w.r.t. x0 and x_t (the checks back-propagate through it). No argument is
    changed in place.

    Forbidden: ``torch.distributions``.
    """
    # BEGIN SOLUTION
    alphas = 1.0 - betas
    alphas_cumprod = torch.cumprod(alphas, dim=0)
    alphas_cumprod_prev = torch.cat([alphas_cumprod.new_ones(1), alphas_cumprod[:-1]])
    t = t.to(betas.device)
    beta_t, alpha_t = betas[t], alphas[t]
    abar_t, abar_prev = alphas_cumprod[t], alphas_cumprod_prev[t]

    coef_x0 = torch.sqrt(abar_prev) * beta_t / (1 - abar_t)
    coef_xt = torch.sqrt(alpha_t) * (1 - abar_prev) / (1 - abar_t)
    var = (1 - abar_prev) / (1 - abar_t) * beta_t

    def per_sample(c):  # (B,) in betas' dtype -> (B, 1, ..., 1) in x0's dtype and device
        c = c.to(device=x0.device, dtype=x0.dtype)
        return c.reshape((-1,) + (1,) * (x0.dim() - 1))

    mean = per_sample(coef_x0) * x0 + per_sample(coef_xt) * x_t
    variance = per_sample(var) * torch.ones_like(x_t)
    return mean, variance
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `normal_kl`
#
# Each term of the bound is $\mathrm{KL}\big(q(x_{t-1} \mid x_t, x_0)\,\|\,
# p_\theta(x_{t-1} \mid x_t)\big)$ between two diagonal gaussians, one coordinate at a time.
# With the variances given as logarithms (the form networks output, and the stable one),
#
# $$\mathrm{KL}\big(\mathcal N(\mu_1, e^{\ell_1})\,\|\,\mathcal N(\mu_2, e^{\ell_2})\big)
#   = \tfrac12\Big(-1 + \ell_2 - \ell_1 + e^{\ell_1 - \ell_2}
#                 + (\mu_1 - \mu_2)^2\, e^{-\ell_2}\Big),$$
#
# in nats. The first distribution is the one the expectation is taken under: the argument
# order matters (KL is not symmetric).

# %%
def normal_kl(mean1, logvar1, mean2, logvar2):
    """Elementwise KL(N(mean1, exp(logvar1)) ‖ N(mean2, exp(logvar2))), in nats.

    Args:
        mean1: tensor, the mean μ₁ of the first gaussian (the one the expectation is under).
        logvar1: tensor, its log-variance ℓ₁ = log σ₁² (a log of the variance, not of the
            standard deviation, and not the variance itself).
        mean2: tensor, the mean μ₂ of the second gaussian.
        logvar2: tensor, its log-variance ℓ₂.

        The four tensors share a floating dtype (float32 or float64) and a device, and
        broadcast against each other (e.g. means (B, D) with log-variances (B, 1), (D,) or
        0-dim).

    Returns:
        tensor of the broadcast shape, in the inputs' dtype and on their device:
        ½(−1 + ℓ₂ − ℓ₁ + exp(ℓ₁ − ℓ₂) + (μ₁ − μ₂)²·exp(−ℓ₂)) per element, no sum or mean.
        It must stay differentiable w.r.t. all four inputs (the checks back-propagate
        through it). No argument is changed in place.

    Forbidden: ``torch.distributions`` (``kl_divergence``, ``Normal``).
    """
    # BEGIN SOLUTION
    return 0.5 * (
        -1.0
        + logvar2
        - logvar1
        + torch.exp(logvar1 - logvar2)
        + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
    )
    # END SOLUTION
