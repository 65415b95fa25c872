"""The grader's own Adam, for drivers that train learner models.

Constructing any ``torch.optim.Optimizer`` imports ``torch._dynamo`` (``add_param_group`` is
wrapped by ``torch._disable_dynamo``, which imports it on first use): about a second in every
grading process, more than the training it serves. :class:`Adam` keeps ``torch.optim.Adam``'s
defaults, state and arithmetic without that base class: each step hands the same lists to the
same functional update, ``torch.optim.adam.adam``, that ``torch.optim.Adam.step`` calls, so a
run matches ``torch.optim.Adam`` bit for bit (``tests/test_drivers_optimizer.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.optim.adam import adam


class Adam:
    """``torch.optim.Adam(params, lr, betas, eps)`` with no weight decay, AMSGrad or
    maximisation; ``param_groups[0]["lr"]`` may be changed between steps, as for a schedule.

    ``state[p]`` holds ``step`` (a CPU scalar tensor, float64 when that is the default dtype,
    else float32), ``exp_avg`` and ``exp_avg_sq``, created at ``p``'s first gradient.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.param_groups: list[dict[str, Any]] = [
            {"params": list(params), "lr": lr, "betas": betas, "eps": eps}]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        step_dtype = torch.float64 if torch.get_default_dtype() == torch.float64 \
            else torch.float32
        for group in self.param_groups:
            params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {
                        "step": torch.tensor(0.0, dtype=step_dtype),
                        "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                        "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                    }
                params.append(p)
                grads.append(p.grad)
                exp_avgs.append(state["exp_avg"])
                exp_avg_sqs.append(state["exp_avg_sq"])
                steps.append(state["step"])
            beta1, beta2 = group["betas"]
            adam(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False,
                 has_complex=any(torch.is_complex(p) for p in params), beta1=beta1,
                 beta2=beta2, lr=group["lr"], weight_decay=0.0, eps=group["eps"],
                 maximize=False)
