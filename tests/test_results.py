"""Structured results: checks produce data (case, Difference, mistake), ``course.report`` words
it, and check files read learner outcomes as plain values, never the wire format."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from course.catalogue import find
from course.grading.checks import master_source
from course.grading.compare import Difference
from course.grading.encode import decode, encode
from course.grading.engine import CheckResult, UnitResult, grade_submission
from course.grading.outcome import Outcome
from course.report import check_output, failure_text, gradescope_json

ROOT = Path(__file__).resolve().parent.parent
LN = find("layer-norm")
WIRE = re.compile(r"""\[["'](out|items|data|grads|after)["']\]|__kind__""")


def _eps_outside(write) -> CheckResult:
    code = master_source(LN).replace("torch.sqrt(var + eps)", "(torch.sqrt(var) + eps)")
    result = grade_submission(LN, write("sub.py", code), device="cpu", isolation="none")
    return {c.id: c for c in result.checks}["forward_small_variance"]


def test_a_failed_comparison_keeps_its_fields(write):
    c = _eps_outside(write)
    assert c.status == "failed" and c.mistake == "eps-outside-sqrt"
    assert c.case is not None and c.case.startswith("layer_norm(0.01·x[4, 8])")
    d = c.difference
    assert isinstance(d, Difference) and d.where == "output"
    assert d.max_abs is not None and d.max_abs > 0 and d.max_rel is not None
    assert d.index is not None and len(d.index) == 2
    assert c.hint and "outside the square root" in c.hint
    # the words are rendered from those fields, and nowhere else
    assert c.output == failure_text(c.message, c.case, c.hint, c.cases)
    assert c.output.startswith(f"{c.case}: {d.message}")
    assert f"Hint: {c.hint}" in c.output


def test_results_round_trip_and_gradescope_data(write):
    c = _eps_outside(write)
    back = CheckResult.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back == c and back.output == c.output
    unit = UnitResult("layer-norm", "2.6", "t", "cpu", "none", None, checks=[c])
    test = gradescope_json([unit])["tests"][0]
    assert test["output"] == c.output
    extra = test["extra_data"]
    assert extra["mistake"] == "eps-outside-sqrt" and extra["case"] == c.case
    assert extra["difference"]["index"] == list(c.difference.index)
    assert extra["difference"]["max_abs"] == c.difference.max_abs


def test_a_record_written_before_fields_reads_back_the_same():
    old = {"id": "forward", "title": "t", "max_score": 1.0, "score": 0.0, "status": "failed",
           "output": "case: wrong\nHint: h", "public": True, "mistake": "m", "seconds": 0.1,
           "cases": [], "ran": True}
    assert CheckResult.from_dict(old).output == old["output"]
    error = dict(old, status="error", output="Internal grader error (not your fault): boom")
    assert CheckResult.from_dict(error).output == error["output"]
    passed = dict(old, status="passed", output="Passed: a; b", cases=["a", "b"], mistake=None)
    assert CheckResult.from_dict(passed).output == passed["output"]


def test_passed_and_error_wording():
    ok = CheckResult("x", "title", 1, 1, "passed", True, cases=["c1", "c2"])
    assert check_output(ok) == "Passed: c1; c2"
    assert check_output(CheckResult("x", "title", 1, 1, "passed", True)) == "Passed: title"
    err = CheckResult("x", "t", 1, 0, "error", True, message="KeyError: 'a'")
    assert check_output(err) == "Internal grader error (not your fault): KeyError: 'a'"


def test_outcome_gives_plain_values():
    value = (torch.arange(3.0), {"k": [1, 2.5, "s"], "d": torch.float64}, None)
    payload = {"ok": True, "out": encode(value),
               "grads": {"items": {"x": encode(torch.ones(2)), "y": None},
                         "differentiable": [True]},
               "after": encode({"arg0": torch.zeros(1)})}
    got = Outcome(payload)
    assert isinstance(got.out, tuple) and torch.equal(got.out[0], torch.arange(3.0))
    assert got.out[1] == {"k": [1, 2.5, "s"], "d": torch.float64} and got.out[2] is None
    assert torch.equal(got.grads["x"], torch.ones(2)) and got.grads["y"] is None
    assert torch.equal(got.after["arg0"], torch.zeros(1))
    assert got.differentiable == [True] and got.device == "cpu"
    assert decode(encode(torch.device("cpu"))) == torch.device("cpu")


def test_check_files_never_read_the_wire_format():
    offenders = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for path in [*sorted((ROOT / "autograder").rglob("*.py")),
                     ROOT / "course" / "grading" / "cell_checks.py"]
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if WIRE.search(line)
    ]
    assert not offenders, "\n".join(offenders)
