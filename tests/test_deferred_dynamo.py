"""``course.grading.deferred_dynamo``: a learner's optimizer does not import ``torch._dynamo``
in a grading child (about a second per process), and nothing changes once it is imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import torch

from course.grading.deferred_dynamo import defer
from course.grading.spec import Call
from course.isolation.runner import IsolatedRunner

OPTIMIZER = textwrap.dedent("""
    import sys
    import torch

    class Descent(torch.optim.Optimizer):
        def __init__(self, params, lr=0.5):
            super().__init__(params, dict(lr=lr))

        @torch.no_grad()
        def step(self):
            for group in self.param_groups:
                for p in group["params"]:
                    self.state[p]["steps"] = self.state[p].get("steps", 0) + 1
                    p.sub_(group["lr"] * p.grad)

    def run():
        p = torch.ones(3, dtype=torch.float64, requires_grad=True)
        opt = Descent([p])
        for _ in range(3):
            opt.zero_grad()
            with torch.enable_grad():  # (a probe runs without grad)
                (p ** 2).sum().backward()
            opt.step()
        opt.load_state_dict(opt.state_dict())
        return [float(p.detach()[0]), "torch._dynamo" in sys.modules]
""")


def _fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_an_optimizer_subclass_runs_without_dynamo_and_unchanged():
    run = f"{OPTIMIZER}\nprint(run())\n"
    plain = _fresh(run)
    deferred = _fresh("from course.grading.deferred_dynamo import defer_optimizers\n"
                      "print(defer_optimizers())\n" + run)
    assert plain == "[0.0, True]"  # without deferral, the constructor imports torch._dynamo
    assert deferred.splitlines() == [
        "['add_param_group', 'zero_grad', 'state_dict', 'load_state_dict']", "[0.0, False]"]


def test_once_dynamo_is_imported_the_real_disable_wrapper_is_used():
    out = _fresh(textwrap.dedent("""
        import torch
        from torch.optim import Optimizer
        from course.grading.deferred_dynamo import CACHE, defer_optimizers
        defer_optimizers()
        p = torch.zeros(2, requires_grad=True)
        opt = torch.optim.SGD([p], lr=0.1)  # add_param_group, called directly
        cached = getattr(Optimizer.zero_grad.__wrapped__, CACHE)
        before = cached.__closure__[[c for c in cached.__code__.co_freevars].index("real")]
        print(before.cell_contents is None)
        import torch._dynamo
        opt.zero_grad()
        print(callable(before.cell_contents))
    """))
    assert out.split() == ["True", "True"]


def test_only_wrappers_of_the_known_shape_are_touched():
    def plain(x):
        return x

    assert not defer(plain)
    assert not defer(None)
    wrapped = torch._disable_dynamo(plain)
    assert defer(wrapped)
    assert not defer(wrapped)  # already deferred
    assert wrapped(3) == 3


def test_in_an_isolated_child(isolation_level):
    r = IsolatedRunner([(1, OPTIMIZER)], "cpu", [])
    try:
        reply = r.run(Call("run"))
    finally:
        r.close()
    assert reply["ok"], reply
    assert reply["out"] == {"__kind__": "list", "items": [0.0, False]}


def test_the_in_kernel_check_of_adam_does_not_import_dynamo():
    """The learner's Adam subclasses torch.optim.Optimizer and runs in the kernel itself."""
    out = _fresh(textwrap.dedent("""
        import sys
        from course import catalogue
        from course.grading.submission import execute_cells
        from course.notebook import Checker
        unit = catalogue.find("adam")
        ns, _ = execute_cells([(1, unit.solution_path.read_text())], "_kernel")
        report = Checker("adam")(namespace=ns)
        print(report.passed, len(report.result.checks) > 0, "torch._dynamo" in sys.modules)
    """))
    assert out.split() == ["True", "True", "False"]
