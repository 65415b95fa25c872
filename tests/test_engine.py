"""The grading engine's contract, on small hand-written submissions against layer-norm:
isolation, limits, forbidden calls, safe results, feedback in words, determinism."""

from __future__ import annotations

import pytest
import torch

from course.catalogue import find
from course.grading.checks import master_source
from course.grading.compare import Tolerance, compare_values
from course.grading.encode import EncodeError, encode
from course.grading.engine import grade_submission
from course.grading.spec import Call
from course.grading.submission import SubmissionError, read_submission
from course.grading.wire import WireError, from_bytes, to_bytes
from course.isolation import sandbox
from course.isolation.runner import IsolatedRunner, Limits

LN = find("layer-norm")


def grade(path, **kw):
    return grade_submission(LN, path, device="cpu", **kw)


def by_id(result):
    return {c.id: c for c in result.checks}


def test_learner_cannot_import_solutions_or_autograder(write):
    code = master_source(LN) + (
        "\ntry:\n    import solutions.optimization.layer_norm as _ref\n"
        "    layer_norm = _ref.layer_norm\nexcept ImportError as exc:\n    _msg = str(exc)\n"
        "    print('blocked:', exc)\n"
        "import importlib\ntry:\n    importlib.import_module('autograder')\n"
        "    raise SystemExit('autograder importable')\nexcept ImportError:\n    pass\n"
    )
    result = grade(write("sub.py", code))
    assert result.passed, [c.output for c in result.checks if c.status != "passed"]
    assert not any("autograder importable" in n for n in result.notes)


def test_submission_without_reference_code_cannot_read_it(write):
    code = (
        "import importlib, sys\n"
        "def layer_norm(x, weight=None, bias=None, eps=1e-5):\n"
        "    mod = importlib.import_module('solutions.optimization.layer_norm')\n"
        "    return mod.layer_norm(x, weight, bias, eps)\n"
    )
    checks = by_id(grade(write("sub.py", code)))
    assert checks["forward"].status == "failed"
    assert "cannot be imported while your code is graded" in checks["forward"].output


def test_learner_sees_a_scrubbed_environment(write):
    """The grader's settings and secrets never reach learner code; HOME is its own folder."""
    import os

    from course.isolation.child import scrub_environment

    environ = {"COURSE_SECRET_FOR_TEST": "s3cret", "PATH": "/usr/bin", "HOME": "/root"}
    scrub_environment("/tmp/x", environ)
    assert environ == {"PATH": "/usr/bin", "HOME": "/tmp/x", "TMPDIR": "/tmp/x"}
    assert os.environ.get("COURSE_PROBE_TIMEOUT"), "the grader itself runs with COURSE_ settings"
    code = master_source(LN) + (
        "\nimport os\nleaked = sorted(k for k in os.environ if k.startswith('COURSE_'))\n"
        "if leaked or not os.getcwd().startswith(os.environ['HOME']):\n"
        "    raise SystemExit(f'saw the grader environment: {leaked}')\n"
    )
    result = grade(write("sub.py", code))
    assert result.passed and not result.notes, result.notes


def test_forbidden_call_is_named(write):
    code = (
        "import torch.nn.functional as F\n"
        "def layer_norm(x, weight=None, bias=None, eps=1e-5):\n"
        "    return F.layer_norm(x, x.shape[-1:], weight, bias, eps)\n"
    )
    out = by_id(grade(write("sub.py", code)))["forward"]
    assert out.status == "failed"
    assert "torch.nn.functional.layer_norm" in out.output and "forbids" in out.output


def test_forbidden_call_through_torch_ops_is_named(write):
    code = (
        "import torch\n"
        "def layer_norm(x, weight=None, bias=None, eps=1e-5):\n"
        "    return torch.ops.aten.native_layer_norm(x, [x.shape[-1]], weight, bias, eps)[0]\n"
    )
    out = by_id(grade(write("sub.py", code)))["forward"]
    assert out.status == "failed" and "native_layer_norm" in out.output


