"""Drivers for unit 4.9 `ppo`: a grader-owned PPO loop around the learner's ``gae`` and
``ppo_clip_loss``.

``train(ns, seed, device)`` solves the course's cart-pole (:mod:`course.data.control`) with
PPO: ``NUM_ENVS`` environments, rollouts of ``STEPS`` steps, a policy and a critic (separate
two-layer tanh MLPs, built and initialised by the grader from ``seed``), and ``EPOCHS`` epochs
of ``MINIBATCHES`` minibatches per rollout, optimised by Adam written out here (constructing a
``torch.optim`` optimizer imports torch._dynamo, seconds per grading process). Per rollout it
calls the learner's ``gae(rewards, values, dones, GAMMA, LAM)`` on the (T, num_envs) rollout
(rewards and values float32, dones float32 0/1, values computed without grad), normalises the
advantages per minibatch, and minimises the learner's ``ppo_clip_loss(logp_new, logp_old,
advantages, CLIP_EPS)`` plus the grader's own value loss (``VALUE_COEF`` · mean squared error
to the learner's returns) and entropy bonus (``ENTROPY_COEF``). Every random draw (start
states, actions, minibatch order) comes from generators seeded by ``seed``, on the CPU, so a
run is deterministic.

It reports the mean return of the episodes finished in each rollout and, after training, the
return of one episode in each of ``EVAL_ENVS`` fresh environments under the greedy policy
(argmax action). A correct ``gae`` and clip loss keep the pole up for the full 200 steps.

Drivers run where learner code runs and return plain data, never verdicts.
"""

from __future__ import annotations

import torch
from torch import nn

from course.data.control import CartPole
from course.grading.probes import ProbeError, lookup

NUM_ENVS = 32
STEPS = 32
ITERATIONS = 24
EPOCHS = 4
MINIBATCHES = 4
LR = 2.5e-3
GAMMA = 0.99
LAM = 0.95
CLIP_EPS = 0.2
VALUE_COEF = 0.5
ENTROPY_COEF = 0.0
HIDDEN = 64
EVAL_ENVS = 16


def _mlp(out: int, gain: float, g: torch.Generator, device) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(CartPole.obs_size, HIDDEN), nn.Tanh(),
                        nn.Linear(HIDDEN, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, out))
    with torch.no_grad():
        for layer in net:
            if isinstance(layer, nn.Linear):
                w = torch.randn(layer.weight.shape, generator=g) / layer.in_features**0.5
                layer.weight.copy_(w)
                layer.bias.zero_()
        net[-1].weight.mul_(gain)  # type: ignore[operator]
    return net.to(device)


class _Adam:
    """Adam (β = 0.9, 0.999, ε = 1e-8) on a list of parameters, written out."""

    def __init__(self, params: list[torch.Tensor], lr: float) -> None:
        self.params, self.lr, self.t = params, lr, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            m.mul_(0.9).add_(p.grad, alpha=0.1)
            v.mul_(0.999).addcmul_(p.grad, p.grad, value=0.001)
            m_hat, v_hat = m / (1 - 0.9**self.t), v / (1 - 0.999**self.t)
            p.sub_(self.lr * m_hat / (v_hat.sqrt() + 1e-8))
            p.grad = None


def _tensor(value, what: str, shape: tuple[int, ...]) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ProbeError(f"{what} should be a tensor, got {type(value).__name__}")
    if tuple(value.shape) != shape:
        raise ProbeError(f"{what} has shape {tuple(value.shape)}, expected {shape}")
    if not torch.isfinite(value).all():
        raise ProbeError(f"{what} is not finite (NaN or inf)")
    return value


def _evaluate(policy: nn.Module, seed: int, device) -> torch.Tensor:
    """One greedy episode in each of EVAL_ENVS fresh environments: their returns."""
    env = CartPole(EVAL_ENVS, seed=seed + 1_000_003, device=device)
    obs = env.reset()
    first = torch.full((EVAL_ENVS,), float("nan"), dtype=torch.float64)
    with torch.no_grad():
        for _ in range(env.max_steps):
            step = env.step(policy(obs).argmax(-1))
            newly = step.done.cpu() & first.isnan()
            first[newly] = step.episode_return.cpu().double()[newly]
            if not bool(first.isnan().any()):
                break
            obs = step.obs
    return first


