# %% [markdown]
# # 4.9 Proximal policy optimization — exercise
#
# Schulman et al. (2017) train a policy $\pi_\theta(a \mid s)$ by repeating two phases: run
# the current policy for $T$ steps in $N$ environments, then take several epochs of gradient
# steps on that batch. Two pieces make this work, and you will write both.
#
# **Generalized advantage estimation** (Schulman et al., 2016) says how much better than
# expected each action turned out. With the critic's values $V_t = V(s_t)$, the one-step TD
# error is $\delta_t = r_t + \gamma V_{t+1} - V_t$, and the advantage is an exponentially
# weighted sum of the TD errors that follow, computed backwards in time:
#
# $$A_t = \delta_t + \gamma\lambda A_{t+1}, \qquad \hat R_t = A_t + V_t.$$
#
# Where an episode ended at step $t$ ($d_t = 1$), nothing after $t$ belongs to it: the next
# state's value and the next advantage are both cut off by $(1 - d_t)$.
#
# **The clipped surrogate objective.** With the probability ratio $\rho_t =
# \pi_\theta(a_t \mid s_t) / \pi_{\theta_\text{old}}(a_t \mid s_t) = \exp(\log\pi_\theta -
# \log\pi_{\theta_\text{old}})$, PPO maximises
#
# $$L^{\text{CLIP}} = \mathbb{E}_t\big[\min\big(\rho_t A_t,\ \operatorname{clip}(\rho_t,
#   1 - \epsilon, 1 + \epsilon)\,A_t\big)\big],$$
#
# a pessimistic bound that stops rewarding the policy once it has moved the probability of an
# action by more than a factor $1 \pm \epsilon$. As a loss to minimise, it gets a minus sign,
# and PPO adds a value loss for the critic and an entropy bonus that keeps the policy
# exploring.
#
# Not allowed: `torchrl`'s GAE functions and PPO loss (not installed here, but do not
# bring them).

# %%
import torch

# %% [markdown]
# ## Task 1 — `gae`
#
# For $t = T-1$ down to $0$, with $A_T = 0$ and $V_T$ the bootstrap value (the critic's value
# of the state after the last step):
#
# $$\delta_t = r_t + \gamma (1 - d_t) V_{t+1} - V_t, \qquad
#   A_t = \delta_t + \gamma\lambda (1 - d_t) A_{t+1}, \qquad \hat R_t = A_t + V_t.$$
#
# Every tensor has the time axis first; what follows it (nothing, or the environments, or
# more) is a batch of independent sequences.


# %%
def gae(rewards, values, dones, gamma=0.99, lam=0.95):
    """Generalized advantage estimates and the value targets (returns) of a rollout.

    Args:
        rewards: (T, ...) floating tensor, float32 or float64: r_t, the reward received at
            step t. T >= 1; the trailing dimensions (none, or e.g. num_envs) are a batch of
            independent sequences treated elementwise.
        values: (T + 1, ...) tensor in the rewards' dtype: V_0 … V_{T-1}, the critic's values
            of the states where each step was taken, then V_T, the value of the state after
            the last step (the bootstrap value).
        dones: (T, ...) tensor, either bool or floating (0.0 / 1.0): 1 (True) where the episode
            ended at step t, i.e. r_t was its last reward. The state after that step belongs to
            a new episode, so neither V_{t+1} nor A_{t+1} may flow back into step t.
        gamma: the discount γ, a float in [0, 1].
        lam: the GAE parameter λ, a float in [0, 1] (λ = 0 gives the one-step TD error,
            λ = 1 the discounted return minus V_t).

    Returns:
        ``(advantages, returns)``, both (T, ...) in the rewards' dtype and on their device:
        ``advantages[t]`` = A_t by the backward recursion
        δ_t = r_t + γ(1 − d_t)V_{t+1} − V_t, A_t = δ_t + γλ(1 − d_t)A_{t+1} (A_T = 0), and
        ``returns = advantages + values[:T]``.

    The inputs must not be changed (no in-place operation on them). gae is not
    differentiated: in PPO its outputs are constants. The checks pass inputs that do not
    require grad and do not look at autograd history, so computing under ``torch.no_grad()``
    or not is up to you.

    Forbidden: ``torchrl``'s advantage functions.
    """
    # BEGIN SOLUTION
    not_done = 1.0 - dones.to(rewards.dtype)  # bool or float -> 1 - d_t
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(rewards[0])  # A_T = 0
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * not_done[t] * values[t + 1] - values[t]  # δ_t
        next_advantage = delta + gamma * lam * not_done[t] * next_advantage  # A_t
        advantages[t] = next_advantage
    returns = advantages + values[:-1]  # R_t = A_t + V_t
    return advantages, returns
    # END SOLUTION


