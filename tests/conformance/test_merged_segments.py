"""Snapshot segments merged in runs, on every backend (`backends/segment_runs.py`,
`docs/record-format.md` §7, §11): a cold read of the head fetches O(log n) payload objects
instead of one per snapshot; the segments a merge replaced are deleted once its snapshot is
committed; an old step whose snapshot lost its segments reads its lists as prefixes of the
newest snapshot's, equal to what the writer had; the thread verifies, in the store and as a
bundle; a tampered merged segment is named at its snapshot's step. Small thresholds keep it
fast: a snapshot every 4 steps, lists in segments from 4 items, runs of 2 segments merged."""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from durable_graph import END, START, StateGraph
from durable_graph.backend import Backend
from durable_graph.backends import segment_payloads, segment_runs, snapshots
from durable_graph.backends.records import RecordStore
from durable_graph.backends.snapshots import read_snapshot
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.errors import CorruptRecord, PayloadCorrupted
from durable_graph.payload_batches import get_many
from durable_graph.ports.payload_store import StoredObject
from durable_graph.verification import verify_thread

NO_LIMIT = {"recursion_limit": 1_000_000}
TURNS = 60
EVERY, FANIN = 4, 2


class Talk(BaseModel):
    messages: Annotated[list[str], operator.add] = Field(default_factory=list)
    turns: int = 0
    limit: int = 10


def say(state: Talk) -> dict[str, Any]:
    return {"messages": [f"message {state.turns} " + "x" * 40], "turns": state.turns + 1}


def more(state: Talk) -> str:
    return "say" if state.turns < state.limit else END


_builder = StateGraph(Talk)
_builder.add_node("say", say)
_builder.add_edge(START, "say")
_builder.add_conditional_edges("say", more, ["say", END])
talk = _builder.compile(name="tests.conformance.test_merged_segments:talk")


def expected(turns: int) -> list[str]:
    return [f"message {i} " + "x" * 40 for i in range(turns)]


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    use_thresholds(monkeypatch, EVERY, FANIN)
    yield


def use_thresholds(monkeypatch: pytest.MonkeyPatch, every: int, fanin: int) -> None:
    """A snapshot every `every` steps, segments of `every` items merged `fanin` at a time."""
    monkeypatch.setattr(snapshots, "SNAPSHOT_EVERY", every)
    monkeypatch.setattr(snapshots, "SEGMENT_MIN_ITEMS", every)
    monkeypatch.setattr(segment_runs, "MERGE_FANIN", fanin)
    monkeypatch.setattr(segment_runs, "BASE_ITEMS", every)


