"""The package's import graph: the frozen spec is a leaf, and no module cycle comes back.

A review found context, engine, graph, loader, routing, runtime and worker in one import cycle
(graph's compile() returns a runtime.CompiledGraph, whose engine imported graph for START, END,
Send and GraphSpec). The spec now lives in `durable_graph.spec`, which imports none of them.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "shared" / "durable_graph"
RUNNERS = {
    "commits",
    "context",
    "engine",
    "fanin",
    "followups",
    "graph",
    "loader",
    "replay",
    "routing",
    "runtime",
    "runtime_binding",
    "runtime_inputs",
    "runtime_reads",
    "runtime_runs",
    "runtime_stream",
    "tasks",
    "worker",
}

# Edges still allowed to close a cycle, each with the reason it is not gone yet.
PENDING = {
    # A worker run by CompiledGraph loads other graphs by name for messages of other threads
    # (queues that cannot filter by thread); loader returns a CompiledGraph. A function-level
    # import in runtime_binding's GraphBinding.worker().
    ("runtime_binding", "loader"),
}

# Import one module of the package first, with the package's __init__ (which imports
# everything on purpose) replaced by an empty package, and print what it pulled in.
_LOAD_ALONE = """
import importlib, importlib.util, json, sys, types
where = importlib.util.find_spec("durable_graph").submodule_search_locations
package = types.ModuleType("durable_graph")
package.__path__ = list(where)
sys.modules["durable_graph"] = package
importlib.import_module("durable_graph." + sys.argv[1])
print(json.dumps(sorted(name.split(".")[1] for name in sys.modules
                        if name.startswith("durable_graph."))))
"""


def loaded_with(module: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_ALONE, module],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(done.stdout))


@pytest.mark.parametrize(
    ("module", "runners"),
    [("spec", set()), ("routing", {"routing"}), ("context", {"context"})],
)
def test_the_spec_side_loads_without_the_runtime(module: str, runners: set[str]) -> None:
    """Given a fresh interpreter, when durable_graph.spec (or routing, or a node's context) is
    imported alone, then none of engine, runtime, worker, loader, graph is loaded. (The builder,
    graph.py, may: its compile() returns a runtime.CompiledGraph.)"""
    loaded = loaded_with(module)
    assert module in loaded and loaded & RUNNERS == runners


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every package module `path` imports: at the top, in functions or under TYPE_CHECKING."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from package import submodule` depends on the submodule
            subs = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [s for s in subs if s.removeprefix("durable_graph.") in modules]
            names = names or [node.module]
        else:
            continue
        for name in names:
            short = name.removeprefix("durable_graph.")
            if name.startswith("durable_graph.") and short in modules:
                found.add(short)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    files.pop("", None)  # the package's __init__ imports everything by design
    modules = set(files)
    return {name: _imports(path, modules) - {name} for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: list[str] = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_spec_imports_none_of_the_modules_that_run_a_graph() -> None:
    assert import_graph()["spec"] & RUNNERS == set()


def test_no_import_cycle_but_the_pending_edges() -> None:
    """Given every import in the package (top level, in functions, under TYPE_CHECKING), when
    the PENDING edges are set aside, then no two modules import each other, however
    indirectly."""
    graph = import_graph()
    for source, target in PENDING:
        graph[source].discard(target)
    assert cycles(graph) == []


def test_the_cycle_finder_finds_the_cycle_the_review_found() -> None:
    """The check above is not vacuous: with engine importing graph and graph importing
    runtime, as before the split, it reports the cycle."""
    graph = import_graph()
    graph["engine"].add("graph")
    graph["graph"].add("runtime")
    assert ["engine", "graph", "runtime"] in [
        [m for m in c if m in {"engine", "graph", "runtime"}] for c in cycles(graph)
    ]
