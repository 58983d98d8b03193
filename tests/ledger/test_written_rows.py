"""The embedded store hands out the row it just appended without parsing it again
(`SqliteCheckpointStore._row`): what it hands out is exactly what a parse of the stored bytes
gives, for every kind of head (a suspension, a recorded io call, big values kept as chunks,
sealed parts, a fork's step 0), and a row changed under it is parsed as ever."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from durable_graph import END, START, NodeContext, StateGraph
from durable_graph.backend import Backend
from durable_graph.backends.local import local_backend, sqlite_store
from durable_graph.backends.local.db import Database
from durable_graph.backends.local.sqlite_store import SqliteCheckpointStore
from durable_graph.checkpoint import Checkpoint
from durable_graph.clock import ManualClock
from durable_graph.timetravel import fork
from examples.email_approval import graph as email_graph
from tests.ledger.graphs import graph as chat_graph

NO_LIMIT = {"recursion_limit": 10_000}


class Fetched(BaseModel):
    size: int = 0


def fetch(request: dict[str, int]) -> str:
    return "x" * request["n"]


def fetch_big(state: Fetched, ctx: NodeContext) -> dict[str, object]:
    """A recorded response over `part_chunks.INLINE_PART_BYTES`: kept whole in a chunk of its own,
    which the sealed record remembers as `fresh` (and a record read back does not)."""
    return {"size": len(ctx.record("fetch", fetch, {"n": 70_000}))}


_big = StateGraph(Fetched)
_big.add_node("fetch", fetch_big)
_big.add_edge(START, "fetch")
_big.add_edge("fetch", END)
big_graph = _big.compile(name="tests.ledger.test_written_rows:big_graph")


def inner(backend: Backend) -> SqliteCheckpointStore:
    store = getattr(backend.checkpoints, "inner", None)
    assert isinstance(store, SqliteCheckpointStore)
    return store


class Parses:
    """Counts the rows the store parses (the real `_parse`, called through)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = sqlite_store._parse

        def counted(*args: Any) -> Checkpoint:
            self.count += 1
            return real(*args)

        monkeypatch.setattr(sqlite_store, "_parse", counted)


def heads_match(home: Path, writer: SqliteCheckpointStore, thread_ids: list[str]) -> None:
    """Each thread's head as the writer hands it out equals a fresh reader's parse of it."""
    fresh = SqliteCheckpointStore(Database(home / "state.db"))
    try:
        for thread_id in thread_ids:
            mine = writer.head_checkpoint(thread_id)
            parsed = fresh.head_checkpoint(thread_id)
            assert mine is not None and parsed is not None
            assert mine == parsed, thread_id
            assert mine.fresh == (), thread_id  # what its sealing wrote is not a read's
            assert mine.to_stored_json() == parsed.to_stored_json(), thread_id
    finally:
        fresh.close()


@pytest.mark.parametrize("encrypt", [False, True], ids=["clear", "encrypted"])
def test_the_rows_a_process_appended_are_handed_out_as_a_parse_gives_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encrypt: bool
) -> None:
    """Given approval threads (suspended, then completed), a chat of recorded 1 KB replies
    (io responses kept once, big values as chunks) waiting for review and resumed, a 70 KB
    recorded response (a whole-part chunk) and a fork's step 0, then after each of these the
    writer's head read parses nothing and equals, field for field and byte for byte as
    stored, a fresh reader's parse (no chunks remembered as its sealing's)."""
    home = tmp_path / "home"
    backend = local_backend(home, clock=ManualClock(), encrypt=encrypt)
    writer = inner(backend)
    parses = Parses(monkeypatch)
    approval = email_graph.with_backend(backend, clock=ManualClock())
    chat = chat_graph.with_backend(backend, clock=ManualClock())
    approval.invoke({"user_prompt": "pay supplier 7"}, thread_id="a")
    chat.invoke({"limit": 3}, NO_LIMIT, thread_id="c")
    big_graph.with_backend(backend, clock=ManualClock()).invoke({}, thread_id="b")
    fresh_parses = parses.count
    heads_match(home, writer, ["a", "c", "b"])
    assert parses.count == fresh_parses + 3  # the fresh reader's only
    approval.resume("a", values={"approved": True}, as_node="human_review")
    chat.resume("c", values={"approved": True}, as_node="review")
    fork(chat, "c", 2, "c-fork")
    fresh_parses = parses.count
    heads_match(home, writer, ["a", "c", "c-fork"])
    assert parses.count == fresh_parses + 3
    backend.close()


def test_a_row_changed_under_the_writer_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a suspended thread whose head row was then rewritten by someone else (the same
    record stored as text), then the writer's next head read parses the row it finds."""
    home = tmp_path / "home"
    backend = local_backend(home, clock=ManualClock())
    writer = inner(backend)
    email_graph.with_backend(backend, clock=ManualClock()).invoke(
        {"user_prompt": "pay supplier 8"}, thread_id="a"
    )
    head = writer.head_checkpoint("a")
    assert head is not None
    with sqlite3.connect(home / "state.db") as conn:
        conn.execute(
            "UPDATE checkpoints SET body = ? WHERE thread_id = 'a' AND step = ?",
            (head.to_stored_json(), head.step),
        )
    parses = Parses(monkeypatch)
    assert writer.head_checkpoint("a") == head
    assert parses.count == 1
    backend.close()


def test_the_head_this_process_holds_is_handed_out_without_a_stored_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a suspended thread this process wrote, when its head is read (as a resume does),
    then the record handed out is the one the process holds (no row parsed, no stored form
    built) and equals a fresh process's read; and when another process has appended the next
    step since, the head read gives that step."""
    home = tmp_path / "home"
    backend = local_backend(home, clock=ManualClock())
    approval = email_graph.with_backend(backend, clock=ManualClock())
    approval.invoke({"user_prompt": "pay supplier 9"}, thread_id="a")
    parses = Parses(monkeypatch)
    built: list[int] = []
    real_stored = Checkpoint.stored

    def stored(self: Checkpoint) -> Checkpoint:  # a spy: the real stored form, counted
        built.append(self.step)
        return real_stored(self)

    monkeypatch.setattr(Checkpoint, "stored", stored)
    head = backend.checkpoints.head_checkpoint("a")
    lazy = backend.checkpoints.lazy_head("a")
    assert head is not None and lazy is not None and lazy[0] is head and lazy[1]() is head
    assert (parses.count, built) == (0, [])
    other = local_backend(home, clock=ManualClock())
    try:
        assert other.checkpoints.head_checkpoint("a") == head
        email_graph.with_backend(other, clock=ManualClock()).resume(
            "a", values={"approved": True}, as_node="human_review"
        )
        moved = other.checkpoints.head_checkpoint("a")
    finally:
        other.close()
    assert moved is not None and moved.step > head.step
    assert backend.checkpoints.head_checkpoint("a") == moved
    assert parses.count >= 1
    backend.close()
