"""A LangGraph checkpointer on durable-graph's ledger (needs the `langgraph` extra:
`pip install 'durable-graph[langgraph]'`). See `saver.DurableGraphSaver`.

`DurableGraphSaver` is imported on first use, so that the ledger's reading commands can use
this package's modules (`display.py`) where LangGraph is not installed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from durable_graph.langgraph_saver.saver import DurableGraphSaver


def __getattr__(name: str) -> Any:
    if name == "DurableGraphSaver":
        from durable_graph.langgraph_saver.saver import DurableGraphSaver

        return DurableGraphSaver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DurableGraphSaver"]
