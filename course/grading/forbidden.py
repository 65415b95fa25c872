"""Detecting forbidden library calls while learner code runs.

Two nets catch a forbidden call:

- a ``TorchFunctionMode`` sees every ``torch.*`` / ``torch.nn.functional.*`` / ``Tensor``
  method call at the Python level, including the ``torch._C._VariableFunctions`` and
  ``torch._C._nn`` bindings behind them, and names it as the unit's rule does;
- for each forbidden ATen operator, the ``torch`` / ``torch._C`` bindings of the same name
  are watched, and the call runs under torch's (legacy, CPU-side) autograd profiler, whose
  record of every operator that went through the dispatcher is scanned afterwards. That net
  sees the kernel however it was reached (``torch.ops.aten.*``, modules, torch-function modes
  disabled with ``torch._C.DisableTorchFunction``); switching the profiler off is reported.
  (Swapping the ``torch.ops.aten`` packets themselves would break ``torch.func``, which
  enumerates them.)

(A ``TorchDispatchMode`` would see every ATen call, but entering one imports
``torch._dynamo``, which costs seconds per grading process; these two nets catch the same
doors at no start-up cost.)

Classes (``torch.nn.LayerNorm``) are caught by patching their ``__init__`` and ``forward``
while the learner's call runs, and plain Python functions and methods
(``torch.optim._functional.sgd``, ``torch.optim.SGD.step``) by a profile hook that watches for
their code objects, however the learner reached them. Detection records and lets the call
proceed, so feedback can name every forbidden call that was used; the grader then fails the
check.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch.overrides import TorchFunctionMode

# Any run of the autograd engine (``Tensor.backward``, ``torch.autograd.grad``, the engine's own
# ``run_backward``, however reached): the profiler records one event per node it evaluates.
AUTOGRAD_ENGINE = "autograd::engine::evaluate_function"
# Every public entry point to automatic differentiation, for units whose gradients are the
# exercise (forbid them with ``Forbid(calls=AUTOGRAD_CALLS, aten=(AUTOGRAD_ENGINE,))``).
# The library LSTMs, for units whose learners write the cell (3.2 lstm, 3.3 forget-gate).
# torch._VF.lstm_cell is the very object torch.lstm_cell; the last name listed for an object is
# the one feedback shows, so the public names come last.
LSTM_CALLS = (
    "torch._VF.lstm",
    "torch._VF.lstm_cell",
    "torch.nn.LSTM",
    "torch.nn.LSTMCell",
    "torch.lstm",
    "torch.lstm_cell",
)
LSTM_ATEN = ("lstm_cell", "_thnn_fused_lstm_cell", "lstm")

# There is no MoE layer in PyTorch; these libraries' layers (when installed) and PyTorch's
# grouped matmul would do the dispatch the MoE units (3.9, 4.13) ask the learner to write.
MOE_CALLS = (
    "fairscale.nn.MOELayer",
    "deepspeed.moe.layer.MoE",
    "tutel.moe.moe_layer",
    "torch._grouped_mm",
    "torch.nn.functional.grouped_mm",
)
MOE_ATEN = ("_grouped_mm",)

# The logistic loss -log sigma(d) with targets 1, for the preference units (4.8 rlhf, 4.10
# instructgpt), whose learners write it with logsigmoid.
LOGISTIC_LOSS_CALLS = (
    "torch.nn.functional.binary_cross_entropy_with_logits",
    "torch.binary_cross_entropy_with_logits",
    "torch.nn.BCEWithLogitsLoss",
    "torch.nn.functional.soft_margin_loss",
    "torch.nn.SoftMarginLoss",
)
LOGISTIC_LOSS_ATEN = ("binary_cross_entropy_with_logits", "soft_margin_loss")

# The library cross-entropy and negative log-likelihood, for units whose learners write the
# log-softmax themselves (unet's loss, clip's two directions, classifier guidance's log-probs).
CROSS_ENTROPY_CALLS = (
    "torch.nn.functional.cross_entropy",
    "torch.nn.functional.nll_loss",
    "torch.nn.CrossEntropyLoss",
    "torch.nn.NLLLoss",
)
CROSS_ENTROPY_ATEN = ("cross_entropy_loss", "nll_loss", "nll_loss2d", "nll_loss_nd",
                      "nll_loss_forward", "nll_loss2d_forward")

# Library attention, for units whose learners write it (transformer, bahdanau-attention,
# gpt-2, gpt-3); the fused kernels are watched at the ATen level too. Units built of whole
# layers also forbid TRANSFORMER_LAYERS.
ATTENTION_CALLS = (
    "torch.nn.functional.scaled_dot_product_attention",
    "torch.nn.functional.multi_head_attention_forward",
    "torch.nn.MultiheadAttention",
)
ATTENTION_ATEN = (
    "scaled_dot_product_attention",
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_attention_math",
)
TRANSFORMER_LAYERS = (
    "torch.nn.Transformer",
    "torch.nn.TransformerEncoderLayer",
    "torch.nn.TransformerDecoderLayer",
    "torch.nn.TransformerEncoder",
    "torch.nn.TransformerDecoder",
)

AUTOGRAD_CALLS = (
    "torch.Tensor.backward",
    "torch.autograd.backward",
    "torch.autograd.grad",
    "torch.autograd.functional.vjp",
    "torch.autograd.functional.jvp",
    "torch.autograd.functional.jacobian",
    "torch.autograd.forward_ad.make_dual",
    "torch.autograd.forward_ad.unpack_dual",
    "torch.func.grad",
    "torch.func.grad_and_value",
    "torch.func.vjp",
    "torch.func.jvp",
    "torch.func.jacrev",
    "torch.func.jacfwd",
    "torch.func.hessian",
)
_EVENT_LABELS = {AUTOGRAD_ENGINE: "the autograd engine (backward)"}

# Modules of optional libraries that units' rules name (bert's and roberta's collators,
# seq2seq's beam search). Resolving a rule imports them where installed (about 0.7 s for
# transformers' collators): a fork server that serves many submissions imports them once
# (:mod:`course.isolation.warm`) instead of every child.
LIBRARY_MODULES = ("transformers.data.data_collator", "transformers.generation")


@dataclass(frozen=True)
class Forbid:
    """Calls a unit forbids.

    ``calls``: dotted names of functions or classes (``"torch.nn.functional.layer_norm"``).
    ``aten``: ATen operator names caught at dispatch level (``"native_layer_norm"``), or a
    profiler event prefix holding ``::`` (``AUTOGRAD_ENGINE``: any backward pass at all).
    ``within``: names of the learner functions / classes this rule applies to (all if empty).
    """

    calls: tuple[str, ...] = ()
    aten: tuple[str, ...] = ()
    within: tuple[str, ...] = field(default=())

    def applies_to(self, target_name: str) -> bool:
        if not self.within:
            return True
        head = target_name.split(".")[0]
        return head in self.within or target_name in self.within


def resolve(dotted: str) -> object | None:
    """Import ``a.b.c`` as an object, or None if it does not exist here. A module that fails
    to import for any reason (not installed, or refused by the sandbox, as a library loading
    native code is) counts as absent: learner code in the same process cannot import it
    either."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except Exception:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


