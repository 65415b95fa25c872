"""Hidden checks for unit 4.9 `ppo` (Schulman et al., 2017; GAE from Schulman et al., 2016).

``gae`` is compared with the master on seeded rollouts: one to three dimensions (T alone,
T × num_envs, T × num_envs × 2), T = 1, a batch of one, odd sizes, dones as float 0/1 and as
bool, episodes ending about one step in four, never and always, λ = 0 (the TD error), λ = 1
with γ = 1 (the Monte Carlo return), and other γ, λ given by keyword, float32 and float64 (the
outputs keep the rewards' dtype). Its inputs never require grad, so the checks are blind to
whether gae computes under ``torch.no_grad()``.

``ppo_clip_loss`` is compared in value and in its gradient w.r.t. ``logp_new`` on ratios spread
on both sides of the clip range with advantages of both signs, several ε, shapes (B,), (1,) and
(T, N); on ratios all far outside the range (where the reference's gradient is exactly zero
when the clipped term is the smaller, and not when it is not); at ρ = 1 exactly (value and
gradient); and at ρ = 1 ± ε (value only: the gradient has a kink there and is not checked).
``ppo_loss`` is compared in value and in its gradients w.r.t. ``logp_new``, ``values`` and
``entropy``, with the default and other coefficients.

``test_ppo_solves_cartpole`` is the training-to-target check: the grader's PPO loop
(``course/grading/drivers/ppo.py``) calls the learner's ``gae`` and ``ppo_clip_loss`` on the
course's cart-pole (``course.data.control``) for 24 rollouts of 32 × 32 steps: 1.5 s on a
free core (4 to 6 s measured while the machine was loaded). With the master, over driver seeds
0–19, the greedy policy's mean return on 16 fresh episodes ended between 155.0 and 200 (200 in
17 of 20; random play averages about 22); the check asks for at least 120. Of the bank, the
check alone rejects forward-in-time, ratio-as-quotient, max-not-min and objective-not-negated
(about 9) and nearly clip-advantage (141.5 on one seed); the cart-pole is forgiving of the
other gae slips, which the comparisons catch.

There is no independent library implementation installed (no gym, stable-baselines or
torchrl); ``tests/test_oracle_ppo.py`` compares the master with loops written from the
published equations.
"""

import math

import torch

from course.grading.dsl import FLOAT_DTYPES as DTYPES
from course.grading.dsl import Call, Device, Forbid, Mistake, check
from course.grading.dsl import dtype_word as _dt

UNIT = "ppo"

FORBIDDEN = [
    # Library GAE and PPO losses (torchrl, when installed) would do the exercise.
    Forbid(calls=(
        "torchrl.objectives.value.functional.generalized_advantage_estimate",
        "torchrl.objectives.value.functional.vec_generalized_advantage_estimate",
        "torchrl.objectives.ClipPPOLoss",
        "torchrl.objectives.PPOLoss",
    )),
]

