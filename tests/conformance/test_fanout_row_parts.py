"""A fan-out task's result row (`done#`, `fanin.py`) keeps what the task returned besides its
writes and io: an interrupted task's payload, a failed one's error message. On every backend:
with encryption on they are sealed like the writes and io (no stored byte holds them, and the
superstep still resumes from the row), and `erase --parts interrupts,errors` scrubs them from
the rows, small ones kept inline included (big ones are chunks, `test_big_fanout_parts.py`)."""

from __future__ import annotations

import operator
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from durable_graph import END, START, NodeContext, RetryPolicy, Send, StateGraph
from durable_graph.backend import Backend
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.errors import ThreadFailed
from durable_graph.sealed_records import open_with, seal_with
from durable_graph.verification import verify_thread
from tests.conformance.test_encryption import ALICE, Encrypted, holds
from tests.conformance.test_erasure_parts import stored

MARK = "JANE-ROE-5512"


class Case(BaseModel):
    mode: str = "ask"
    done: Annotated[list[str], operator.add] = Field(default_factory=list)


def plan(state: Case) -> dict[str, Any]:
    return {}


def fan_out(state: Case) -> list[Send]:
    return [Send("work", {"n": n, "mode": state.mode}) for n in ("a", "b")]


def work(arg: dict[str, str], ctx: NodeContext) -> dict[str, Any]:
    """Task `b` asks a person (or fails), naming them; task `a` succeeds."""
    if arg["n"] == "b" and arg["mode"] == "ask":
        ctx.interrupt({"question": f"may {MARK} be paid?"})
    if arg["n"] == "b" and arg["mode"] == "fail":
        raise ValueError(f"no account for {MARK}")
    return {"done": [arg["n"]]}


def _graph() -> Any:
    builder = StateGraph(Case)
    builder.add_node("plan", plan)
    builder.add_node("work", work, retry=RetryPolicy(max_attempts=1))
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", fan_out)
    builder.add_edge("work", END)
    return builder.compile(name="tests.conformance.test_fanout_row_parts:graph")


graph = _graph()


def run_both(backend: Backend, clock: ManualClock) -> Any:
    """Thread `asks` suspends in its fan-out, thread `fails` fails in it."""
    app = graph.with_backend(backend, clock=clock)
    app.invoke({"mode": "ask"}, thread_id="asks")
    with pytest.raises(ThreadFailed):
        app.invoke({"mode": "fail"}, thread_id="fails")
    return app


def done_rows(backend: Backend, thread_id: str) -> dict[str, Any]:
    store = backend.checkpoints
    keys = [f"done#1#{t.id}" for t in store.ledger(thread_id)[1].next]
    return {k: r.value for k, r in store.get_records(thread_id, keys).items()}


def test_a_fanout_rows_interrupt_and_error_are_sealed(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """Given an encrypted store
    When a fan-out task interrupts with a small payload naming a person, and another thread's
    fan-out task fails with a message naming them
    Then the `done#` rows hold neither in the clear (no stored byte names the person), and the
    suspended thread resumes from its rows (the other task's result reused) and completes."""
    backend = encrypted.backend
    app = run_both(backend, clock)
    rows = [*done_rows(backend, "asks").values(), *done_rows(backend, "fails").values()]
    assert len(rows) == 4 and all("$sealed" in v and "interrupt" not in v for v in rows)
    assert not any("error" in v or "goto" in v for v in rows)
    assert not holds(encrypted.stored(), MARK)

    app.resume("asks", resume_value=True)

    assert sorted(app.get_state("asks").values["done"]) == ["a", "b"]
    assert verify_thread(backend, "asks").ok


def test_erasure_scrubs_a_fanout_rows_interrupt_and_error(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a thread suspended in a fan-out (a `done#` row holds the small interrupt payload)
    and one failed in a fan-out (a row holds the error message), both naming a person
    When their interrupts and errors are erased
    Then no stored byte names the person, and both threads and their bundles verify."""
    run_both(backend, clock)
    rows = [*done_rows(backend, "asks").values(), *done_rows(backend, "fails").values()]
    assert sum(holds(repr(v).encode(), MARK) for v in rows) == 2, "in the rows before"

    for thread_id in ("asks", "fails"):
        record = erase(
            backend, thread_id, parts=["interrupts", "errors"], reason="GDPR #153", actor=ALICE
        )
        assert record is not None and record.parts

    after = [*done_rows(backend, "asks").values(), *done_rows(backend, "fails").values()]
    assert len(after) == 4 and not any(holds(repr(v).encode(), MARK) for v in after)
    assert not holds(stored(backend), MARK)
    for thread_id in ("asks", "fails"):
        report = verify_thread(backend, thread_id)
        assert report.ok, report.reason
        assert verify_bundle(build_bundle(backend, thread_id)).ok


def test_erasing_an_encrypted_fanout_rows_interrupt_keeps_the_key(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """Given an encrypted thread suspended in a fan-out
    When its interrupts are erased (the key stays)
    Then its `done#` row no longer holds the payload when opened with the key, and the thread
    still resumes from the row and completes."""
    backend = encrypted.backend
    app = run_both(backend, clock)
    keys = backend.checkpoints.keys
    assert keys is not None

    record = erase(backend, "asks", parts=["interrupts"], reason="GDPR #154", actor=ALICE)

    assert record is not None and not record.data_key
    cipher = keys.cipher("asks")
    opened = [open_with(v, cipher, k) for k, v in sorted(done_rows(backend, "asks").items())]
    assert [o["interrupt"] for o in opened] == [None, None]
    assert [o["kind"] for o in opened] == ["ok", "interrupt"]
    app.resume("asks", resume_value=True)
    assert sorted(app.get_state("asks").values["done"]) == ["a", "b"]


def test_a_row_written_before_sealing_its_interrupt_is_scrubbed_and_sealed(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """Given an encrypted thread suspended in a fan-out whose `done#` row is as the release
    before wrote it (only its writes and io sealed, the interrupt payload in the clear)
    When its interrupts are erased
    Then the row holds the payload neither in the clear nor sealed, and the superstep resumes
    from the rows and completes."""
    backend = encrypted.backend
    app = run_both(backend, clock)
    keys = backend.checkpoints.keys
    assert keys is not None
    cipher = keys.cipher("asks")
    store = backend.checkpoints
    for key, value in done_rows(backend, "asks").items():
        old = seal_with(open_with(value, cipher, key), ("writes", "io"), cipher, key)
        found = store.get_record("asks", key)
        assert found is not None
        store.put_record("asks", key, old, expected_version=found.version)
    assert any(holds(repr(v).encode(), MARK) for v in done_rows(backend, "asks").values())

    erase(backend, "asks", parts=["interrupts"], reason="GDPR #155", actor=ALICE)

    rows = done_rows(backend, "asks")
    assert not any(holds(repr(v).encode(), MARK) for v in rows.values())
    opened = [open_with(v, cipher, k) for k, v in sorted(rows.items())]
    assert [o["interrupt"] for o in opened] == [None, None]
    assert all(v.get("interrupt") is None for v in rows.values())
    app.resume("asks", resume_value=True)
    assert sorted(app.get_state("asks").values["done"]) == ["a", "b"]
