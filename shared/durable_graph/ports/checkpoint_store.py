"""The checkpoint store port: durable, append-only checkpoints, the thread head and small
compare-and-set records. Backends implement it; `tests/conformance/` runs one suite over every
implementation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from durable_graph.checkpoint import Checkpoint, ThreadRecord, VersionedRecord
from durable_graph.listing import ThreadPage


class CheckpointStore(Protocol):
    """Durable, append-only checkpoints plus the thread head and small CAS records."""

    def append_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Write step `checkpoint.step` iff absent; else raise `StepConflict` with the winner."""
        ...

    def get_checkpoint(self, thread_id: str, step: int) -> Checkpoint | None: ...

    def rewrite_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Replace the stored row of step `checkpoint.step`, which must exist (else
        `StepNotFound`). Erasure's one exception to append-only: the caller (`erasure.py`)
        changes only what no hash covers (a change's `s`, `v`, `ref`; the read hints), and
        checks the hash body is unchanged before calling."""
        ...

    def head_checkpoint(self, thread_id: str) -> Checkpoint | None:
        """The highest committed step of the thread, read consistently."""
        ...

    def list_checkpoints(
        self,
        thread_id: str,
        *,
        newest_first: bool = True,
        before_step: int | None = None,
        limit: int | None = None,
    ) -> list[Checkpoint]: ...

    def get_thread(self, thread_id: str) -> ThreadRecord | None: ...

    def put_thread(self, record: ThreadRecord, *, expected_revision: int | None) -> ThreadRecord:
        """Create (expected_revision=None) or replace iff the stored revision matches.

        Returns the stored record with its new revision; raises `RecordConflict(current)`.
        """
        ...

    def advance_thread(self, record: ThreadRecord) -> bool:
        """Write `record` as the thread's head iff none is stored or the stored `head_step` is
        lower (a head never moves back: a late writer of an older step loses quietly); keep
        the stored `created_at` and `origin`, and add 1 to the revision. Returns whether it
        was written. One conditional write and no read first (SQL: INSERT … ON CONFLICT DO
        UPDATE … WHERE head_step < excluded.head_step; DynamoDB: one UpdateItem with
        if_not_exists), so a status change costs one request on every backend.
        """
        ...

    def list_threads(
        self, *, status: str | None = None, limit: int = 1000
    ) -> list[ThreadRecord]: ...

    def page_threads(
        self,
        *,
        status: str | None = None,
        prefix: str = "",
        newest_first: bool = True,
        limit: int = 50,
        cursor: str | None = None,
    ) -> ThreadPage:
        """One page of threads ordered by `(updated_at, thread_id)`, newest first unless
        `newest_first=False` (an inbox, oldest first); only `status` if given, only thread ids
        starting with `prefix`. Pass the page's `cursor` back for the next page (None: last).
        An unknown status, a limit outside 1..500 or a foreign cursor is `InvalidInput`, raised
        before anything is read (`durable_graph.listing`)."""
        ...

    def get_record(self, thread_id: str, key: str) -> VersionedRecord | None: ...

    def put_record(
        self, thread_id: str, key: str, value: dict[str, Any], *, expected_version: int | None
    ) -> VersionedRecord:
        """Create (expected_version=None) or replace iff the version matches (CAS).

        Raises `RecordConflict(current)` when the condition fails.
        """
        ...

    def get_records(self, thread_id: str, keys: Sequence[str]) -> dict[str, VersionedRecord]:
        """The records among `keys` that exist, by key, read in chunks (never one request per
        key when the backend can batch): DynamoDB BatchGetItem, 100 keys per request, with
        UnprocessedKeys retried; SQLite `IN (...)` in chunks of at most 500; memory a dict
        lookup. Order of `keys` does not matter; missing keys are simply absent from the result.
        """
        ...

    def complete_task(
        self, thread_id: str, counter_key: str, member_key: str, value: dict[str, Any]
    ) -> tuple[bool, int]:
        """Atomically: create record `member_key` with `value` iff it does not exist, and if it
        was created, add 1 to the counter record `counter_key` (created at 0 when missing).

        Returns (created, count): whether this call created the member, and the counter's value
        after the call (when the member already existed, the current count, unchanged).
        Idempotent per member: calling it twice for one member counts once, whatever crashes in
        between. This is how the last task of a 10,000-task superstep learns it is the last
        without reading its siblings.

        The member is an ordinary record (`value`, version 1); the counter reads back through
        `get_record` as `{"count": n}` and belongs to `complete_task` alone (never `put_record`
        it). `count` includes this call's increment, but on DynamoDB it is read just after the
        write, so increments that land meanwhile are included too: racing callers may both see
        the final count, and a redelivered call whose crashed first attempt created the member
        sees (False, final count). Act on reaching a total idempotently.
        """
        ...
