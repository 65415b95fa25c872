# %% [markdown]
# # 5.9 Improved DDPM — exercise
#
# Nichol & Dhariwal (2021) keep DDPM's model and loss (unit 5.8) and change three things
# around it, each a few lines of schedule arithmetic that you write here:
#
# 1. a **cosine noise schedule**, which destroys information more gradually than the linear
#    one, so that fewer of the $T$ steps are wasted on almost pure noise;
# 2. a **learned reverse variance**: the network outputs a number $v$ per dimension and the
#    variance of each reverse step is an interpolation, in the log domain, between the two
#    fixed choices of DDPM, $\beta_t$ and $\tilde\beta_t$;
# 3. **respacing**: a model trained with $T$ steps samples with a subsequence of $K \ll T$
#    of them, as a new, shorter diffusion chain with its own variances $\beta'$.
#
# Conventions are those of unit 5.8 (ddpm): steps are **0-indexed**, $t = 0, \dots, T - 1$,
# `betas[t]` is the paper's $\beta_{t+1}$, $\alpha_t = 1 - \beta_t$,
# $\bar\alpha_t = \prod_{s \le t} \alpha_s$ and $\bar\alpha_{-1} = 1$; schedules are float64.
#
# Nothing in PyTorch does these tasks for you; write them with elementary tensor operations
# (diffusers has them, but it is not part of the course).

# %%
import math

import torch

# %% [markdown]
# ## Task 1 — `cosine_beta_schedule`
#
# The paper defines the cumulative signal level directly, on a continuous clock $t/T$:
#
# $$\bar\alpha(t) = \frac{f(t)}{f(0)}, \qquad
#   f(t) = \cos^2\!\Big(\frac{t/T + s}{1 + s} \cdot \frac{\pi}{2}\Big), \qquad t = 0, \dots, T,$$
#
# and reads the per-step variances off consecutive ratios, clipped so that the last step
# (where $\bar\alpha(T) \approx 0$) does not reach $\beta = 1$:
#
# $$\beta_t = \min\Big(1 - \frac{\bar\alpha(t + 1)}{\bar\alpha(t)},\ \beta_\text{max}\Big),
#   \qquad t = 0, \dots, T - 1 .$$
#
# The small offset $s = 0.008$ keeps the first variances from being vanishingly small.

