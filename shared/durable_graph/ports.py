"""The four ports (DESIGN.md §2). Core code depends on these Protocols only; backends implement
them, and one conformance suite (`tests/conformance/`) runs against every implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from durable_graph.checkpoint import (
    Checkpoint,
    GraphRef,
    PayloadRef,
    Task,
    ThreadRecord,
    VersionedRecord,
)
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


@dataclass(frozen=True)
class RecordWrite:
    """A small record written with a step's commit (`CommitWrites`): created iff absent
    (`expected_version=None`) or replaced iff its version is `expected_version`."""

    key: str
    value: dict[str, Any]
    expected_version: int | None = None


@dataclass(frozen=True)
class CommitWrites:
    """What a step's commit writes besides its checkpoint: the thread head when the status
    changes, and small records that follow from the step (the head signature, effect results).
    They are follow-ups, never conditions of the commit: each keeps its own condition, and one
    that loses (a head already further on, a signature already there, a claim taken over)
    never stops the checkpoint from committing."""

    head: ThreadRecord | None = None
    records: tuple[RecordWrite, ...] = ()

    def __bool__(self) -> bool:
        return self.head is not None or bool(self.records)


@runtime_checkable
class CombinedCommit(Protocol):
    """Optional capability of a checkpoint store that can write a step and its `CommitWrites`
    in one request (DynamoDB: one `TransactWriteItems`), so a status change costs one write
    instead of one per item. Stores without it get them written right after the append, in
    the backend's unit of work (`RecordStore.append_checkpoint`)."""

    def append_with(self, checkpoint: Checkpoint, writes: CommitWrites) -> bool:
        """Write `checkpoint` iff absent (else raise `StepConflict` with the winner, having
        written nothing) and, with it or right after it, `writes`. Returns whether `writes`
        were written; False asks the caller to write each on its own (one of them lost its
        condition, or there was only one)."""
        ...