class Counting:
    """The real payload store, counting the objects read."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.objects = 0

    def put(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef:
        ref: PayloadRef = self.inner.put(data, content_type)
        return ref

    def get(self, ref: PayloadRef) -> bytes:
        self.objects += 1
        data: bytes = self.inner.get(ref)
        return data

    def get_many(self, refs: Sequence[PayloadRef]) -> list[bytes]:
        self.objects += len(refs)
        return get_many(self.inner, refs)

    def delete(self, ref: PayloadRef) -> bool:
        return bool(self.inner.delete(ref))

    def list_objects(self, after: str = "", limit: int = 1000) -> list[StoredObject]:
        return list(self.inner.list_objects(after, limit))

    def delete_idle(
        self, digests: Sequence[str], since: datetime, *, dry_run: bool = False
    ) -> list[str]:
        return list(self.inner.delete_idle(digests, since, dry_run=dry_run))


def cold(backend: Backend) -> tuple[RecordStore, Counting]:
    """A reader with nothing cached, over the same stores, counting payload objects."""
    counting = Counting(backend.checkpoints.payloads)
    return RecordStore(backend.checkpoints.inner, counting), counting


def snaps(backend: Backend, thread: str = "t") -> list[tuple[int, snapshots.Snapshot]]:
    rows = backend.checkpoints.inner.list_checkpoints(thread, newest_first=False)
    return [(r.step, read_snapshot(backend.payloads, r.snap)) for r in rows if r.snap]


def run(backend: Backend, clock: ManualClock, turns: int = TURNS, thread: str = "t") -> None:
    talk.with_backend(backend, clock=clock).invoke({"limit": turns}, NO_LIMIT, thread_id=thread)


def test_a_cold_head_read_fetches_a_few_merged_segments_and_every_step_reads_back(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a 60-step chat (15 snapshots), then a cold head read fetches the snapshot and at
    most one segment per level (runs of 2: 15 = 1111b), not 15 segments; the segments the
    merges replaced are gone from the store; every step reads back as written, cold, old ones
    (whose snapshots name deleted segments) through the newest snapshot; a cold history page
    of 6 reads at most two snapshots and their segments; the thread verifies, also as a
    bundle."""
    run(backend, clock)
    reader, counting = cold(backend)
    head = reader.head_checkpoint("t")
    assert head is not None and head.values["messages"] == expected(TURNS)
    latest = snaps(backend)[-1][1]
    entry = latest.fields["messages"]
    assert len(entry["segs"]) == len(entry["lv"]) <= 5 and sum(entry["cnt"]) == TURNS
    assert counting.objects == 1 + len(entry["segs"])
    gone = [PayloadRef.model_validate(r) for _, s in snaps(backend) for r in s.retired]
    # A merge retires only the stored segments it joined: a segment the same snapshot made and
    # merged at once is never written. Snapshot n retires one per trailing zero bit of n: 7
    # of level 0, 3 of level 1, 1 of level 2 (22 when the merged-at-once ones were written).
    assert len(gone) == sum((n & -n).bit_length() - 1 for n in range(1, TURNS // EVERY + 1))
    named_before = {
        str(r["sha256"]) for _, s in snaps(backend)[:-1] for r in s.fields["messages"]["segs"]
    }
    assert {ref.sha256 for ref in gone} <= named_before
    for ref in gone:
        with pytest.raises(PayloadCorrupted):
            backend.payloads.get(ref)
    assert 0 < latest.gone_before <= snaps(backend)[-1][0]
    for step in range(0, TURNS + 1, 3):
        record = cold(backend)[0].get_checkpoint("t", step)
        assert record is not None and record.values["messages"] == expected(step), step
    reader, counting = cold(backend)
    page = reader.list_checkpoints("t", limit=6)
    assert [len(r.values["messages"]) for r in page] == list(range(TURNS, TURNS - 6, -1))
    # an older snapshot and the segments it names (some gone), then the newest and a prefix
    assert counting.objects <= 2 + 2 * 5
    assert verify_thread(backend, "t").ok
    assert verify_bundle(build_bundle(backend, "t")).ok


def test_a_tampered_merged_segment_is_named_at_its_snapshots_step(
    backend: Backend, clock: ManualClock
) -> None:
    """Given the head's snapshot's biggest merged segment altered (on a folder store: other
    bytes under its name) or deleted (every store), then a cold read of the head is refused
    naming the snapshot's step (that snapshot is whole: nothing may be missing from it);
    `verify`, which folds the changes themselves, still passes."""
    run(backend, clock, 40)
    step, latest = snaps(backend)[-1]
    entry = latest.fields["messages"]
    assert max(entry["lv"]) >= 2
    biggest = PayloadRef.model_validate(entry["segs"][entry["lv"].index(max(entry["lv"]))])
    folder = getattr(backend.payloads, "path_for", None)
    if folder is not None:
        folder(biggest.sha256).write_bytes(segment_payloads.pack({"s": "x", "v": ["forged"]}))
        with pytest.raises(CorruptRecord) as refused:
            cold(backend)[0].head_checkpoint("t")
        assert refused.value.step == step
    assert backend.payloads.delete(biggest) or folder is not None
    with pytest.raises(CorruptRecord) as refused:
        cold(backend)[0].head_checkpoint("t")
    assert refused.value.step == step
    assert verify_thread(backend, "t").ok


def test_a_process_that_may_not_delete_leaves_retired_segments_and_reads_the_same(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a writer whose role may not delete payloads (the AWS worker), then nothing it
    retired is deleted and every step still reads back."""
    backend.checkpoints.deletes_payloads = False
    run(backend, clock, 60)
    gone = [PayloadRef.model_validate(r) for _, s in snaps(backend) for r in s.retired]
    assert gone and all(backend.payloads.get(ref) for ref in gone)
    for step in range(0, 61, 7):
        record = cold(backend)[0].get_checkpoint("t", step)
        assert record is not None and record.values["messages"] == expected(step)


def test_a_new_writer_continues_the_runs_from_the_stored_snapshot(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a chat of 30 steps continued to 60 by a writer with nothing cached (another
    process), then its runs are those of the same chat continued by the warm writer (the
    counts and levels of the head's segments), and every step reads back."""
    for thread in ("warm", "t"):
        run(backend, clock, 30, thread)
        if thread == "t":
            backend.checkpoints.forget()
        run(backend, clock, TURNS, thread)
    entries = [snaps(backend, thread)[-1][1].fields["messages"] for thread in ("warm", "t")]
    assert [(e["cnt"], e["lv"]) for e in entries] == [(entries[0]["cnt"], entries[0]["lv"])] * 2
    assert sum(entries[1]["cnt"]) == entries[1]["n"] > 50 and len(entries[1]["lv"]) <= 5
    for step in (10, 29, 30, 31, 32, 47, TURNS + 1):
        record, same = (cold(backend)[0].get_checkpoint(t, step) for t in ("t", "warm"))
        assert record is not None and same is not None
        assert record.values["messages"] == same.values["messages"] == expected(step - (step > 30))
