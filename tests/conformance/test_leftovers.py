"""`ports.leftovers` on every backend (memory, SQLite, PostgreSQL, DynamoDB on moto): what a
process that may not delete payload objects leaves (`disposal.py`) reads back as it was left,
oldest first, only once it is due, until it is forgotten; and the whole path: a writer that may
not delete leaves the snapshot segments its merges retired, and `leftovers.clear_leftovers` run
by one that may deletes them, after which every step still reads back and the thread verifies.

The clock ticks a millisecond at every reading, as a real one moves between a payload's put and
the leave after its step's commit (a stamp equal to the leave's time counts as a later put)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from durable_graph.backend import Backend
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import ManualClock, iso
from durable_graph.leftovers import GRACE, clear_leftovers
from durable_graph.ports.leftovers import Leftovers
from durable_graph.verification import verify_thread
from tests.conformance.test_lost_appends import stored
from tests.conformance.test_merged_segments import (
    cold,
    expected,
    run,
    small_thresholds,  # noqa: F401 (autouse: snapshots every 4 steps, runs of 2 merged)
    snaps,
)

SECOND = timedelta(seconds=1)


class TickingClock(ManualClock):
    """A manual clock that also moves a millisecond each time it is read."""

    def now(self) -> datetime:
        moment = super().now()
        self.advance(0.001)
        return moment


@pytest.fixture
def clock() -> ManualClock:
    return TickingClock()


def leftovers_of(backend: Backend) -> Leftovers:
    assert backend.leftovers is not None, "every backend has leftovers"
    return backend.leftovers


def ref(n: int) -> PayloadRef:
    digest = f"{n:064x}"
    return PayloadRef(uri=f"payload://{digest}", sha256=digest, size=n, content_type="x/y")


def test_a_leftover_is_due_once_left_and_reads_back_as_it_was_left(
    backend: Backend, clock: ManualClock
) -> None:
    """Given two refs left for step 3 of a thread as retired segments, and one result row's
    chunk left as a lost append
    Then neither is due before the moment it was left; after it, both read back with their
    thread, step or row, kind, refs in order, the time they were left, and a key."""
    left = leftovers_of(backend)
    first = clock.now()
    left.leave("t", [ref(1), ref(2)], step=3, kind="retired")
    left.leave("u", [ref(3)], row="done#0#7")
    assert left.due(first, 10) == []

    found = left.due(clock.now() + SECOND, 10)

    assert [(x.thread_id, x.step, x.row, x.kind, x.refs) for x in found] == [
        ("t", 3, None, "retired", [ref(1), ref(2)]),
        ("u", None, "done#0#7", "lost", [ref(3)]),
    ]
    assert found[0].at >= iso(first) and found[0].at <= found[1].at
    assert all(x.key for x in found) and found[0].key != found[1].key


def test_due_is_oldest_first_and_at_most_the_limit(backend: Backend, clock: ManualClock) -> None:
    """Given three leftovers left a second apart
    Then a due read of two gets the two oldest; one before the third was left, the first two;
    and they stay due, however often they are read, until forgotten."""
    left = leftovers_of(backend)
    for n in range(3):
        left.leave(f"t{n}", [ref(n)], step=n)
        clock.advance(1)
    third = datetime.fromisoformat(left.due(clock.now(), 3)[2].at.replace("Z", "+00:00"))

    assert [x.thread_id for x in left.due(clock.now(), 2)] == ["t0", "t1"]
    assert [x.thread_id for x in left.due(third, 10)] == ["t0", "t1"]
    assert [x.thread_id for x in left.due(clock.now(), 10)] == ["t0", "t1", "t2"]


def test_forget_drops_that_one_and_forgetting_it_again_is_no_error(
    backend: Backend, clock: ManualClock
) -> None:
    """Given two leftovers, when the first is forgotten (twice), then only the second is due."""
    left = leftovers_of(backend)
    left.leave("t", [ref(1)], step=1)
    left.leave("t", [ref(2)], step=2)
    first, _ = left.due(clock.now() + SECOND, 10)

    left.forget(first)
    left.forget(first)

    assert [x.refs for x in left.due(clock.now() + SECOND, 10)] == [[ref(2)]]


def test_many_refs_are_all_kept(backend: Backend, clock: ManualClock) -> None:
    """Given 1,200 refs left at once (more than a DynamoDB item holds: the store may split
    them), then every one is due, for that step, each once."""
    left = leftovers_of(backend)
    refs = [ref(n) for n in range(1, 1201)]
    left.leave("t", refs, step=9, kind="retired")

    found = left.due(clock.now() + SECOND, 100)

    assert {(x.thread_id, x.step, x.kind) for x in found} == {("t", 9, "retired")}
    assert sorted((r for x in found for r in x.refs), key=lambda r: r.size) == refs


def test_a_writer_that_may_not_delete_leaves_retired_segments_and_a_sweep_deletes_them(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a 40-step chat written by a process that may not delete payloads (its snapshots'
    merges retire segments)
    Then every retired segment is still stored and left, for the step that merged it
    When a process that may delete clears the leftovers, before the grace period and after
    Then nothing goes before; after, every retired segment is deleted and forgotten, and every
    step reads back cold (old ones through the newest snapshot) and the thread verifies."""
    backend.checkpoints.deletes_payloads = False
    run(backend, clock, 40)
    backend.checkpoints.deletes_payloads = True
    merged = {step: s.retired for step, s in snaps(backend) if s.retired}
    left = [x for x in leftovers_of(backend).due(clock.now() + SECOND, 100) if x.kind == "retired"]
    assert merged and {x.step: len(x.refs) for x in left} == {k: len(v) for k, v in merged.items()}
    gone = [r for x in left for r in x.refs]
    assert all(stored(backend, r) for r in gone)

    early = clear_leftovers(backend, clock=clock, now=clock.now() + GRACE / 2)
    assert early.leftovers == 0 and all(stored(backend, r) for r in gone)
    late = clear_leftovers(backend, clock=clock, now=clock.now() + GRACE + SECOND)

    assert (late.leftovers, late.deleted, late.kept) == (len(left), len(gone), [])
    assert not any(stored(backend, r) for r in gone)
    assert leftovers_of(backend).due(clock.now() + GRACE + SECOND, 100) == []
    for step in range(0, 41, 3):
        record = cold(backend)[0].get_checkpoint("t", step)
        assert record is not None and record.values["messages"] == expected(step)
    assert verify_thread(backend, "t").ok
