"""A cart-pole, written here from its equations of motion, vectorised over environments.

The classic control task of Barto, Sutton & Anderson (1983): a pole is hinged on a cart that
moves along a track; every step the agent pushes the cart left or right with a fixed force, and
earns a reward of 1 for as long as the pole stays up and the cart on the track. The dynamics
are those of that paper with both friction coefficients set to zero, integrated by explicit
Euler steps of ``TAU`` seconds (positions move with the old velocities):

    a      = (F + m_p l θ̇² sin θ) / (m_c + m_p)
    θ̈      = (g sin θ − a cos θ) / (l (4/3 − m_p cos² θ / (m_c + m_p)))
    ẍ      = a − m_p l θ̈ cos θ / (m_c + m_p)
    x ← x + τ ẋ,   ẋ ← ẋ + τ ẍ,   θ ← θ + τ θ̇,   θ̇ ← θ̇ + τ θ̈

with g = 9.8 m/s², cart mass m_c = 1 kg, pole mass m_p = 0.1 kg, half pole length l = 0.5 m,
force F = ±10 N (action 1 pushes right, action 0 left) and τ = 0.02 s. An episode **fails**
when |x| > 2.4 m or |θ| > 12°, and is **cut** (truncated) after ``max_steps`` steps; either
way it ends, and the environment starts a new one at once (auto-reset). Every step, the last
included, earns reward 1, so an episode's return is its length: 200 at most by default, about
22 on average for a policy that pushes at random.

:class:`CartPole` holds ``num_envs`` independent copies and steps them all at once with tensor
operations. Its only randomness is the start state of each episode, uniform on ±0.05 in each of
(x, ẋ, θ, θ̇), drawn from its own ``torch.Generator`` (on the CPU, in float64, then moved to the
environment's device), so that a seed fixes every trajectory for a given sequence of actions,
on any device. The state is simulated in float64; observations are returned in ``dtype``
(float32 by default).

This is the course's own environment for unit 4.9 (PPO): the lecture and the grader's training
check both use it; no ``gym`` is needed.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

GRAVITY = 9.8
CART_MASS = 1.0
POLE_MASS = 0.1
HALF_LENGTH = 0.5
FORCE = 10.0
TAU = 0.02
X_LIMIT = 2.4
THETA_LIMIT = 12 * 2 * math.pi / 360
START_RANGE = 0.05


class Step(NamedTuple):
    """What :meth:`CartPole.step` returns, each with a leading ``num_envs`` dimension."""

    obs: torch.Tensor  # (num_envs, 4) the next observation (a new episode's first where done)
    reward: torch.Tensor  # (num_envs,) 1.0 every step, in the observation dtype
    done: torch.Tensor  # (num_envs,) bool: the episode ended at this step (failed or cut)
    truncated: torch.Tensor  # (num_envs,) bool: it ended only because max_steps was reached
    episode_return: torch.Tensor  # (num_envs,) the ended episode's return where done, else 0


class CartPole:
    """``num_envs`` cart-poles stepped together.

    Args:
        num_envs: how many independent environments (>= 1).
        seed: seeds the environment's own ``torch.Generator`` (ignored when ``generator`` is
            given).
        max_steps: an episode is cut after this many steps (200 by default, as in the classic
            benchmark).
        device: where the state and every returned tensor live (default CPU).
        dtype: the dtype of observations and rewards (default float32); the simulation itself
            runs in float64.
        generator: a CPU ``torch.Generator`` to draw the start states from instead.

    Observations are (x, ẋ, θ, θ̇) per environment, shape (num_envs, 4). Actions are integers
    0 (push left) or 1 (push right), shape (num_envs,).
    """

    obs_size = 4
    num_actions = 2

    def __init__(self, num_envs: int, seed: int = 0, max_steps: int = 200, device=None,
                 dtype: torch.dtype = torch.float32,
                 generator: torch.Generator | None = None) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        self.num_envs = num_envs
        self.max_steps = max_steps
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        self.generator = generator if generator is not None else torch.Generator().manual_seed(
            seed)
        self.state = torch.zeros(num_envs, 4, dtype=torch.float64, device=self.device)
        self.steps = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.returns = torch.zeros(num_envs, dtype=torch.float64, device=self.device)

    def _start_states(self, n: int) -> torch.Tensor:
        u = torch.rand(n, 4, generator=self.generator, dtype=torch.float64)
        return ((2 * u - 1) * START_RANGE).to(self.device)

    def reset(self) -> torch.Tensor:
        """Start a new episode in every environment; the first observations (num_envs, 4)."""
        self.state = self._start_states(self.num_envs)
        self.steps.zero_()
        self.returns.zero_()
        return self.observation()

    def observation(self) -> torch.Tensor:
        """The current observations (num_envs, 4), a fresh tensor in ``dtype``."""
        return self.state.to(self.dtype).clone()

    def step(self, actions: torch.Tensor) -> Step:
        """Push every cart (action 1 right, 0 left) for one step of ``TAU`` seconds.

        Environments whose episode ends here (fails or reaches ``max_steps``) are reset, new
        start states drawn from the generator in order of environment index; their returned
        observation is the new episode's first.
        """
        actions = torch.as_tensor(actions, device=self.device)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got "
                             f"{tuple(actions.shape)}")
        x, x_dot, theta, theta_dot = self.state.unbind(1)
        force = torch.where(actions.bool(), FORCE, -FORCE).to(torch.float64)
        total_mass = CART_MASS + POLE_MASS
        cos, sin = torch.cos(theta), torch.sin(theta)
        a = (force + POLE_MASS * HALF_LENGTH * theta_dot**2 * sin) / total_mass
        theta_acc = (GRAVITY * sin - cos * a) / (
            HALF_LENGTH * (4.0 / 3.0 - POLE_MASS * cos**2 / total_mass))
        x_acc = a - POLE_MASS * HALF_LENGTH * theta_acc * cos / total_mass
        self.state = torch.stack([x + TAU * x_dot, x_dot + TAU * x_acc,
                                  theta + TAU * theta_dot, theta_dot + TAU * theta_acc], dim=1)
        self.steps += 1
        self.returns += 1.0
        x, theta = self.state[:, 0], self.state[:, 2]
        failed = (x.abs() > X_LIMIT) | (theta.abs() > THETA_LIMIT)
        truncated = ~failed & (self.steps >= self.max_steps)
        done = failed | truncated
        episode_return = torch.where(done, self.returns, torch.zeros_like(self.returns))
        if bool(done.any()):
            ended = done.nonzero().flatten()
            self.state[ended] = self._start_states(len(ended))
            self.steps[ended] = 0
            self.returns[ended] = 0.0
        reward = torch.ones(self.num_envs, dtype=self.dtype, device=self.device)
        return Step(self.observation(), reward, done, truncated,
                    episode_return.to(self.dtype))
