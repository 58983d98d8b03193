"""`stream(stream_mode="values"|"updates"|"custom")`, `ainvoke`, `astream` and `async def`
nodes (durable_graph.runtime, .runs), as LangGraph has them."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

import pytest

from durable_graph import END, START, Command, StateGraph, get_stream_writer, interrupt
from durable_graph.backend import Backend
from durable_graph.errors import InvalidInput, ThreadFailed
from tests.compat.conftest import cfg, on, verified


class S(TypedDict):
    log: Annotated[list[str], operator.add]
    topic: str


def plan(state: S, writer: Callable[[Any], None]) -> dict[str, Any]:
    writer({"progress": "planning"})
    return {"log": ["plan"]}


async def write(state: S) -> dict[str, Any]:
    await asyncio.sleep(0)
    get_stream_writer()({"progress": "writing"})
    return {"log": [f"write {state['topic']}"]}


def pipeline() -> Any:
    graph = StateGraph(S).add_node("plan", plan).add_node("write", write)
    return graph.add_edge(START, "plan").add_edge("plan", "write").add_edge("write", END).compile()


def test_stream_values_yields_the_state_after_every_step(backend: Backend) -> None:
    app = on(pipeline(), backend)
    chunks = list(app.stream({"topic": "x"}, cfg("v")))
    assert chunks == [
        {"log": [], "topic": "x"},
        {"log": ["plan"], "topic": "x"},
        {"log": ["plan", "write x"], "topic": "x"},
    ]
    verified(app, "v")


def test_stream_updates_and_custom_together(backend: Backend) -> None:
    """Given two modes, then (mode, chunk) pairs arrive in order: each node's custom writes
    before its update; an async node ran (awaited) like a plain one."""
    app = on(pipeline(), backend)
    chunks = list(app.stream({"topic": "y"}, cfg("u"), stream_mode=["updates", "custom"]))
    assert chunks == [
        ("custom", {"progress": "planning"}),
        ("updates", {"plan": {"log": ["plan"]}}),
        ("custom", {"progress": "writing"}),
        ("updates", {"write": {"log": ["write y"]}}),
    ]
    verified(app, "u")


def ask(state: S) -> dict[str, Any]:
    return {"topic": interrupt("which topic?")}


def test_stream_ends_with_the_interrupt_and_resumes_with_a_command(backend: Backend) -> None:
    graph = StateGraph(S).add_node("ask", ask).add_edge(START, "ask").add_edge("ask", END)
    app = on(graph.compile(), backend)
    chunks = list(app.stream({}, cfg("i"), stream_mode="updates"))
    assert [i.value for i in chunks[-1]["__interrupt__"]] == ["which topic?"]
    resumed = list(app.stream(Command(resume="owls"), cfg("i"), stream_mode="updates"))
    assert resumed == [{"ask": {"topic": "owls"}}]
    verified(app, "i")
    # "values": the input state, then the state with the pending interrupts (as LangGraph)
    states = list(app.stream({"topic": "x"}, cfg("i2")))
    assert states[0] == {"log": [], "topic": "x"}
    assert states[-1]["topic"] == "x" and len(states) == 2
    assert [i.value for i in states[-1]["__interrupt__"]] == ["which topic?"]


def test_stream_raises_what_the_run_raises(backend: Backend) -> None:
    def boom(state: S) -> None:
        raise RuntimeError("nope")

    app = on(StateGraph(S).add_node("boom", boom).add_edge(START, "boom").compile(), backend)
    with pytest.raises(ThreadFailed, match="nope"):
        list(app.stream({}, cfg("e")))
    with pytest.raises(InvalidInput, match=r"'tokens'.*supported modes are values, updates"):
        list(app.stream({}, cfg("e2"), stream_mode=["values", "tokens"]))


def test_ainvoke_and_astream_from_an_event_loop(backend: Backend) -> None:
    """Given an async caller, then ainvoke and astream run the graph (async node included)
    without blocking its loop, and give what invoke and stream give."""
    app = on(pipeline(), backend)

    async def main() -> tuple[dict[str, Any], list[Any]]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        beat = asyncio.create_task(ticker())
        result = await app.ainvoke({"topic": "a"}, cfg("ai"))
        chunks = [c async for c in app.astream({"topic": "b"}, cfg("as"), stream_mode="updates")]
        beat.cancel()
        assert ticks > 1  # the loop kept running while the graph ran
        return result, chunks

    result, chunks = asyncio.run(main())
    assert result == {"log": ["plan", "write a"], "topic": "a"}
    assert chunks == [{"plan": {"log": ["plan"]}}, {"write": {"log": ["write b"]}}]
    verified(app, "ai")
    verified(app, "as")


def test_an_async_node_can_interrupt(backend: Backend) -> None:
    async def confirm(state: S) -> dict[str, Any]:
        answer = interrupt("sure?")
        return {"log": [f"confirmed {answer}"]}

    graph = StateGraph(S).add_node("confirm", confirm).add_edge(START, "confirm")
    app = on(graph.compile(), backend)
    assert app.invoke({}, cfg("ac"))["__interrupt__"][0].value == "sure?"
    assert app.invoke(Command(resume="yes"), cfg("ac"))["log"] == ["confirmed yes"]
    verified(app, "ac")