# %% [markdown]
# ## Task 2 — `ppo_clip_loss`
#
# $$\rho = \exp(\log\pi_\text{new} - \log\pi_\text{old}), \qquad
#   \mathcal{L}^{\text{CLIP}} = -\operatorname{mean}\big(\min(\rho A,\
#   \operatorname{clip}(\rho, 1 - \epsilon, 1 + \epsilon)\,A)\big).$$
#
# The minimum takes the clipped term only when it is the smaller one: for $A > 0$ once
# $\rho > 1 + \epsilon$, for $A < 0$ once $\rho < 1 - \epsilon$. There the loss no longer
# depends on the new policy, so its gradient is zero.


# %%
def ppo_clip_loss(logp_new, logp_old, advantages, clip_eps=0.2):
    """PPO's clipped surrogate loss (the negated objective L^CLIP).

    Args:
        logp_new: (...) floating tensor, float32 or float64: log π_θ(a_t | s_t) of the taken
            actions under the policy being trained; the loss is differentiated w.r.t. it.
        logp_old: same shape and dtype: log π_θold(a_t | s_t), recorded when the actions were
            sampled (a constant).
        advantages: same shape and dtype: A_t (constants), used exactly as given (no
            normalisation here; a training loop may normalise them before the call).
        clip_eps: ε, a float in (0, 1).

    Returns:
        a 0-dim tensor in the inputs' dtype and on their device:
        −mean(min(ρ A, clip(ρ, 1 − ε, 1 + ε) A)) over every element, with
        ρ = exp(logp_new − logp_old).

    Differentiable w.r.t. logp_new (autograd): the gradient is −ρA/n where the unclipped term
    is the minimum and 0 where the clipped one is strictly smaller. The checks compare it at
    ratios away from 1 ± ε; at ρ exactly 1 ± ε, where both terms are equal, only the value
    is checked. Gradients w.r.t. logp_old and advantages are not checked (treating them as
    constants, detached or not, is fine). The inputs must not be changed.

    Forbidden: ``torchrl``'s PPO losses.
    """
    # BEGIN SOLUTION
    ratio = torch.exp(logp_new - logp_old)  # ρ = π_new / π_old
    unclipped = ratio * advantages
    clipped = ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages
    return -torch.min(unclipped, clipped).mean()
    # END SOLUTION


# %% [markdown]
# ## Task 3 — `ppo_loss`
#
# The full loss of PPO with a critic that shares the update (the paper's Eq. 9, written as a
# loss to minimise, with $c_1$ = `value_coef` and $c_2$ = `entropy_coef`):
#
# $$\mathcal{L} = \mathcal{L}^{\text{CLIP}} + c_1\, \operatorname{mean}\big((V - \hat R)^2\big)
#   - c_2\, \operatorname{mean}(H).$$


# %%
def ppo_loss(logp_new, logp_old, advantages, values, returns, entropy, clip_eps=0.2,
             value_coef=0.5, entropy_coef=0.01):
    """PPO's combined loss: clipped surrogate, value error and entropy bonus.

    Args:
        logp_new, logp_old, advantages: as for :func:`ppo_clip_loss`, (...) each.
        values: (...) floating tensor: the critic's current values V(s_t) of the same steps
            (differentiated).
        returns: (...) tensor: the value targets R̂_t (e.g. from :func:`gae`; constants).
        entropy: (...) tensor: the policy's entropy H(π_θ(· | s_t)) at each step
            (differentiated).
        clip_eps: ε of the clipped surrogate.
        value_coef: c₁, the weight of the value loss.
        entropy_coef: c₂, the weight of the entropy bonus.

    All tensors have the same shape and dtype (float32 or float64).

    Returns:
        a 0-dim tensor in that dtype and on that device:
        ``ppo_clip_loss(logp_new, logp_old, advantages, clip_eps)
        + value_coef · mean((values − returns)²) − entropy_coef · mean(entropy)``.
        The value term is the plain mean squared error (no factor ½).

    Differentiable w.r.t. logp_new, values and entropy (autograd; those are the gradients
    the checks compare). The inputs must not be changed.
    """
    # BEGIN SOLUTION
    policy_loss = ppo_clip_loss(logp_new, logp_old, advantages, clip_eps)
    value_loss = ((values - returns) ** 2).mean()  # mse(V, R̂)
    return policy_loss + value_coef * value_loss - entropy_coef * entropy.mean()
    # END SOLUTION
