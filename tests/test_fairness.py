"""Fair to correct code written elsewhere (issue 11).

1. Every requirement a hidden check enforces is written where the learner reads it. The
   reference is graded with a runner that records every probe each check sends; from the
   probes come the requirements (gradients asked for: the code must be differentiable; a
   float64 or other non-default dtype: the dtype rule; a seeded generator handed over: the
   draws); each must be named in the docstring of the exercise's task (the stub the learner
   sees in the generated notebook), not only in a hint after failing.
2. Correct code written another way than the master's gets full marks (layers created in
   another order, ``nn.Dropout``'s ``forward(x)``), and one mistake costs its own task.
"""

from __future__ import annotations

import ast
import json
import re
from collections import defaultdict

import pytest

from course import catalogue
from course.grading.checks import load_checks, master_source
from course.grading.engine import grade_runner, grade_submission, unit_context
from course.grading.grader import Mistake, probe_dtypes
from course.grading.spec import Call, Gen, Make, Probe
from course.isolation.inprocess import InProcessRunner
from tests.conftest import gradable_units

UNITS = gradable_units()

# what a docstring must say, per requirement a probe reveals
WORDS = {
    "differentiable": re.compile(r"differentiab|autograd", re.I),
    "dtype": re.compile(r"dtype|float16|float32|float64|bfloat16", re.I),
    "generator draws": re.compile(r"generator.*draw|draw.*generator", re.I | re.S),
}


class RecordingRunner(InProcessRunner):
    """The in-process runner, noting each probe under the check that sent it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.probes: dict[str, list[Probe]] = defaultdict(list)

    def run(self, probe: Probe, timeout: float | None = None) -> dict:
        self.probes[self.current_check].append(probe)
        return super().run(probe, timeout)


def _has_generator(value) -> bool:
    if isinstance(value, Gen):
        return True
    if isinstance(value, (tuple, list)):
        return any(_has_generator(v) for v in value)
    if isinstance(value, dict):
        return any(_has_generator(v) for v in value.values())
    if isinstance(value, Make):
        return _has_generator(value.args) or _has_generator(value.kwargs)
    if isinstance(value, Call):
        return any(_has_generator(v) for v in (value.target, value.args, value.kwargs))
    return False


def requirements(probe: Probe) -> set[str]:
    """What running ``probe`` asks of the learner's code beyond its values."""
    found = set()
    if isinstance(probe, Call) and probe.grad:
        found.add("differentiable")
    if set(probe_dtypes(probe)) - {"float32"}:
        found.add("dtype")
    if _has_generator(probe):
        found.add("generator draws")
    return found


