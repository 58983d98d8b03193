"""An interrupt inside a subgraph: the parent's `write` node is a compiled subgraph whose
`review` node asks a person; the parent run stops with the question in `__interrupt__`, and
`Command(resume=...)` on the parent's thread resumes the subgraph, as in LangGraph's subgraph
guide.

Runs on durable-graph's engine: the subgraph runs as its own thread under the parent's
(`<parent>|<task id>`), its interrupt surfaces to the parent and is resumed through it."""

from __future__ import annotations

from typing import Any, TypedDict

from durable_graph import END, START, Command, StateGraph, interrupt


class Doc(TypedDict, total=False):
    topic: str
    draft: str
    final: str


def outline(state: Doc) -> dict[str, Any]:
    return {"draft": f"Draft about {state['topic']}"}


def review(state: Doc) -> dict[str, Any]:
    edit = interrupt({"review": state["draft"]})
    return {"draft": f"{state['draft']} ({edit})"}


def subgraph() -> Any:
    builder = StateGraph(Doc)
    builder.add_node("outline", outline)
    builder.add_node("review", review)
    builder.add_edge(START, "outline")
    builder.add_edge("outline", "review")
    builder.add_edge("review", END)
    return builder.compile()


def publish(state: Doc) -> dict[str, Any]:
    return {"final": state["draft"].upper()}


def build(backend: Any = None) -> Any:
    builder = StateGraph(Doc)
    builder.add_node("write", subgraph())
    builder.add_node("publish", publish)
    builder.add_edge(START, "write")
    builder.add_edge("write", "publish")
    builder.add_edge("publish", END)
    return builder.compile(checkpointer=backend)


def main(backend: Any = None) -> dict[str, Any]:
    graph = build(backend)
    config = {"configurable": {"thread_id": "doc-1"}}
    waiting = graph.invoke({"topic": "ledgers"}, config)
    print("parent waits:", waiting["__interrupt__"][0].value)
    done: dict[str, Any] = graph.invoke(Command(resume="approved with edits"), config)
    print("published:", done["final"])
    return {"waiting": waiting, "done": done}


if __name__ == "__main__":
    main()