def test_autograd_forbidden_in_manual_backward_only(write):
    code = master_source(LN).replace(
        "    # BEGIN SOLUTION\n    mean = x.mean(dim=-1, keepdim=True)\n    centred",
        "    # BEGIN SOLUTION\n    if True:\n        xx = x.detach().requires_grad_()\n"
        "        y = layer_norm(xx, weight, None, eps)\n"
        "        (dx,) = torch.autograd.grad(y, xx, grad_out)\n"
        "    mean = x.mean(dim=-1, keepdim=True)\n    centred",
    ).replace("    dx = inv_std * (", "    _dx = inv_std * (")
    result = by_id(grade(write("sub.py", code)))
    assert result["forward"].status == "passed"
    assert result["backward"].status == "failed"
    assert "torch.autograd.grad" in result["backward"].output


def test_infinite_loop_in_a_call_costs_that_check_only(write, monkeypatch):
    monkeypatch.setenv("COURSE_PROBE_TIMEOUT", "2")
    code = master_source(LN).replace(
        "    leading = tuple(range(x.dim() - 1))",
        "    while True:\n        pass\n    leading = tuple(range(x.dim() - 1))",
    )
    result = by_id(grade(write("sub.py", code)))
    assert result["forward"].status == "passed"
    assert "time limit" in result["backward"].output
    assert result["module_forward"].status == "passed"  # a fresh child took over


def test_exit_at_import_is_reported_and_scored_zero(write):
    result = grade(write("sub.py", "import os\nos._exit(7)\n"))
    assert result.score == 0
    assert "exit status 7" in result.fatal
    assert all("exit status 7" in c.output for c in result.checks)


def test_crash_inside_a_call_costs_that_check_only(write):
    code = master_source(LN).replace(
        "    leading = tuple(range(x.dim() - 1))",
        "    import os; os.kill(os.getpid(), 9)\n    leading = tuple(range(x.dim() - 1))",
    )
    result = by_id(grade(write("sub.py", code)))
    assert result["forward"].status == "passed"
    assert "killed by SIGKILL" in result["backward"].output
    assert result["module_parameters"].status == "passed"


def test_output_is_capped(write):
    code = master_source(LN) + "\nfor _ in range(200000):\n    print('x' * 100)\n"
    result = grade(write("sub.py", code), limits=Limits(output_chars=1000))
    assert result.passed


def test_tensor_subclass_is_refused(write):
    code = (
        "import torch\nclass Sneaky(torch.Tensor):\n    pass\n"
        "def layer_norm(x, weight=None, bias=None, eps=1e-5):\n"
        "    return torch.zeros_like(x).as_subclass(Sneaky)\n"
    )
    out = by_id(grade(write("sub.py", code)))["forward"]
    assert out.status == "failed" and "subclass of torch.Tensor" in out.output


def test_wrong_dtype_shape_and_nan_are_explained(write):
    wrong_dtype = "def layer_norm(x, weight=None, bias=None, eps=1e-5):\n    return x.double()\n"
    out = by_id(grade(write("a.py", "import torch\n" + wrong_dtype)))["forward"]
    assert "dtype float64, expected float32" in out.output
    wrong_shape = "def layer_norm(x, weight=None, bias=None, eps=1e-5):\n    return x[..., :1]\n"
    out = by_id(grade(write("b.py", wrong_shape)))["forward"]
    assert "shape" in out.output and "expected (4, 8)" in out.output
    nan = "def layer_norm(x, weight=None, bias=None, eps=1e-5):\n    return x * float('nan')\n"
    out = by_id(grade(write("c.py", nan)))["forward"]
    assert "non-finite" in out.output and "NaN" in out.output


def test_feedback_states_case_error_and_hint(write):
    code = master_source(LN).replace("torch.sqrt(var + eps)", "(torch.sqrt(var) + eps)")
    out = by_id(grade(write("sub.py", code)))["forward_small_variance"]
    assert "layer_norm(0.01·x[4, 8])" in out.output
    assert "max abs error" in out.output and "max rel error" in out.output
    assert "epsilon is added outside the square root" in out.output
    assert out.mistake == "eps-outside-sqrt"


