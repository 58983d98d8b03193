"""A store whose snapshots were written by the release before merged segments (snapshot format
2: a list as one unsalted segment per snapshot, `docs/record-format.md` §11) reads, verifies
and continues: the first snapshot this release writes keeps the list as one salted segment
of all of it, later ones merge in runs (`backends/segment_runs.py`), and nothing the old
snapshots name is deleted. A list re-set after a snapshot whose segments were merged away
is folded from the rows instead of read through the newest snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from durable_graph.backends import segment_runs, snapshots
from durable_graph.backends.local import local_backend
from durable_graph.backends.records import RecordStore
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.verification import verify_thread
from tests.conformance.test_merged_segments import expected, run, snaps

EVERY = 4


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(snapshots, "SNAPSHOT_EVERY", EVERY)
    monkeypatch.setattr(snapshots, "SEGMENT_MIN_ITEMS", EVERY)
    monkeypatch.setattr(segment_runs, "MERGE_FANIN", 2)
    monkeypatch.setattr(segment_runs, "BASE_ITEMS", EVERY)
    yield


def format_2_runs(
    put: Any, salt: str, items: list[Any], anchor: int, before: Any
) -> tuple[dict[str, Any], list[PayloadRef]]:
    """How the release before wrote a list: the previous snapshot's segments plus one
    unsalted segment of the items appended since (no counts, levels or merges)."""
    if before is not None and "segs" in before and before["a"] == anchor:
        segs, start = list(before["segs"]), int(before["n"])
    else:
        segs, start = [], 0
    if len(items) > start:
        segs.append(put(items[start:]).model_dump(mode="json"))
    return {"segs": segs, "n": len(items)}, []


def test_a_thread_snapshotted_by_the_release_before_reads_verifies_and_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock()
    with monkeypatch.context() as old:
        old.setattr(snapshots, "SNAPSHOT_FORMAT", 2)
        old.setattr(snapshots, "list_runs", format_2_runs)
        old.setattr(snapshots, "retirement", lambda *args: ({}, ()))
        backend = local_backend(tmp_path, clock=clock)
        run(backend, clock, 30)
        backend.close()
    backend = local_backend(tmp_path, clock=clock)  # this release, nothing cached
    written = snaps(backend)
    assert {s.fields["messages"].get("cnt") is None for _, s in written} == {True}
    old_segments = [
        PayloadRef.model_validate(r) for _, s in written for r in s.fields["messages"]["segs"]
    ]
    run(backend, clock, 90)
    after = snaps(backend)
    first_new = after[len(written)][1].fields["messages"]
    assert first_new["cnt"] == [first_new["n"]] and len(first_new["segs"]) == 1
    assert len(after[-1][1].fields["messages"]["segs"]) <= 4  # merged in runs since
    assert all(backend.payloads.get(ref) for ref in old_segments)
    for step in range(0, 92, 5):
        record = RecordStore(backend.checkpoints.inner, backend.payloads).get_checkpoint("t", step)
        assert record is not None
        assert record.values["messages"] == expected(step - (step > 30)), step
    assert verify_thread(backend, "t").ok
    backend.close()
