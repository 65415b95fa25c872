# %% [markdown]
# # 4.10 InstructGPT — exercise
#
# Ouyang et al. (2022) turn GPT-3 into an assistant in three steps: supervised fine-tuning on
# demonstrations, a **reward model** trained on labellers' *rankings* of several answers, and
# PPO against that reward model, with the pre-training objective mixed back in (**PPO-ptx**).
#
# **Rankings instead of pairs.** For each prompt $x$ a labeller reads $K$ answers
# ($K = 4$ to $9$ in the paper) and ranks them, best first: $y_1 \succ y_2 \succ \dots \succ y_K$.
# One ranking implies $\binom{K}{2} = K(K-1)/2$ comparisons, every pair $i < j$ with $y_i$
# preferred. Each comparison is scored by the Bradley–Terry model
# $P(y_i \succ y_j) = \sigma(r_i - r_j)$, $r_i = r_\theta(x, y_i)$, and the loss averages
# their negative log-likelihoods:
#
# $$\mathcal L(\theta) = -\frac{1}{B}\sum_{b=1}^{B} \frac{1}{\binom{K}{2}}
#   \sum_{1 \le i < j \le K} \log \sigma\big(r_{b,i} - r_{b,j}\big).$$
#
# With $K = 2$ it is the pairwise preference loss of unit 4.8,
# $-\operatorname{mean}_b \log\sigma(r_{b,1} - r_{b,2})$.
#
# **PPO-ptx.** RL against the reward model makes the policy $\pi_\phi$ worse on some public
# NLP benchmarks (the "alignment tax"). InstructGPT adds the log-likelihood of pre-training
# text to the objective being *maximised*:
#
# $$\text{objective}(\phi) = \underbrace{\mathbb E_{x, y \sim \pi_\phi}\Big[r_\theta(x, y) -
#   \beta \log\frac{\pi_\phi(y \mid x)}{\pi^{\mathrm{SFT}}(y \mid x)}\Big]}_{\text{rl\_objective}}
#   \;+\; \gamma\, \mathbb E_{x \sim D_{\text{pretrain}}}\big[\log \pi_\phi(x)\big].$$
#
# Not allowed: `torch.nn.functional.binary_cross_entropy_with_logits`,
# `torch.nn.BCEWithLogitsLoss`, `torch.nn.functional.soft_margin_loss` and
# `torch.nn.SoftMarginLoss` (each is the pairwise loss in disguise).
# `torch.nn.functional.logsigmoid`, `torch.nn.functional.softplus` and
# `torch.triu_indices` are allowed.

# %%
import torch
import torch.nn.functional as F

# %% [markdown]
# ## Task 1 — `ranking_loss`
#
# `rewards[b, i]` is the reward model's score of answer $i$ to prompt $b$, with the columns
# already sorted by the labeller, **best first** (column 0 is the favourite, column $K-1$ the
# worst). Return the loss $\mathcal L$ above: minus the mean, over the $B$ rows and over all
# $\binom{K}{2}$ pairs $i < j$ of each row, of $\log\sigma(r_{b,i} - r_{b,j})$. Every row has
# the same number of pairs, so this is one plain mean over $B\binom{K}{2}$ terms.
#
# **Numerical stability.** When the model is confidently wrong, $r_i - r_j$ is large and
# negative, $\sigma$ underflows to 0 and `torch.log(torch.sigmoid(d))` is $-\infty$. Use the
# stable `F.logsigmoid(d)` ($= -$`F.softplus(-d)`), which is $\approx d$ there.

