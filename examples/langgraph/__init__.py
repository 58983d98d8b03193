"""Six kinds of LangGraph program (LangGraph's how-to guides), each runnable with
`python -m examples.langgraph.<name>`; `docs/migrating-from-langgraph.md` shows each before and
after."""
