"""A compiled graph used as a node of another graph (a subgraph)."""

from __future__ import annotations

from typing import Any

from durable_graph.runtime import CompiledGraph


def subgraph_node(graph: CompiledGraph, name: str) -> Any:
    """Refused for now, at build time, rather than failing when the node runs."""
    raise TypeError(
        f"add_node({name!r}, <compiled graph>): a compiled graph used as a node is not "
        "supported yet; call it from a node function instead (see "
        "docs/langgraph-compatibility.md)"
    )
