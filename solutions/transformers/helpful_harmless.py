# %% [markdown]
# # 4.11 Helpful and harmless assistants — exercise
#
# Bai et al. (2022) fine-tune a language model with reinforcement learning against a learned
# **preference model** (PM): the policy $\pi$ is rewarded with the PM's score $r(x, y)$ of
# its answer $y$ to a prompt $x$, minus a penalty for drifting away from the model it
# started from, $\pi_0$ (the reference):
#
# $$R(x, y) = r(x, y) - \lambda\, D_{\mathrm{KL}}(\pi \,\|\, \pi_0),\qquad
#   D_{\mathrm{KL}}(\pi \,\|\, \pi_0) = \mathbb{E}_{y \sim \pi}
#   \Big[\sum_t \log \pi(y_t \mid y_{<t}) - \log \pi_0(y_t \mid y_{<t})\Big].$$
#
# In practice the KL is estimated on the very tokens the policy sampled, token by token: the
# **per-token log-ratio** $\log \pi(y_t \mid \cdot) - \log \pi_0(y_t \mid \cdot)$. Its
# expectation under $\pi$ is the exact KL of that step; summed over the answer it is the
# sequence's KL estimate.
#
# The simplest alternative to RL is **best-of-$n$** (rejection) sampling: draw $n$ answers
# from $\pi_0$, score them with the PM, keep the best. It needs no training at all, and it
# moves away from $\pi_0$ by a KL that (for a reward with no ties) is known in closed form:
#
# $$D_{\mathrm{KL}}(\pi_{\text{best-of-}n} \,\|\, \pi_0) = \log n - \frac{n-1}{n}.$$
#
# You will write the per-token KL estimate used in RLHF's penalty, the best-of-$n$ choice,
# and that formula.

# %%
import math

import torch

# %% [markdown]
# ## Task 1 — `per_token_kl`
#
# For a batch of $B$ sampled answers of $T$ tokens each, `logprobs[b, t]`
# $= \log \pi(y_{b,t} \mid x_b, y_{b,<t})$ is the log-probability the policy gave the token
# it sampled, and `ref_logprobs[b, t]` the log-probability the reference model gives that same
# token. Return the per-token estimate
#
# $$k_{b,t} = \text{mask}_{b,t}\,\big(\log \pi(y_{b,t} \mid \cdot) - \log \pi_0(y_{b,t}
#   \mid \cdot)\big),$$
#
# of shape $(B, T)$, zero where the mask is 0 (padding after the end of an answer, or the
# prompt's tokens). This is what RLHF libraries (e.g. `trl`'s per-token KL penalty) compute
# before subtracting $\lambda k_{b,t}$ from the reward; summing over $t$ gives each sequence's
# estimate. A single value can be negative; its mean over samples from $\pi$ cannot.

# %%
def per_token_kl(logprobs, ref_logprobs, mask=None):
    """The per-token KL estimate log π(y_t) − log π₀(y_t) at the sampled tokens, masked.

    Args:
        logprobs: (B, T) log-probabilities, under the policy π being trained, of the tokens
            the policy sampled; float32 or float64, on any device. Not modified.
        ref_logprobs: (B, T) log-probabilities of the same tokens under the reference
            model π₀, in the same dtype and on the same device. Not modified.
        mask: None (every position counts), or a (B, T) tensor on the same device, either
            bool (True = a real answer token) or floating with values 0. and 1. (in
            logprobs' dtype). Positions where the mask is False / 0 are padding. Not
            modified.

    Returns:
        a (B, T) tensor in logprobs' dtype and on its device:
        ``logprobs − ref_logprobs`` (this sign: the KL of the policy from the reference,
        KL(π ‖ π₀)) at every position where the mask is True / 1, and exactly 0 where it is
        False / 0. The shape is always (B, T): do not sum or average over tokens (that is
        the caller's choice), and do not change the inputs in place.

    Differentiable (autograd) w.r.t. ``logprobs`` and ``ref_logprobs``: the gradient is +1
    and −1 at the kept positions and 0 at the masked ones.

    Forbidden: ``torch.nn.functional.kl_div`` and ``torch.distributions.kl_divergence``
    (they compute the exact KL between two whole distributions, not this estimate).
    """
    # BEGIN SOLUTION
    log_ratio = logprobs - ref_logprobs  # log pi(y_t) - log pi_0(y_t)
    if mask is None:
        return log_ratio
    return torch.where(mask != 0, log_ratio, torch.zeros_like(log_ratio))
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `best_of_n`
#
# For each of $B$ prompts, $n$ answers were sampled from the reference model and scored:
# `rewards[i, b]` is the reward of answer $i$ to prompt $b$. Best-of-$n$ keeps, for every
# prompt, the answer with the highest reward: return
#
# $$i^\star_b = \arg\max_{i \in \{0, \dots, n-1\}} \text{rewards}_{i, b}.$$

# %%
def best_of_n(rewards):
    """The index of the highest-reward sample for every prompt.

    Args:
        rewards: (n, B) floating tensor (float32 or float64, any device): n ≥ 1 candidates
            along dim 0, B ≥ 1 prompts along dim 1. Not modified.

    Returns:
        a (B,) int64 (``torch.long``) tensor on rewards' device: entry b is the index i in
        0..n−1 of the largest ``rewards[i, b]``. On ties the **first** (lowest) index among
        the equal maxima is returned, as ``torch.argmax`` does. Not the reward values, and
        not a (1, B) tensor.

    No gradient is involved (indices are integers).
    """
    # BEGIN SOLUTION
    return torch.argmax(rewards, dim=0)  # over the n candidates, for each prompt
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `best_of_n_kl`
#
# Let the reward of a sample from $\pi_0$ have a continuous distribution with CDF $F$. The
# best of $n$ samples has CDF $F^n$, so its density, relative to $\pi_0$'s, is
# $n F^{n-1}$. With $u = F(r)$ uniform on $[0, 1]$,
#
# $$D_{\mathrm{KL}} = \int_0^1 n u^{n-1} \log\!\big(n u^{n-1}\big)\, du
#   = \log n - \frac{n-1}{n}.$$
#
# It is 0 for $n = 1$ (the best of one sample is just a sample) and grows like $\log n$. For
# a discrete policy, where the same answer can be drawn twice and rewards tie, it is an upper
# bound on the true KL (Beirami et al., 2024); the lecture measures both.

# %%
def best_of_n_kl(n):
    """log n − (n − 1)/n, the KL divergence of best-of-n sampling from the base policy.

    Args:
        n: the number of samples, a Python int ≥ 1.

    Returns:
        a Python ``float`` (not a tensor), in nats (natural logarithm): 0.0 for n = 1,
        about 0.193 for n = 2, 3.6 for n = 100. (n − 1)/n is a true division: 3/4 = 0.75.

    Raises:
        ValueError: if n < 1 (n = 0 or negative).
    """
    # BEGIN SOLUTION
    if n < 1:
        raise ValueError(f"best-of-n needs n >= 1 samples, got {n}")
    return math.log(n) - (n - 1) / n
    # END SOLUTION
