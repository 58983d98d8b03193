"""A step whose snapshot merged segments but that was never committed, on every backend
(`segment_runs.Retirements`, `records.py`, `docs/record-format.md` §7): a unit of work that
fails after steps whose snapshots merged, and a merging step whose append lost to another
worker's. What a merge retired is deleted only once the step whose snapshot retired it is
stored (rolled back or lost: the snapshots still naming those segments are the newest), the
document of a lost step's snapshot does not stay behind, and every stored step reads back cold
and verifies. Small thresholds as in `test_merged_segments.py`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from durable_graph.backend import Backend
from durable_graph.backends.records import RecordStore
from durable_graph.backends.snapshots import SNAPSHOT_CONTENT_TYPE, Snapshot, read_snapshot
from durable_graph.checkpoint import Checkpoint, PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.errors import PayloadCorrupted
from durable_graph.payload_batches import get_many
from durable_graph.ports.payload_store import StoredObject
from durable_graph.verification import verify_thread
from tests.conformance.test_merged_segments import (
    expected,
    run,
    small_thresholds,
    snaps,
    talk,
)

__all__ = ["small_thresholds"]  # the thresholds fixture, autouse here too


class Noting:
    """The real payload store, noting the snapshots written through it (read back at once: a
    unit of work that rolls back on PostgreSQL takes them with it)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.snapshots: list[Snapshot] = []

    def put(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef:
        ref: PayloadRef = self.inner.put(data, content_type)
        if content_type == SNAPSHOT_CONTENT_TYPE:
            self.snapshots.append(read_snapshot(self.inner, ref))
        return ref

    def get(self, ref: PayloadRef) -> bytes:
        data: bytes = self.inner.get(ref)
        return data

    def get_many(self, refs: Sequence[PayloadRef]) -> list[bytes]:
        return get_many(self.inner, refs)

    def delete(self, ref: PayloadRef) -> bool:
        return bool(self.inner.delete(ref))

    def list_objects(self, after: str = "", limit: int = 1000) -> list[StoredObject]:
        return list(self.inner.list_objects(after, limit))

    def delete_idle(
        self, digests: Sequence[str], since: datetime, *, dry_run: bool = False
    ) -> list[str]:
        return list(self.inner.delete_idle(digests, since, dry_run=dry_run))


def present(backend: Backend, ref: PayloadRef) -> bool:
    try:
        backend.payloads.get(ref)
    except PayloadCorrupted:
        return False
    return True


def replaced(snapshot: Snapshot) -> list[PayloadRef]:
    """What the snapshot's merges retired and it does not name itself (what its writer
    deletes once its step is stored)."""
    named = {s["sha256"] for e in snapshot.fields.values() for s in e.get("segs", ())}
    return [PayloadRef.model_validate(r) for r in snapshot.retired if r["sha256"] not in named]


def reads_back(backend: Backend, thread: str = "t") -> None:
    """Every stored step of the thread, read cold, holds the messages of the turns taken up
    to it, and the thread verifies."""
    reader = RecordStore(backend.checkpoints.inner, backend.payloads)
    head = reader.head_checkpoint(thread)
    assert head is not None
    for step in range(head.step + 1):
        record = RecordStore(backend.checkpoints.inner, backend.payloads).get_checkpoint(
            thread, step
        )
        assert record is not None, step
        assert record.values["messages"] == expected(record.values["turns"]), step
    assert verify_thread(backend, thread).ok


def test_a_merge_in_a_unit_of_work_that_fails_is_deleted_only_if_its_step_is_stored(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a chat of 20 steps, when 12 more run inside a unit of work that then fails
    (embedded and PostgreSQL: one transaction, rolled back; memory and DynamoDB: each step
    committed on its own), then each segment their snapshots' merges retired is deleted if
    the step whose snapshot retired it is stored, else still stored if a snapshot stored
    before names it (one written in the unit went with it on PostgreSQL, where payloads are
    rows), and every stored step reads back cold and verifies."""
    run(backend, clock, 20)
    earlier = {s["sha256"] for _, snap in snaps(backend) for s in snap.fields["messages"]["segs"]}
    noting = Noting(backend.checkpoints.payloads)
    backend.checkpoints.payloads = noting
    try:
        with pytest.raises(RuntimeError, match="fails"), backend.atomic():
            run(backend, clock, 32)
            raise RuntimeError("the unit fails")
    finally:
        backend.checkpoints.payloads = noting.inner
    merged = [s for s in noting.snapshots if replaced(s)]
    assert len(merged) >= 2
    checked = 0
    for snapshot in merged:
        row = backend.checkpoints.inner.get_checkpoint("t", snapshot.step)
        stored = row is not None and row.snap is not None and row.snap.sha256 == snapshot.ref.sha256
        for ref in replaced(snapshot):
            if stored:  # deleted once its step was committed
                checked += 1
                assert not present(backend, ref), snapshot.step
            elif ref.sha256 in earlier:  # still named by the snapshots that are the newest
                checked += 1
                assert present(backend, ref), snapshot.step
    assert checked
    reads_back(backend)


def test_a_merging_step_that_lost_its_append_deletes_nothing_it_retired(
    backend: Backend, clock: ManualClock
) -> None:
    """Given one message run by two workers that both hold the step before it, the step
    being one whose snapshot merges segments, when the winner (a process that may not delete
    payloads, as the AWS worker) commits first and then the loser (one that may) commits,
    then the loser's commit is a duplicate, every segment the merge retired is still stored,
    the loser's snapshot document is gone and the winner's stored; the thread runs on to the
    end, and every step reads back cold and verifies."""
    app = talk.with_backend(backend, clock=clock)
    run(backend, clock, 30, "twin")  # the same chat, to find a step whose snapshot merges
    step = [at for at, s in snaps(backend, "twin") if replaced(s)][1]
    app.start({"limit": 30}, thread_id="t")
    worker = app.engine("worker")
    while (head := backend.checkpoints.inner.head_checkpoint("t")) and head.step < step - 1:
        (delivery,) = backend.queue.receive(max_messages=1, visibility_timeout=30.0)
        worker.execute(delivery.message)
        backend.queue.ack(delivery)
    noting = Noting(backend.payloads)
    theirs = RecordStore(backend.checkpoints.inner, noting)  # another process: its own cache
    assert theirs.head_checkpoint("t") is not None  # which holds the step before, read cold
    loser = talk.with_backend(replace(backend, checkpoints=theirs), clock=clock).engine("loser")
    (delivery,) = backend.queue.receive(max_messages=1, visibility_timeout=30.0)
    lost = loser.prepare(delivery.message)
    assert isinstance(lost, Checkpoint) and lost.step == step
    backend.checkpoints.deletes_payloads = False
    won = worker.execute(delivery.message)
    assert won.kind == "committed"

    outcome = loser.commit(lost, previous_status="running")

    assert outcome.kind == "duplicate"
    backend.queue.ack(delivery)
    backend.checkpoints.deletes_payloads = True
    winner = snaps(backend)[-1][1]
    assert winner.step == step and replaced(winner)
    assert all(present(backend, ref) for ref in replaced(winner))
    (mine,) = noting.snapshots
    assert mine.ref.sha256 != winner.ref.sha256 and not present(backend, mine.ref)
    while deliveries := backend.queue.receive(max_messages=1, visibility_timeout=30.0):
        worker.execute(deliveries[0].message)
        backend.queue.ack(deliveries[0])
    final = backend.checkpoints.head_checkpoint("t")
    assert final is not None and final.status == "completed" and final.values["turns"] == 30
    reads_back(backend)
