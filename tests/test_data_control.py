"""course.data.control: the cart-pole follows Barto, Sutton & Anderson's equations (written here
again, in the paper's own arrangement, with Python floats), ends episodes where documented,
resets itself, and is deterministic for a seed on any device."""

from __future__ import annotations

import math

import pytest
import torch

from course.data import control
from course.data.control import CartPole


def barto_step(state, action):
    """One Euler step of the frictionless cart-pole, in the 1983 paper's arrangement."""
    x, x_dot, th, th_dot = state
    f = 10.0 if action == 1 else -10.0
    m, mc, l, g, tau = 0.1, 1.0, 0.5, 9.8, 0.02
    push = (-f - m * l * th_dot**2 * math.sin(th)) / (mc + m)
    th_acc = (g * math.sin(th) + math.cos(th) * push) / (
        l * (4.0 / 3.0 - m * math.cos(th) ** 2 / (mc + m)))
    x_acc = (f + m * l * (th_dot**2 * math.sin(th) - th_acc * math.cos(th))) / (mc + m)
    return [x + tau * x_dot, x_dot + tau * x_acc, th + tau * th_dot, th_dot + tau * th_acc]


def test_shapes_dtypes_and_start_states():
    env = CartPole(5, seed=3)
    obs = env.reset()
    assert obs.shape == (5, 4) and obs.dtype == torch.float32
    assert bool((obs.abs() <= control.START_RANGE).all())
    step = env.step(torch.ones(5, dtype=torch.long))
    assert step.obs.shape == (5, 4) and step.reward.shape == (5,)
    assert step.reward.dtype == torch.float32 and bool((step.reward == 1).all())
    assert step.done.dtype == torch.bool and step.truncated.dtype == torch.bool
    env64 = CartPole(2, dtype=torch.float64)
    assert env64.reset().dtype == torch.float64


def test_dynamics_match_the_paper_equations():
    env = CartPole(3, seed=0, dtype=torch.float64)
    env.reset()
    states = env.state.tolist()
    g = torch.Generator().manual_seed(1)
    for _ in range(8):
        actions = torch.randint(0, 2, (3,), generator=g)
        step = env.step(actions)
        states = [barto_step(s, int(a)) for s, a in zip(states, actions)]
        assert not bool(step.done.any())
        assert torch.allclose(step.obs, torch.tensor(states, dtype=torch.float64), atol=1e-12)


def test_episode_ends_resets_and_returns():
    env = CartPole(4, seed=2)
    env.reset()
    lengths = torch.zeros(4)
    ended = torch.zeros(4, dtype=torch.bool)
    for t in range(1, 201):  # always push right: the pole falls within a few dozen steps
        step = env.step(torch.ones(4, dtype=torch.long))
        new = step.done & ~ended
        lengths[new] = t
        assert torch.equal(step.episode_return[new], torch.full((int(new.sum()),), float(t)))
        assert bool((step.episode_return[~step.done] == 0).all())
        assert not bool(step.truncated.any())
        # a new episode starts where one ended
        assert bool((step.obs[step.done].abs() <= control.START_RANGE).all())
        ended |= step.done
        if bool(ended.all()):
            break
    assert bool(ended.all()) and bool((lengths > 5).all()) and bool((lengths < 60).all())


def test_failure_conditions():
    env = CartPole(2)
    env.reset()
    env.state = torch.tensor([[2.39, 1.0, 0.0, 0.0], [0.0, 0.0, 0.2093, 1.0]],
                             dtype=torch.float64)
    step = env.step(torch.tensor([1, 1]))
    assert step.done.tolist() == [True, True] and step.truncated.tolist() == [False, False]


def test_truncation_at_max_steps():
    env = CartPole(3, seed=0, max_steps=5)
    env.reset()
    for t in range(5):
        step = env.step(torch.tensor([0, 1, 0]) if t % 2 else torch.tensor([1, 0, 1]))
    assert step.done.all() and step.truncated.all()
    assert torch.equal(step.episode_return, torch.full((3,), 5.0))
    assert torch.equal(env.steps, torch.zeros(3, dtype=torch.long))


def test_deterministic_for_a_seed_and_generator():
    def run(env):
        obs, out = env.reset(), []
        g = torch.Generator().manual_seed(7)
        for _ in range(120):
            step = env.step(torch.randint(0, 2, (6,), generator=g))
            out.append(step.obs)
        return torch.stack(out), obs

    a, b = run(CartPole(6, seed=11)), run(CartPole(6, seed=11))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = run(CartPole(6, generator=torch.Generator().manual_seed(11)))
    assert torch.equal(a[0], c[0])
    assert not torch.equal(a[1], run(CartPole(6, seed=12))[1])


def test_random_policy_lasts_about_22_steps():
    env = CartPole(256, seed=0)
    env.reset()
    g = torch.Generator().manual_seed(0)
    returns = []
    for _ in range(300):
        step = env.step(torch.randint(0, 2, (256,), generator=g))
        returns.append(step.episode_return[step.done])
    mean = float(torch.cat(returns).mean())
    assert 18 < mean < 27, mean


def test_bad_arguments():
    with pytest.raises(ValueError):
        CartPole(0)
    with pytest.raises(ValueError):
        CartPole(2, max_steps=0)
    env = CartPole(2)
    env.reset()
    with pytest.raises(ValueError):
        env.step(torch.tensor([1, 0, 1]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_same_trajectory_on_cuda():
    cpu, gpu = CartPole(4, seed=5), CartPole(4, seed=5, device="cuda")
    assert torch.allclose(cpu.reset(), gpu.reset().cpu())
    for t in range(50):
        a = torch.tensor([t % 2, 1, 0, (t // 3) % 2])
        s1, s2 = cpu.step(a), gpu.step(a.cuda())
        assert torch.equal(s1.done, s2.done.cpu())
        assert torch.allclose(s1.obs, s2.obs.cpu(), atol=1e-5)
