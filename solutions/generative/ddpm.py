# %% [markdown]
# # 5.8 Denoising diffusion — exercise
#
# Ho, Jain & Abbeel (2020) fix a forward process that adds a little gaussian noise at each of
# $T$ steps, with variances $\beta_t$, and train a network $\epsilon_\theta(x_t, t)$ to predict
# the noise that was added. With $\alpha_t = 1 - \beta_t$ and
# $\bar\alpha_t = \prod_{s \le t} \alpha_s$, any step can be drawn in one go, and the training
# loss is a plain regression on the noise:
#
# $$x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon, \qquad
#   L_\text{simple} = \mathbb{E}_{x_0, t, \epsilon}\,
#   \big\| \epsilon - \epsilon_\theta(x_t, t) \big\|^2 .$$
#
# Sampling runs the chain backwards from pure noise $x_T \sim \mathcal N(0, I)$:
#
# $$x_{t-1} = \frac{1}{\sqrt{\alpha_t}} \Big( x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\,
#   \epsilon_\theta(x_t, t) \Big) + \sigma_t z, \qquad z \sim \mathcal N(0, I),$$
#
# with $\sigma_t^2 = \beta_t$ or $\sigma_t^2 = \tilde\beta_t =
# \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t} \beta_t$, and no noise on the very last step.
# The paper counts steps $t = 1, \dots, T$; here they are **0-indexed**, $t = 0, \dots, T - 1$,
# so `betas[0]` is the paper's $\beta_1$, and $\bar\alpha_{-1} = 1$.

# %%
import torch

# %% [markdown]
# ## Task 1 — `linear_beta_schedule`
#
# The paper's schedule: $T$ variances spaced linearly from `beta_start` to `beta_end`
# (both included), in float64 so that long products $\bar\alpha_t$ stay accurate.

# %%
def linear_beta_schedule(
    T: int, beta_start: float = 1e-4, beta_end: float = 0.02
) -> torch.Tensor:
    """The linear variance schedule β_0, …, β_{T−1}.

    Args:
        T: number of diffusion steps (T ≥ 1).
        beta_start: the first variance β_0.
        beta_end: the last variance β_{T−1}.

    Returns:
        (T,) float64 tensor on the CPU, linearly spaced from beta_start to beta_end
        inclusive, as ``torch.linspace`` spaces them (T = 1 gives ``[beta_start]``).
    """
    # BEGIN SOLUTION
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `q_sample`
#
# Draw $x_t \sim q(x_t \mid x_0)$ for a batch, each sample at its own step `t[i]`, with the
# noise given: $x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon$.
# Gather $\bar\alpha_t$ per sample and reshape it to $(B, 1, \dots, 1)$ so that it broadcasts
# over the trailing dimensions of $x_0$. The schedule is often float64 while the data are
# float32: cast the gathered coefficients to $x_0$'s dtype and device.

# %%
def q_sample(
    x0: torch.Tensor,
    t: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    noise: torch.Tensor,
) -> torch.Tensor:
    """Sample the forward process in closed form.

    Args:
        x0: (B, ...) clean data, float32 or float64.
        t: (B,) LongTensor of steps, 0-indexed, each in [0, T).
        alphas_cumprod: (T,) the products ᾱ_0, …, ᾱ_{T−1} (may be float64).
        noise: (B, ...) standard normal noise ε, same shape as x0.

    Returns:
        (B, ...) x_t = sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·ε, in x0's dtype and on x0's device,
        differentiable w.r.t. x0 and noise (the checks back-propagate through it).
    """
    # BEGIN SOLUTION
    abar = alphas_cumprod[t].to(device=x0.device, dtype=x0.dtype)
    abar = abar.reshape((-1,) + (1,) * (x0.dim() - 1))
    return torch.sqrt(abar) * x0 + torch.sqrt(1 - abar) * noise
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `ddpm_loss`
#
# The simplified objective $L_\text{simple}$ for given $x_0$, steps and noise: noise the data
# with `q_sample`, ask the model for its noise estimate, and return the mean squared error
# over **all** elements (a 0-dim tensor). Call the model as `model(x_t, t)`.

# %%
def ddpm_loss(
    model,
    x0: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    alphas_cumprod: torch.Tensor,
) -> torch.Tensor:
    """The DDPM training loss L_simple on one batch.

    Args:
        model: ε-predictor, called as ``model(x_t, t)`` with t the (B,) LongTensor below;
            returns a tensor shaped like x_t.
        x0: (B, ...) clean data.
        t: (B,) LongTensor of steps, 0-indexed.
        noise: (B, ...) the noise ε used to build x_t (the regression target).
        alphas_cumprod: (T,) the products ᾱ_t.

    Returns:
        0-dim tensor in x0's dtype: the mean over every element of (ε − model(x_t, t))².
        It must stay differentiable (no ``.item()``, no detaching).

    Forbidden: ``F.mse_loss`` and ``nn.MSELoss``: write the squared error yourself.
    """
    # BEGIN SOLUTION
    x_t = q_sample(x0, t, alphas_cumprod, noise)
    eps = model(x_t, t)
    return ((eps - noise) ** 2).mean()
    # END SOLUTION


