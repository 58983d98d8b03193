"""State declarations as LangGraph users write them (durable_graph.state, .messages):
TypedDict, dataclass and pydantic states, `state["k"]` and `state.k`, fields without defaults,
`Annotated[..., reducer]`, and `MessagesState`/`add_messages` stored losslessly as JSON."""

from __future__ import annotations

import json
import operator
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    ToolMessage,
)
from pydantic import BaseModel

from durable_graph import END, START, MessagesState, StateGraph, add_messages
from durable_graph.backend import Backend
from durable_graph.errors import InvalidInput
from tests.compat.conftest import cfg, on, verified
from tests.helpers import row_text


class TypedState(TypedDict):
    topic: str
    count: int
    notes: Annotated[list[str], operator.add]


@dataclass
class DataState:
    topic: str
    count: int = 0
    notes: Annotated[list[str], operator.add] = field(default_factory=list)


class ModelState(BaseModel):
    topic: str
    count: int = 0
    notes: Annotated[list[str], operator.add] = []


def both_ways(state: Any) -> dict[str, Any]:
    """Reads the state by key and by attribute, as node code written for either does."""
    assert state["topic"] == state.topic and "topic" in state
    return {"count": (state.count or 0) + 1, "notes": [f"{state['topic']}#{state.count}"]}


@pytest.mark.parametrize("declared", [TypedState, DataState, ModelState])
def test_every_kind_of_state_reads_by_key_and_attribute(declared: Any, backend: Backend) -> None:
    """Given a TypedDict, a dataclass or a pydantic state, then a node reads it as
    state["k"] and state.k alike, the reducer appends, and the thread verifies."""
    graph = StateGraph(declared).add_node("n", both_ways).add_edge(START, "n")
    app = on(graph.add_edge("n", END).compile(), backend)
    out = app.invoke({"topic": "t"}, cfg("s"))
    assert out == {
        "topic": "t",
        "count": 1,
        "notes": ["t#None" if declared is TypedState else "t#0"],
    }
    verified(app, "s")


def test_typeddict_fields_need_no_default(backend: Backend) -> None:
    """Given a TypedDict whose fields have no defaults, when started with some of them, then
    the others start empty (None, or [] for a reducer field), as a LangGraph channel never
    written; a pydantic state's required field is still required (as LangGraph validates)."""
    app = on(StateGraph(TypedState).add_node("n", both_ways).add_edge(START, "n").compile(),
             backend)  # fmt: skip
    assert app.invoke({"topic": "x"}, cfg("d"))["notes"] == ["x#None"]
    strict = StateGraph(ModelState).add_node("n", both_ways).add_edge(START, "n").compile()
    with pytest.raises(InvalidInput, match="'topic'"):
        on(strict, backend).invoke({}, cfg("m"))


class Chat(MessagesState):
    turns: int


def agent(state: Chat) -> dict[str, Any]:
    last = state["messages"][-1]
    if isinstance(last, HumanMessage):
        call = {"name": "lookup", "args": {"q": last.content}, "id": f"call-{state['turns']}"}
        return {"messages": [AIMessage("", tool_calls=[call])]}
    return {"messages": [AIMessage(f"found {last.content}")], "turns": (state["turns"] or 0) + 1}


def tools(state: Any) -> dict[str, Any]:
    last = state.messages[-1]  # attribute access on a TypedDict state
    assert isinstance(last, AIMessage)
    call = last.tool_calls[0]
    return {"messages": [ToolMessage(f"<{call['args']['q']}>", tool_call_id=call["id"])]}


def route(state: Chat) -> str:
    last = state["messages"][-1]
    return "tools" if isinstance(last, AIMessage) and last.tool_calls else END


def react() -> Any:
    graph = StateGraph(Chat).add_node("agent", agent).add_node("tools", tools)
    graph.add_edge(START, "agent").add_conditional_edges("agent", route, ["tools", END])
    return graph.add_edge("tools", "agent").compile()