MISTAKES = [
    # -- gae
    Mistake(
        "bootstrap-through-done",
        "Your advantages bootstrap through episode ends: where d_t = 1 your TD error still "
        "adds γ·V_{t+1}, the value of the next episode's first state. Cut it off: "
        "δ_t = r_t + γ(1 − d_t)V_{t+1} − V_t.",
        {"delta = rewards[t] + gamma * not_done[t] * values[t + 1] - values[t]":
         "delta = rewards[t] + gamma * values[t + 1] - values[t]"},
    ),
    Mistake(
        "advantage-through-done",
        "Your advantages carry A_{t+1} across episode ends: the recursion must stop where the "
        "episode ended, A_t = δ_t + γλ(1 − d_t)A_{t+1}, or the next episode's luck leaks into "
        "this one's last steps.",
        {"next_advantage = delta + gamma * lam * not_done[t] * next_advantage":
         "next_advantage = delta + gamma * lam * next_advantage"},
    ),
    Mistake(
        "dones-shifted",
        "Your advantages match the done flags shifted by one step (1 − d_{t+1} used at step t, "
        "as in code whose dones mark the first step of a new episode). Here d_t = 1 means the "
        "episode ended at step t itself: cut V_{t+1} and A_{t+1} with 1 − d_t.",
        {"not_done = 1.0 - dones.to(rewards.dtype)":
         "not_done = torch.cat([1.0 - dones.to(rewards.dtype)[1:], torch.ones_like(dones[:1], "
         "dtype=rewards.dtype)])"},
    ),
    Mistake(
        "lambda-on-delta",
        "Your advantages match λ applied to δ_t itself (A_t = λδ_t + γλA_{t+1}). The TD error "
        "of step t enters with weight 1; only the later ones are discounted by (γλ)^k: "
        "A_t = δ_t + γλ(1 − d_t)A_{t+1}.",
        {"next_advantage = delta + gamma * lam * not_done[t] * next_advantage":
         "next_advantage = lam * delta + gamma * lam * not_done[t] * next_advantage"},
    ),
    Mistake(
        "forward-in-time",
        "Your advantages match the recursion run forwards in time (A_t built from A_{t−1}). "
        "An advantage sums the TD errors that come after step t: loop t = T − 1 down to 0, "
        "starting from A_T = 0.",
        {"for t in reversed(range(rewards.shape[0])):": "for t in range(rewards.shape[0]):"},
    ),
    Mistake(
        "returns-off-by-one",
        "Your returns add the next state's value (values[1:]) to the advantages. The value "
        "target of step t is R_t = A_t + V_t, with V_t = values[t]: advantages + values[:T].",
        {"returns = advantages + values[:-1]": "returns = advantages + values[1:]"},
    ),
    Mistake(
        "advantages-float32",
        "Your advantages are float32 for float64 inputs: torch.zeros(shape) uses the default "
        "dtype. Keep the rewards' dtype (and device), e.g. torch.zeros_like(rewards).",
        {"advantages = torch.zeros_like(rewards)": "advantages = torch.zeros(rewards.shape)"},
    ),
    # -- ppo_clip_loss (clipped-term-only before max-not-min: where the clipped term is the
    # larger, both give it, and only a clipped-term-only learner fails there first)
    Mistake(
        "ratio-as-quotient",
        "Your loss matches the ratio taken as logp_new / logp_old. The inputs are log "
        "probabilities, so the probability ratio is ρ = exp(logp_new − logp_old).",
        {"ratio = torch.exp(logp_new - logp_old)": "ratio = logp_new / logp_old"},
    ),
    Mistake(
        "clipped-term-only",
        "Your loss matches the clipped term alone, −mean(clip(ρ, 1 − ε, 1 + ε)A), without the "
        "minimum with ρA: where the policy got worse beyond the clip range (ρA the smaller), "
        "the minimum keeps the unclipped term and its gradient.",
        {"-torch.min(unclipped, clipped).mean()": "-clipped.mean()"},
    ),
    Mistake(
        "max-not-min",
        "Your loss matches max instead of min of the two terms: that is an optimistic bound, "
        "which rewards moving the policy further. PPO takes the pessimistic one: "
        "−mean(min(ρA, clip(ρ, 1 − ε, 1 + ε)A)).",
        {"-torch.min(unclipped, clipped).mean()": "-torch.max(unclipped, clipped).mean()"},
    ),
    Mistake(
        "clip-advantage",
        "Your loss matches the advantage clipped to [1 − ε, 1 + ε] instead of the ratio. The "
        "clip bounds how far the policy may move: clip(ρ, 1 − ε, 1 + ε)·A, with A as given.",
        {"clipped = ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages":
         "clipped = ratio * advantages.clamp(1 - clip_eps, 1 + clip_eps)"},
    ),
    Mistake(
        "objective-not-negated",
        "Your loss has the wrong sign: it is the objective L^CLIP itself. PPO maximises "
        "L^CLIP, so the loss to minimise is −mean(min(ρA, clip(ρ, 1 − ε, 1 + ε)A)).",
        {"return -torch.min(unclipped, clipped).mean()":
         "return torch.min(unclipped, clipped).mean()"},
    ),
    Mistake(
        "sum-not-mean",
        "Your loss matches the sum over the elements instead of the mean: its size then "
        "grows with the batch. Take the mean.",
        {"-torch.min(unclipped, clipped).mean()": "-torch.min(unclipped, clipped).sum()"},
    ),
    Mistake(
        "advantages-normalised",
        "Your loss matches advantages normalised to mean 0 and standard deviation 1 inside "
        "the loss. Many training loops do that before calling it, but ppo_clip_loss uses the "
        "advantages exactly as given.",
        {"    ratio = torch.exp(logp_new - logp_old)":
         "    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)\n"
         "    ratio = torch.exp(logp_new - logp_old)"},
    ),
    Mistake(
        "advantages-normalised-in-place",
        "Your loss normalises the advantages in place (sub_, div_), which changes the "
        "caller's tensor. Leave the inputs alone, and use the advantages as given.",
        {"    ratio = torch.exp(logp_new - logp_old)":
         "    advantages.sub_(advantages.mean()).div_(advantages.std() + 1e-8)\n"
         "    ratio = torch.exp(logp_new - logp_old)"},
    ),
    # -- ppo_loss
    Mistake(
        "entropy-sign",
        "Your loss adds the entropy term instead of subtracting it, which pushes the policy "
        "towards certainty. The entropy is a bonus: loss = L^CLIP + c₁·mse − c₂·mean(H).",
        {"- entropy_coef * entropy.mean()": "+ entropy_coef * entropy.mean()"},
    ),
    Mistake(
        "value-loss-halved",
        "Your value term matches ½·mean((V − R)²). The loss here uses the plain mean squared "
        "error: value_coef · mean((values − returns)²).",
        {"value_loss = ((values - returns) ** 2).mean()":
         "value_loss = 0.5 * ((values - returns) ** 2).mean()"},
    ),
]


