"""Noticing learner code that tampers with the grader's own code inside the child.

Comparisons happen in the grader's process, so no patch in the child can change a verdict on
values. What runs in the child on the grader's behalf (probes, forbidden-call detection,
result encoding) could be patched, though: replacing ``course.grading.forbidden.watch`` with a
no-op would hide a forbidden call. Before learner code runs, the child takes a
:class:`Snapshot` of the attributes of every ``course`` module (and of the classes they define)
and of the torch modules detection relies on; before and after every probe it checks that none
was replaced or removed, and that ``sys.modules`` still holds the same module objects. A
change fails the probe with a message naming what was touched.

This is a tripwire, not a proof: code running in a process can always attack that process.
What it guarantees is that tampering through Python attributes does not go unnoticed.
"""

from __future__ import annotations

import operator
import sys
import types

WATCHED_MODULES = ("builtins", "_thread", "_posixsubprocess")  # the refusing starters
# torch's own modules change legitimately (lazy imports re-wrap functions such as
# torch.manual_seed), so only the classes detection relies on are watched there.
WATCHED_CLASSES = (
    ("torch.overrides", "TorchFunctionMode"),
    ("torch.autograd.profiler", "profile"),
)
IGNORED_ATTRIBUTES = frozenset({"__warningregistry__", "__loader__", "__spec__", "__cached__",
                                "last_type", "last_value", "last_traceback", "stdout",
                                "stderr", "displayhook", "excepthook", "ps1", "ps2",
                                "_", "exc_info", "tracebacklimit"})


class _Namespace:
    """One watched namespace (a module's or a class's ``__dict__``): the objects its
    attributes held, and the code objects of those that are functions, kept alive (so no
    replacement can reuse an identity) and compared by identity in C."""

    def __init__(self, label: str, owner: object, attrs: list[str]) -> None:
        self.label, self.owner = label, owner
        self.keys = tuple(attrs)
        space = vars(owner)
        self.values = tuple(space[a] for a in self.keys)
        self.codes = tuple(getattr(v, "__code__", None) for v in self.values)
        self.functions = tuple(v for v, c in zip(self.values, self.codes) if c is not None)
        self.function_codes = tuple(c for c in self.codes if c is not None)
        self._get = operator.itemgetter(*self.keys) if self.keys else None

    def intact(self) -> bool:
        if self._get is None:
            return True
        try:
            now = self._get(vars(self.owner))
            now = now if len(self.keys) > 1 else (now,)
            return (all(map(operator.is_, now, self.values))
                    and all(map(operator.is_, map(_CODE, self.functions), self.function_codes)))
        except Exception:  # a removed attribute, or a code attribute that no longer reads
            return False

    def changes(self) -> list[str]:
        """The attributes replaced or removed (their code included), by name."""
        space, found = vars(self.owner), []
        for attr, value, code in zip(self.keys, self.values, self.codes):
            try:
                same = space[attr] is value and (
                    code is None or getattr(value, "__code__", None) is code)
            except Exception:
                same = False
            if not same:
                found.append(f"{self.label}.{attr}")
        return found


_CODE = operator.attrgetter("__code__")


class Snapshot:
    """The watched attributes as they were while the process was still clean."""

    def __init__(self) -> None:
        names = [n for n in sys.modules if n == "course" or n.startswith("course.")]
        names += [n for n in WATCHED_MODULES if n in sys.modules]
        self.modules: dict[str, types.ModuleType] = {n: sys.modules[n] for n in names}
        self.spaces: list[_Namespace] = []
        # (module, class name, class): classes watched in modules that are not watched whole
        self.classes: list[tuple[types.ModuleType, str, type]] = []
        for name, module in self.modules.items():
            attrs = [a for a in list(vars(module)) if a not in IGNORED_ATTRIBUTES]
            self.spaces.append(_Namespace(name, module, attrs))
            for attr in attrs:
                value = vars(module)[attr]
                if name.startswith("course") and isinstance(value, type) and (
                    value.__module__ == name
                ):
                    self.spaces.append(_Namespace(f"{name}.{attr}", value, list(vars(value))))
        for module_name, cls_name in WATCHED_CLASSES:
            watched = sys.modules.get(module_name)
            cls = getattr(watched, cls_name, None)
            if watched is None or not isinstance(cls, type):
                continue
            self.modules.setdefault(module_name, watched)
            self.classes.append((watched, cls_name, cls))
            self.spaces.append(_Namespace(f"{module_name}.{cls_name}", cls, list(vars(cls))))
        self._names = tuple(self.modules)
        self._objects = tuple(self.modules.values())

    def changes(self) -> list[str]:
        """Names of watched attributes that were replaced or removed since the snapshot
        (at most ten); ``[]`` when all is as it was, which is checked in C, fast."""
        if (all(map(operator.is_, map(sys.modules.get, self._names), self._objects))
                and all(vars(m).get(n) is c for m, n, c in self.classes)
                and all(space.intact() for space in self.spaces)):
            return []
        found = [f"sys.modules[{n!r}]" for n, m in self.modules.items()
                 if sys.modules.get(n) is not m]
        found += [f"{m.__name__}.{n}" for m, n, c in self.classes if vars(m).get(n) is not c]
        for space in self.spaces:
            found += space.changes()
        return found[:10]
