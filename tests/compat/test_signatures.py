"""Errors and limits as LangGraph has them: signatures checked at compile (durable_graph.
signatures), no default retries, `recursion_limit`, `config` for nodes and routers, and a
LangGraph saver refused at compile."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from durable_graph import (
    END,
    START,
    GraphRecursionError,
    NodeContext,
    RetryPolicy,
    StateGraph,
    ThreadFailed,
    get_config,
)
from durable_graph.backend import Backend
from tests.compat.conftest import cfg, on, verified


class S(TypedDict):
    n: int
    seen: Annotated[list[str], operator.add]


def inc(state: S) -> dict[str, Any]:
    return {"n": state["n"] + 1}


def base() -> StateGraph:
    return StateGraph(S).add_node("inc", inc).add_edge(START, "inc")


def test_a_router_taking_a_context_is_refused_at_compile() -> None:
    """Given a router declared (state, ctx), then compile() refuses it naming the router, its
    node and the forms a router may take, before anything runs."""

    def route(state: S, ctx: NodeContext) -> str:
        return END

    graph = base().add_conditional_edges("inc", route)
    with pytest.raises(TypeError, match=r"router .*route of 'inc' takes \(state, ctx\).*config"):
        graph.compile()


def test_a_router_with_no_state_or_async_is_refused_at_compile() -> None:
    async def later(state: S) -> str:
        return END

    with pytest.raises(TypeError, match="no state argument"):
        base().add_conditional_edges("inc", lambda: END).compile()
    with pytest.raises(TypeError, match="is async"):
        base().add_conditional_edges("inc", later).compile()


def test_a_node_with_parameters_nothing_passes_is_refused_at_compile() -> None:
    def three(state: S, ctx: NodeContext, extra: int) -> None:
        return None

    graph = StateGraph(S).add_node("three", three).add_edge(START, "three")
    with pytest.raises(TypeError, match=r"node 'three' .* has parameters \['extra'\]"):
        graph.compile()


def test_a_failing_node_is_not_retried_by_default(backend: Backend) -> None:
    """Given a node that raises, then it ran once (LangGraph retries nothing by default) and
    the thread fails with 1 attempt; with a retry_policy it is retried."""
    calls: list[int] = []

    def boom(state: S) -> dict[str, Any]:
        calls.append(1)
        raise RuntimeError("flaky")

    app = on(StateGraph(S).add_node("boom", boom).add_edge(START, "boom").compile(), backend)
    with pytest.raises(ThreadFailed, match=r"RuntimeError: flaky \(1 attempt\)"):
        app.invoke({"n": 0}, cfg("once"))
    assert len(calls) == 1
    policy = RetryPolicy(max_attempts=3, initial_interval=0.0)
    retried = StateGraph(S).add_node("boom", boom, retry_policy=policy).add_edge(START, "boom")
    with pytest.raises(ThreadFailed, match="3 attempts"):
        on(retried.compile(), backend).invoke({"n": 0}, cfg("thrice"))
    assert len(calls) == 4
    verified(app, "once")


def looping() -> StateGraph:
    return base().add_conditional_edges("inc", lambda s: "inc" if s["n"] < 1000 else END)


def test_recursion_limit_stops_a_run_with_a_clear_error(backend: Backend) -> None:
    """Given a loop that never reaches END within 25 steps, then invoke raises
    GraphRecursionError naming the limit, the thread is failed with that reason and still
    verifies, its queue is free (the task leased ahead given back), and invoke(None) with a
    higher limit continues it to the end."""
    app = on(looping().compile(), backend)
    with pytest.raises(GraphRecursionError, match="Recursion limit of 25 reached") as raised:
        app.invoke({"n": 0}, cfg("loop"))
    assert isinstance(raised.value, RecursionError) and raised.value.limit == 25
    head = app.get_state(cfg("loop"))
    assert head.status == "failed" and head.error is not None
    assert head.error.type == "GraphRecursionError" and head.values["n"] == 25
    verified(app, "loop")
    # The run stopped holding its next task, leased ahead; it gave it back, so a continuation
    # takes the thread's queue at once, not after the lease (60 s).
    waiting = app.backend.queue.receive(max_messages=1, visibility_timeout=30.0)
    assert [d.message.thread_id for d in waiting] == ["loop"]
    app.backend.queue.release(waiting[0])
    with pytest.raises(GraphRecursionError, match="limit of 10"):
        app.invoke(None, cfg("loop", recursion_limit=10))
    assert app.get_state(cfg("loop")).values["n"] == 35
    done = app.invoke(None, cfg("loop", recursion_limit=2000))
    assert done["n"] == 1000
    verified(app, "loop")


def test_a_run_within_the_limit_completes(backend: Backend) -> None:
    app = on(base().add_conditional_edges("inc", lambda s: "inc" if s["n"] < 25 else END)
             .compile(), backend)  # fmt: skip
    assert app.invoke({"n": 0}, cfg("ok"))["n"] == 25
    with pytest.raises(Exception, match="recursion_limit must be a positive integer"):
        app.invoke({"n": 0}, cfg("bad", recursion_limit=0))


def test_config_reaches_nodes_and_routers_that_ask_for_it(backend: Backend) -> None:
    """Given a node declared (state, config), a node with config= as keyword, one calling
    get_config() and a router (state, config), then each gets the caller's configurable with
    the thread id, as LangGraph's RunnableConfig dict."""

    def positional(state: S, config: dict[str, Any]) -> dict[str, Any]:
        return {
            "seen": [f"pos:{config['configurable']['user']}:{config['configurable']['thread_id']}"]
        }

    def keyword(state: S, *, config: dict[str, Any]) -> dict[str, Any]:
        return {"seen": [f"kw:{config['metadata']['langgraph_node']}"]}

    def ambient(state: S) -> dict[str, Any]:
        return {"seen": [f"get:{get_config()['configurable']['user']}"]}

    def route(state: S, config: dict[str, Any]) -> str:
        return "ambient" if config["configurable"]["user"] == "ada" else END

    graph = (
        StateGraph(S)
        .add_node("positional", positional)
        .add_node("keyword", keyword)
        .add_node("ambient", ambient)
        .add_edge(START, "positional")
        .add_edge("positional", "keyword")
        .add_conditional_edges("keyword", route)
        .add_edge("ambient", END)
    )
    app = on(graph.compile(), backend)
    out = app.invoke({"n": 0}, {"configurable": {"thread_id": "c", "user": "ada"}})
    assert out["seen"] == ["pos:ada:c", "kw:keyword", "get:ada"]
    verified(app, "c")


class SqliteSaver:
    """The shape of a LangGraph saver (BaseCheckpointSaver's read method), without needing
    langgraph installed."""

    def get_tuple(self, config: dict[str, Any]) -> None:
        return None


def test_a_langgraph_saver_is_refused_at_compile_pointing_at_ours() -> None:
    with pytest.raises(TypeError, match=r"LangGraph's SqliteSaver.*DurableGraphSaver"):
        base().add_edge("inc", END).compile(checkpointer=SqliteSaver())
    with pytest.raises(TypeError, match="takes a durable_graph Backend or None, not str"):
        base().add_edge("inc", END).compile(checkpointer="state.db")
