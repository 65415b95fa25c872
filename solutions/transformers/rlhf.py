# %% [markdown]
# # 4.8 Learning from human preferences — exercise
#
# Ziegler et al. (2019) fine-tune a language model $\pi$ towards what people prefer, in two
# steps. First a **reward model** $r(x, y)$ is trained from human comparisons: a labeller sees
# two answers $y_c$ ("chosen") and $y_r$ ("rejected") to a prompt $x$ and says which is
# better. The Bradley–Terry model turns scores into a probability of that choice,
#
# $$P(y_c \succ y_r \mid x) = \sigma\big(r(x, y_c) - r(x, y_r)\big),$$
#
# and the reward model maximises the log-likelihood of the labels, i.e. minimises
#
# $$\mathcal L(r) = -\,\mathbb E\big[\log \sigma\big(r(x, y_c) - r(x, y_r)\big)\big].$$
#
# Then the policy is optimised against the learned reward, with a penalty for drifting away
# from the pre-trained model $\rho$ (the **reference**), so that it cannot wander into text
# the reward model never saw and scores wrongly:
#
# $$R(x, y) = r(x, y) - \beta \log\frac{\pi(y \mid x)}{\rho(y \mid x)}
#   = r(x, y) - \beta \sum_t \big(\log \pi(y_t \mid x, y_{<t}) - \log \rho(y_t \mid x,
#   y_{<t})\big).$$
#
# You will write the reward model's loss and this KL-penalised reward.
#
# Not allowed: `torch.nn.functional.binary_cross_entropy_with_logits`,
# `torch.nn.BCEWithLogitsLoss`, `torch.nn.functional.soft_margin_loss` and
# `torch.nn.SoftMarginLoss`, each of which is the preference loss in disguise.
# `torch.nn.functional.logsigmoid` and `torch.nn.functional.softplus` are allowed.

# %%
import torch
import torch.nn.functional as F

# %% [markdown]
# ## Task 1 — `preference_loss`
#
# Given the reward model's scores of the chosen and of the rejected answer of $B$ comparisons,
# return
#
# $$\mathcal L = -\frac1B \sum_{b=1}^{B} \log \sigma\big(r^{c}_b - r^{r}_b\big).$$
#
# **Numerical stability.** For a large negative difference (the reward model is confidently
# wrong) $\sigma(d)$ underflows to 0 and `torch.log(torch.sigmoid(d))` is $-\infty$, so the
# loss is infinite and its gradient NaN. But $\log\sigma(d) = -\log(1 + e^{-d})$ is simply
# $\approx d$ there: compute it in one stable step (`F.logsigmoid(d)`, or
# $-$`F.softplus(-d)`).

# %%
def preference_loss(r_chosen, r_rejected):
    """The Bradley–Terry negative log-likelihood of the comparisons, −mean(log σ(r_c − r_r)).

    Args:
        r_chosen: (B,) tensor of rewards r(x_b, y_b^chosen) of the preferred answers, float32
            or float64, on any device. Any shape works; the mean is over all its elements.
        r_rejected: tensor of the same shape, dtype and device: rewards of the other answers.

    Returns:
        a 0-dim tensor in the inputs' dtype and on their device:
        ``-mean(log sigmoid(r_chosen - r_rejected))``. The **mean** over the B comparisons
        (not the sum), and this sign: it is a loss to minimise, positive, and small when the
        chosen answers score higher (r_chosen − r_rejected large).

    Must stay finite for differences of any size (|r_c − r_r| up to 10^4 is checked, where
    ``torch.log(torch.sigmoid(d))`` gives inf): use ``F.logsigmoid`` or an equivalent stable
    form. Differentiable (autograd) w.r.t. both inputs, with finite gradients there too.
    Inputs are not modified.

    Forbidden: ``F.binary_cross_entropy_with_logits`` / ``nn.BCEWithLogitsLoss`` and
    ``F.soft_margin_loss`` / ``nn.SoftMarginLoss``.
    """
    # BEGIN SOLUTION
    d = r_chosen - r_rejected  # r(x, y_c) - r(x, y_r)
    return -F.logsigmoid(d).mean()  # -E[log sigma(d)], stable for any d
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `kl_penalized_reward`
#
# For $B$ sampled answers of $T$ token positions each, `logprobs[b, t]`
# $= \log \pi(y_{b,t} \mid x_b, y_{b,<t})$ is the log-probability the policy gave the token it
# sampled and `ref_logprobs[b, t]` the log-probability the frozen reference $\rho$ gives the same
# token. Answers have different lengths, so the batch is padded, and `mask[b, t]` marks the real
# tokens (True / 1) against the padding (False / 0). Return, for every answer,
#
# $$R_b = r_b - \beta \sum_{t=1}^{T} m_{b,t}\,\big(\log \pi(y_{b,t} \mid \cdot) - \log
#   \rho(y_{b,t} \mid \cdot)\big),$$
#
# with $m_{b,t} = 1$ everywhere when no mask is given. The sum over the real tokens is the
# sequence's log-ratio $\log \pi(y_b \mid x_b) - \log \rho(y_b \mid x_b)$, whose mean over answers
# sampled from $\pi$ estimates $D_{\mathrm{KL}}(\pi \,\|\, \rho)$.

# %%
def kl_penalized_reward(reward, logprobs, ref_logprobs, beta, mask=None):
    """The reward minus β times each answer's log-ratio of policy to reference.

    Args:
        reward: (B,) rewards r(x_b, y_b) of the B answers (e.g. the reward model's scores),
            float32 or float64, on any device.
        logprobs: (B, T) log-probabilities, under the policy π, of the tokens it sampled;
            same dtype and device as ``reward``.
        ref_logprobs: (B, T) log-probabilities of the same tokens under the reference model
            ρ; same dtype and device.
        beta: the KL coefficient β ≥ 0, a Python float (or int); β = 0 gives the reward back.
        mask: None (every position counts), or a (B, T) tensor on the same device, either
            bool (True = a real token of the answer) or floating with values 0. and 1. in
            the inputs' dtype. Positions where the mask is False / 0 are padding and must
            not count, whatever log-probabilities they hold (finite values in the checks).

    Returns:
        a (B,) tensor in the inputs' dtype and on their device:
        ``reward[b] - beta * sum_t mask[b, t] * (logprobs[b, t] - ref_logprobs[b, t])``.
        This sign (policy minus reference: the penalty is the KL of π from ρ), a **sum** over
        the answer's tokens (not a mean), and one value per answer (not summed over the
        batch, not (B, T)).

    Differentiable (autograd) w.r.t. ``reward``, ``logprobs`` and ``ref_logprobs``. Inputs
    (the mask included) are not modified in place.
    """
    # BEGIN SOLUTION
    log_ratio = logprobs - ref_logprobs  # log pi(y_t) - log rho(y_t)
    if mask is not None:
        log_ratio = torch.where(mask != 0, log_ratio, torch.zeros_like(log_ratio))
    kl = log_ratio.sum(dim=-1)  # log pi(y|x) - log rho(y|x), over the real tokens
    return reward - beta * kl
    # END SOLUTION
