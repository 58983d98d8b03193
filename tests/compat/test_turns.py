"""Multi-turn threads and `checkpoint_id` (durable_graph.turns), as LangGraph has them."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from durable_graph import END, START, Command, StateGraph, interrupt
from durable_graph.backend import Backend
from durable_graph.canonical import ZERO_HASH
from durable_graph.checkpoint import Checkpoint
from durable_graph.errors import InvalidInput, StepNotFound, ThreadNotFound, TurnRefused
from durable_graph.ledger import verify_chain
from tests import helpers
from tests.compat.conftest import cfg, on, verified


class Chat(TypedDict):
    said: Annotated[list[str], operator.add]
    last: str


def reply(state: Chat) -> dict[str, object]:
    return {"said": [f"echo {state['last']}"]}


chat = StateGraph(Chat).add_node("reply", reply).add_edge(START, "reply").add_edge("reply", END)
chat_app = chat.compile()


def ask(state: Chat) -> dict[str, object]:
    answer = interrupt({"question": state["last"]})
    return {"said": [f"answer {answer}"]}


asking = StateGraph(Chat).add_node("ask", ask).add_edge(START, "ask").add_edge("ask", END)
asking_app = asking.compile()


def test_new_input_on_a_completed_thread_continues_the_same_chain(backend: Backend) -> None:
    """Given a completed thread, when invoked with new input, then the input goes through the
    reducers onto the state it ended with and the graph runs again from START; the turns are
    one chain that verifies."""
    app = on(chat_app, backend)
    first = app.invoke({"last": "hi"}, cfg("t"))
    second = app.invoke({"last": "again", "said": ["user again"]}, cfg("t"))
    assert first == {"said": ["echo hi"], "last": "hi"}
    assert second == {"said": ["echo hi", "user again", "echo again"], "last": "again"}
    history = app.get_state_history(cfg("t"))
    assert [s.source for s in reversed(history)] == ["input", "node", "input", "node"]
    assert [s.status for s in reversed(history)] == ["running", "completed"] * 2
    verified(app, "t")


def test_new_input_while_waiting_at_an_interrupt_is_refused_and_changes_nothing(
    backend: Backend,
) -> None:
    """Given a thread waiting at interrupt(), when invoked with new input, then TurnRefused
    says how to answer it instead, and nothing is written."""
    app = on(asking_app, backend)
    app.invoke({"last": "q"}, cfg("w"))
    before = app.get_state(cfg("w")).step
    with pytest.raises(TurnRefused, match=r"waits for a decision in node 'ask'.*Command\(resume"):
        app.invoke({"last": "other"}, cfg("w"))
    assert app.get_state(cfg("w")).step == before
    assert app.invoke(Command(resume="yes"), cfg("w"))["said"] == ["answer yes"]
    verified(app, "w")


def test_a_past_checkpoint_id_continues_as_a_fork_within_the_thread(backend: Backend) -> None:
    """Given a thread of two turns, when invoked with new input and the checkpoint_id of the
    end of the first turn, then the new turn starts from that state (the second turn is not
    in it), the history keeps every step, and the chain verifies."""
    app = on(chat_app, backend)
    app.invoke({"last": "one"}, cfg("f"))
    end_of_first = app.get_state(cfg("f"))
    app.invoke({"last": "two"}, cfg("f"))
    branched = app.invoke({"last": "three"}, end_of_first.config)
    assert branched == {"said": ["echo one", "echo three"], "last": "three"}
    assert app.get_state(cfg("f")).values == branched
    assert len(app.get_state_history(cfg("f"))) == 6
    verified(app, "f")


def test_get_state_reads_the_checkpoint_a_config_names(backend: Backend) -> None:
    """Given a thread, then each snapshot's config names its own checkpoint, get_state of that
    config reads it back, parent_config names the step before, and an id that names another
    step's hash, a missing step or a missing thread is refused clearly."""
    app = on(chat_app, backend)
    app.invoke({"last": "x"}, cfg("g"))
    head = app.get_state(cfg("g"))
    assert head.parent_config is not None
    first = app.get_state(head.parent_config)
    assert (first.step, first.values["said"]) == (0, [])
    assert head.metadata["source"] == "loop" and first.metadata["source"] == "input"
    assert app.get_state(first.config).config == first.config
    wrong = {"configurable": {"thread_id": "g", "checkpoint_id": "00000001-0000000000000000"}}
    with pytest.raises(InvalidInput, match="another thread or store"):
        app.get_state(wrong)
    with pytest.raises(StepNotFound):
        app.get_state({"configurable": {"thread_id": "g", "checkpoint_id": "00000009-ab"}})
    with pytest.raises(InvalidInput, match="checkpoint_id 'nope'"):
        app.get_state({"configurable": {"thread_id": "g", "checkpoint_id": "nope"}})
    with pytest.raises(ThreadNotFound):
        app.invoke({"last": "x"}, {"configurable": {"thread_id": "zz", "checkpoint_id": "1"}})


