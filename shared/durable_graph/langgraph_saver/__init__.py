"""A LangGraph checkpointer on durable-graph's ledger (needs the `langgraph` extra:
`pip install 'durable-graph[langgraph]'`). See `saver.DurableGraphSaver`."""

from durable_graph.langgraph_saver.saver import DurableGraphSaver

__all__ = ["DurableGraphSaver"]
