"""A cold read racing the merges of a live writer, on every backend (`record_fold.py`,
`docs/record-format.md` §7): the segments a reader's snapshot names, and then those of the
newer snapshot it reads through, are merged away and deleted by a writer in another thread
before the reader fetches them; the reader asks for the newest snapshot again and hands out the
state the writer wrote, never a spurious `CorruptRecord`. A segment the newest snapshot still
names that is gone is corruption, named at that snapshot's step. Small thresholds as in
`test_merged_segments.py` (a snapshot every 4 steps, runs of 2 segments merged)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pytest

from durable_graph.backend import Backend
from durable_graph.backends.records import RecordStore
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.errors import CorruptRecord
from durable_graph.payload_batches import get_many
from durable_graph.ports.payload_store import StoredObject
from tests.conformance.test_lost_appends import stored
from tests.conformance.test_merged_segments import (
    NO_LIMIT,
    expected,
    run,
    small_thresholds,
    snaps,
    talk,
)

__all__ = ["small_thresholds"]  # the thresholds fixture, autouse here too

TURNS = 40


class Writer:
    """A writer on its own thread: on each `outrun(refs)` it runs turns of the chat, one at a
    time, until a merge has deleted one of `refs`, then hands back."""

    def __init__(self, backend: Backend, clock: ManualClock) -> None:
        self.backend = backend
        self.app = talk.with_backend(backend, clock=clock)
        self.turns = TURNS
        self.asked = threading.Event()
        self.done = threading.Event()
        self.refs: Sequence[PayloadRef] = ()
        self.merges = 0
        self.failure: BaseException | None = None
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def outrun(self, refs: Sequence[PayloadRef]) -> None:
        self.refs = refs
        self.done.clear()
        self.asked.set()
        assert self.done.wait(120), "the writer did not answer"
        if self.failure is not None:
            raise self.failure

    def stop(self) -> None:
        self.stopping = True
        self.asked.set()
        self.thread.join(60)

    def _serve(self) -> None:
        while True:
            self.asked.wait()
            self.asked.clear()
            if self.stopping:
                return
            try:
                for _ in range(200):
                    self.turns += 1
                    self.app.invoke({"limit": self.turns}, NO_LIMIT, thread_id="t")
                    if not all(stored(self.backend, ref) for ref in self.refs):
                        self.merges += 1
                        break
                else:
                    raise AssertionError("no merge deleted a segment in 200 turns")
            except BaseException as exc:  # handed to the reader's thread
                self.failure = exc
            self.done.set()


class Racing:
    """The real payload store, letting `before_batch` run before each of the first `times`
    batch reads of segments (a snapshot's segments are fetched in one batch)."""

    def __init__(self, inner: Any, before_batch: Callable[[Sequence[PayloadRef]], None]) -> None:
        self.inner = inner
        self.before_batch = before_batch
        self.times = 0

    def put(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef:
        ref: PayloadRef = self.inner.put(data, content_type)
        return ref

    def get(self, ref: PayloadRef) -> bytes:
        data: bytes = self.inner.get(ref)
        return data

    def get_many(self, refs: Sequence[PayloadRef]) -> list[bytes]:
        if self.times > 0 and refs:  # (a list without pages fetches none first)
            self.times -= 1
            self.before_batch(refs)
        return get_many(self.inner, refs)

    def delete(self, ref: PayloadRef) -> bool:
        return bool(self.inner.delete(ref))

    def list_objects(self, after: str = "", limit: int = 1000) -> list[StoredObject]:
        return list(self.inner.list_objects(after, limit))

    def delete_idle(
        self, digests: Sequence[str], since: datetime, *, dry_run: bool = False
    ) -> list[str]:
        return list(self.inner.delete_idle(digests, since, dry_run=dry_run))


def test_a_cold_read_outrun_by_two_merges_reads_the_newer_snapshot(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a 40-turn chat and a reader with nothing cached that has read the head row and
    its snapshot, when a writer on another thread merges away a segment of that snapshot
    before the reader fetches it, and again a segment of the newer snapshot the reader then
    reads through, then the reader asks for the newest snapshot again and returns the head it
    read, every message as written; the thread went on meanwhile."""
    run(backend, clock, TURNS)
    writer = Writer(backend, clock)
    try:
        racing = Racing(backend.payloads, writer.outrun)
        racing.times = 2
        reader = RecordStore(backend.checkpoints.inner, racing)
        head = reader.head_checkpoint("t")
    finally:
        writer.stop()
    assert writer.failure is None and writer.merges == 2 and racing.times == 0
    assert head is not None and head.values["turns"] >= TURNS
    assert head.values["messages"] == expected(head.values["turns"])
    newest = backend.checkpoints.head_checkpoint("t")
    assert newest is not None and newest.values["turns"] > head.values["turns"]


def test_a_segment_the_newest_snapshot_still_names_is_corruption_at_its_step(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a 60-turn chat whose step 9's snapshot lost its segments to merges, when a
    segment of the newest snapshot that holds step 9's messages is deleted, then a cold read
    of step 9 (through the newest snapshot) is refused naming the newest snapshot's step, not
    retried forever and not read as step 9's own corruption."""
    run(backend, clock, 60)
    step, newest = snaps(backend)[-1]
    nine = [s for at, s in snaps(backend) if at <= 9][-1]
    assert nine.step < newest.gone_before
    first = PayloadRef.model_validate(newest.fields["messages"]["segs"][0])
    assert backend.payloads.delete(first)
    with pytest.raises(CorruptRecord) as refused:
        RecordStore(backend.checkpoints.inner, backend.payloads).get_checkpoint("t", 9)
    assert refused.value.step == step != 9
