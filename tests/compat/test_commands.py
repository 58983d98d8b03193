"""`Command(goto=, update=, resume=)`, `__interrupt__`, and several interrupts resumed in one
call (durable_graph.commands), as LangGraph has them."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Annotated, TypedDict

import pytest

import durable_graph
from durable_graph import END, START, Command, Interrupt, Send, StateGraph, interrupt
from durable_graph.backend import Backend
from durable_graph.errors import InvalidInput, ThreadFailed
from durable_graph.runtime import CompiledGraph
from durable_graph.timetravel import replay
from tests.compat.conftest import cfg, on, verified


class Flow(TypedDict):
    log: Annotated[list[str], operator.add]
    choice: str


def decide(state: Flow) -> Command:
    target = "left" if state["choice"] == "l" else "right"
    return Command(update={"log": [f"decide->{target}"]}, goto=target)


def left(state: Flow) -> dict[str, object]:
    return {"log": ["left"]}


def right(state: Flow) -> dict[str, object]:
    return {"log": ["right"]}


def fan(state: Flow) -> Command:
    return Command(goto=[Send("item", {"n": n}) for n in range(3)])


def item(arg: dict[str, int]) -> dict[str, object]:
    return {"log": [f"item {arg['n']}"]}


def routed_by_command() -> StateGraph:
    """decide routes by Command(goto=name) to left or right; left fans out to three items by
    Command(goto=[Send...])."""
    return (
        StateGraph(Flow)
        .add_node("decide", decide)
        .add_node("left", left)
        .add_node("right", right)
        .add_node("fan", fan)
        .add_node("item", item)
        .add_edge(START, "decide")
        .add_edge("left", "fan")
        .add_edge("right", END)
        .add_edge("item", END)
    )


def test_command_is_exported_beside_interrupt_and_send() -> None:
    assert durable_graph.Command is Command and durable_graph.Send is Send
    assert durable_graph.interrupt is interrupt and "Command" in durable_graph.__all__


def test_a_node_returning_command_updates_and_routes(backend: Backend) -> None:
    """Given a node that returns Command(update=..., goto=...), then its update is merged and
    the thread goes where goto says (recorded in the route), also to Sends (a fan-out)."""
    app = on(routed_by_command().compile(), backend)
    out = app.invoke({"choice": "l"}, cfg("c1"))
    assert out["log"] == ["decide->left", "left", "item 0", "item 1", "item 2"]
    routes = [r for s in app.get_state_history(cfg("c1")) for r in s.checkpoint.route]
    assert any(r.router == "Command.goto" and r.result == ["left"] for r in routes)
    assert app.invoke({"choice": "r"}, cfg("c2"))["log"] == ["decide->right", "right"]
    verified(app, "c1")
    verified(app, "c2")


def test_goto_to_an_unknown_node_fails_the_thread_with_the_reason(backend: Backend) -> None:
    def lost(state: Flow) -> Command:
        return Command(goto="nowhere")

    graph = StateGraph(Flow).add_node("lost", lost).add_edge(START, "lost")
    app = on(graph.compile(), backend)
    with pytest.raises(ThreadFailed, match="Command\\(goto='nowhere'\\), which is not a node"):
        app.invoke({"choice": ""}, cfg("bad"))
    verified(app, "bad")


class Review(TypedDict):
    answers: Annotated[list[str], operator.add]


def reviewer(name: str) -> Callable[[Review], dict[str, object]]:
    def review(state: Review) -> dict[str, object]:
        verdict = interrupt({"review": name})
        return {"answers": [f"{name}:{verdict}"]}

    return review


def reviews_app() -> CompiledGraph:
    graph = StateGraph(Review)
    for name in ("legal", "finance"):
        graph.add_node(name, reviewer(name)).add_edge(START, name).add_edge(name, END)
    return graph.compile()


def test_parallel_interrupts_surface_together_and_resume_in_one_call(backend: Backend) -> None:
    """Given two parallel nodes that each call interrupt(), then invoke returns both in
    __interrupt__ (value and id), get_state shows both, and one Command(resume={id: value})
    answers both; the thread completes and verifies."""
    app = on(reviews_app(), backend)
    out = app.invoke({}, cfg("p"))
    pending = out["__interrupt__"]
    assert all(isinstance(i, Interrupt) for i in pending)
    assert sorted(i.value["review"] for i in pending) == ["finance", "legal"]
    assert app.get_state(cfg("p")).interrupts == tuple(pending)
    by_name = {i.value["review"]: i.id for i in pending}
    with pytest.raises(InvalidInput, match="2 interrupts are pending"):
        app.invoke(Command(resume="ok"), cfg("p"))
    with pytest.raises(InvalidInput, match="not pending"):
        app.invoke(Command(resume={"0" * 32: "x"}), cfg("p"))
    done = app.invoke(Command(resume={by_name["legal"]: "yes", by_name["finance"]: "no"}), cfg("p"))
    assert sorted(done["answers"]) == ["finance:no", "legal:yes"]
    assert "__interrupt__" not in done
    verified(app, "p")


def test_answering_some_of_several_interrupts_leaves_the_others_pending(
    backend: Backend,
) -> None:
    """Given two pending interrupts, when one is answered, then the other is still pending
    (same id), and answering it completes the thread."""
    app = on(reviews_app(), backend)
    pending = {i.value["review"]: i.id for i in app.invoke({}, cfg("q"))["__interrupt__"]}
    left_over = app.invoke(Command(resume={pending["legal"]: "yes"}), cfg("q"))["__interrupt__"]
    assert [(i.value["review"], i.id) for i in left_over] == [("finance", pending["finance"])]
    done = app.invoke(Command(resume="later"), cfg("q"))
    assert sorted(done["answers"]) == ["finance:later", "legal:yes"]
    verified(app, "q")


class Approval(TypedDict):
    amount: int
    status: str


def approve(state: Approval) -> Command:
    decision = interrupt({"amount": state["amount"]})
    return Command(update={"status": decision}, goto="send" if decision == "ok" else END)


def send(state: Approval) -> dict[str, object]:
    return {"status": "sent"}


def test_command_resume_with_update(backend: Backend) -> None:
    """Given a thread waiting at interrupt(), when resumed with Command(resume=, update=),
    then the update is written first and the node gets the resume value."""
    graph = StateGraph(Approval).add_node("approve", approve).add_node("send", send)
    app = on(graph.add_edge(START, "approve").compile(), backend)
    waiting = app.invoke({"amount": 5}, cfg("a"))
    assert waiting["__interrupt__"][0].value == {"amount": 5}
    out = app.invoke(Command(resume="ok", update={"amount": 7}), cfg("a"))
    assert out == {"amount": 7, "status": "sent"}
    verified(app, "a")


def test_commands_we_do_not_take_are_refused_clearly(backend: Backend) -> None:
    with pytest.raises(InvalidInput, match="graph='__parent__'"):
        Command(graph=Command.PARENT, goto="x")
    graph = StateGraph(Approval).add_node("approve", approve).add_node("send", send)
    app = on(graph.add_edge(START, "approve").compile(), backend)
    app.invoke({"amount": 1}, cfg("g"))
    with pytest.raises(InvalidInput, match="update_state"):
        app.invoke(Command(goto="send"), cfg("g"))


def test_replay_reproduces_steps_routed_by_command(backend: Backend) -> None:
    """Given a thread routed by Command(goto=name) and fanned out by Command(goto=[Send...]),
    when each node step is replayed, then every one reproduces its update and its routing
    (the goto is recomputed from the node's returned Command, Send args included)."""
    app = on(routed_by_command().compile(), backend)
    app.invoke({"choice": "l"}, cfg("r1"))
    head = app.get_state(cfg("r1")).step
    reports = [replay(app, "r1", step) for step in range(1, head + 1)]
    assert [r.verdict for r in reports] == ["reproduced"] * head, [r.differences for r in reports]
    assert all(r.routing_matches for r in reports)


def test_replay_notices_a_command_that_now_routes_elsewhere(backend: Backend) -> None:
    """Given a step routed by Command(goto='left'), when the node's code now sends it
    'right', then replay reports the routing difference (not a reproduction)."""

    def build(target: str) -> CompiledGraph:
        def choose(state: Flow) -> Command:
            return Command(update={"log": ["chose"]}, goto=target)

        graph = (
            StateGraph(Flow)
            .add_node("decide", choose)
            .add_node("left", left)
            .add_node("right", right)
            .add_edge(START, "decide")
            .add_edge("left", END)
            .add_edge("right", END)
        )
        return on(graph.compile(name="tests.compat:goto"), backend)

    build("left").invoke({"choice": ""}, cfg("r2"))
    report = replay(build("right"), "r2", 1)
    assert report.state_matches is True
    assert report.routing_matches is False
    assert report.verdict == "not_reproducible"
    assert [d["what"] for d in report.differences] == ["routing"]
