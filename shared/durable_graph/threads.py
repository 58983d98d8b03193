"""Thread ids, and the thread head record: written only when a thread's status changes, never
per step."""

from __future__ import annotations

from durable_graph.checkpoint import Checkpoint, ThreadRecord
from durable_graph.clock import Clock, iso
from durable_graph.errors import InvalidInput, RecordConflict
from durable_graph.ports import CheckpointStore


def check_thread_id(thread_id: str) -> None:
    """Refuse an id a new thread (start, fork) may not take: an id is part of record keys
    (`thread#<id>`) and of the API's paths (`/threads/<id>`)."""
    if not thread_id or len(thread_id) > 200 or any(c in thread_id for c in "\x00\n\r#/"):
        raise InvalidInput(
            "thread id must be 1-200 characters without '/', '#', or control characters",
            field="thread_id",
        )


def sync_thread(store: CheckpointStore, checkpoint: Checkpoint, clock: Clock) -> ThreadRecord:
    """Move the head record forward to `checkpoint`; never backwards (late writers lose)."""
    now = iso(clock.now())
    for _ in range(10):
        current = store.get_thread(checkpoint.thread_id)
        if current is not None and current.head_step >= checkpoint.step:
            return current
        record = ThreadRecord(
            thread_id=checkpoint.thread_id,
            graph=checkpoint.graph,
            status=checkpoint.status,
            head_step=checkpoint.step,
            created_at=current.created_at if current else checkpoint.created_at,
            updated_at=now,
            origin=(
                current.origin
                if current
                else (
                    checkpoint.parent
                    if checkpoint.parent and checkpoint.parent.thread_id != checkpoint.thread_id
                    else None
                )
            ),
            interrupt=checkpoint.interrupt,
            error=checkpoint.error,
            revision=current.revision if current else 0,
        )
        try:
            return store.put_thread(record, expected_revision=current.revision if current else None)
        except RecordConflict:
            continue
    raise RecordConflict(f"thread#{checkpoint.thread_id}")