# -- gae ------------------------------------------------------------------------------------


def _rollout(grader, shape, dtype, p_done=0.25, as_bool=False):
    """(rewards (T, ...), values (T + 1, ...), dones (T, ...)) with episodes ending at random."""
    t, *rest = shape
    rewards = grader.randn(*shape, dtype=dtype)
    values = grader.randn(t + 1, *rest, dtype=dtype)
    done = grader.rand(*shape) < p_done
    return rewards, values, done if as_bool else done.to(dtype)


def _gae_case(shape, dtype, dones, extra=""):
    kind = "bool" if dones.dtype == torch.bool else "float 0/1"
    return f"gae on rewards{list(shape)}, dones {kind}{extra}, {_dt(dtype)}"


# (T, ...): T × num_envs first, T = 1, a batch of one, odd sizes
GAE_SHAPES = [(8, 4), (1, 3), (7, 1), (13, 5), (5, 2)]


@check(points=2, public=True, task="gae")
def test_gae(grader):
    """gae's advantages and returns equal the reference's on (T, num_envs) rollouts"""
    for shape in GAE_SHAPES:
        for dtype in DTYPES:
            rewards, values, dones = _rollout(grader, shape, dtype)
            grader.compare(Call("gae", (rewards, values, dones)),
                           case=_gae_case(shape, dtype, dones))


@check(points=1, task="gae")
def test_gae_shapes_and_bool_dones(grader):
    """gae on a single sequence (T,), on (T, N, 2) batches, and with bool dones"""
    for shape in [(9,), (1,), (6, 3, 2), (4, 1, 3)]:
        for dtype in DTYPES:
            for as_bool in (False, True):
                rewards, values, dones = _rollout(grader, shape, dtype, as_bool=as_bool)
                grader.compare(Call("gae", (rewards, values, dones)),
                               case=_gae_case(shape, dtype, dones))


@check(points=1, task="gae")
def test_gae_gamma_lambda(grader):
    """gae with λ = 0 (TD error), γ = λ = 1 (Monte Carlo), and other γ, λ by keyword"""
    for gamma, lam in [(0.9, 0.0), (1.0, 1.0), (0.5, 0.8), (0.97, 0.9)]:
        for dtype in DTYPES:
            rewards, values, dones = _rollout(grader, (10, 3), dtype)
            grader.compare(
                Call("gae", (rewards, values, dones), {"gamma": gamma, "lam": lam}),
                case=_gae_case((10, 3), dtype, dones, f", gamma={gamma}, lam={lam}"))