def train(ns: dict, seed: int, device, iterations: int = ITERATIONS) -> dict:
    """PPO on the cart-pole with the learner's ``gae`` and ``ppo_clip_loss`` (see the module
    docstring): the mean return of each rollout's finished episodes, and the greedy policy's
    returns on EVAL_ENVS fresh episodes after training."""
    gae, clip_loss = lookup(ns, "gae"), lookup(ns, "ppo_clip_loss")
    g = torch.Generator().manual_seed(seed)
    policy = _mlp(CartPole.num_actions, 0.01, g, device)
    critic = _mlp(1, 1.0, g, device)
    opt = _Adam([*policy.parameters(), *critic.parameters()], LR)
    env = CartPole(NUM_ENVS, generator=g, device=device)
    obs = env.reset()
    batch = NUM_ENVS * STEPS
    size = batch // MINIBATCHES
    curve = []
    for _ in range(iterations):
        # -- rollout with the current policy
        all_obs, actions, logps, rewards, dones, finished = [], [], [], [], [], []
        with torch.no_grad():
            for _ in range(STEPS):
                logits = policy(obs)
                u = torch.rand(NUM_ENVS, generator=g, dtype=torch.float64).to(device)
                p_right = torch.softmax(logits.double(), -1)[:, 1]
                action = (u < p_right).long()
                logp = torch.log_softmax(logits, -1).gather(1, action[:, None])[:, 0]
                step = env.step(action)
                all_obs.append(obs)
                actions.append(action)
                logps.append(logp)
                rewards.append(step.reward)
                dones.append(step.done.float())
                finished.append(step.episode_return[step.done])
                obs = step.obs
            observations = torch.stack(all_obs)  # (T, N, 4)
            values = critic(torch.cat([observations, obs[None]])).squeeze(-1)  # (T + 1, N)
        ended = torch.cat(finished)
        curve.append(float(ended.double().mean()) if len(ended) else float("nan"))
        rewards_t, dones_t = torch.stack(rewards), torch.stack(dones)
        out = gae(rewards_t, values, dones_t, GAMMA, LAM)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise ProbeError("gae should return a pair (advantages, returns)")
        shape = (STEPS, NUM_ENVS)
        advantages = _tensor(out[0], "gae's advantages", shape).detach().reshape(-1)
        returns = _tensor(out[1], "gae's returns", shape).detach().reshape(-1)
        flat_obs = observations.reshape(batch, -1)
        flat_actions = torch.stack(actions).reshape(-1)
        flat_logp = torch.stack(logps).reshape(-1)
        # -- EPOCHS passes of minibatch updates on this batch
        for _ in range(EPOCHS):
            order = torch.randperm(batch, generator=g).to(device)
            for k in range(MINIBATCHES):
                idx = order[k * size:(k + 1) * size]
                adv = advantages[idx]
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                with torch.enable_grad():
                    log_probs = torch.log_softmax(policy(flat_obs[idx]), -1)
                    logp_new = log_probs.gather(1, flat_actions[idx, None])[:, 0]
                    entropy = -(log_probs.exp() * log_probs).sum(-1)
                    loss_pi = clip_loss(logp_new, flat_logp[idx], adv, CLIP_EPS)
                    if not isinstance(loss_pi, torch.Tensor) or loss_pi.dim() != 0:
                        raise ProbeError("ppo_clip_loss should return a 0-dim tensor")
                    if not loss_pi.requires_grad:
                        raise ProbeError("ppo_clip_loss's result has no autograd history: "
                                         "nothing to train")
                    v = critic(flat_obs[idx]).squeeze(-1)
                    loss = (loss_pi + VALUE_COEF * ((v - returns[idx]) ** 2).mean()
                            - ENTROPY_COEF * entropy.mean())
                    loss.backward()
                opt.step()
    return {"mean return per rollout": torch.tensor(curve, dtype=torch.float64),
            "greedy returns after training": _evaluate(policy, seed, device)}
