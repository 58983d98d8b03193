"""The opt-in lazy read, on every backend (`get_state(config, lazy=True)`, `lazy_values.py`,
`backends/lazy_state.py`, `docs/record-format.md` §7, §12): its values equal the eager read's
along a long thread (lists in merged runs of segments, an appended turn too big to stay
inline, a dict in merged patches, a list re-set now and then, a long string kept by
reference, a fork), encrypted too, chat messages as LangChain objects; a list's length costs
the snapshot document alone and a slice of its tail fetches only the segments holding it; a
deleted or altered segment is `CorruptRecord` naming the snapshot's step when it is touched,
not before, and an altered digest before any value is read; bad input gets the eager read's
errors.
Small thresholds as in `test_merged_segments.py` (a snapshot every 4 steps, lists in segments
from 4 items, runs of 2 segments merged)."""

from __future__ import annotations

import operator
import pickle
from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel, Field

from durable_graph import END, START, MessagesState, StateGraph
from durable_graph.backend import Backend
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.errors import CorruptRecord, InvalidInput, StepNotFound, ThreadNotFound
from durable_graph.lazy_values import LazySequence, LazyValues
from durable_graph.timetravel import fork
from durable_graph.verification import verify_thread
from tests.big_state_graphs import merge_dicts
from tests.conformance.test_encryption import Encrypted
from tests.conformance.test_merged_segments import (
    NO_LIMIT,
    Counting,
    cold,
    small_thresholds,
    snaps,
)

__all__ = ["small_thresholds"]  # the thresholds fixture, autouse here too

TURNS = 50
BIG_TURN = 45  # this turn appends a message over the offload threshold (its own chunk)


class Chat(BaseModel):
    messages: Annotated[list[str], operator.add] = Field(default_factory=list)
    facts: Annotated[dict[str, str], merge_dicts] = Field(default_factory=dict)
    recent: list[str] = Field(default_factory=list)
    manual: str = ""
    turns: int = 0
    limit: int = 10


def said(turn: int) -> str:
    """The message of turn `turn`."""
    return f"turn {turn}: " + ("y" * 9_000 if turn == BIG_TURN else "x" * 40)


def talk(state: Chat) -> dict[str, Any]:
    turn = state.turns
    out: dict[str, Any] = {
        "messages": [said(turn)],
        "facts": {f"fact-{turn:03d}": f"fact {turn}", "fact-000": f"revised at {turn}"},
        "turns": turn + 1,
    }
    if turn % 10 == 3:  # a list set whole now and then
        out["recent"] = [f"recent {turn}.{i}" for i in range(5)]
    if turn == 1:  # a long string, offloaded, then kept by reference
        out["manual"] = "m" * 20_000
    return out


def more(state: Chat) -> str:
    return "talk" if state.turns < state.limit else END


_builder = StateGraph(Chat)
_builder.add_node("talk", talk)
_builder.add_edge(START, "talk")
_builder.add_conditional_edges("talk", more, ["talk", END])
chat = _builder.compile(name="tests.conformance.test_lazy_reads:chat")


def reader(backend: Backend) -> tuple[Any, Counting]:
    """The chat graph over a reader with nothing cached (another process), counting the
    payload objects it reads."""
    store, counting = cold(backend)
    return chat.with_backend(replace(backend, checkpoints=store, payloads=counting)), counting


def run(backend: Backend, clock: ManualClock, turns: int = TURNS, thread: str = "t") -> None:
    chat.with_backend(backend, clock=clock).invoke({"limit": turns}, NO_LIMIT, thread_id=thread)


