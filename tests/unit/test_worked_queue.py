"""A process whose worker serves the embedded queue sends messages without their step's state
(`ports.worked_queues`) while few wait for it: its worker runs them from the step it holds, a
worker of another process reads the step from the store. Real SQLite files, two views of one
store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from durable_graph.backend import Backend
from durable_graph.backends.local import local_backend
from durable_graph.backends.local.db import Database
from durable_graph.backends.local.sqlite_queue import UNCARRIED
from durable_graph.backends.memory import MemoryQueue
from durable_graph.ports.worked_queues import is_worked_here
from examples.email_approval import graph as email_graph


def _carries(backend: Backend) -> dict[str, bool]:
    """Whether each queued row carries its step's state, by thread (read from a connection of
    its own, as another process would)."""
    db = backend.queue.db  # type: ignore[attr-defined]
    assert isinstance(db, Database)
    with sqlite3.connect(db.path) as conn:
        rows = conn.execute(
            "SELECT thread_id, json_extract(body, '$.carried') IS NOT NULL FROM queue"
        ).fetchall()
    return {thread: bool(carried) for thread, carried in rows}


def test_a_process_serving_its_queue_sends_no_state_and_another_reads_the_store(
    tmp_path: Path,
) -> None:
    """Given the embedded store, when a process that has run no worker starts a thread, then
    its queued row carries the step's state; once a worker of the process served the queue, a
    start's row carries none, and a worker of another process (nothing at hand) runs that
    thread from the store to its suspension."""
    home = tmp_path / "home"
    here = local_backend(home)
    app = email_graph.with_backend(here)
    app.start({"user_prompt": "pay supplier a"}, thread_id="a")
    assert _carries(here) == {"a": True}
    app.worker(concurrency=4).run(until_idle=True)
    app.start({"user_prompt": "pay supplier b"}, thread_id="b")
    assert _carries(here) == {"b": False}

    other = local_backend(home)
    elsewhere = email_graph.with_backend(other)
    elsewhere.worker(concurrency=4).run(until_idle=True)
    assert _carries(other) == {}
    for tid in ("a", "b"):
        state = elsewhere.get_state(tid)
        assert state.status == "suspended" and state.values["risk"] == "high"
    other.close()
    here.close()


def test_past_the_steps_at_hand_a_burst_carries_its_state_again(tmp_path: Path) -> None:
    """Given a process whose worker served the queue, when it starts `UNCARRIED` + 1 threads
    before its worker takes any, then the first `UNCARRIED` messages carry no state and the
    last carries its step's (its worker may no longer hold the step when it gets to it);
    the worker runs them all."""
    backend = local_backend(tmp_path / "home")
    app = email_graph.with_backend(backend)
    worker = app.worker(concurrency=UNCARRIED + 1, threads=1)
    worker.run(until_idle=True)
    ids = [f"t-{i:03d}" for i in range(UNCARRIED + 1)]
    with backend.atomic():
        for tid in ids:
            app.start({"user_prompt": f"pay {tid}"}, thread_id=tid)
    carries = _carries(backend)
    assert [carries[tid] for tid in ids] == [False] * UNCARRIED + [True]
    worker.run(until_idle=True)
    assert worker.stats.committed == UNCARRIED + 1
    assert {app.get_state(tid).status for tid in ids} == {"suspended"}
    backend.close()


class _LooksWorkedHere:
    """A queue with the capability's members that does not declare it."""

    worked_here = True

    def carries_state(self) -> bool:
        return False


def test_a_queue_is_worked_here_only_when_its_class_declares_it(tmp_path: Path) -> None:
    """Given the embedded queue (which declares `WorkedHere`), the in-memory queue, and a
    class with the same members that does not declare it, then only the first is worked here:
    the capability is asked of the class, not guessed from its members."""
    backend = local_backend(tmp_path / "home")
    assert is_worked_here(backend.queue)
    assert not is_worked_here(MemoryQueue())
    assert not is_worked_here(_LooksWorkedHere())
    backend.close()
