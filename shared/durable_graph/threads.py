"""Thread ids, and the thread head record: written when a thread's status changes, and by a
step committed onto a thread that was not running; never per step of a running thread."""

from __future__ import annotations

from durable_graph.checkpoint import Checkpoint, ThreadRecord
from durable_graph.clock import Clock, iso
from durable_graph.errors import InvalidInput
from durable_graph.ports.checkpoint_store import CheckpointStore


def check_thread_id(thread_id: str) -> None:
    """Refuse an id a new thread (start, fork) may not take: an id is part of record keys
    (`thread#<id>`) and of the API's paths (`/threads/<id>`)."""
    if not thread_id or len(thread_id) > 200 or any(c in thread_id for c in "\x00\n\r#/"):
        raise InvalidInput(
            "thread id must be 1-200 characters without '/', '#', or control characters",
            field="thread_id",
        )


def moves_head(status: str, previous_status: str | None) -> bool:
    """Whether a commit writes the thread head record: when the status changes, and when the
    thread was not running (an `update_state` or a resume that leaves the status as it was),
    so that every step added to a settled or suspended thread moves its `updated_at`: the
    retention index re-reads exactly the threads that moved (`references.py`). The hot path
    (a running thread's next step) never writes it."""
    return status != previous_status or previous_status != "running"


def sync_thread(store: CheckpointStore, checkpoint: Checkpoint, clock: Clock) -> ThreadRecord:
    """Move the head record forward to `checkpoint`; never backwards (a late writer loses).

    One conditional write, no read (`CheckpointStore.advance_thread`)."""
    record = head_record(checkpoint, clock)
    store.advance_thread(record)
    return record


def head_record(checkpoint: Checkpoint, clock: Clock) -> ThreadRecord:
    """The thread head record for `checkpoint`. The store keeps the thread's `created_at` and
    `origin` when a record exists, so the values given here for them (this step's time; a
    fork's origin thread) count only when it creates the record."""
    parent = checkpoint.parent
    return ThreadRecord(
        thread_id=checkpoint.thread_id,
        graph=checkpoint.graph,
        status=checkpoint.status,
        head_step=checkpoint.step,
        created_at=checkpoint.created_at,
        updated_at=iso(clock.now()),
        origin=parent if parent is not None and parent.thread_id != checkpoint.thread_id else None,
        interrupt=checkpoint.interrupt,
        error=checkpoint.error,
    )