class _FunctionWatch(TorchFunctionMode):
    def __init__(self, watched: dict[int, str], seen: list[str]) -> None:
        super().__init__()
        self.watched = watched
        self.seen = seen

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = self.watched.get(id(func))
        if name is not None and name not in self.seen:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


def _aten_bindings(op: str) -> list[object]:
    places = [torch, torch._C._VariableFunctions, torch._C._nn, torch.Tensor]
    return [getattr(place, op) for place in places if hasattr(place, op)]


@contextlib.contextmanager
def _code_watch(codes: dict[object, str], seen: list[str]) -> Iterator[None]:
    """Record calls of the given Python code objects (a ``sys.setprofile`` hook)."""
    import sys
    import threading

    def hook(frame, event, arg):
        if event == "call":
            name = codes.get(frame.f_code)
            if name is not None and name not in seen:
                seen.append(name)

    previous = sys.getprofile()
    sys.setprofile(hook)
    threading.setprofile(hook)
    try:
        yield
    finally:
        sys.setprofile(previous)
        threading.setprofile(None)


def _event_names(prof) -> set[str]:
    """The names of the operators the profiler saw. Read from its raw results: building
    ``function_events`` (a tree of Python objects) cost about 1 s per 10^5 operators, most of
    a training probe's time, for the same set of names."""
    results = getattr(prof, "kineto_results", None)
    if results is not None and hasattr(results, "events"):
        return {event.name() for event in results.events()}
    return {event.name for event in prof.function_events}


