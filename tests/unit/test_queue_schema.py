"""The embedded queue's tables (db.py `QUEUE`): a new store keeps one index on its queue, unique
on (group, dedup id), so each queue write changes one index instead of two; a store created
before keeps its queue as it was (`QUEUE_BEFORE`), and the same SQL serves both."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from durable_graph.backends.local import local_backend
from durable_graph.backends.local.schema import QUEUE_BEFORE
from durable_graph.backends.local.sqlite_queue import SqliteQueue
from durable_graph.ports.send_leases import SendLease
from examples.email_approval import graph as email_graph
from tests.helpers import message


def _queue_indexes(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'queue'"
        )
        return {str(r[0]) for r in rows}


@pytest.mark.parametrize("created", ["now", "before"])
def test_the_queue_dedups_and_keeps_fifo_order_on_either_shape(
    tmp_path: Path, created: str
) -> None:
    """Given a new store (one unique (group, dedup id) index on its queue) or one whose queue
    an earlier release created (a unique dedup id and a (group, id) index), when messages are
    sent twice, leased as sent, and received, then each is queued once, a group's messages come
    in order, the flow runs, and the store keeps its queue's shape."""
    home = tmp_path / "home"
    if created == "before":
        home.mkdir()
        with sqlite3.connect(home / "state.db") as conn:
            conn.executescript(QUEUE_BEFORE)
    before = _queue_indexes(home / "state.db") if created == "before" else set()
    backend = local_backend(home)
    queue = backend.queue
    assert isinstance(queue, SqliteQueue)
    queue.send([message("q", 0), message("q", 1)])
    queue.send([message("q", 0)])
    assert queue.depth() == 2
    lease = SendLease("p", max_messages=4, visibility_timeout=30)
    with queue.leasing_sends(lease):
        queue.send([message("p", 0)])
    queue.send([message("p", 0)])  # already queued (leased): dropped as a duplicate
    assert [d.message.dedup_id for d in lease.leased] == ["p:0:0:a"] and queue.depth() == 3
    [first] = queue.receive(max_messages=10, visibility_timeout=30)
    assert first.message.dedup_id == "q:0:0:a"
    queue.ack(first)
    [second] = queue.receive(max_messages=10, visibility_timeout=30)
    assert second.message.dedup_id == "q:1:1:a"
    app = email_graph.with_backend(backend)
    app.invoke({"user_prompt": "pay"}, thread_id="t-1")
    app.resume("t-1", values={"approved": True}, as_node="human_review")
    assert app.get_state("t-1").values["outcome"] == "sent"
    backend.close()
    indexes = _queue_indexes(home / "state.db")
    if created == "now":
        assert indexes == {"queue_by_group_dedup"}
    else:
        assert indexes == before and "queue_by_group" in indexes
