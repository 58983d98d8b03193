"""Time travel: list a thread's checkpoints, replay from one, and fork from one with a changed
value (`update_state` on a past checkpoint), as in LangGraph's time-travel guide.

Runs on durable-graph's engine. Differs from LangGraph on purpose: a thread is one append-only
chain, so the replay and the fork are appended to it (each step before stays, verifiable): the
config `update_state` returns names the thread's new head. An unset key reads `None` where
LangGraph leaves it out."""

from __future__ import annotations

from typing import Any, TypedDict

from durable_graph import END, START, StateGraph


class Joke(TypedDict, total=False):
    topic: str
    joke: str


def pick_topic(state: Joke) -> dict[str, Any]:
    return {"topic": "ledgers"}


def write_joke(state: Joke) -> dict[str, Any]:
    return {"joke": f"Why did the {state['topic']} never forget? Every entry was chained."}


def build(backend: Any = None) -> Any:
    builder = StateGraph(Joke)
    builder.add_node("pick_topic", pick_topic)
    builder.add_node("write_joke", write_joke)
    builder.add_edge(START, "pick_topic")
    builder.add_edge("pick_topic", "write_joke")
    builder.add_edge("write_joke", END)
    return builder.compile(checkpointer=backend)


def main(backend: Any = None) -> dict[str, Any]:
    graph = build(backend)
    config: Any = {"configurable": {"thread_id": "jokes"}}
    first = graph.invoke({}, config)
    history = list(graph.get_state_history(config))
    for snapshot in history:
        print(snapshot.config["configurable"]["checkpoint_id"], snapshot.next, snapshot.values)
    # The checkpoint just before write_joke ran: replay from it, then fork it with a new topic.
    before_joke = next(s for s in history if s.next == ("write_joke",))
    replayed = graph.invoke(None, before_joke.config)
    forked_config = graph.update_state(before_joke.config, {"topic": "audits"})
    forked = graph.invoke(None, forked_config)
    print("first:", first["joke"], "\nreplay:", replayed["joke"], "\nfork:", forked["joke"])
    return {"first": first, "replayed": replayed, "forked": forked, "history": len(history)}


if __name__ == "__main__":
    main()