def test_messages_state_keeps_langchain_messages_losslessly(
    backend: Backend, tmp_path: Path
) -> None:
    """Given a ReAct loop over MessagesState, then the nodes see LangChain objects with their
    tool_calls, invoke returns them, two turns of one thread accumulate (a lazy read gives
    them as objects too), the store holds them as plain JSON (no pickles), and the chain
    verifies."""
    app = on(react(), backend)
    first = app.invoke({"messages": [("user", "tea")]}, cfg("chat"))
    kinds = [type(m).__name__ for m in first["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert first["messages"][1].tool_calls[0]["args"] == {"q": "tea"}
    assert first["messages"][3].content == "found <tea>" and first["turns"] == 1
    second = app.invoke({"messages": "cake"}, cfg("chat"))
    assert [m.content for m in second["messages"][-4:]] == ["cake", "", "<cake>", "found <cake>"]
    assert len({m.id for m in second["messages"]}) == 8  # every message got an id
    snapshot = app.get_state(cfg("chat"))
    assert snapshot.values["messages"] == second["messages"]
    assert snapshot.json_values["messages"][1]["tool_calls"][0]["name"] == "lookup"
    lazy = app.get_state(cfg("chat"), lazy=True)  # the same messages, read as a sequence
    assert lazy.values["messages"] == second["messages"] and len(lazy.values["messages"]) == 8
    assert isinstance(lazy.values["messages"][-1], AIMessage)
    assert lazy.json_values["messages"][1]["tool_calls"][0]["name"] == "lookup"
    with sqlite3.connect(tmp_path / "home" / "state.db") as db:
        rows = [
            json.loads(row_text(body)) for (body,) in db.execute("SELECT body FROM checkpoints")
        ]
    stored = [c for row in rows for c in row.get("changes", {}).values() if c.get("v")]
    assert any("tool_calls" in json.dumps(c["v"]) for c in stored)
    verified(app, "chat")


def test_each_turn_stores_only_the_messages_it_added(backend: Backend) -> None:
    """Given a chat, then a step that adds messages with new ids is stored as an append of
    those messages, not as the whole conversation again."""
    app = on(react(), backend)
    app.invoke({"messages": [("user", "a")]}, cfg("grow"))
    app.invoke({"messages": [("user", "b")]}, cfg("grow"))
    last = app.get_state(cfg("grow")).checkpoint
    change = last.changes["messages"]
    assert change.op == "add" and [m["content"] for m in change.v] == ["found <b>"]


class Legacy(TypedDict):
    messages: Annotated[Sequence[BaseMessage], add_messages]


def test_a_sequence_of_base_message_keeps_tool_calls(backend: Backend) -> None:
    """Given the annotation LangGraph's docs use, Sequence[BaseMessage] with add_messages,
    then an AIMessage comes back as an AIMessage with its tool_calls (not a bare BaseMessage)."""

    def call(state: Legacy) -> dict[str, Any]:
        return {"messages": AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "1"}])}

    app = on(StateGraph(Legacy).add_node("call", call).add_edge(START, "call").compile(), backend)
    out = app.invoke({"messages": [HumanMessage("hi")]}, cfg("legacy"))
    assert isinstance(out["messages"][1], AIMessage)
    assert out["messages"][1].tool_calls == [
        {"name": "f", "args": {}, "id": "1", "type": "tool_call"}
    ]
    verified(app, "legacy")


def test_add_messages_replaces_by_id_and_removes() -> None:
    """add_messages called directly behaves as LangGraph's: same id replaces, RemoveMessage
    removes, a message without an id gets one."""
    left = [HumanMessage("a", id="1"), AIMessage("b", id="2")]
    merged = add_messages(left, [AIMessage("b2", id="2"), HumanMessage("c")])
    assert [m.content for m in merged] == ["a", "b2", "c"] and merged[2].id
    assert [m.content for m in add_messages(merged, [RemoveMessage(id="1")])] == ["b2", "c"]
    typed: list[AnyMessage] = add_messages([], [("user", "x")])
    assert isinstance(typed[0], HumanMessage)


def test_a_removed_message_leaves_the_stored_conversation(backend: Backend) -> None:
    def trim(state: Chat) -> dict[str, Any]:
        return {"messages": [RemoveMessage(id=str(m.id)) for m in state["messages"][:-1]]}

    graph = StateGraph(Chat).add_node("trim", trim).add_edge(START, "trim").compile()
    app = on(graph, backend)
    out = app.invoke({"messages": [("user", "a"), ("ai", "b"), ("user", "c")]}, cfg("trim"))
    assert [m.content for m in out["messages"]] == ["c"]
    verified(app, "trim")