def test_lazy_values_equal_the_eager_read_along_a_long_thread(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a 50-turn chat (lists in merged runs, a 9 KB turn in its own chunk, a dict of
    patches, a list re-set every 10 turns, a 20 KB string kept by reference) and a fork of it
    continued, then at every third step and the head, read cold, the lazy values equal the
    eager ones: as a mapping, field by field, a list by length, index, slices, iteration
    both ways and `list()`; a list field is a `Sequence`, not a `list`; pickling gives plain
    values."""
    run(backend, clock)
    assert len(snaps(backend)) >= TURNS // 4 - 1
    assert snaps(backend)[-1][1].gone_before > 0  # older snapshots lost segments to merges
    fork(chat.with_backend(backend, clock=clock), "t", 27, "f", {"limit": 40})
    chat.with_backend(backend, clock=clock).invoke(None, NO_LIMIT, thread_id="f")
    for thread in ("t", "f"):
        head = chat.with_backend(backend).get_state(thread).step
        for step in [*range(0, head, 3), head]:  # every place between snapshots (every 4)
            app = reader(backend)[0]
            lazy = app.get_state(thread, step, lazy=True)
            eager = reader(backend)[0].get_state(thread, step)
            assert isinstance(lazy.values, LazyValues)
            assert lazy.values == eager.values and lazy.json_values == eager.json_values
            assert (lazy.step, lazy.config, lazy.next) == (eager.step, eager.config, eager.next)
            messages, expected = lazy.values["messages"], eager.values["messages"]
            assert isinstance(messages, LazySequence) and not isinstance(messages, list)
            assert len(messages) == len(expected) and list(messages) == expected
            assert messages[-3:] == expected[-3:] and messages[::-7] == expected[::-7]
            assert list(reversed(messages)) == expected[::-1]
            if expected:
                assert messages[0] == expected[0] and messages[-1] == expected[-1]
            assert lazy.values["recent"] == eager.values["recent"]
            assert pickle.loads(pickle.dumps(lazy.values)) == dict(eager.values), step
    head = reader(backend)[0].get_state("t", lazy=True)
    assert head.values["messages"][BIG_TURN].startswith(f"turn {BIG_TURN}: yyy")
    assert head.values["manual"] == "m" * 20_000 and len(head.values["facts"]) == TURNS


def test_an_encrypted_thread_reads_lazily_as_eagerly(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """Given the chat with encryption at rest on (sealed changes, sealed snapshots and
    segments), then at every third step, read with nothing cached, the lazy values equal the
    eager ones, and none of the message text is stored in the clear."""
    backend = encrypted.backend
    run(backend, clock, 30)
    assert b"turn 29: " not in encrypted.stored()
    app = chat.with_backend(backend)
    for step in range(0, 32, 3):
        backend.checkpoints.forget()
        lazy = app.get_state("t", step, lazy=True)
        backend.checkpoints.forget()
        eager = app.get_state("t", step)
        assert lazy.values == eager.values, step
        messages = lazy.values["messages"]
        assert messages[-2:] == eager.values["messages"][-2:] and len(messages) == step


class Messages(MessagesState):
    turns: int


def answer(state: Messages) -> dict[str, Any]:
    return {"messages": [AIMessage(f"answer {state['turns']}")], "turns": state["turns"] + 1}


def again(state: Messages) -> str:
    return "answer" if state["turns"] < 20 else END


_messages = StateGraph(Messages).add_node("answer", answer)
_messages.add_edge(START, "answer").add_conditional_edges("answer", again, ["answer", END])
message_chat = _messages.compile(name="tests.conformance.test_lazy_reads:message_chat")


def test_chat_messages_read_lazily_as_langchain_objects(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a 20-turn `MessagesState` chat (its messages in merged segments), then a cold
    lazy read gives each message, from a segment or a row, as the LangChain object the eager
    read gives, and `json_values` the stored JSON."""
    message_chat.with_backend(backend, clock=clock).invoke(
        {"messages": [("user", "hi")], "turns": 0}, NO_LIMIT, thread_id="m"
    )
    store, _ = cold(backend)
    app = message_chat.with_backend(replace(backend, checkpoints=store))
    lazy, eager = app.get_state("m", lazy=True), app.get_state("m")
    messages = lazy.values["messages"]
    assert len(messages) == 21 and messages == eager.values["messages"]
    assert isinstance(messages[0], HumanMessage) and isinstance(messages[-1], AIMessage)
    assert messages[-1].content == "answer 19" and messages[3:5] == eager.values["messages"][3:5]
    assert lazy.json_values["messages"][-1]["content"] == "answer 19"


def test_a_tail_slice_fetches_only_the_segments_holding_it(
    backend: Backend, clock: ManualClock
) -> None:
    """Given the chat's head read lazily, cold, then its field names and the length of its
    message list cost the snapshot document alone (its rows are read, no segment), the last
    few messages the newest segment alone, and the whole list every segment: as many objects
    as the eager read fetches for it."""
    run(backend, clock, 60)
    latest = snaps(backend)[-1][1].fields["messages"]
    segments = len(latest["segs"])
    assert segments >= 3
    app, counting = reader(backend)
    values = app.get_state("t", lazy=True).values
    assert counting.objects == 0  # nothing read before the values are used
    assert len(values["messages"]) == 60 and "facts" in values
    assert counting.objects == 1  # the snapshot document
    tail = 60 - latest["n"] + 1  # the messages appended since the snapshot, and one more
    assert values["messages"][-tail:] == [said(i) for i in range(60 - tail, 60)]
    assert counting.objects == 2  # and the newest segment
    assert values["messages"][-tail:] and counting.objects == 2  # fetched once
    assert list(values["messages"]) == [said(i) for i in range(60)]
    assert counting.objects == 1 + segments


def test_a_damaged_segment_is_corrupt_record_at_its_snapshot_step_when_touched(
    backend: Backend, clock: ManualClock
) -> None:
    """Given the head's snapshot's oldest segment altered (on a folder store: other bytes
    under its name) or deleted (every store), then a lazy read of the head gives the length
    and the tail of its messages, and refuses the first message with `CorruptRecord` naming
    the snapshot's step, as the eager read does; `verify`, which folds the changes
    themselves, still passes."""
    run(backend, clock, 40)
    step, latest = snaps(backend)[-1]
    first = PayloadRef.model_validate(latest.fields["messages"]["segs"][0])
    folder = getattr(backend.payloads, "path_for", None)
    damages = ["altered", "deleted"] if folder is not None else ["deleted"]
    for damage in damages:
        if damage == "altered":
            assert folder is not None
            folder(first.sha256).write_bytes(b"\x28\xb5\x2f\xfd forged")
        else:
            backend.payloads.delete(first)
        messages = reader(backend)[0].get_state("t", lazy=True).values["messages"]
        assert len(messages) == 40 and messages[-1] == "turn 39: " + "x" * 40
        with pytest.raises(CorruptRecord) as refused:
            messages[0]
        assert refused.value.step == step, damage
        with pytest.raises(CorruptRecord) as eager:
            reader(backend)[0].get_state("t").values  # noqa: B018
        assert eager.value.step == step
    assert verify_thread(backend, "t").ok


def test_an_altered_digest_is_refused_before_any_value_is_read(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a row after the snapshot whose change digest was altered in the store, then the
    lazy read refuses the first use of the values with `CorruptRecord` at the row read
    (its state root no longer holds), as the eager read does."""
    run(backend, clock, 30)
    head = backend.checkpoints.inner.head_checkpoint("t")
    assert head is not None and head.anchor < head.step
    change = head.changes["turns"]
    forged = change.model_copy(update={"d": "0" * 64})
    backend.checkpoints.inner.rewrite_checkpoint(
        head.model_copy(update={"changes": {**head.changes, "turns": forged}})
    )
    lazy = reader(backend)[0].get_state("t", lazy=True)
    with pytest.raises(CorruptRecord) as refused:
        lazy.values["messages"]
    assert refused.value.step == head.step
    with pytest.raises(CorruptRecord) as eager:
        reader(backend)[0].get_state("t").values  # noqa: B018
    assert eager.value.step == head.step


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("nobody",), ThreadNotFound),
        (("nobody", 3), ThreadNotFound),
        (("t", 99), StepNotFound),
        (("t", -1), StepNotFound),
        (({"configurable": {"thread_id": "t", "checkpoint_id": "not-an-id"}},), InvalidInput),
        (({"configurable": {"thread_id": "t", "checkpoint_id": "00000002-ffff"}},), InvalidInput),
        (({"configurable": {"thread_id": "t", "checkpoint_id": "00000099-ffff"}},), StepNotFound),
        (({"configurable": {}},), InvalidInput),
    ],
)
def test_bad_input_gets_the_errors_of_the_eager_read(
    backend: Backend, clock: ManualClock, args: Sequence[Any], error: type[Exception]
) -> None:
    """Given a 5-turn chat, then an unknown thread or step, a `checkpoint_id` that is not one,
    or that names another record, gets the same error from the lazy read as from the eager
    one, with the same message."""
    run(backend, clock, 5)
    app = chat.with_backend(backend, clock=clock)
    with pytest.raises(error) as eager:
        app.get_state(*args)
    with pytest.raises(error) as lazy:
        app.get_state(*args, lazy=True)
    assert str(lazy.value) == str(eager.value)
