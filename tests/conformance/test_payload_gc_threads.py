"""The payload collector over long and varied threads, on every backend: the list segments a
merge retired and nobody deleted (a writer killed between its commit and its deletes) are
collected and every step still reads back; a store with nothing left over loses nothing, with
merged dict segments that older snapshots still name, a fork, `ctx.save` objects (one shared
by two threads), an erased thread and a finished fan-out. Small snapshot thresholds as in
`test_merged_segments.py`."""

from __future__ import annotations

from durable_graph.backend import Backend
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.checkpoint import Actor
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.timetravel import fork
from durable_graph.verification import verify_thread
from tests.big_state_graphs import dict_graph, fanout_parts_graph
from tests.conformance.test_erasure_saved import graph as saving_graph
from tests.conformance.test_erasure_saved import refs as saved
from tests.conformance.test_lost_appends import stored
from tests.conformance.test_merged_dict_segments import plain
from tests.conformance.test_merged_segments import (
    NO_LIMIT,
    cold,
    expected,
    run,
    small_thresholds,
    snaps,
)
from tests.conformance.test_payload_gc import GRACE, careful, careless, clock, collected

__all__ = ["clock", "small_thresholds"]  # fixtures: the real-time clock, small thresholds

ALICE = Actor(kind="cli", id="dpo@example.com")
STEPS = 64  # 16 snapshots: dict segments merged up to level 4


def test_segments_a_merge_retired_and_nobody_deleted_are_collected(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a 60-turn chat written by a process that never deleted the segments its merges
    retired (killed after each commit, before its deletes)
    When the collector runs after the grace period
    Then only retired segments are deleted (those no snapshot that must stay whole names),
    every step still reads back cold, the thread verifies, exports, and takes more turns."""
    careless(backend)
    run(backend, clock, 60)
    careful(backend)
    retired = {str(r["sha256"]) for _, s in snaps(backend) for r in s.retired}
    clock.advance(GRACE.total_seconds() + 60)

    done = collected(backend, clock)

    assert done.deleted > 0 and set(done.doomed) <= retired
    for step in range(61):
        record = cold(backend)[0].get_checkpoint("t", step)
        assert record is not None and record.values["messages"] == expected(step), step
    assert verify_thread(backend, "t").ok
    assert verify_bundle(build_bundle(backend, "t")).ok
    run(backend, clock, 75)
    assert cold(backend)[0].head_checkpoint("t").values["messages"] == expected(75)  # type: ignore[union-attr]


def named_by_snapshots(backend: Backend, threads: tuple[str, ...]) -> set[str]:
    """Every snapshot the threads' rows name, and every segment those snapshots list."""
    found: set[str] = set()
    for thread in threads:
        for _, snapshot in snaps(backend, thread):
            found.add(snapshot.ref.sha256)
            for entry in snapshot.fields.values():
                found |= {
                    str(r["sha256"]) for r in [*entry.get("segs", []), *entry.get("dsegs", [])]
                }
    return found


def test_a_store_loses_only_what_no_thread_names(backend: Backend, clock: ManualClock) -> None:
    """Given a thread whose two dicts grew 64 steps (older snapshots name the dict segments
    merged since), a fork of it, two threads holding `ctx.save` objects (one shared by both),
    one of them erased, and a finished fan-out whose result rows name chunks
    When the collector runs after the grace period
    Then what it deletes is only the erased thread's objects (which the erasure scheduled:
    stored moments before it): a dict's merges write no segment their snapshot does not name
    (a level-0 segment the same snapshot merged at once is never written); every step of the
    dict thread reads back as its rows fold, the saved objects are there, and every thread
    verifies and exports."""
    threads = ("dict", "dict-fork", "jane", "john", "fan")
    dicts = dict_graph.with_backend(backend, clock=clock)
    dicts.invoke({"limit": STEPS}, NO_LIMIT, thread_id="dict")
    fork(dicts, "dict", STEPS // 2, "dict-fork")
    dicts.invoke(None, NO_LIMIT, thread_id="dict-fork")
    saving = saving_graph.with_backend(backend, clock=clock)
    jane = saving.invoke({"person": "Jane Roe"}, thread_id="jane")
    john = saving.invoke({"person": "John Poe"}, thread_id="john")
    erase(backend, "john", reason="GDPR #7", actor=ALICE, clock=clock)
    fanout_parts_graph.with_backend(backend, clock=clock).invoke(
        {"count": 400, "width": 200}, thread_id="fan"
    )
    named = named_by_snapshots(backend, threads)
    clock.advance(GRACE.total_seconds() + 60)

    dry = collected(backend, clock, dry_run=True)
    johns = {ref.sha256 for ref in saved(john)}  # erased: gone, or scheduled (put just now)
    done = collected(backend, clock)

    assert done.doomed == dry.doomed and not set(done.doomed) & named
    assert set(done.doomed) <= johns  # nothing of the dict threads: no unnamed merge patch
    for step in range(0, STEPS + 2, 3):
        record = cold(backend)[0].get_checkpoint("dict", step)
        assert record is not None and record.values == plain(backend, step), step
    assert all(stored(backend, ref) for ref in saved(jane))
    for thread in threads:
        assert verify_thread(backend, thread).ok, thread
        assert verify_bundle(build_bundle(backend, thread)).ok, thread
    assert collected(backend, clock).unreferenced == 0
