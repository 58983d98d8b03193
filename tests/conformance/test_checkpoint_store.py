"""CheckpointStore contract, on every backend."""

from __future__ import annotations

import pytest

from durable_graph.backend import Backend
from durable_graph.errors import RecordConflict, StepConflict
from tests.helpers import checkpoint, thread_record


def test_append_then_read_back_exactly(backend: Backend) -> None:
    """Given a sealed checkpoint, when appended, then every read path returns it unchanged."""
    store = backend.checkpoints
    first = checkpoint("t1", 0, {"text": "héllo", "n": 1.5, "items": [1, {"a": None}]})
    store.append_checkpoint(first)
    assert store.get_checkpoint("t1", 0) == first
    assert store.head_checkpoint("t1") == first
    assert store.list_checkpoints("t1") == [first]
    assert store.get_checkpoint("t1", 0).compute_hash() == first.hash  # type: ignore[union-attr]


def test_second_writer_of_a_step_loses_and_sees_the_winner(backend: Backend) -> None:
    """Given step 1 committed, when another writer appends step 1, then StepConflict carries the
    record that won and the stored record is unchanged."""
    store = backend.checkpoints
    store.append_checkpoint(checkpoint("t1", 0))
    winner = checkpoint("t1", 1, {"who": "winner"})
    store.append_checkpoint(winner)
    with pytest.raises(StepConflict) as caught:
        store.append_checkpoint(checkpoint("t1", 1, {"who": "loser"}))
    assert caught.value.existing == winner
    assert store.get_checkpoint("t1", 1) == winner


def test_head_and_paged_history(backend: Backend) -> None:
    """Given 12 steps, then head is the last, history is newest first and pages by step."""
    store = backend.checkpoints
    for step in range(12):
        store.append_checkpoint(checkpoint("t2", step))
    assert store.head_checkpoint("t2").step == 11  # type: ignore[union-attr]
    newest = store.list_checkpoints("t2", limit=5)
    assert [c.step for c in newest] == [11, 10, 9, 8, 7]
    older = store.list_checkpoints("t2", before_step=7, limit=5)
    assert [c.step for c in older] == [6, 5, 4, 3, 2]
    oldest_first = store.list_checkpoints("t2", newest_first=False)
    assert [c.step for c in oldest_first] == list(range(12))


def test_unknown_thread_reads_empty(backend: Backend) -> None:
    store = backend.checkpoints
    assert store.head_checkpoint("nope") is None
    assert store.get_checkpoint("nope", 0) is None
    assert store.list_checkpoints("nope") == []
    assert store.get_thread("nope") is None


def test_threads_are_isolated(backend: Backend) -> None:
    store = backend.checkpoints
    store.append_checkpoint(checkpoint("a", 0, {"x": "a"}))
    store.append_checkpoint(checkpoint("ab", 0, {"x": "ab"}))
    store.append_checkpoint(checkpoint("ab", 1, {"x": "ab1"}))
    assert [c.values["x"] for c in store.list_checkpoints("a")] == ["a"]
    assert store.head_checkpoint("a").values == {"x": "a"}  # type: ignore[union-attr]


def test_thread_record_compare_and_set(backend: Backend) -> None:
    """Given a thread record, when two writers replace it from the same revision, then exactly
    one wins and the other gets RecordConflict with the current record."""
    store = backend.checkpoints
    created = store.put_thread(thread_record("t3"), expected_revision=None)
    assert created.revision == 1
    with pytest.raises(RecordConflict):
        store.put_thread(thread_record("t3"), expected_revision=None)
    moved = store.put_thread(thread_record("t3", "suspended", 1), expected_revision=1)
    assert moved.revision == 2
    with pytest.raises(RecordConflict) as caught:
        store.put_thread(thread_record("t3", "completed", 2), expected_revision=1)
    assert caught.value.current.status == "suspended"
    assert store.get_thread("t3").status == "suspended"  # type: ignore[union-attr]


def test_list_threads_by_status(backend: Backend) -> None:
    store = backend.checkpoints
    store.put_thread(thread_record("r1", "running"), expected_revision=None)
    store.put_thread(thread_record("s1", "suspended"), expected_revision=None)
    store.put_thread(thread_record("r2", "running"), expected_revision=None)
    running = {r.thread_id for r in store.list_threads(status="running")}
    assert running == {"r1", "r2"}
    assert {r.thread_id for r in store.list_threads()} == {"r1", "r2", "s1"}


def test_records_compare_and_set(backend: Backend) -> None:
    """Given a CAS record, then create-if-absent and replace-if-version behave like one
    conditional write each, and a lost condition reports the current record."""
    store = backend.checkpoints
    assert store.get_record("t4", "fx#1") is None
    first = store.put_record("t4", "fx#1", {"status": "started"}, expected_version=None)
    assert first.version == 1
    with pytest.raises(RecordConflict) as caught:
        store.put_record("t4", "fx#1", {"status": "other"}, expected_version=None)
    assert caught.value.current.value == {"status": "started"}
    second = store.put_record("t4", "fx#1", {"status": "done", "result": [1]}, expected_version=1)
    assert second.version == 2
    with pytest.raises(RecordConflict):
        store.put_record("t4", "fx#1", {"status": "late"}, expected_version=1)
    assert store.get_record("t4", "fx#1").value == {"status": "done", "result": [1]}  # type: ignore[union-attr]
    assert store.get_record("other", "fx#1") is None