def test_update_state_on_a_past_checkpoint_and_on_a_completed_thread(backend: Backend) -> None:
    """Given a completed thread, when update_state is given the checkpoint_id of step 0 and
    as_node, then the update is written on step 0's state and the thread continues from that
    node's edges; update_state on the completed head writes without running anything."""
    app = on(chat_app, backend)
    app.invoke({"last": "a"}, cfg("u"))
    step0 = app.get_state_history(cfg("u"))[-1]
    written = app.update_state(step0.config, {"last": "edited"}, as_node="reply")
    assert app.get_state(written).status == "completed" and app.get_state(cfg("u")).values == {
        "said": [],
        "last": "edited",
    }
    app.update_state(cfg("u"), {"said": ["note"]})
    assert app.get_state(cfg("u")).values["said"] == ["note"]
    again = app.invoke({"last": "b"}, cfg("u"))
    assert again["said"] == ["note", "echo b"]
    verified(app, "u")


def test_a_past_interrupted_checkpoint_can_be_resumed_again(backend: Backend) -> None:
    """Given a thread that was interrupted and then answered, when resumed with the
    checkpoint_id of the interrupted step and another answer, then the node re-runs from
    there with the new answer (a branch), and the chain verifies."""
    app = on(asking_app, backend)
    waiting = app.invoke({"last": "q"}, cfg("r"))
    assert waiting["__interrupt__"][0].value == {"question": "q"}
    interrupted = app.get_state(cfg("r"))
    assert app.invoke(Command(resume="first"), cfg("r"))["said"] == ["answer first"]
    again = app.invoke(Command(resume="second"), interrupted.config)
    assert again["said"] == ["answer second"]
    verified(app, "r")


def _chain(*shape: tuple[str, str]) -> list[Checkpoint]:
    """A format-1 chain of (source, status) records with valid hashes and links."""
    records: list[Checkpoint] = []
    for step, (source, status) in enumerate(shape):
        record = helpers.checkpoint("x", step, status=status).model_copy(
            update={"source": source, "prev_hash": records[-1].hash if records else ZERO_HASH}
        )
        records.append(record.sealed())
    return records


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        ((("input", "completed"), ("input", "completed")), None),
        ((("input", "suspended"), ("input", "running"), ("node", "completed")), None),
        ((("input", "failed"), ("input", "running")), None),
        ((("input", "running"), ("input", "running")), "new input follows a running step"),
        ((("input", "completed"), ("update", "running")), "only new input may follow"),
        ((("input", "completed"), ("node", "running")), "only new input may follow"),
        ((("input", "completed"), ("fork", "running")), "a fork record can only be step 0"),
    ],
)
def test_verify_accepts_a_next_turn_only_after_a_stop(
    shape: tuple[tuple[str, str], ...], reason: str | None
) -> None:
    """Given chains of record sources and statuses, then `verify` accepts new input after a
    completed, suspended or failed step and refuses it after a running one, and refuses
    anything else after a completed step (docs/record-format.md, check `transition`)."""
    report = verify_chain("x", _chain(*shape), None)
    if reason is None:
        assert report.ok, report.as_json()
    else:
        assert (report.check, report.first_bad_step) == ("transition", 1)
        assert reason in str(report.reason)


def test_update_state_returns_langgraphs_config_of_the_written_checkpoint(
    backend: Backend,
) -> None:
    """Given a thread waiting at an interrupt, when update_state writes to it, then it
    returns a config of LangGraph's shape (the same keys LangGraph's own update_state
    returns for the same program) naming the written checkpoint, and invoke(None, that
    config) runs on from it."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import StateGraph as LangGraphStateGraph
    from langgraph.types import interrupt as their_interrupt

    def their_ask(state: Chat) -> dict[str, object]:
        return {"said": [f"answer {their_interrupt({'question': state['last']})}"]}

    theirs_graph = LangGraphStateGraph(Chat).add_node("ask", their_ask).add_edge(START, "ask")
    theirs: Any = theirs_graph.add_edge("ask", END).compile(checkpointer=InMemorySaver())
    theirs.invoke({"last": "q"}, cfg("lg"))
    their_config = theirs.update_state(cfg("lg"), {"said": ["note"]})

    app = on(asking_app, backend)
    app.invoke({"last": "q"}, cfg("w"))
    written = app.update_state(cfg("w"), {"said": ["note"]})
    assert written.keys() == their_config.keys() == {"configurable"}
    assert written["configurable"].keys() == their_config["configurable"].keys()
    assert written["configurable"]["thread_id"] == "w"
    assert written["configurable"]["checkpoint_ns"] == ""
    snapshot = app.get_state(written)
    assert snapshot.config == written and snapshot.step == app.get_state(cfg("w")).step
    assert snapshot.values["said"] == ["note"]
    assert app.invoke(None, written)["__interrupt__"][0].value == {"question": "q"}
    out = app.invoke(Command(resume="yes"), cfg("w"))
    assert out["said"] == ["note", "answer yes"]
    verified(app, "w")
