"""Drivers for unit 2.8 `adam`: run an implementation's ``Adam`` on a fixed problem.

``trajectory(ns, problem, params0, steps, groups=None, none_grad=None, closure=False,
report_state=False, **opt_kwargs)`` builds leaf parameters from ``params0`` (their dtype and
device), builds ``ns["Adam"]`` on them, and runs ``steps`` updates of a fixed loss. It returns
every iterate (and, on request, the losses the closure returned and the optimizer's state).

Problems (plain dicts of tensors, so that the grader casts them with the probe):

- ``{"kind": "quadratic", "A": (n, n), "b": (n,), "quartic": c}``: with x the concatenation
  of all parameters, loss = ½ xᵀAx − bᵀx + c Σ x⁴ (c optional, default 0);
- ``{"kind": "mlp", "x": (N, d), "y": (N, k)}``: parameters (W1, b1, W2, b2), loss = mean of
  (tanh(x W1ᵀ + b1) W2ᵀ + b2 − y)².
"""

from __future__ import annotations

import torch

from course.grading.probes import ProbeError


def _loss_and_grads(problem: dict, params: list[torch.Tensor]):
    """The loss and its gradient w.r.t. each parameter, in closed form (no autograd: cheaper,
    and independent of the autograd state the learner's step leaves behind)."""
    params = [p.detach() for p in params]
    if problem["kind"] == "quadratic":
        a, b, c = problem["A"], problem["b"], problem.get("quartic", 0.0)
        x = torch.cat([p.reshape(-1) for p in params])
        loss = 0.5 * x @ (a @ x) - b @ x + c * (x**4).sum()
        gx = 0.5 * (a + a.T) @ x - b + 4 * c * x**3
        grads, start = [], 0
        for p in params:
            grads.append(gx[start:start + p.numel()].reshape(p.shape).clone())
            start += p.numel()
        return loss, grads
    if problem["kind"] == "mlp":
        w1, b1, w2, b2 = params
        x, y = problem["x"], problem["y"]
        hidden = torch.tanh(x @ w1.T + b1)
        residual = hidden @ w2.T + b2 - y
        loss = (residual**2).mean()
        d_out = 2 * residual / residual.numel()
        d_pre = (d_out @ w2) * (1 - hidden**2)
        return loss, [d_pre.T @ x, d_pre.sum(0), d_out.T @ hidden, d_out.sum(0)]
    raise ValueError(f"unknown problem {problem['kind']!r}")


def _has_no_grad(step: int, index: int, none_grad: dict | None) -> bool:
    """Whether parameter ``index`` gets no gradient at ``step`` (0-based): before
    ``none_grad["start"]`` and then on every ``none_grad["period"]``-th step."""
    if none_grad is None or index != none_grad["index"]:
        return False
    return step < none_grad["start"] or step % none_grad["period"] == 0


def _state_of(opt, p: torch.Tensor):
    state = opt.state.get(p) if hasattr(opt.state, "get") else None
    if not state:
        return None
    missing = [k for k in ("step", "exp_avg", "exp_avg_sq") if k not in state]
    if missing:
        raise ProbeError(
            f"optimizer.state[p] has keys {sorted(map(str, state))}; it must hold 'step', "
            f"'exp_avg' and 'exp_avg_sq' (missing {missing})"
        )
    step = int(state["step"])
    if step == 0:  # created ahead of any update: the same as no state yet
        return None
    return {
        "step": step,
        "exp_avg": torch.as_tensor(state["exp_avg"]),
        "exp_avg_sq": torch.as_tensor(state["exp_avg_sq"]),
    }


def trajectory(
    ns: dict,
    problem: dict,
    params0: list[torch.Tensor],
    steps: int,
    groups: list[dict] | None = None,
    none_grad: dict | None = None,
    closure: bool = False,
    report_state: bool = False,
    **opt_kwargs,
) -> dict:
    """Run ``steps`` updates of ``ns["Adam"]`` and return ``{"iterates": (steps + 1, n)}``,
    plus ``"losses"`` (what ``step(closure)`` returned, as floats) when ``closure`` and
    ``"state"`` (per parameter: None or its step, exp_avg, exp_avg_sq) when ``report_state``.

    ``groups``: list of dicts, each with ``"params"`` (indices into ``params0``) and that group's
    options; None passes the parameter list itself. ``none_grad``: ``{"index", "start",
    "period"}``, a parameter that has ``grad = None`` on some steps (see ``_has_no_grad``).
    """
    params = [p.detach().clone().requires_grad_(True) for p in params0]
    if groups is None:
        spec: list = params
    else:
        spec = [
            {**{k: v for k, v in g.items() if k != "params"},
             "params": [params[i] for i in g["params"]]}
            for g in groups
        ]
    opt = ns["Adam"](spec, **opt_kwargs)

    def flat() -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in params]).clone()

    def set_grads(step: int) -> torch.Tensor:
        loss, grads = _loss_and_grads(problem, params)
        for i, (p, g) in enumerate(zip(params, grads)):
            p.grad = None if _has_no_grad(step, i, none_grad) else g
        return loss

    iterates = [flat()]
    losses: list[float | None] = []
    for step in range(steps):
        for p in params:
            p.grad = None
        with torch.enable_grad():  # as in a training loop: step() must turn autograd off
            if closure:
                out = opt.step(lambda step=step: set_grads(step))
                losses.append(float(out) if isinstance(out, torch.Tensor) else None)
            else:
                set_grads(step)
                opt.step()
        iterates.append(flat())
    result: dict = {"iterates": torch.stack(iterates)}
    if closure:
        result["losses"] = losses
    if report_state:
        result["state"] = [_state_of(opt, p) for p in params]
    return result