def test_broken_helper_cell_keeps_other_credit(write):
    code = master_source(LN) + "\ndef helper(:\n    pass\n"
    import json

    nb = {
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": master_source(LN), "outputs": [],
             "execution_count": None, "id": "a"},
            {"cell_type": "code", "metadata": {}, "source": "def helper(:\n    pass\n",
             "outputs": [], "execution_count": None, "id": "b"},
            {"cell_type": "code", "metadata": {}, "source": "%timeit 1 + 1\nraise ValueError('x')",
             "outputs": [], "execution_count": None, "id": "c"},
        ],
    }
    result = grade(write("sub.ipynb", json.dumps(nb)))
    assert result.passed
    assert any("syntax error" in n for n in result.notes)
    assert any("ValueError" in n for n in result.notes)
    assert code  # the .py variant is exercised elsewhere


def test_grading_is_deterministic(write):
    code = master_source(LN).replace("unbiased=False", "unbiased=True")
    path = write("sub.py", code)
    first, second = grade(path), grade(path)
    assert [(c.id, c.score, c.output) for c in first.checks] == [
        (c.id, c.score, c.output) for c in second.checks
    ]


def test_in_process_and_isolated_agree(write):
    path = write("sub.py", master_source(LN).replace("y = y * weight", "y = y"))
    a, b = grade(path), grade(path, isolation="none")
    assert [(c.id, c.score, c.mistake) for c in a.checks] == [
        (c.id, c.score, c.mistake) for c in b.checks
    ]
    assert a.isolation == sandbox.level() and b.isolation == "none"


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("empty.ipynb", "", "is empty"),
        ("junk.ipynb", b"\x89PNG\x00\xff\xfe", "UTF-8"),
        ("text.ipynb", "hello", "not JSON"),
        ("list.ipynb", "[1, 2]", "not a Jupyter notebook"),
        ("v3.ipynb", '{"nbformat": 3, "cells": []}', "nbformat version 3"),
        ("notes.txt", "print(1)", "expected a .ipynb notebook or a .py file"),
    ],
)
def test_unreadable_submissions_say_why(write, name, content, words):
    with pytest.raises(SubmissionError, match=words):
        read_submission(write(name, content))


def test_encoding_round_trip_and_refusals():
    value = (torch.ones(2, dtype=torch.float64), {"a": 1, "b": [2.5, None, "s"]})
    back = from_bytes(to_bytes(encode(value)))
    assert back["__kind__"] == "tuple" and back["items"][0]["data"].dtype == torch.float64
    with pytest.raises(EncodeError):
        encode(object())
    with pytest.raises(EncodeError):
        encode({1: 2})


def test_grader_never_unpickles_learner_objects():
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(WireError):
        from_bytes(pickle.dumps(Evil()))


def test_compare_reports_first_difference():
    t = lambda x: {"__kind__": "tensor", "data": x, "device": "cpu"}  # noqa: E731
    want = t(torch.zeros(3))
    diff = compare_values(t(torch.tensor([0.0, 1.0, 0.0])), want, want, "output", Tolerance(),
                          "cpu")
    assert diff and "index (1,)" in diff.message and "max abs error 1" in diff.message
    assert compare_values(t(torch.zeros(3)), want, want, "output", Tolerance(), "cpu") is None


def test_isolated_runner_survives_probe_timeouts():
    cells = [(1, "def f(x):\n    while True:\n        pass\ndef g(x):\n    return x + 1\n")]
    with IsolatedRunner(cells, "cpu", [], Limits(probe_seconds=1.5)) as runner:
        slow = runner.run(Call("f", (torch.ones(1),)))
        fast = runner.run(Call("g", (torch.ones(1),)))
    assert not slow["ok"] and "time limit" in slow["error"]["message"]
    assert fast["ok"] and fast["out"]["data"].item() == 2.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_reference_passes_on_cuda():
    result = grade_submission(LN, LN.solution_path, device="cuda")
    assert result.passed and result.device == "cuda"


def test_tampering_with_grader_code_in_the_child_is_caught(write):
    code = (
        "import contextlib\nimport torch.nn.functional as F\n"
        "import course.grading.probes as probes\n"
        "@contextlib.contextmanager\ndef _blind(rules, name):\n    yield []\n"
        "probes.watch = _blind\n"
        "def layer_norm(x, weight=None, bias=None, eps=1e-5):\n"
        "    return F.layer_norm(x, x.shape[-1:], weight, bias, eps)\n"
    )
    result = grade(write("sub.py", code))
    assert result.score == 0
    assert all("modified the grader's own code" in c.output for c in result.checks)
    assert "course.grading.probes.watch" in result.checks[0].output