@check(points=1, task="gae")
def test_gae_episode_ends(grader):
    """gae where no episode ends, where every step ends one, and an end at the last step"""
    for dtype in DTYPES:
        for label, p_done in [("no episode ends", 0.0), ("every step ends an episode", 1.0)]:
            rewards, values, dones = _rollout(grader, (6, 4), dtype, p_done=p_done)
            grader.compare(Call("gae", (rewards, values, dones)),
                           case=_gae_case((6, 4), dtype, dones, f" ({label})"))
        rewards, values, dones = _rollout(grader, (5, 3), dtype, p_done=0.0, as_bool=True)
        dones[-1] = True  # the bootstrap value V_T must not count where the last step ended
        dones[1, 0] = True
        grader.compare(Call("gae", (rewards, values, dones)),
                       case=_gae_case((5, 3), dtype, dones, " (ends at the last step)"))


# -- ppo_clip_loss --------------------------------------------------------------------------


def _logps(grader, shape, dtype, spread=0.3):
    """(logp_new, logp_old): log probabilities with log-ratios of standard deviation spread."""
    logp_old = -(grader.rand(*shape) * 2 + 0.05).to(dtype)
    logp_new = (logp_old.double() + grader.randn(*shape, scale=spread)).to(dtype)
    return logp_new, logp_old


def _clip_case(shape, dtype, eps, extra=""):
    return f"ppo_clip_loss on [{', '.join(map(str, shape))}]{extra}, clip_eps={eps}, {_dt(dtype)}"


# (shape, clip_eps): ratios spread on both sides of the clip range
CLIP_CASES = [((16,), 0.2), ((1,), 0.2), ((5, 3), 0.1), ((33,), 0.3), ((4, 7), 0.2)]


@check(points=2, public=True, task="ppo_clip_loss")
def test_clip_loss(grader):
    """ppo_clip_loss equals −mean(min(ρA, clip(ρ, 1 − ε, 1 + ε)A)) on mixed ratios and signs"""
    for shape, eps in CLIP_CASES:
        for dtype in DTYPES:
            logp_new, logp_old = _logps(grader, shape, dtype)
            adv = grader.randn(*shape, dtype=dtype)
            kwargs = {} if eps == 0.2 else {"clip_eps": eps}
            grader.compare(Call("ppo_clip_loss", (logp_new, logp_old, adv), kwargs),
                           case=_clip_case(shape, dtype, eps))


@check(points=2, task="ppo_clip_loss")
def test_clip_loss_gradients(grader):
    """ppo_clip_loss's gradient w.r.t. logp_new, zero where the clipped term is the smaller"""
    for shape, eps in CLIP_CASES:
        for dtype in DTYPES:
            logp_new, logp_old = _logps(grader, shape, dtype, spread=0.5)
            adv = grader.randn(*shape, dtype=dtype)
            grader.compare(Call("ppo_clip_loss", (logp_new, logp_old, adv, eps), grad=(0,)),
                           case=_clip_case(shape, dtype, eps, ", d/dlogp_new"))


@check(points=1, task="ppo_clip_loss")
def test_clip_loss_far_outside(grader):
    """ppo_clip_loss and its gradient with every ratio far outside 1 ± ε, A > 0 and A < 0"""
    n = 12
    for dtype in DTYPES:
        logp_old = -(grader.rand(n) + 0.5).to(dtype)
        shift = (grader.rand(n) * 0.8 + 0.4).to(dtype)  # |log ρ| in [0.4, 1.2]
        # |A| in [1.5, 2.5], beyond 1 + ε: a clipped advantage then shows
        pos = grader.rand(n).to(dtype) + 1.5
        for label, logp_new, adv in [
            ("ρ > 1 + ε, A > 0 (clipped: gradient 0)", logp_old + shift, pos),
            ("ρ < 1 − ε, A < 0 (clipped: gradient 0)", logp_old - shift, -pos),
            ("ρ > 1 + ε, A < 0 (not clipped)", logp_old + shift, -pos),
            ("ρ < 1 − ε, A > 0 (not clipped)", logp_old - shift, pos),
        ]:
            grader.compare(Call("ppo_clip_loss", (logp_new, logp_old, adv), grad=(0,)),
                           case=_clip_case((n,), dtype, 0.2, f", {label}, d/dlogp_new"))


