"""`stream_mode="messages"`, `"checkpoints"`, `"tasks"`, `"debug"` and `subgraphs=True`
(durable_graph.streaming, .stream_messages, .runtime): each program runs on LangGraph itself
and on durable-graph, and the chunks are compared (ids, timestamps and namespaces' task ids
aside)."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypedDict

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from durable_graph import END, START, Command, MessagesState, StateGraph, get_stream_writer
from durable_graph import interrupt as our_interrupt
from durable_graph.backend import Backend
from tests.compat.conftest import cfg, on, verified


def chat_program(graph_type: Any) -> Any:
    """A model node that calls a (fake, streaming) chat model, then a node that writes a
    message itself; the same code on both engines."""
    model = GenericFakeChatModel(messages=itertools.repeat(AIMessage("hello there friend")))

    def agent(state: Any) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def plain(state: Any) -> dict[str, Any]:
        return {"messages": [AIMessage("plain reply", id="p1")]}

    graph = graph_type(MessagesState).add_node("agent", agent).add_node("plain", plain)
    return graph.add_edge(START, "agent").add_edge("agent", "plain").add_edge("plain", END)


def theirs(program: Any) -> Any:
    from langgraph.checkpoint.memory import InMemorySaver

    return program.compile(checkpointer=InMemorySaver())


def their_graph() -> Any:
    from langgraph.graph import StateGraph as TheirGraph

    return TheirGraph


def messages(chunks: Iterator[Any]) -> list[tuple[str, str, str, int]]:
    """(class, content, node, step) of each `(message, metadata)` chunk."""
    out = []
    for message, metadata in chunks:
        assert isinstance(message, BaseMessage)
        out.append(
            (
                type(message).__name__,
                str(message.content),
                metadata["langgraph_node"],
                metadata["langgraph_step"],
            )
        )
    return out


def test_stream_messages_gives_llm_tokens_and_node_messages_as_langgraph(
    backend: Backend,
) -> None:
    """Given a node calling a chat model with `invoke` and a node returning a message, then
    stream_mode="messages" yields the model's tokens as AIMessageChunks (not the whole
    answer again) and the written message, each with its node and step, exactly as
    LangGraph does; the input message is not echoed."""
    given = {"messages": [HumanMessage("hi", id="h1")]}
    expected = messages(
        theirs(chat_program(their_graph())).stream(given, cfg("m"), stream_mode="messages")
    )
    app = on(chat_program(StateGraph).compile(), backend)
    chunks = list(app.stream(given, cfg("m"), stream_mode="messages"))
    got = messages(iter(chunks))
    assert got == expected
    assert got[0] == ("AIMessageChunk", "hello", "agent", 1)
    assert got[-1] == ("AIMessage", "plain reply", "plain", 2)
    metadata = chunks[0][1]
    assert metadata["thread_id"] == "m"
    assert metadata["langgraph_checkpoint_ns"].startswith("agent:")
    assert [m.content for m in app.get_state(cfg("m")).values["messages"]] == [
        "hi",
        "hello there friend",
        "plain reply",
    ]
    verified(app, "m")


def test_stream_messages_with_other_modes_and_without_an_llm(backend: Backend) -> None:
    """Given a node that only writes messages (no chat model), then "messages" carries each
    written message once, beside the other modes as (mode, chunk) pairs."""

    def bot(state: Any) -> dict[str, Any]:
        return {"messages": [AIMessage(f"echo {state['messages'][-1].content}")]}

    def program(graph_type: Any) -> Any:
        graph = graph_type(MessagesState).add_node("bot", bot).add_edge(START, "bot")
        return graph.add_edge("bot", END)

    given = {"messages": [("user", "yo")]}
    modes = ["messages", "updates"]
    expected = [
        mode
        for mode, _ in theirs(program(their_graph())).stream(given, cfg("w"), stream_mode=modes)
    ]
    app = on(program(StateGraph).compile(), backend)
    chunks = list(
        app.stream({"messages": [("user", "yo")]}, cfg("w"), stream_mode=["messages", "updates"])
    )
    kinds = [mode for mode, _ in chunks]
    assert kinds == expected == ["messages", "updates"]
    message, metadata = chunks[0][1]
    assert (message.type, message.content, metadata["langgraph_node"]) == ("ai", "echo yo", "bot")
    verified(app, "w")

    def pairs(state: Any) -> dict[str, Any]:
        return {"messages": [("ai", "as a pair")]}

    # Differs on purpose: a message a node writes as a (role, content) pair or a dict is
    # streamed too (LangGraph streams only message objects found in a node's output).
    graph = StateGraph(MessagesState).add_node("pairs", pairs).add_edge(START, "pairs")
    written = on(graph.add_edge("pairs", END).compile(), backend)
    [(message, _)] = written.stream(given, cfg("p"), stream_mode="messages")
    assert (message.type, message.content) == ("ai", "as a pair")


class Log(TypedDict):
    log: Annotated[list[str], operator.add]


def nested_program(graph_type: Any, interrupt: Callable[[Any], Any]) -> tuple[Any, Any]:
    """A parent whose second node is a subgraph that writes custom chunks, then interrupts."""

    def inner_a(state: Log) -> dict[str, Any]:
        get_writer()({"in": "a"})
        return {"log": ["a"]}

    def ask(state: Log) -> dict[str, Any]:
        return {"log": [interrupt("q?")]}

    def first(state: Log) -> dict[str, Any]:
        return {"log": ["first"]}

    inner = graph_type(Log).add_node("inner_a", inner_a).add_node("ask", ask)
    child = inner.add_edge(START, "inner_a").add_edge("inner_a", "ask").add_edge("ask", END)
    parent = graph_type(Log).add_node("first", first).add_node("sub", child.compile())
    return parent.add_edge(START, "first").add_edge("first", "sub").add_edge("sub", END), child


def get_writer() -> Callable[[Any], None]:
    """Ours inside our nodes, LangGraph's inside its (each engine binds its own)."""
    try:
        return get_stream_writer()
    except RuntimeError:
        from langgraph.config import get_stream_writer as theirs_writer

        return theirs_writer()