def test_forbidden_call_with_torch_function_disabled_is_caught(write):
    code = (
        "import torch\nimport torch.nn.functional as F\n"
        "def layer_norm(x, weight=None, bias=None, eps=1e-5):\n"
        "    with torch._C.DisableTorchFunction():\n"
        "        return F.layer_norm(x, x.shape[-1:], weight, bias, eps)\n"
    )
    out = by_id(grade(write("sub.py", code)))["forward"]
    assert out.status == "failed" and "native_layer_norm" in out.output


def test_a_gradient_the_reference_stops_is_caught(write):
    """The master's z_q stops the codebook's gradient; a z_q that lets it through fails the
    comparison itself, naming the gradient that should be none (not only a check's own test)."""
    unit = find("vq-vae")
    leaky = master_source(unit).replace("z_q = z + (e - z).detach()", "z_q = z + (e - z.detach())")
    result = grade_submission(unit, write("sub.py", leaky), device="cpu")
    check = {c.id: c for c in result.checks}["quantize_straight_through"]
    assert check.status == "failed"
    assert "gradient w.r.t. arg1 should be none" in check.output, check.output
    assert {c.id for c in result.checks if c.status == "failed"} <= {
        "quantize_straight_through", "quantize", "quantize_ties", "quantize_mixed_dtypes"}


def test_a_zero_gradient_where_the_reference_has_none_is_not_a_leak():
    from course.grading.grader import _leaked_gradient

    tol = Tolerance()
    assert _leaked_gradient(None, tol) == ""
    assert _leaked_gradient(encode(torch.zeros(3)), tol) == ""
    assert _leaked_gradient(encode(torch.full((3,), 1e-9)), tol) == ""
    assert "2 non-zero of 3" in _leaked_gradient(encode(torch.tensor([0.0, 1.0, float("nan")])),
                                                 tol)


def test_a_grader_owned_module_s_parameters_count_for_params_gradients(write):
    """grad=("params",) covers modules the grader builds itself (Fixture), not only the
    learner's (Make): a prior_loss that freezes the grader's prior loses the gradient check,
    and only it."""
    unit = find("dall-e-2")
    frozen = master_source(unit).replace(
        "    pred = model(x_t, t, text_emb)", "    model.requires_grad_(False)\n"
        "    pred = model(x_t, t, text_emb)")
    assert frozen != master_source(unit)
    result = grade_submission(unit, write("sub.py", frozen), device="cpu")
    failed = {c.id for c in result.checks if c.status == "failed"}
    assert failed == {"prior_loss_gradients"}, failed


def test_outputs_belong_on_the_device_only_where_the_probe_put_its_inputs():
    """On CUDA the learner's tensors must follow the probe's inputs to the device; a probe
    given only ints or strings (``linear_beta_schedule(T)``, ``bpe_train(text, n)``, a layout
    driver given sizes) must leave its outputs on the CPU, where the reference makes them.
    Seen on an H200: those checks failed the reference itself with "output is on cpu,
    expected cuda"."""
    from course.grading.spec import Fixture, Inspect, Make, places_on_device

    assert not places_on_device(Call("linear_beta_schedule", (10,)))
    assert not places_on_device(Call("bpe_train", ("a b", 3), {"verbose": False}))
    assert not places_on_device(Call("@lenet.layout", (10,)))
    assert places_on_device(Call("f", (torch.zeros(2),)))
    assert places_on_device(Call("f", (), {"x": [1, (torch.zeros(1),)]}))
    assert places_on_device(Call(Make("Net", (3,)), (4,), method="count"))
    assert places_on_device(Call("f", (Fixture("ToyEpsModel"),)))
    assert places_on_device(Inspect(Make("Net", (3,))))
    want = encode(torch.zeros(3))
    on_gpu = dict(want, device="cuda")
    assert compare_values(on_gpu, want, want, "output", Tolerance(), None) is None
    diff = compare_values(on_gpu, want, want, "output", Tolerance(), "cpu")
    assert diff is not None and "is on cuda, expected cpu" in diff.message
