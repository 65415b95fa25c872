# %% [markdown]
# # 2.8 Adam — exercise
#
# Kingma & Ba (2014) give every parameter its own step size. Adam keeps two exponential moving
# averages per parameter, one of the gradient $g_t$ and one of its elementwise square, corrects
# both for their start at zero, and divides the first by the square root of the second:
#
# $$m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
#   v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2,$$
#
# $$\hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^t}, \qquad
#   \theta_t = \theta_{t-1} - \alpha\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon},$$
#
# with $m_0 = v_0 = 0$ and $t = 1, 2, \dots$ counting the updates of that parameter. Weight
# decay comes in two flavours. The L2 penalty adds $\lambda\theta_{t-1}$ to the gradient before
# the moments see it (this is `torch.optim.Adam(weight_decay=λ)`). Decoupled decay (AdamW,
# Loshchilov & Hutter, 2019) shrinks the weights directly,
# $\theta \leftarrow \theta - \alpha\lambda\,\theta$, before the Adam update and leaves the
# moments alone (this is `torch.optim.AdamW`).
#
# You will write Adam as a `torch.optim.Optimizer`, usable in any training loop.

# %%
import torch

# %% [markdown]
# ## Task 1 — `Adam`
#
# Write `step`. For every parameter group and every parameter `p` of the group that has a
# gradient (skip those whose `p.grad` is None: no update, no decay, no state), apply the weight
# decay of the group's mode, update the state `step` (an int, the number of updates of this
# parameter so far), `exp_avg` ($m$) and `exp_avg_sq` ($v$), both created as zeros like `p` at
# the first update, and move `p` in place by the bias-corrected Adam step. Read the
# hyperparameters from the group (`group["lr"]`, `group["betas"]`, ...), not from the
# constructor's arguments: each group may have its own. If a `closure` is given, call it with
# gradients enabled before the update and return its result.

# %%
class Adam(torch.optim.Optimizer):
    """Adam (Kingma & Ba, 2014), with L2 or decoupled (AdamW) weight decay.

    Args:
        params: an iterable of tensors, or of dicts defining parameter groups
            (``{"params": [...], "lr": 0.1, "decoupled": True, ...}``). A group may override
            any of ``lr``, ``betas``, ``eps``, ``weight_decay`` and ``decoupled``; the rest
            come from the constructor's arguments. Each step reads every hyperparameter,
            ``decoupled`` included, from the parameter's own group.
        lr: step size α.
        betas: (β₁, β₂), decay rates of the first and second moment estimates.
        eps: ε, added to the square root of the bias-corrected second moment.
        weight_decay: λ.
        decoupled: False: L2 penalty, the gradient becomes g + λ·p (as torch.optim.Adam).
            True: decoupled decay, p ← p − lr·λ·p before the Adam update (as torch.optim.AdamW).

    ``step(closure=None)`` updates every parameter that has a gradient, in place and without
    recording autograd history, and returns ``closure()``'s result (None without a closure).
    ``self.state[p]`` holds ``step`` (int), ``exp_avg`` and ``exp_avg_sq`` (tensors like p).

    Works for float32 and float64 parameters on any device.

    Forbidden: ``torch.optim.Adam``, ``torch.optim.AdamW``, their functional forms
    (``torch.optim.adam.adam``, ``torch.optim.adamw.adamw``) and the fused kernels
    (``torch._fused_adam_``, ``torch._fused_adamw_``).
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled: bool = False,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError("lr, eps and weight_decay must be non-negative")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, decoupled=decoupled
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """One Adam update of every parameter that has a gradient; returns closure()'s result."""
        # BEGIN SOLUTION
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["decoupled"]:
                    p.mul_(1 - lr * weight_decay)  # AdamW: shrink the weights themselves
                else:
                    grad = grad + weight_decay * p  # L2: the penalty's gradient joins g
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_((1 - beta1) * grad)
                v.mul_(beta2).add_((1 - beta2) * grad * grad)
                m_hat = m / (1 - beta1**t)
                v_hat = v / (1 - beta2**t)
                p.sub_(lr * m_hat / (torch.sqrt(v_hat) + eps))
        return loss
        # END SOLUTION
