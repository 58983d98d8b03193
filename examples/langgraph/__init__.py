"""Six kinds of LangGraph program (from LangGraph's how-to guides), each runnable with
`python -m examples.langgraph.<name>` on durable-graph's engine, and the same six as LangGraph
programs whose checkpoints `DurableGraphSaver` keeps (`on_langgraph/`).
`docs/migrating-from-langgraph.md` shows each before and after."""