# %%
def ranking_loss(rewards):
    """InstructGPT's reward-model loss on K-wise rankings: −mean over rows and pairs i < j of
    log σ(r_i − r_j).

    Args:
        rewards: (B, K) floating tensor (float32 or float64, on any device), B ≥ 1 rankings
            of K ≥ 2 answers each. Row b holds the reward model's scores of the K answers to
            prompt b, **ordered best first** by the labeller: column i is preferred to
            column j whenever i < j. Not modified (no in-place operation on it).

    Returns:
        a 0-dim tensor in rewards' dtype and on its device:

            −(1 / (B·K(K−1)/2)) · Σ_b Σ_{i<j} log σ(rewards[b, i] − rewards[b, j])

        i.e. the **mean** (not the sum) over all B·K(K−1)/2 terms, taken over **every** pair
        i < j (not only neighbours i, i+1; not the pairs i = j; not both orders), with the
        better answer first in the difference. Positive, and small when every better answer
        scores higher. For K = 2 it equals ``-F.logsigmoid(rewards[:, 0] - rewards[:, 1]).mean()``.

    Must stay finite, and so must its gradient, for reward gaps of any size (gaps up to
    10^4 in the wrong order are checked, where ``torch.log(torch.sigmoid(d))`` is −inf):
    use ``F.logsigmoid``. Differentiable (autograd) w.r.t. ``rewards``: each pair (i, j)
    pushes r_i up and r_j down by σ(r_j − r_i) / (B·K(K−1)/2).

    Forbidden: ``F.binary_cross_entropy_with_logits`` / ``nn.BCEWithLogitsLoss`` and
    ``F.soft_margin_loss`` / ``nn.SoftMarginLoss``.
    """
    # BEGIN SOLUTION
    K = rewards.shape[1]
    i, j = torch.triu_indices(K, K, offset=1, device=rewards.device)  # every pair i < j
    d = rewards[:, i] - rewards[:, j]  # r_i - r_j, (B, K(K-1)/2), better answer first
    return -F.logsigmoid(d).mean()  # -1/(B C(K,2)) sum_b sum_{i<j} log sigma(r_i - r_j)
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `ppo_ptx_objective`
#
# Given the RL part of the objective (already computed: reward minus the KL penalty, one
# value, or one per sampled prompt) and the policy's log-probabilities of a batch of
# pre-training text, return the PPO-ptx objective
#
# $$\text{rl\_objective} + \gamma \cdot \operatorname{mean}(\text{pretrain\_logprobs}).$$
#
# It is an objective to **maximise** (gradient *ascent*; an optimiser would minimise its
# negative). The mean of the log-probabilities is the Monte Carlo estimate of
# $\mathbb E_{x \sim D_{\text{pretrain}}}[\log \pi_\phi(x)]$; InstructGPT used $\gamma = 27.8$.

# %%
def ppo_ptx_objective(rl_objective, pretrain_logprobs, gamma):
    """The PPO-ptx objective: rl_objective + γ · mean(pretrain_logprobs), to be maximised.

    Args:
        rl_objective: a floating tensor (float32 or float64, any device), either 0-dim (the
            RL objective already averaged over the batch) or of shape (B,) (one value per
            sampled prompt). Not modified.
        pretrain_logprobs: a floating tensor of any shape (for example (N, T) log-probabilities
            of the tokens of N pre-training sequences, or (N,) of whole sequences), in the same
            dtype and on the same device, with at least one element; log π_φ of pre-training
            data under the policy. No padding: **every** element counts. Not modified.
        gamma: the pre-training coefficient γ, a Python float ≥ 0 (0 gives plain PPO); a
            constant, so no gradient with respect to it is needed.

    Returns:
        a tensor in rl_objective's dtype and on its device, with **rl_objective's shape**:
        ``rl_objective + gamma * m`` where m is the mean over **all** elements of
        pretrain_logprobs (a single number, added to every entry of a (B,) rl_objective;
        rl_objective itself is not averaged). Plus sign: adding γ·E[log π(x)] rewards the
        policy for keeping the pre-training data likely. Not negated (this is the objective,
        not a loss), not the sum of the log-probabilities.

    Differentiable (autograd) w.r.t. ``rl_objective`` and ``pretrain_logprobs``.
    """
    # BEGIN SOLUTION
    pretrain_term = pretrain_logprobs.mean()  # E_{x ~ D_pretrain}[log pi(x)], estimated
    return rl_objective + gamma * pretrain_term  # rl_objective's shape
    # END SOLUTION
