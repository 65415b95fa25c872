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


def _identity(value: object) -> tuple:
    code = getattr(value, "__code__", None)
    return (id(value), id(code) if code is not None else None)


class Snapshot:
    """Identities of the watched attributes, taken while the process is still clean."""

    def __init__(self) -> None:
        self.modules: dict[str, types.ModuleType] = {}
        self.attrs: dict[tuple[str, str], tuple] = {}
        self.class_attrs: dict[tuple[str, str, str], tuple] = {}
        names = [n for n in sys.modules if n == "course" or n.startswith("course.")]
        names += [n for n in WATCHED_MODULES if n in sys.modules]
        for name in names:
            module = sys.modules[name]
            self.modules[name] = module
            for attr, value in list(vars(module).items()):
                if attr in IGNORED_ATTRIBUTES:
                    continue
                self.attrs[(name, attr)] = _identity(value)
                if name.startswith("course") and isinstance(value, type) and (
                    value.__module__ == name
                ):
                    for cattr, cvalue in list(vars(value).items()):
                        self.class_attrs[(name, attr, cattr)] = _identity(cvalue)
        for module_name, cls_name in WATCHED_CLASSES:
            watched = sys.modules.get(module_name)
            cls = getattr(watched, cls_name, None)
            if watched is None or not isinstance(cls, type):
                continue
            self.modules.setdefault(module_name, watched)
            for cattr, cvalue in list(vars(cls).items()):
                self.class_attrs[(module_name, cls_name, cattr)] = _identity(cvalue)

    def changes(self) -> list[str]:
        """Names of watched attributes that were replaced or removed since the snapshot."""
        found: list[str] = []
        for name, module in self.modules.items():
            if sys.modules.get(name) is not module:
                found.append(f"sys.modules[{name!r}]")
        for (name, attr), ident in self.attrs.items():
            if name not in self.modules:
                continue
            namespace = vars(self.modules[name])
            if attr not in namespace or _identity(namespace[attr]) != ident:
                found.append(f"{name}.{attr}")
        for (name, cls, cattr), ident in self.class_attrs.items():
            owner = vars(self.modules[name]).get(cls)
            space = vars(owner) if isinstance(owner, type) else {}
            if cattr not in space or _identity(space[cattr]) != ident:
                found.append(f"{name}.{cls}.{cattr}")
        return found[:10]
