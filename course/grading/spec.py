"""Probes: what a check asks an implementation to do, as plain data.

A probe never holds code. It names functions and classes of the implementation's namespace
and carries its inputs, so the very same probe runs on the reference (in the grader's process,
in float64 on the CPU) and on the learner's code (in an isolated child, on the chosen device).

- :class:`Call` calls a function (or a method of an object built by :class:`Make`) and can ask
  for gradients of the outputs w.r.t. chosen inputs and module parameters.
- :class:`Make` builds an object from a class of the namespace, optionally loading a state
  dict, so that learner and reference modules share weights.
- :class:`Fixture` is a grader-owned helper object (see :mod:`course.grading.fixtures`), e.g.
  a deterministic stand-in model passed to the learner's sampler.
- :class:`Gen` is a freshly seeded ``torch.Generator`` (on the CPU).
- :class:`Group` runs one driver call in several processes at once, as the ranks of a
  ``torch.distributed`` process group (unit 6.1; see :mod:`course.grading.ranks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

# The floating dtypes every check runs its cases in, and how a dtype is named in feedback.
FLOAT_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float64)


def dtype_word(dtype: torch.dtype) -> str:
    """``float32`` for ``torch.float32``."""
    return str(dtype).replace("torch.", "")


@dataclass(frozen=True)
class Make:
    """``namespace[name](*args, **kwargs)``, then ``load_state_dict(state_dict)`` if given.

    ``dtype`` (for modules) casts the built module's floating parameters after construction,
    before the state dict is loaded; ``train`` sets ``.train(train)`` when not None.
    """

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    state_dict: dict[str, torch.Tensor] | None = None
    dtype: torch.dtype | None = None
    train: bool | None = None

    def describe(self) -> str:
        return f"{self.name}({_describe_args(self.args, self.kwargs)})"


@dataclass(frozen=True)
class Fixture:
    """A grader-owned object: ``course.grading.fixtures.<name>(**kwargs)``."""

    name: str
    kwargs: dict = field(default_factory=dict)

    def describe(self) -> str:
        return f"<{self.name}>"


@dataclass(frozen=True)
class Gen:
    """``torch.Generator().manual_seed(seed)``, created afresh on each side."""

    seed: int

    def describe(self) -> str:
        return f"Generator(seed={self.seed})"


@dataclass(frozen=True)
class Device:
    """The device the implementation runs on: the CPU for the reference, the chosen device for
    the learner. For functions that take no tensor to infer it from (``causal_mask(L,
    device=Device())``)."""

    def describe(self) -> str:
        return "device"


@dataclass(frozen=True)
class Call:
    """Call ``target`` (a function name, or a :class:`Make` whose ``method`` is called).

    ``grad`` lists the inputs to differentiate w.r.t.: argument positions (int), keyword
    names (str), paths into a tuple argument (``(2, 0)`` for ``args[2][0]``, reported as
    ``"arg2.0"``), or ``"params"`` for the parameters of every module built by :class:`Make`
    in the call (reported as ``"<arg>.<parameter name>"``). The probe contracts all floating
    outputs with fixed pseudo-random cotangents and back-propagates through the
    implementation's own operations.

    ``after`` lists argument positions (or keyword names) whose values are reported after the
    call, for functions that update their inputs in place (``sgd_step_(params, lr)``); a
    module argument is reported as its state dict. A target ``"@module.function"`` is a
    grader-owned driver (:mod:`course.grading.drivers`) called with the namespace first.

    Every tensor passed in must come back unchanged (values, shape, dtype, requires_grad):
    a call that changes one fails, naming the argument. The exceptions are the arguments in
    ``after`` and in ``mutates``, updates the API documents (running statistics updated in
    place, ``sgd_step_``) that the check does not report.
    """

    target: str | Make
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    method: str = "__call__"
    grad: tuple = ()
    after: tuple = ()
    mutates: tuple = ()

    @property
    def name(self) -> str:
        if isinstance(self.target, Make):
            return f"{self.target.name}.{'forward' if self.method == '__call__' else self.method}"
        return self.target

    def describe(self) -> str:
        return f"{self.name}({_describe_args(self.args, self.kwargs)})"


@dataclass(frozen=True)
class Inspect:
    """Build ``target`` and report its parameters and buffers: names, shapes, dtypes and
    values. Compare the values only where the exercise fixes them (``LayerNorm``'s ones and
    zeros); for random weights use :func:`course.grading.cell_checks.require_layout` (names,
    shapes and dtypes) and a statistical check of the initialisation."""

    target: Make

    @property
    def name(self) -> str:
        return self.target.name

    def describe(self) -> str:
        return self.target.describe()


@dataclass(frozen=True)
class Group:
    """Run ``call`` (a driver, ``"@module.function"``) in ``world_size`` processes at once, as
    the ranks of one ``torch.distributed`` process group (gloo on 127.0.0.1, a free port).

    Rank r's call gets the keyword arguments ``rank=r``, ``world_size`` and ``init_method``
    (``"tcp://127.0.0.1:PORT"``) added; the driver starts the group and tears it down. The
    outcome's ``out`` is the list of the ranks' return values, in rank order. When a rank
    fails, the outcome is that failure, its message naming the rank (and what the others
    did). ``timeout`` bounds the whole group, in seconds; every process is killed after it.
    """

    call: Call
    world_size: int = 2
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if not (isinstance(self.call.target, str) and self.call.target.startswith("@")):
            raise ValueError("a Group runs a driver call ('@module.function')")
        if self.call.grad or self.call.after:
            raise ValueError("a Group's driver reports what it needs: no grad or after")

    @property
    def name(self) -> str:
        return self.call.name

    def describe(self) -> str:
        return f"{self.call.describe()} on {self.world_size} processes"


Probe = Call | Inspect | Group


def describe_value(value: Any) -> str:
    """A short human description: tensors as ``float32[4, 8]``, specs by their own words."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).replace("torch.", "")
        return f"{dtype}{list(value.shape)}"
    if isinstance(value, (Make, Fixture, Gen, Device)):
        return value.describe()
    if isinstance(value, (tuple, list)):
        inner = ", ".join(describe_value(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    return repr(value)


def _describe_args(args: tuple, kwargs: dict) -> str:
    parts = [describe_value(a) for a in args]
    parts += [f"{k}={describe_value(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)


def map_tensors(value: Any, fn, on_make=None) -> Any:
    """Apply ``fn`` to every tensor inside ``value`` (specs, tuples, lists, dicts), and
    ``on_make`` (if given) to every rebuilt :class:`Make`."""
    again = lambda v: map_tensors(v, fn, on_make)  # noqa: E731
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple):
        return tuple(again(v) for v in value)
    if isinstance(value, list):
        return [again(v) for v in value]
    if isinstance(value, dict):
        return {k: again(v) for k, v in value.items()}
    if isinstance(value, Make):
        made = replace(value, args=again(value.args), kwargs=again(value.kwargs),
                       state_dict=again(value.state_dict))
        return on_make(made) if on_make else made
    if isinstance(value, Fixture):
        return replace(value, kwargs=again(value.kwargs))
    if isinstance(value, Call):
        return replace(value, target=again(value.target), args=again(value.args),
                       kwargs=again(value.kwargs))
    if isinstance(value, Inspect):
        return replace(value, target=again(value.target))
    if isinstance(value, Group):
        return replace(value, call=again(value.call))
    return value


def to_float64(probe: Probe) -> Probe:
    """The probe with every floating tensor, and every built module that names a dtype, in
    float64."""

    def cast(t: torch.Tensor) -> torch.Tensor:
        return t.double() if t.is_floating_point() else t

    def module_in_float64(make: Make) -> Make:
        return replace(make, dtype=torch.float64) if make.dtype is not None else make

    return map_tensors(probe, cast, module_in_float64)


def in_float64(probe: Probe) -> bool:
    """True when :func:`to_float64` would change nothing in ``probe`` (every floating tensor
    is float64 already, every built module that names a dtype names float64): its float64 run
    is then its native run."""
    found: list[object] = []

    def note(t: torch.Tensor) -> torch.Tensor:
        if t.is_floating_point() and t.dtype != torch.float64:
            found.append(t)
        return t

    def note_module(make: Make) -> Make:
        if make.dtype is not None and make.dtype != torch.float64:
            found.append(make)
        return make

    map_tensors(probe, note, note_module)
    return not found


def places_on_device(value: Any) -> bool:
    """True when running ``value`` (a probe, or anything inside one) puts something on the
    graded device: a tensor, a module built by :class:`Make`, a :class:`Fixture` or the
    :class:`Device` itself. A probe with none of these (ints, strings, a driver given only
    sizes) leaves its outputs where the code makes them, on the CPU."""
    if isinstance(value, (torch.Tensor, Make, Fixture, Device)):
        return True
    if isinstance(value, (tuple, list)):
        return any(places_on_device(v) for v in value)
    if isinstance(value, dict):
        return any(places_on_device(v) for v in value.values())
    if isinstance(value, Call):
        return any(places_on_device(v) for v in (value.target, value.args, value.kwargs))
    if isinstance(value, Inspect):
        return True  # the module it builds is moved to the device
    if isinstance(value, Group):
        return places_on_device(value.call)
    return False
