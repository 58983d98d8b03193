"""The one-node loop that tests and benchmarks grow long threads with: a node that runs again
until the state says stop (a chat's turns, a counter's ticks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from durable_graph import END, START, CompiledGraph, StateGraph


def loop_graph(
    schema: type[BaseModel],
    node: str,
    step: Callable[[Any], dict[str, Any]],
    *,
    more: Callable[[Any], bool],
    name: str,
) -> CompiledGraph:
    """`START -> node -> node -> ... -> END`: `node` runs `step`, and runs again while `more` of
    the state it wrote is true. `name` is the graph's `module:attribute` (where it is loaded
    from by workers and the CLI)."""

    def again(state: Any) -> str:
        return node if more(state) else END

    builder = StateGraph(schema)
    builder.add_node(node, step)
    builder.add_edge(START, node)
    builder.add_conditional_edges(node, again, [node, END])
    return builder.compile(name=name)
