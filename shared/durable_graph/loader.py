"""Load a compiled graph by import path (`examples.email_approval:graph`)."""

from __future__ import annotations

import importlib
import os
import sys

from durable_graph.errors import InvalidInput
from durable_graph.runtime import CompiledGraph


def load_graph(path: str) -> CompiledGraph:
    """Import `module:attribute` (the current directory is importable, as with `python -m`)."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise InvalidInput(
            f"graph {path!r} must be an import path like 'package.module:graph'", field="graph"
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise InvalidInput(f"cannot import module {module_name!r}: {exc}", field="graph") from exc
    graph = getattr(module, attribute, None)
    if not isinstance(graph, CompiledGraph):
        raise InvalidInput(
            f"{path!r} is not a compiled graph (got {type(graph).__name__}); "
            "export the result of StateGraph(...).compile()",
            field="graph",
        )
    graph.name = path
    return graph