@check(points=1, task="ppo_clip_loss")
def test_clip_loss_boundaries(grader):
    """ppo_clip_loss at ρ = 1 (value and gradient) and at ρ = 1 ± ε (value)"""
    n = 9
    for dtype in DTYPES:
        logp_old = -(grader.rand(n) + 0.2).to(dtype)
        adv = grader.randn(n, dtype=dtype)
        grader.compare(Call("ppo_clip_loss", (logp_old.clone(), logp_old, adv), grad=(0,)),
                       case=_clip_case((n,), dtype, 0.2, ", ρ = 1 exactly, d/dlogp_new"))
        for eps in (0.2, 0.1):
            for sign in (1, -1):
                logp_new = (logp_old.double() + math.log(1 + sign * eps)).to(dtype)
                kwargs = {"clip_eps": eps}
                grader.compare(
                    Call("ppo_clip_loss", (logp_new, logp_old, adv), kwargs),
                    case=_clip_case((n,), dtype, eps, f", ρ = 1 {'+' if sign > 0 else '−'} ε"))


# -- ppo_loss -------------------------------------------------------------------------------


def _loss_inputs(grader, shape, dtype):
    logp_new, logp_old = _logps(grader, shape, dtype)
    adv = grader.randn(*shape, dtype=dtype)
    values = grader.randn(*shape, dtype=dtype)
    returns = grader.randn(*shape, dtype=dtype)
    entropy = (grader.rand(*shape) * math.log(4)).to(dtype)
    return logp_new, logp_old, adv, values, returns, entropy


# (shape, keyword arguments)
LOSS_CASES = [
    ((16,), {}),
    ((1,), {}),
    ((6, 4), {"clip_eps": 0.1, "value_coef": 1.0, "entropy_coef": 0.05}),
    ((11,), {"value_coef": 0.25, "entropy_coef": 0.2}),
]


def _loss_case(shape, dtype, kwargs, extra=""):
    opts = ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "default coefficients"
    return f"ppo_loss on [{', '.join(map(str, shape))}], {opts}{extra}, {_dt(dtype)}"


@check(points=1, public=True, task="ppo_loss")
def test_ppo_loss(grader):
    """ppo_loss = clip loss + value_coef · mse(values, returns) − entropy_coef · mean(entropy)"""
    for shape, kwargs in LOSS_CASES:
        for dtype in DTYPES:
            grader.compare(Call("ppo_loss", _loss_inputs(grader, shape, dtype), kwargs),
                           case=_loss_case(shape, dtype, kwargs))


@check(points=1, task="ppo_loss")
def test_ppo_loss_gradients(grader):
    """ppo_loss's gradients w.r.t. logp_new, values and entropy"""
    for shape, kwargs in LOSS_CASES:
        for dtype in DTYPES:
            grader.compare(
                Call("ppo_loss", _loss_inputs(grader, shape, dtype), kwargs, grad=(0, 3, 5)),
                case=_loss_case(shape, dtype, kwargs, ", d/dlogp_new, d/dvalues, d/dentropy"))


# -- it trains ------------------------------------------------------------------------------

# the master, over driver seeds 0-19: greedy mean return 155.0 to 200 (random play: about 22)
TARGET_RETURN = 120.0


@check(points=2, task="ppo_clip_loss")
def test_ppo_solves_cartpole(grader):
    """the grader's PPO loop with your gae and ppo_clip_loss balances the cart-pole"""
    seed = grader.seed()
    case = (f"the grader's PPO (seed {seed}) on the course's cart-pole: 24 rollouts of 32 "
            "environments × 32 steps, your gae (gamma=0.99, lam=0.95, float32, float dones) "
            "and your ppo_clip_loss (clip_eps=0.2, advantages normalised per minibatch by the "
            "grader), 4 epochs of 4 minibatches, Adam lr 2.5e-3; then the greedy policy on 16 "
            "fresh episodes of at most 200 steps")
    got = grader.learner(Call("@ppo.train", (seed, Device())), case)
    curve = got.out["mean return per rollout"]
    greedy = got.out["greedy returns after training"]
    mean = float(greedy.mean())
    grader.require(
        mean >= TARGET_RETURN,
        f"{case}: the greedy policy kept the pole up for {mean:.1f} steps on average (the "
        f"training rollouts' mean return went from {float(curve[0]):.1f} to "
        f"{float(curve[-1]):.1f}); the target is at least {TARGET_RETURN:g} of 200. Check "
        "the advantages' sign and recursion and the clipped loss's sign, min and ratio.",
    )
    grader.cases.append(f"{case}: greedy mean return {mean:.1f}")