def shown(chunk: Any) -> Any:
    """A chunk with interrupt ids and subgraph task ids left out."""
    if isinstance(chunk, tuple) and len(chunk) in (2, 3) and isinstance(chunk[0], tuple):
        namespace = tuple(part.split(":")[0] for part in chunk[0])
        return (namespace, *[shown(c) for c in chunk[1:]])
    if isinstance(chunk, dict):
        return {k: shown(v) for k, v in chunk.items()}
    if isinstance(chunk, list | tuple):
        return [shown(v) for v in chunk]
    if type(chunk).__name__ == "Interrupt":
        return ("Interrupt", chunk.value)
    return chunk


def test_stream_subgraphs_namespaces_the_subgraphs_chunks_as_langgraph(backend: Backend) -> None:
    """Given a subgraph that writes, streams and interrupts, then stream(subgraphs=True)
    yields the same (namespace, mode, chunk) sequence as LangGraph, before and after the
    resume; without subgraphs=True only the parent's chunks come."""
    from langgraph.types import Command as TheirCommand
    from langgraph.types import interrupt as their_interrupt

    modes = ["updates", "custom", "values"]
    runs: list[list[Any]] = []
    their_program, _ = nested_program(their_graph(), their_interrupt)
    our_program, _ = nested_program(StateGraph, our_interrupt)
    for app, command in (
        (theirs(their_program), TheirCommand),
        (on(our_program.compile(), backend), Command),
    ):
        first = [
            shown(c) for c in app.stream({"log": []}, cfg("s"), stream_mode=modes, subgraphs=True)
        ]
        second = [
            shown(c)
            for c in app.stream(
                command(resume="ans"), cfg("s"), stream_mode="updates", subgraphs=True
            )
        ]
        flat = [
            shown(c) for c in app.stream({"log": []}, cfg("s2"), stream_mode=["updates", "custom"])
        ]
        runs.append([first, second, flat])
    assert runs[1] == runs[0]
    assert ((("sub",), "custom", {"in": "a"})) in runs[1][0]
    assert runs[1][1][-1] == ((), {"sub": {"log": ["first", "a", "ans"]}})


def test_stream_debug_checkpoints_and_tasks_as_langgraph(backend: Backend) -> None:
    """Given a two-node graph, then "debug" yields LangGraph's checkpoint, task and
    task_result events in LangGraph's order (its extra input checkpoint at step -1 aside: a
    thread's input is one step here), "checkpoints" and "tasks" their payloads."""
    given = {"messages": [HumanMessage("hi", id="h1")]}

    def events(chunks: Iterator[Any]) -> list[tuple[str, int, Any]]:
        out = []
        for event in chunks:
            payload = event["payload"]
            name = payload.get("name", list(payload.get("next", [])))
            out.append((event["type"], event["step"], name))
        return out

    expected = events(
        theirs(chat_program(their_graph())).stream(given, cfg("d"), stream_mode="debug")
    )
    assert expected[0][:2] == ("checkpoint", -1)
    app = on(chat_program(StateGraph).compile(), backend)
    got = events(app.stream(given, cfg("d"), stream_mode="debug"))
    assert got == expected[1:]
    tasks = list(app.stream(given, cfg("t"), stream_mode="tasks"))
    assert [sorted(t) for t in tasks[:2]] == [
        ["id", "input", "name", "triggers"],
        ["error", "id", "interrupts", "name", "result"],
    ]
    assert tasks[1]["result"]["messages"][0].content == "hello there friend"
    checkpoints = list(app.stream(given, cfg("c"), stream_mode="checkpoints"))
    assert [c["next"] for c in checkpoints] == [["agent"], ["plain"], []]
    assert checkpoints[-1]["config"] == app.get_state(cfg("c")).config
    assert checkpoints[-1]["parent_config"] == checkpoints[-2]["config"]
    verified(app, "d")