def exercise_docstrings(unit: catalogue.Unit) -> dict[str, str]:
    """Name -> docstring of every function and class in the exercise notebook the learner
    gets (a class's docstring joined with its methods')."""
    found = {}
    for cell in json.loads(unit.exercise_path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                found[node.name] = ast.get_docstring(node) or ""
            elif isinstance(node, ast.ClassDef):
                parts = [ast.get_docstring(node) or ""]
                parts += [ast.get_docstring(m) or "" for m in node.body
                          if isinstance(m, ast.FunctionDef)]
                found[node.name] = "\n".join(parts)
    return found


def unwritten_requirements(unit: catalogue.Unit) -> list[str]:
    """``check id [task]: requirement`` for every requirement a check's probes enforce that
    the task's docstring does not mention."""
    checks = load_checks(unit)
    ctx = unit_context(unit, "cpu")
    runner = RecordingRunner(dict(ctx.reference.namespace), "cpu", checks.forbidden)
    result = grade_runner(unit, runner, "cpu")
    assert result.score == result.max_score, "the reference must pass for this audit"
    docs = exercise_docstrings(unit)
    gaps = []
    for info, _ in checks.checks:
        for probe in runner.probes[info.title]:
            # a grader-owned driver ("@unit.fn") exercises the check's task
            name = probe.name.split(".")[0]
            task = info.task if name.startswith("@") else name
            doc = docs.get(task)
            if doc is None:
                gaps.append(f"{info.id} [{task}]: no docstring in the exercise")
                continue
            gaps += [f"{info.id} [{task}]: {need}" for need in sorted(requirements(probe))
                     if not WORDS[need].search(doc)]
    return sorted(set(gaps))


@pytest.mark.parametrize("unit", UNITS, ids=[u.slug for u in UNITS])
def test_every_enforced_requirement_is_in_the_docstring(unit):
    gaps = unwritten_requirements(unit)
    assert not gaps, "checks enforce what the exercise's docstrings do not say:\n" + "\n".join(gaps)


def test_the_audit_finds_an_unwritten_requirement(monkeypatch):
    """The audit can fail: with layer_norm's differentiability sentence removed from the
    exercise, its autograd check is reported."""
    unit = catalogue.find("layer-norm")
    real = exercise_docstrings(unit)
    cut = {name: re.sub(r"differentiab\w*|autograd", "", doc, flags=re.I)
           for name, doc in real.items()}
    monkeypatch.setattr(f"{__name__}.exercise_docstrings", lambda _unit: cut)
    gaps = unwritten_requirements(unit)
    assert "autograd_through_forward [layer_norm]: differentiable" in gaps


# -- correct code written another way ---------------------------------------------------------


def _variant(unit: catalogue.Unit, edits: dict[str, str], write, name: str):
    """The master with ``edits`` applied (each old text exactly once), graded isolated."""
    source = Mistake(name, "", edits).apply(master_source(unit))
    return grade_submission(unit, write(f"{unit.module}_{name}.py", source), device="cpu")


def _scores(result) -> dict[str, float]:
    return {c.id: c.score for c in result.checks}


def _full(result) -> dict[str, float]:
    return {c.id: c.max_score for c in result.checks}


def test_attention_layers_made_in_another_order_get_full_marks(write):
    unit = catalogue.find("transformer")
    made = ("        self.q_proj = nn.Linear(d_model, d_model, bias=bias)\n"
            "        self.k_proj = nn.Linear(d_model, d_model, bias=bias)\n"
            "        self.v_proj = nn.Linear(d_model, d_model, bias=bias)\n"
            "        self.out_proj = nn.Linear(d_model, d_model, bias=bias)\n")
    other = ("        self.out_proj = nn.Linear(d_model, d_model, bias=bias)\n"
             "        self.v_proj = nn.Linear(d_model, d_model, bias=bias)\n"
             "        self.k_proj = nn.Linear(d_model, d_model, bias=bias)\n"
             "        self.q_proj = nn.Linear(d_model, d_model, bias=bias)\n")
    result = _variant(unit, {made: other}, write, "reordered")
    assert _scores(result) == _full(result)


def test_detached_attention_weights_are_named_in_the_message(write):
    unit = catalogue.find("transformer")
    result = _variant(unit, {"return self.out_proj(concat), weights":
                             "return self.out_proj(concat), weights.detach()"}, write, "detached")
    failed = {c.id: c.output for c in result.checks if c.score < c.max_score}
    assert set(failed) == {"mha_gradients"}, failed
    assert "number 2 is detached" in failed["mha_gradients"]


def test_dropout_module_with_nn_dropouts_forward_gets_full_marks(write):
    unit = catalogue.find("dropout")
    result = _variant(unit, {
        "self, x: torch.Tensor, generator: torch.Generator | None = None\n    ) -> torch.Tensor:":
        "self, x: torch.Tensor\n    ) -> torch.Tensor:",
        "return dropout(x, self.p, training=self.training, generator=generator)":
        "return dropout(x, self.p, training=self.training)",
    }, write, "nn-forward")
    assert _scores(result) == _full(result)


def _lost(unit: catalogue.Unit, mistake_id: str, write) -> set[str]:
    [mistake] = [m for m in load_checks(unit).mistakes if m.id == mistake_id]
    path = write(f"{unit.module}_{mistake.id}.py", mistake.apply(master_source(unit)))
    result = grade_submission(unit, path, device="cpu")
    return {c.id for c in result.checks if c.score < c.max_score}


def test_a_cell_mistake_costs_only_the_cells_checks_and_the_combined_one(write):
    unit = catalogue.find("lstm")
    lost = _lost(unit, "gate-order-fi", write)
    by_id = {info.id: info for info, _ in load_checks(unit).checks}
    assert {by_id[i].task for i in lost} <= {"LSTMCell"} | {"lstm_forward"}
    assert lost & {"sequence_forward", "sequence_gradients"} == set(), lost
    assert "cell_forward" in lost


def test_a_running_statistics_mistake_costs_only_the_checks_about_them(write):
    unit = catalogue.find("batch-norm")
    [mistake] = [m for m in load_checks(unit).mistakes if "running" in m.id and "biased" in m.id]
    lost = _lost(unit, mistake.id, write)
    titles = {info.id: info.title for info, _ in load_checks(unit).checks}
    assert lost, "the mistake must cost something"
    assert all("running" in titles[i] or "momentum" in titles[i] for i in lost), \
        {i: titles[i] for i in lost}


def test_batch_independence_is_judged_on_the_property_alone(write):
    """A layer_norm whose values are wrong (epsilon outside the root) but whose rows really
    are independent of the batch keeps the independence check."""
    unit = catalogue.find("layer-norm")
    [mistake] = [m for m in load_checks(unit).mistakes if "eps" in m.id]
    lost = _lost(unit, mistake.id, write)
    assert lost and "batch_independence" not in lost, lost
