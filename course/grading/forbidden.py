"""Detecting forbidden library calls while learner code runs.

Two nets catch a forbidden call:

- a ``TorchFunctionMode`` sees every ``torch.*`` / ``torch.nn.functional.*`` / ``Tensor``
  method call at the Python level, and names it exactly as the unit's rule does;
- a ``TorchDispatchMode`` sees ATen operators after autograd, which catches the same kernels
  reached through other doors (``torch.ops.aten.*``, ``torch._C`` bindings, modules).

Classes (``torch.nn.LayerNorm``) are caught by patching their ``forward`` while the learner's
call runs. Detection records and lets the call proceed, so feedback can name every forbidden
call that was used; the grader then fails the check.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode


@dataclass(frozen=True)
class Forbid:
    """Calls a unit forbids.

    ``calls``: dotted names of functions or classes (``"torch.nn.functional.layer_norm"``).
    ``aten``: ATen operator names caught at dispatch level (``"native_layer_norm"``).
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
    """Import ``a.b.c`` as an object, or None if it does not exist in this torch."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
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


class _DispatchWatch(TorchDispatchMode):
    def __init__(self, watched: dict[str, str], seen: list[str]) -> None:
        super().__init__()
        self.watched = watched
        self.seen = seen

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = self.watched.get(func._schema.name.split("::")[-1])
        if name is not None and name not in self.seen:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def watch(rules: list[Forbid], target_name: str) -> Iterator[list[str]]:
    """Context in which forbidden calls are recorded into the yielded list (names, in order)."""
    seen: list[str] = []
    functions: dict[int, str] = {}
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
            else:
                functions[id(obj)] = dotted
        for op in rule.aten:
            aten[op] = f"torch.ops.aten.{op}"
    if not (functions or classes or aten):
        yield seen
        return
    patched: list[tuple[type, object]] = []
    for cls, dotted in classes:
        original = cls.__dict__.get("forward")
        if original is None:
            continue

        def forward(self, *a, __orig=original, __name=dotted, **k):
            if __name not in seen:
                seen.append(__name)
            return __orig(self, *a, **k)

        cls.forward = forward
        patched.append((cls, original))
    try:
        with contextlib.ExitStack() as stack:
            if functions:
                stack.enter_context(_FunctionWatch(functions, seen))
            if aten:
                stack.enter_context(_DispatchWatch(aten, seen))
            yield seen
    finally:
        for cls, original in patched:
            cls.forward = original
