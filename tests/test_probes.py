"""The probe layer on its own (:mod:`course.grading.probes`): a call leaves the tensors it is
given untouched, or fails naming the argument; documented in-place updates are allowed; a
detached returned tensor is reported by the gradient probe."""

from __future__ import annotations

import pytest
import torch

from course.grading.failures import Failure
from course.grading.probes import execute
from course.grading.spec import Call

CPU = torch.device("cpu")


def _run(source: str, call: Call) -> dict:
    ns: dict = {}
    exec(compile(source, "<learner cell 1>", "exec"), ns)
    return execute(call, ns, CPU, [])


def _failure(payload: dict) -> tuple[Failure | None, str]:
    err = payload.get("error") or {}
    return Failure.of(err), err.get("message", "")


def test_a_call_that_leaves_its_inputs_alone_passes():
    payload = _run("def f(x, y):\n    return x * 2 + y\n",
                   Call("f", (torch.ones(3), torch.zeros(3))))
    assert payload["ok"], payload


def test_changing_an_input_in_place_fails_naming_it():
    payload = _run("def f(x, scale):\n    x.mul_(scale)\n    return x\n",
                   Call("f", (torch.ones(3), 2.0)))
    kind, message = _failure(payload)
    assert not payload["ok"] and kind is Failure.INPUT_MODIFIED
    assert "`x` (argument 1)" in message and "its values" in message


def test_a_tensor_inside_a_tuple_argument_is_named_by_its_path():
    source = "def step(x, state):\n    h, c = state\n    c += 1\n    return x + h\n"
    payload = _run(source, Call("step", (torch.ones(2), (torch.zeros(2), torch.zeros(2)))))
    kind, message = _failure(payload)
    assert kind is Failure.INPUT_MODIFIED and "`state[1]` (argument 2)" in message


def test_keyword_arguments_and_shape_dtype_and_requires_grad_changes_are_caught():
    cases = {
        "def f(x, mask=None):\n    mask.fill_(False)\n    return x\n":
            ("the keyword argument `mask`", "its values"),
        "def f(x, mask=None):\n    x.resize_(1)\n    return mask\n": ("`x`", "its shape"),
        "def f(x, mask=None):\n    x.data = x.data.double()\n    return mask\n":
            ("`x`", "its dtype"),
    }
    for source, words in cases.items():
        payload = _run(source, Call("f", (torch.ones(3),), {"mask": torch.ones(3, dtype=bool)}))
        kind, message = _failure(payload)
        assert kind is Failure.INPUT_MODIFIED, (source, payload)
        assert all(w in message for w in words), (source, message)
    payload = _run("def f(x):\n    x.requires_grad_(False)\n    return x * 1\n",
                   Call("f", (torch.ones(3),), grad=(0,)))
    assert "its requires_grad from True to False" in _failure(payload)[1]


def test_documented_in_place_updates_are_allowed():
    source = "def update_(stats, x):\n    stats.mul_(0.5).add_(x)\n    return x * 2\n"
    call = (torch.ones(3), torch.arange(3.0))
    assert not _run(source, Call("update_", call))["ok"]
    assert _run(source, Call("update_", call, mutates=(0,)))["ok"]
    reported = _run(source, Call("update_", call, after=(0,)))
    assert reported["ok"] and "after" in reported


def test_nan_inputs_left_alone_are_not_mistaken_for_changes():
    payload = _run("def f(x):\n    return x.clone()\n",
                   Call("f", (torch.tensor([float("nan"), 1.0]),)))
    assert payload["ok"], payload


def test_the_gradient_probe_reports_which_returned_tensors_are_detached():
    source = "def f(x):\n    return x * 2, (x * 3).detach()\n"
    payload = _run(source, Call("f", (torch.ones(3),), grad=(0,)))
    assert payload["ok"]
    assert payload["grads"]["differentiable"] == [True, False]


def test_a_forbidden_name_whose_module_cannot_be_imported_counts_as_absent(tmp_path,
                                                                          monkeypatch):
    """A library the sandbox refuses to load (it raises something other than ImportError on
    import) must not break every probe of the unit that forbids one of its functions."""
    from course.grading.forbidden import Forbid, resolve

    (tmp_path / "refused_library.py").write_text("raise OSError('dlopen refused')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve("refused_library.fast_kernel") is None
    payload = execute(Call("f", (torch.ones(2),)), {"f": lambda x: x + 1}, CPU,
                      [Forbid(calls=("refused_library.fast_kernel",))])
    assert payload["ok"], payload


def test_a_probe_runs_seeded_as_after_torch_manual_seed_zero_and_restores_the_generator():
    ns = {"draw": lambda n: torch.rand(n)}
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    got = execute(Call("draw", (4,)), ns, torch.device("cpu"), [])
    assert torch.equal(torch.rand(1), before)  # the caller's generator state came back
    torch.manual_seed(0)
    assert torch.equal(got["out"]["data"], torch.rand(4))


def test_a_cpu_probe_queues_no_seed_for_an_uninitialised_cuda():
    if torch.cuda.is_initialized():
        pytest.skip("CUDA is running in this process, so a seed for it is meant")
    tracker = torch.cuda._lazy_seed_tracker
    before = tracker.get_calls()
    execute(Call("draw", (2,)), {"draw": lambda n: torch.rand(n)}, torch.device("cpu"), [])
    assert tracker.get_calls() == before
