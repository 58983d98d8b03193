"""A compiled graph used as a node (durable_graph.subgraphs): its own checkpoints, namespaced
under the parent thread, its interrupts surfacing to the parent and resumed through it."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from durable_graph import END, START, Command, StateGraph, ThreadFailed, interrupt
from durable_graph.backend import Backend
from durable_graph.subgraphs import subgraph_thread_id
from tests.compat.conftest import cfg, on, verified


class Doc(TypedDict):
    topic: str
    draft: str
    review: str
    log: Annotated[list[str], operator.add]


def outline(state: Doc) -> dict[str, Any]:
    return {"draft": f"outline of {state['topic']}"}


def approve(state: Doc) -> dict[str, Any]:
    verdict = interrupt({"approve": state["draft"]})
    return {"review": verdict}


child = StateGraph(Doc).add_node("outline", outline).add_node("approve", approve)
child_app = child.add_edge(START, "outline").add_edge("outline", "approve").compile()


def plan(state: Doc) -> dict[str, Any]:
    return {"log": ["plan"]}


def publish(state: Doc) -> dict[str, Any]:
    return {"log": [f"publish {state['draft']} ({state['review']})"]}


parent = (
    StateGraph(Doc)
    .add_node("plan", plan)
    .add_node("write", child_app)
    .add_node("publish", publish)
    .add_edge(START, "plan")
    .add_edge("plan", "write")
    .add_edge("write", "publish")
    .add_edge("publish", END)
)


def test_a_subgraph_interrupt_surfaces_to_the_parent_and_resumes_through_it(
    backend: Backend,
) -> None:
    """Given a parent whose node is a compiled graph that calls interrupt(), then the parent
    returns the subgraph's interrupt, the subgraph has its own thread under the parent's id,
    Command(resume=...) on the parent finishes both, and both chains verify."""
    app = on(parent.compile(), backend)
    waiting = app.invoke({"topic": "owls", "log": []}, cfg("doc"))
    assert [i.value for i in waiting["__interrupt__"]] == [{"approve": "outline of owls"}]
    task = app.get_state(cfg("doc")).checkpoint.next[0]
    sub_id = subgraph_thread_id("doc", task.id)
    assert (task.node, sub_id) == ("write", f"doc|{task.id}")
    sub = child_app.with_backend(backend).get_state(cfg(sub_id))
    assert sub.status == "suspended" and sub.next == ("approve",)
    done = app.invoke(Command(resume="approved"), cfg("doc"))
    # The subgraph's output goes through the parent's reducers, as in LangGraph: the "log" it
    # got as input and returns is appended again (LangGraph 1.2 gives the same list).
    assert done["log"] == ["plan", "plan", "publish outline of owls (approved)"]
    assert child_app.with_backend(backend).get_state(cfg(sub_id)).status == "completed"
    verified(app, "doc")
    verified(app, sub_id)


def test_a_failing_subgraph_fails_the_parent_with_its_reason(backend: Backend) -> None:
    def broken(state: Doc) -> dict[str, Any]:
        raise RuntimeError("no ink")

    inner = StateGraph(Doc).add_node("broken", broken).add_edge(START, "broken").compile()
    outer = StateGraph(Doc).add_node("inner", inner).add_edge(START, "inner").compile()
    app = on(outer, backend)
    with pytest.raises(ThreadFailed, match="no ink"):
        app.invoke({"topic": "x"}, cfg("f"))
    verified(app, "f")
    verified(app, subgraph_thread_id("f", "0:inner"))