class PayloadStore(Protocol):
    """Content-addressed bytes: written once, never overwritten, digest checked on read."""

    def put(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef: ...

    def get(self, ref: PayloadRef) -> bytes:
        """Return the bytes; raise `PayloadCorrupted` if they do not match `ref.sha256`."""
        ...

    def delete(self, ref: PayloadRef) -> bool:
        """Destroy the bytes under `ref.sha256` (every stored version); True if there were
        any. Erasure's one exception to write-once: the caller checks that no live thread
        still refers to them."""
        ...


IdleDelete = Literal["deleted", "in_use", "absent"]


@runtime_checkable
class StampedPayloads(Protocol):
    """Optional capability of a payload store, which every backend's has: each `put` stamps
    the object with the store's clock, a put of bytes already there included, and a delete
    can be conditional on no put since a time. That is what lets erasure delete a shared,
    content-addressed object without racing a step of another thread that stored the same
    bytes and has not committed yet (`payload_deletes.py`)."""

    def delete_if_idle(self, ref: PayloadRef, since: datetime) -> IdleDelete:
        """Delete the object (every stored version) unless it was put at `since` or later,
        as one step against concurrent puts: `deleted`, `in_use` (put since: left), or
        `absent`."""
        ...


LeftoverKind = Literal["lost", "retired"]


class Leftover(BaseModel):
    """Payload objects of `thread_id` that nothing will name, left by a process that may not
    delete payload objects for one that may (`Leftovers`). `kind`: `lost`, the chunks a step
    (`step`) or a fan-out task's result row (`row`, `done#…`) wrote before it lost its
    conditional append; `retired`, the snapshot segments the merges of the snapshot of `step`
    replaced (`backends/segment_runs.py`), left once that step was committed. `at` is when
    (ISO), `key` the store's own key of it (set on read, never stored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    thread_id: str
    step: int | None = None
    row: str | None = None
    kind: LeftoverKind = "lost"
    refs: list[PayloadRef]
    at: str
    key: str = Field(default="", exclude=True)


class Leftovers(Protocol):
    """Where a process whose credentials may not delete payload objects (the AWS worker:
    deleting is erasure's alone) leaves what it cannot delete (`disposal.Disposal`), and where
    one that may (the AWS sweeper, `leftovers.clear_leftovers`) finds it again.

    Every backend has one (`tests/conformance/test_leftovers.py`), although only the AWS
    functions leave anything: every embedded, PostgreSQL and memory process may delete, so
    its own lost appends and retired segments are deleted at once; one built with
    `deletes_payloads=False` (a role without payload deletes, or a test of that path) leaves
    them here, and `leftovers.clear_leftovers` run by one that may clears them on any store.
    `due` is oldest first; a leftover stays until it is forgotten, however often it is read."""

    def leave(
        self,
        thread_id: str,
        refs: Sequence[PayloadRef],
        *,
        step: int | None = None,
        row: str | None = None,
        kind: LeftoverKind = "lost",
    ) -> None:
        """Keep `refs` (of `step`, or of the result row `row`, as `kind` says), stamped now; a
        store may split them into several leftovers."""
        ...

    def due(self, before: datetime, limit: int) -> list[Leftover]:
        """The oldest `limit` leftovers left before `before`, oldest first."""
        ...

    def forget(self, leftover: Leftover) -> None:
        """Drop `leftover` (its objects are dealt with); forgetting one already gone is no
        error."""
        ...


class TransitionMessage(BaseModel):
    """Names one task: run `task` from checkpoint `step` of `thread_id`.

    `values`/`prev_hash` optionally carry checkpoint `step` itself so the hot path needs no read
    (safe: a committed checkpoint is immutable); they are omitted when the state is large.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    thread_id: str
    step: int
    task: Task
    graph: GraphRef
    parallel: int = 1
    carried: dict[str, Any] | None = None

    @property
    def dedup_id(self) -> str:
        return f"{self.thread_id}:{self.step}:{self.task.id}"

    @property
    def group_id(self) -> str:
        """FIFO group: per thread, or per task when several tasks of a step may run at once."""
        return self.thread_id if self.parallel == 1 else f"{self.thread_id}:{self.task.id}"


class Delivery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    message: TransitionMessage
    receipt: str
    receive_count: int = 1


class PoisonMessage(BaseModel):
    """A queued message no worker can parse or validate, already set aside by the queue.

    The queue cannot fail the thread itself (it does not know the engine), so it hands this to
    whoever received (`PoisonReporting.take_poisoned`), and the worker records the failure on the
    first of `thread_ids` that names an existing thread (several when the id had to be recovered
    from a FIFO group id, which may be `thread:task`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    thread_ids: tuple[str, ...]
    reason: str


class PoisonReporting(Protocol):
    """Optional capability of a queue: report the poison messages its receives set aside."""

    def take_poisoned(self) -> list[PoisonMessage]:
        """The poison messages found since the last call (each is returned once)."""
        ...


@dataclass
class SendLease:
    """Sends of one thread's tasks, leased as they are queued to the worker that runs them
    next (`LeasingSends`): the inline runner of `invoke`/`run`/`resume`, or a worker going on
    with the thread whose step it commits. `settling` is the delivery the same unit of work
    acknowledges (its row is the group's only other one, and goes with the commit)."""

    thread_id: str
    max_messages: int
    visibility_timeout: float
    settling: Delivery | None = None
    fair: bool = False  # lease only while no other message waits (a worker serving all threads)
    leased: list[Delivery] = field(default_factory=list)
    unleased: int = 0  # messages of the thread queued as usual (group busy, over the max)


class LeasingSends(Protocol):
    """Optional capability of a queue: lease a thread's messages to the worker as they are
    sent, inside the unit of work that commits the step they follow, so running them needs no
    receive of its own (no second look at the queue, no separate lease write). A crash before
    they run leaves them leased, and they come back when the lease runs out, as any lease."""

    def leasing_sends(self, lease: SendLease) -> AbstractContextManager[SendLease]: ...


class TransitionQueue(Protocol):
    def send(self, messages: Sequence[TransitionMessage]) -> None:
        """Enqueue; a message whose dedup id is already queued is dropped."""
        ...

    def receive(
        self,
        *,
        max_messages: int = 1,
        visibility_timeout: float = 60.0,
        thread_id: str | None = None,
    ) -> list[Delivery]:
        """Lease up to `max_messages`; at most one in flight per FIFO group.

        `thread_id` restricts the lease to one thread's messages (the inline runner of
        `invoke`/`run`); queues that cannot filter (SQS) raise `NotImplementedError` for it.
        """
        ...

    def ack(self, delivery: Delivery) -> None: ...

    def release(self, delivery: Delivery, *, delay: float = 0.0) -> None:
        """Make the message visible again after `delay` seconds (a transient failure)."""
        ...

    def depth(self) -> int:
        """Messages queued or in flight (approximate on SQS)."""
        ...


class Notification(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    thread_id: str
    step: int
    node: str | None = None
    summary: str = ""
    payload: Any = None
    links: dict[str, str] = Field(default_factory=dict)


class Notifier(Protocol):
    def notify(self, notification: Notification) -> None:
        """Called inside the step's unit of work (`Backend.atomic`), right after the step's
        conditional append. A backend whose store is transactional writes the notification
        as an outbox row in that transaction (it exists iff the step committed, at no extra
        fsync); others send it there (SNS), and a redelivery after a crash sends it again."""
        ...


@runtime_checkable
class NotificationLog(Protocol):
    """Optional capability of a notifier that keeps what it was given (the outbox rows)."""

    def read_all(self, thread_id: str | None = None) -> list[Notification]:
        """Every committed notification (of `thread_id`, when given), oldest first."""
        ...

    def forget_payloads(self, thread_id: str, payloads: Mapping[int, Any]) -> None:
        """Replace the payload of each kept notification of `thread_id` at a step of
        `payloads` by the value given for that step (erasure: the erased marker)."""
        ...
