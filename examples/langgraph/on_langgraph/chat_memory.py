"""Chat memory with `MessagesState`: each `invoke` on the same thread is the next turn and the
model sees the whole conversation, as in LangGraph's memory guide. The "model" is a
deterministic fake (no network) that remembers the user's name from earlier turns.

Runs on LangGraph, its checkpoints in durable-graph's ledger (`DurableGraphSaver`): the messages
channel is stored as an append per turn, not the whole conversation again."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from durable_graph.langgraph_saver import DurableGraphSaver


def fake_model(messages: list[AnyMessage]) -> AIMessage:
    said = [str(m.content) for m in messages if isinstance(m, HumanMessage)]
    names = [s.removeprefix("I am ").strip(".") for s in said if s.startswith("I am ")]
    if said[-1].startswith("What is my name"):
        return AIMessage(f"You are {names[-1]}." if names else "I don't know yet.")
    return AIMessage(f"Noted ({len(said)} messages from you so far).")


def chat(state: MessagesState) -> dict[str, Any]:
    return {"messages": [fake_model(state["messages"])]}


def build(checkpointer: Any) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node("chat", chat)
    builder.add_edge(START, "chat")
    builder.add_edge("chat", END)
    return builder.compile(checkpointer=checkpointer)


def main(checkpointer: Any = None) -> list[str]:
    graph = build(checkpointer or DurableGraphSaver())
    config = {"configurable": {"thread_id": "chat-ada"}}
    replies = []
    for text in ("Hello.", "I am Ada.", "What is my name?"):
        result = graph.invoke({"messages": [HumanMessage(text)]}, config)
        replies.append(str(result["messages"][-1].content))
        print(f"> {text}\n{replies[-1]}")
    return replies


if __name__ == "__main__":
    main()
