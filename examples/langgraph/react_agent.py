"""A ReAct agent loop: a model node that may call tools, a tool node, and a router that loops
until the model answers, as in LangGraph's agent guides. The "model" is a deterministic fake
(no network): it calls `get_weather` once per city it is asked about, then answers.

Runs on durable-graph's engine. Differs from the LangGraph program: LangGraph's prebuilt
`ToolNode` and `tools_condition` are LangGraph runnables, so the tool node and the router are
written out (ten lines); the messages are stored as JSON and read back as the same LangChain
classes, `tool_calls` included."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.tools import tool

from durable_graph import END, START, MessagesState, StateGraph

CITIES = ("Paris", "Oslo", "Lima")


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return {"Paris": "sunny, 21C", "Oslo": "snow, -3C", "Lima": "cloudy, 18C"}.get(city, "?")


def fake_model(messages: list[AnyMessage]) -> AIMessage:
    """Calls the tool for each city in the question not looked up yet, then answers."""
    question = next(m for m in reversed(messages) if isinstance(m, HumanMessage))
    looked_up = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    wanted = [c for c in CITIES if c in str(question.content) and f"call-{c}" not in looked_up]
    if wanted:
        city = wanted[0]
        call = {"name": "get_weather", "args": {"city": city}, "id": f"call-{city}"}
        return AIMessage(content="", tool_calls=[call])
    found = [str(m.content) for m in messages if isinstance(m, ToolMessage)]
    return AIMessage(content="Weather: " + "; ".join(found))


def agent(state: MessagesState) -> dict[str, Any]:
    return {"messages": [fake_model(state["messages"])]}


def tool_calls(state: MessagesState) -> list[ToolCall]:
    """The tool calls of the model's last message (none: it answered)."""
    last = state["messages"][-1]
    return last.tool_calls if isinstance(last, AIMessage) else []


def tools(state: MessagesState) -> dict[str, Any]:
    """Run the tool calls of the model's last message."""
    return {
        "messages": [
            ToolMessage(get_weather.invoke(c["args"]), tool_call_id=c["id"])
            for c in tool_calls(state)
        ]
    }


def route(state: MessagesState) -> str:
    return "tools" if tool_calls(state) else END


def build(backend: Any = None) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", tools)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["tools", END])
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=backend)


def main(backend: Any = None) -> dict[str, Any]:
    graph = build(backend)
    config = {"configurable": {"thread_id": "react"}}
    result: dict[str, Any] = graph.invoke(
        {"messages": [HumanMessage("What is the weather in Paris and Oslo?")]}, config
    )
    for message in result["messages"]:
        print(type(message).__name__, message.content or message.tool_calls)
    return result


if __name__ == "__main__":
    main()