# %%
def cosine_beta_schedule(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """The cosine variance schedule β_0, …, β_{T−1} of Improved DDPM.

    Args:
        T: number of diffusion steps, a Python int ≥ 1.
        s: the offset s in f(t) = cos²(((t/T) + s)/(1 + s)·π/2), a Python float ≥ 0.
        max_beta: the largest variance allowed, a Python float in (0, 1].

    Returns:
        (T,) float64 tensor on the CPU: β_t = min(1 − ᾱ(t + 1)/ᾱ(t), max_beta) for
        t = 0, …, T − 1, with ᾱ(t) = f(t)/f(0) evaluated at the T + 1 points t = 0, …, T.
        Compute f in float64 from the start (not in float32 then cast). The last entry is
        clipped to max_beta with the defaults (ᾱ(T) is 0 up to rounding); with a smaller
        max_beta every β_t above it is clipped.
    """
    # BEGIN SOLUTION
    t = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    alphas_cumprod = f / f[0]
    betas = 1 - alphas_cumprod[1:] / alphas_cumprod[:-1]
    return betas.clamp(max=max_beta)
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `learned_log_variance`
#
# The network's extra output $v$ (one number per data dimension) picks the reverse variance
# between DDPM's two fixed choices, the forward variance $\beta_t$ (the largest sensible value)
# and the posterior variance $\tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\beta_t$
# (the smallest). The interpolation is in the **log** domain:
#
# $$\text{frac} = \frac{v + 1}{2}, \qquad
#   \log \sigma_t^2 = \text{frac}\cdot\log\beta_t + (1 - \text{frac})\cdot\log\tilde\beta_t .$$
#
# At $t = 0$, $\bar\alpha_{-1} = 1$ makes $\tilde\beta_0 = 0$ and its log $-\infty$; as in the
# paper's code, use $\log\tilde\beta_1$ there instead (the *clipped* posterior
# log-variance). $v$ is not squashed: values outside $[-1, 1]$ extrapolate.

# %%
def learned_log_variance(v: torch.Tensor, betas: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The reverse-step log-variance log σ_t² from the network's interpolation output v.

    Args:
        v: (B, ...) the network's variance output, float32 or float64, on any device; any
            real values (no clamping to [−1, 1]).
        betas: (T,) the variance schedule β_0, …, β_{T−1}, T ≥ 2, any float dtype (usually
            float64); on v's device or on the CPU.
        t: (B,) LongTensor of steps, 0-indexed, each in [0, T): sample i is at step t[i];
            on v's device or on the CPU (index the schedule with it on betas' device).

    Returns:
        (B, ...) log σ² = frac·log β_t + (1 − frac)·log β̃_t with frac = (v + 1)/2, β_t and
        β̃_t of each sample's own step broadcast over v's trailing dimensions, where
        β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t), ᾱ_{−1} = 1, and log β̃_0 is replaced by log β̃_1.
        In v's dtype and on v's device, differentiable w.r.t. v.

    Precision: all schedule arithmetic (α, ᾱ, β̃ and both logs) is done in float64 whatever
    betas' dtype (cast betas to float64 first); only the gathered (B, 1, …, 1) log-variances
    are cast to v's dtype and device, before they meet v.

    Forbidden: ``torch.lerp`` (write the interpolation yourself).
    """
    # BEGIN SOLUTION
    betas64 = betas.to(torch.float64)
    alphas_cumprod = torch.cumprod(1 - betas64, dim=0)
    alphas_cumprod_prev = torch.cat([alphas_cumprod.new_ones(1), alphas_cumprod[:-1]])
    beta_tilde = betas64 * (1 - alphas_cumprod_prev) / (1 - alphas_cumprod)
    log_beta_tilde = torch.log(torch.cat([beta_tilde[1:2], beta_tilde[1:]]))  # clipped at t = 0
    log_beta = torch.log(betas64)

    t = t.to(betas.device)
    shape = (-1,) + (1,) * (v.dim() - 1)
    max_log = log_beta[t].to(device=v.device, dtype=v.dtype).reshape(shape)
    min_log = log_beta_tilde[t].to(device=v.device, dtype=v.dtype).reshape(shape)
    frac = (v + 1) / 2
    return frac * max_log + (1 - frac) * min_log
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `respace`
#
# To sample with fewer steps, keep a subsequence $s_0 < s_1 < \dots < s_{K-1}$ of the $T$
# training steps. The forward process restricted to those steps is again a gaussian diffusion
# chain with the same $\bar\alpha_{s_i}$, so its variances follow from the ratios of
# consecutive kept products (not from the $\beta$ at the kept steps):
#
# $$\beta'_i = 1 - \frac{\bar\alpha_{s_i}}{\bar\alpha_{s_{i-1}}}, \qquad
#   \bar\alpha_{s_{-1}} = 1, \qquad i = 0, \dots, K - 1 .$$
#
# The network is then called at the original step $s_i$ while the sampler uses $\beta'_i$.

# %%
def respace(betas: torch.Tensor, use_timesteps) -> torch.Tensor:
    """The variances of the diffusion chain that keeps only the steps in use_timesteps.

    Args:
        betas: (T,) the original variance schedule, float32 or float64, on any device.
        use_timesteps: the K ≥ 1 distinct steps to keep, 0-indexed ints in [0, T), in ANY
            order: a list, tuple, range or set of Python ints, or a 1-D integer tensor. They
            are used in increasing order s_0 < … < s_{K−1} (sort them).

    Returns:
        (K,) tensor in betas' dtype and on betas' device: β'_i = 1 − ᾱ_{s_i}/ᾱ_{s_{i−1}}
        with ᾱ_t = ∏_{j ≤ t}(1 − β_j) and ᾱ_{s_{−1}} = 1 (so β'_0 = 1 − ᾱ_{s_0}). Keeping
        every step gives betas back; the products 1 − ᾱ run over the ORIGINAL chain's steps.
        Compute in betas' own dtype.
    """
    # BEGIN SOLUTION
    steps = sorted(int(s) for s in use_timesteps)
    alphas_cumprod = torch.cumprod(1 - betas, dim=0)
    idx = torch.tensor(steps, dtype=torch.long, device=betas.device)
    kept = alphas_cumprod[idx]
    prev = torch.cat([kept.new_ones(1), kept[:-1]])
    return 1 - kept / prev
    # END SOLUTION
