"""A compiled graph used as a node (durable_graph.subgraphs): its own checkpoints, namespaced
under the parent thread, its interrupts surfacing to the parent and resumed through it."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

import pytest

from durable_graph import END, START, Command, Send, StateGraph, ThreadFailed, interrupt
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


class Reviews(TypedDict):
    answers: Annotated[list[str], operator.add]


def reviewer(name: str, ask: Callable[[Any], Any]) -> Callable[[Reviews], dict[str, Any]]:
    def review(state: Reviews) -> dict[str, Any]:
        return {"answers": [f"{name}:{ask({'review': name})}"]}

    return review


def parallel_reviews(graph_type: Any, ask: Callable[[Any], Any]) -> Any:
    """A subgraph whose two parallel nodes each interrupt (ours, or LangGraph's)."""
    inner = graph_type(Reviews)
    for name in ("legal", "finance"):
        inner.add_node(name, reviewer(name, ask)).add_edge(START, name).add_edge(name, END)
    return inner.compile()


def reviews_parent(graph_type: Any, inner: Any, **compiled: Any) -> Any:
    outer = graph_type(Reviews).add_node("reviews", inner).add_edge(START, "reviews")
    return outer.add_edge("reviews", END).compile(**compiled)


def test_several_interrupts_in_a_subgraph_surface_together_and_resume_in_one_call(
    backend: Backend,
) -> None:
    """Given a subgraph whose two parallel branches each call interrupt(), then the parent
    returns both (as LangGraph does, checked on LangGraph itself), a plain resume is refused,
    answering one leaves the other pending with the same id, and one
    Command(resume={id: value}) finishes both; every chain verifies."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import StateGraph as TheirGraph
    from langgraph.types import Command as TheirCommand
    from langgraph.types import interrupt as their_interrupt

    theirs = reviews_parent(
        TheirGraph, parallel_reviews(TheirGraph, their_interrupt), checkpointer=InMemorySaver()
    )
    app = on(reviews_parent(StateGraph, parallel_reviews(StateGraph, interrupt)), backend)
    results = []
    for graph, command in ((theirs, TheirCommand), (app, Command)):
        first = graph.invoke({"answers": []}, cfg("r"))
        pending = {i.value["review"]: i.id for i in first["__interrupt__"]}
        assert [i.id for i in graph.get_state(cfg("r")).interrupts] == [
            i.id for i in first["__interrupt__"]
        ]
        with pytest.raises(Exception, match=r"[Mm]ultiple pending interrupts|2 interrupts"):
            graph.invoke(command(resume="x"), cfg("r"))
        second = graph.invoke(command(resume={pending["legal"]: "yes"}), cfg("r"))
        left = [(i.value["review"], i.id) for i in second["__interrupt__"]]
        assert left == [("finance", pending["finance"])]
        done = graph.invoke(command(resume={pending["finance"]: "no"}), cfg("r"))
        results.append((sorted(pending), sorted(done["answers"]), "__interrupt__" in done))
    assert results[0] == results[1] == (["finance", "legal"], ["finance:no", "legal:yes"], False)
    verified(app, "r")
    verified(app, subgraph_thread_id("r", "0:reviews"))


def test_interrupts_of_a_subgraph_inside_a_subgraph_reach_the_top(backend: Backend) -> None:
    """Given parallel interrupts two subgraphs deep, then the top graph lists both and one
    resume map answers both through both levels."""
    middle = reviews_parent(StateGraph, parallel_reviews(StateGraph, interrupt))
    top = StateGraph(Reviews).add_node("outer", middle).add_edge(START, "outer")
    app = on(top.add_edge("outer", END).compile(), backend)
    pending = app.invoke({"answers": []}, cfg("n"))["__interrupt__"]
    assert sorted(i.value["review"] for i in pending) == ["finance", "legal"]
    assert len({i.id for i in pending}) == 2
    done = app.invoke(Command(resume={i.id: i.value["review"][0] for i in pending}), cfg("n"))
    assert sorted(done["answers"]) == ["finance:f", "legal:l"]
    verified(app, "n")


def test_two_runs_of_one_subgraph_name_their_interrupts_apart(backend: Backend) -> None:
    """Given the same subgraph run by two parallel tasks of the parent (Send), each waiting
    at the same inner interrupt, then the parent lists four distinct ids and answers each
    run's own."""

    def fan(state: Reviews) -> list[Send]:
        return [Send("reviews", {"answers": []}), Send("reviews", {"answers": []})]

    outer = StateGraph(Reviews).add_node("reviews", parallel_reviews(StateGraph, interrupt))
    app = on(outer.add_conditional_edges(START, fan).add_edge("reviews", END).compile(), backend)
    pending = app.invoke({"answers": []}, cfg("s"))["__interrupt__"]
    assert len(pending) == 4 and len({i.id for i in pending}) == 4
    answers = {i.id: f"{n}" for n, i in enumerate(pending)}
    done = app.invoke(Command(resume=answers), cfg("s"))
    assert len(done["answers"]) == 4 and "__interrupt__" not in done
    verified(app, "s")


def test_get_state_with_subgraphs_shows_the_subgraphs_state(backend: Backend) -> None:
    """Given a parent waiting inside its subgraph, then get_state's tasks name the subgraph
    task, its interrupt and its config; with subgraphs=True the subgraph's own snapshot
    (values, next, interrupts), as LangGraph's get_state(config, subgraphs=True) gives."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import StateGraph as TheirGraph
    from langgraph.types import interrupt as their_interrupt

    theirs = reviews_parent(
        TheirGraph, parallel_reviews(TheirGraph, their_interrupt), checkpointer=InMemorySaver()
    )
    app = on(reviews_parent(StateGraph, parallel_reviews(StateGraph, interrupt)), backend)
    seen = []
    for graph in (theirs, app):
        graph.invoke({"answers": ["start"]}, cfg("g"))
        [task] = graph.get_state(cfg("g")).tasks
        assert task.name == "reviews" and len(task.interrupts) == 2
        assert task.state["configurable"]["checkpoint_ns"].startswith("reviews:")
        [full] = graph.get_state(cfg("g"), subgraphs=True).tasks
        inner = full.state
        seen.append(
            (
                inner.values,
                sorted(inner.next),
                sorted(i.value["review"] for i in inner.interrupts),
                sorted((t.name, len(t.interrupts)) for t in inner.tasks),
            )
        )
    assert seen[1] == seen[0]
    # Ours: the config a task shows reads the subgraph's thread (it is a thread of its own).
    [task] = app.get_state(cfg("g")).tasks
    inner_app = on(parallel_reviews(StateGraph, interrupt), backend)
    assert inner_app.get_state(task.state).next == ("legal", "finance")
