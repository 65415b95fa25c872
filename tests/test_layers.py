"""The package's layers stay visible: no import cycle inside ``course/``, the isolated child
loads none of the grader's machinery, and every grader-owned driver a check names exists."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "course"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.stmt) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def import_graph() -> dict[str, set[str]]:
    """Module -> the ``course`` modules it imports when it is imported (module-level
    statements, ``try`` blocks included; ``if TYPE_CHECKING`` and imports inside functions,
    which run later, excluded). ``from pkg import name`` is an edge to ``pkg.name`` when that
    is a module, else to ``pkg``."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        body = list(ast.parse(path.read_text(encoding="utf-8")).body)
        while body:
            node = body.pop(0)
            if _is_type_checking(node):
                continue
            if isinstance(node, (ast.Try, ast.If)):
                body[:0] = node.body
                continue
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in modules else base)
        edges = set()
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_inside_the_package():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_sees_real_edges():
    graph = import_graph()
    assert "course.grading.spec" in graph["course.grading.dsl"]
    assert "course.grading.probes" in graph["course.isolation.child"]


@pytest.mark.parametrize("module", ["course.isolation.child", "course.grading.dsl"])
def test_a_layer_loads_no_layer_above_it(module):
    """The learner's child process loads neither the checks, the engine, the catalogue nor the
    front ends; the check vocabulary loads no runner."""
    above = {
        "course.isolation.child": ["course.grading.checks", "course.grading.engine",
                                 "course.catalogue", "course.cli", "course.report",
                                 "course.isolation.runner"],
        "course.grading.dsl": ["course.isolation.runner", "course.grading.engine",
                               "course.isolation.child", "course.cli", "course.report",
                               "course.isolation.sandbox"],
    }[module]
    code = (f"import sys, {module}; "
            "print(' '.join(m for m in sys.modules if m.startswith('course')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=True).stdout.split()
    assert module in loaded
    assert not [m for m in above if m in loaded], loaded


DRIVER = re.compile(r"""["']@([a-z_0-9]+)\.([a-z_0-9]+)["']""")


def test_every_driver_a_check_names_exists():
    from course.grading.drivers import resolve

    named = {(m.group(1), m.group(2)) for path in (ROOT / "autograder").rglob("test_*.py")
             for m in DRIVER.finditer(path.read_text(encoding="utf-8"))}
    assert len(named) >= 10  # the scan sees them
    missing = []
    for module, function in sorted(named):
        try:
            resolve(f"@{module}.{function}")
        except (ImportError, AttributeError) as exc:
            missing.append(f"@{module}.{function}: {exc}")
    assert not missing, missing


def test_grading_core_loads_no_isolation_code():
    """The checks' vocabulary, comparison and grader (``course.grading``) never import the
    isolation package when they are imported; only the isolation package runs learner code
    apart, and it builds on the core, not the other way round."""
    graph = import_graph()
    leaks = {m: sorted(t for t in edges if t.startswith("course.isolation"))
             for m, edges in graph.items() if m.startswith("course.grading")}
    assert not {m: t for m, t in leaks.items() if t}, leaks
    isolation = {m for m in graph if m.startswith("course.isolation.")}
    assert {m.rpartition(".")[2] for m in isolation} >= {
        "forkserver", "sandbox", "runner", "child", "confine", "zygote", "integrity"}
