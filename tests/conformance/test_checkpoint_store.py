"""CheckpointStore contract, on every backend."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from durable_graph.backend import Backend
from durable_graph.errors import RecordConflict, StepConflict, StepNotFound
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


def test_get_records_returns_exactly_the_existing_keys_across_chunks(backend: Backend) -> None:
    """Given 600 records of a thread (more than one DynamoDB batch of 100 and one SQLite
    chunk of 500), when 680 keys are asked for in reverse order with repeats, 50 of them
    missing, then exactly the 600 existing records come back, by key, with their values;
    another thread's record of the same key is not among them."""
    store = backend.checkpoints
    with backend.atomic():  # one transaction on SQLite: seeding stays fast
        for i in range(600):
            store.put_record("fan", f"w#{i:04d}", {"i": i}, expected_version=None)
        store.put_record("other", "w#missing-0000", {"i": -1}, expected_version=None)
    missing = [f"w#missing-{i:04d}" for i in range(50)]
    existing = [f"w#{i:04d}" for i in range(600)]
    asked = list(reversed(existing)) + missing + existing[:30]

    found = store.get_records("fan", asked)

    assert sorted(found) == existing
    assert all(found[key].value == {"i": int(key[2:])} for key in existing)
    assert {record.version for record in found.values()} == {1}
    assert {key for key, record in found.items() if record.key != key} == set()
    assert store.get_records("fan", []) == {}
    assert store.get_records("nobody", existing[:3]) == {}


def test_complete_task_counts_a_member_once(backend: Backend) -> None:
    """Given a task completed once, when the same member completes again (a redelivery), then
    the second call reports (False, unchanged count), and the member keeps its first value."""
    store = backend.checkpoints
    assert store.complete_task("t5", "done#3", "done#3#a", {"out": 1}) == (True, 1)
    assert store.complete_task("t5", "done#3", "done#3#b", {"out": 2}) == (True, 2)

    again = store.complete_task("t5", "done#3", "done#3#a", {"out": "retry"})

    assert again == (False, 2)
    assert store.get_record("t5", "done#3#a").value == {"out": 1}  # type: ignore[union-attr]
    assert store.get_record("t5", "done#3").value == {"count": 2}  # type: ignore[union-attr]
    assert store.complete_task("t5", "done#4", "done#3#a", {"out": 3}) == (False, 0)
    assert store.get_record("t5", "done#4") is None


def test_fifty_completions_count_fifty_and_every_member_reads_back(backend: Backend) -> None:
    """Given a superstep of 50 tasks, when each completes once, then the counts run 1..50 (the
    last caller learns it is the last), the counter reads 50 and every member reads back, one
    by one and in one batch, with its value at version 1."""
    store = backend.checkpoints
    members = [f"m#{i:02d}" for i in range(50)]

    results = [store.complete_task("t6", "c#1", key, {"task": key}) for key in members]

    assert results == [(True, n) for n in range(1, 51)]
    counter = store.get_record("t6", "c#1")
    assert counter is not None and counter.value == {"count": 50} and counter.version == 50
    batch = store.get_records("t6", ["c#1", *members])
    assert batch["c#1"].value == {"count": 50}
    for key in members:
        assert store.get_record("t6", key) == batch[key]
        assert (batch[key].value, batch[key].version) == ({"task": key}, 1)
    assert store.get_record("other", "c#1") is None


def test_concurrent_completions_count_each_member_exactly_once(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    """Given 200 members completed from 4 threads at once, each member twice (a redelivery
    racing the original), then the counter ends at exactly 200, exactly one call per member
    created it, and some call saw the count reach 200."""
    if request.node.callspec.params["backend"] == "aws-moto":
        pytest.skip("the moto harness runs one request at a time (tests/aws/backend_factory.py)")
    store = backend.checkpoints
    members = [f"p#{i:03d}" for i in range(200)] * 2

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda key: store.complete_task("t7", "c#par", key, {"k": key}), members)
        )

    assert sum(created for created, _ in results) == 200
    assert store.get_record("t7", "c#par").value == {"count": 200}  # type: ignore[union-attr]
    assert max(count for _, count in results) == 200
    assert all(1 <= count <= 200 for _, count in results)
    assert len(store.get_records("t7", members)) == 200


def test_rewrite_replaces_an_existing_row_and_never_creates_one(backend: Backend) -> None:
    """Given step 0 committed, when its row is rewritten (erasure's one exception to
    append-only), then every read returns the new row; rewriting a step that was never
    committed raises StepNotFound and creates nothing."""
    store = backend.checkpoints.inner
    first = checkpoint("t1", 0, {"n": 1})
    store.append_checkpoint(first)
    rewritten = first.model_copy(update={"anchor": 0, "duration_ms": 7.0})
    store.rewrite_checkpoint(rewritten)
    assert store.get_checkpoint("t1", 0) == rewritten.stored()
    assert store.list_checkpoints("t1") == [rewritten.stored()]
    with pytest.raises(StepNotFound):
        store.rewrite_checkpoint(checkpoint("t1", 1))
    assert store.get_checkpoint("t1", 1) is None
