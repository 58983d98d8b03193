"""The six programs as LangGraph programs, unchanged but for the checkpointer: LangGraph runs
them and `DurableGraphSaver` stores their checkpoints in durable-graph's ledger
(`python -m examples.langgraph.on_langgraph.<name>`)."""
