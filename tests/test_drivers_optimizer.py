"""The grader's Adam (``course/grading/drivers/optimizer.py``) against ``torch.optim.Adam``.

The drivers of word2vec, lenet, ppo and lora train learner models with it instead of
``torch.optim.Adam``, whose construction imports ``torch._dynamo``. It must follow
``torch.optim.Adam`` bit for bit, including a learning-rate schedule, a parameter that gets no
gradient on some steps, and float64 as the default dtype; and it must not import dynamo.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from course.grading.drivers.optimizer import Adam


def _run(make, dtype: torch.dtype, steps: int = 30) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(5, 3, generator=gen, dtype=dtype).requires_grad_()
    b = torch.randn(3, generator=gen, dtype=dtype).requires_grad_()
    x = torch.randn(8, 5, generator=gen, dtype=dtype)
    opt = make([w, b])
    for t in range(steps):
        opt.param_groups[0]["lr"] = 0.05 * (1 + t) ** -0.5
        opt.zero_grad()
        loss = torch.tanh(x @ w).pow(2).mean() + (b.pow(2).sum() if t % 3 else 0.0)
        loss.backward()
        opt.step()
    return [w.detach().clone(), b.detach().clone(), *(opt.state[p]["exp_avg_sq"] for p in (w, b))]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("default", [torch.float32, torch.float64])
def test_matches_torch_adam_bit_for_bit(dtype, default):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(default)
    try:
        ours = _run(lambda ps: Adam(ps, lr=0.05, betas=(0.8, 0.99), eps=1e-6), dtype)
        theirs = _run(lambda ps: torch.optim.Adam(ps, lr=0.05, betas=(0.8, 0.99), eps=1e-6),
                      dtype)
    finally:
        torch.set_default_dtype(previous)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(ours[0], _run(lambda ps: Adam(ps, lr=0.05), dtype)[0])


def test_a_parameter_without_gradient_is_left_alone():
    p, q = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = Adam([p, q], lr=0.1)
    (p * 3).sum().backward()
    opt.step()
    assert torch.equal(q.detach(), torch.ones(2)) and q not in opt.state
    assert torch.allclose(p.detach(), torch.full((2,), 0.9))


def test_does_not_import_dynamo():
    code = ("import sys, torch\n"
            "from course.grading.drivers.optimizer import Adam\n"
            "p = torch.zeros(3, requires_grad=True)\n"
            "opt = Adam([p], lr=0.1)\n"
            "p.sum().backward(); opt.step()\n"
            "assert p.detach().ne(0).all()\n"
            "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False"]