# %% [markdown]
# ## Task 4 — `p_sample_step`
#
# One reverse step from $x_t$ to $x_{t-1}$ for an integer step `t` shared by the batch. Call
# the model with a LongTensor of shape $(B,)$ filled with `t`, form the mean from the noise
# estimate, then add $\sigma_t$ times the given noise, except at $t = 0$ where the mean itself
# is returned. `variance` picks $\sigma_t^2 = \beta_t$ (`"beta"`) or
# $\sigma_t^2 = \tilde\beta_t$ (`"beta_tilde"`, with $\bar\alpha_{-1} = 1$). Compute
# $\alpha_t$ and $\bar\alpha_t$ from `betas`.

# %%
def p_sample_step(
    model,
    x_t: torch.Tensor,
    t: int,
    betas: torch.Tensor,
    noise: torch.Tensor | None,
    variance: str = "beta",
) -> torch.Tensor:
    """One step of ancestral sampling, x_t → x_{t−1}.

    Args:
        model: ε-predictor, called once as ``model(x_t, t_batch)`` with t_batch a (B,)
            LongTensor on x_t's device, every entry equal to ``t``.
        x_t: (B, ...) current sample, same dtype and device as ``betas``.
        t: the current step, a Python int in [0, T), 0-indexed.
        betas: (T,) the variance schedule.
        noise: (B, ...) standard normal z for this step; ignored (and may be None) at t = 0.
        variance: ``"beta"`` for σ_t² = β_t, ``"beta_tilde"`` for
            σ_t² = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t); anything else raises ValueError.

    Returns:
        (B, ...) x_{t−1} = (x_t − β_t / sqrt(1 − ᾱ_t) · ε) / sqrt(α_t) + σ_t z, and only the
        mean (no noise term) at t = 0. Same dtype and device as x_t.
    """
    # BEGIN SOLUTION
    if variance not in ("beta", "beta_tilde"):
        raise ValueError(f"unknown variance {variance!r}: use 'beta' or 'beta_tilde'")
    alphas = 1.0 - betas
    alphas_cumprod = torch.cumprod(alphas, dim=0)
    beta_t = betas[t]
    alpha_t = alphas[t]
    abar_t = alphas_cumprod[t]
    abar_prev = alphas_cumprod[t - 1] if t > 0 else torch.ones_like(abar_t)
    t_batch = torch.full((x_t.shape[0],), t, dtype=torch.long, device=x_t.device)
    eps = model(x_t, t_batch)
    mean = (x_t - beta_t / torch.sqrt(1 - abar_t) * eps) / torch.sqrt(alpha_t)
    if t == 0:
        return mean
    if variance == "beta":
        var = beta_t
    else:
        var = (1 - abar_prev) / (1 - abar_t) * beta_t
    return mean + torch.sqrt(var) * noise
    # END SOLUTION


# %% [markdown]
# ## Task 5 — `ddpm_sample`
#
# The whole sampler: draw $x_T$, then apply `p_sample_step` for $t = T-1, \dots, 0$. Draw every
# random number from `generator` in a fixed order, so that a run can be reproduced exactly:
# first $x_T$, then one noise tensor per step for $t = T-1, \dots, 1$, none at $t = 0$. Draw
# them exactly as `torch.randn(shape, generator=generator)` (default dtype, on the CPU) and only
# then move them to the dtype and device of `betas`: a float32 and a float64 run then see the
# same numbers.

# %%
def ddpm_sample(
    model,
    shape: tuple[int, ...],
    betas: torch.Tensor,
    generator: torch.Generator | None = None,
    variance: str = "beta",
) -> torch.Tensor:
    """Ancestral sampling from x_T ~ N(0, I) down to x_0.

    Args:
        model: ε-predictor, called as ``model(x_t, t)`` with t a (B,) LongTensor.
        shape: (B, ...) shape of the samples.
        betas: (T,) the variance schedule; its dtype and device are the samples'.
        generator: CPU ``torch.Generator`` for every random draw (the global one if None).
            The draws, in this order: x_T = ``torch.randn(shape, generator=generator)``,
            then for t = T−1, …, 1 one ``torch.randn(shape, generator=generator)`` each (none
            at t = 0). Each is drawn in the default dtype (float32) on the CPU and then moved
            to betas' dtype and device: drawing in float64 directly gives other numbers.
        variance: ``"beta"`` or ``"beta_tilde"``, passed to :func:`p_sample_step`.

    Returns:
        (B, ...) samples x_0, in betas' dtype and on betas' device.
    """
    # BEGIN SOLUTION
    x = torch.randn(shape, generator=generator).to(device=betas.device, dtype=betas.dtype)
    for t in reversed(range(betas.shape[0])):
        if t > 0:
            noise = torch.randn(shape, generator=generator)
            noise = noise.to(device=betas.device, dtype=betas.dtype)
        else:
            noise = None
        x = p_sample_step(model, x, t, betas, noise, variance)
    return x
    # END SOLUTION