@contextlib.contextmanager
def _profiled(aten: dict[str, str], seen: list[str]) -> Iterator[None]:
    from torch.autograd import profiler

    prof = profiler.profile(use_kineto=False, use_cpu=True)
    try:
        prof.__enter__()
    except RuntimeError:  # a profiler is already running (e.g. the learner's own): skip
        yield
        return
    try:
        yield
    finally:
        try:
            prof.__exit__(None, None, None)
            names = _event_names(prof)
        except Exception:  # the learner's code stopped or broke the profiler
            names = set()
            if "torch.autograd.profiler (switched off)" not in seen:
                seen.append("torch.autograd.profiler (switched off)")
        for op, label in aten.items():
            hit = (any(n.startswith(op) for n in names) if "::" in op
                   else f"aten::{op}" in names)
            if hit and label not in seen:
                seen.append(label)


@contextlib.contextmanager
def watch(rules: list[Forbid], target_name: str, deep: bool = True) -> Iterator[list[str]]:
    """Context in which forbidden calls are recorded into the yielded list (names, in order).

    ``deep`` adds the profiler net (for isolated grading; the in-kernel check skips it, since
    the profiler prints to the kernel's standard output)."""
    seen: list[str] = []
    functions: dict[int, str] = {}
    codes: dict[object, str] = {}
    classes: list[tuple[type, str]] = []
    aten: dict[str, str] = {}
    for rule in rules:
        if not rule.applies_to(target_name):
            continue
        for dotted in rule.calls:
            obj = resolve(dotted)
            if obj is None:
                continue
            if isinstance(obj, type):
                classes.append((obj, dotted))
            elif callable(obj) and hasattr(obj, "__code__"):  # decorators share their code
                codes[inspect.unwrap(obj).__code__] = dotted
            else:
                functions[id(obj)] = dotted
        for op in rule.aten:
            if "::" in op:  # a profiler event, not an operator with bindings
                aten[op] = _EVENT_LABELS.get(op, op)
                continue
            aten[op] = f"torch.ops.aten.{op}"
            for binding in _aten_bindings(op):
                functions.setdefault(id(binding), f"torch.{op}")
    if not (functions or classes or aten or codes):
        yield seen
        return
    patched: list[tuple[object, str, object]] = []
    for cls, dotted in classes:
        for method in ("__init__", "forward"):
            original = cls.__dict__.get(method)
            if original is None:
                continue

            def wrapper(self, *a, __orig=original, __name=dotted, **k):
                if __name not in seen:
                    seen.append(__name)
                return __orig(self, *a, **k)

            setattr(cls, method, wrapper)
            patched.append((cls, method, original))
    try:
        with contextlib.ExitStack() as stack:
            if aten and deep:
                stack.enter_context(_profiled(aten, seen))
            if functions:
                stack.enter_context(_FunctionWatch(functions, seen))
            if codes:
                stack.enter_context(_code_watch(codes, seen))
            yield seen
    finally:
        for owner, attr, original in reversed(patched):
            setattr(owner, attr, original)
