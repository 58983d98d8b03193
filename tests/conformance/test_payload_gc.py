"""The payload collector (`payload_gc.py`), on every backend: what a writer that died before
letting go left in the payload store is deleted once the grace period is over, and nothing a
thread needs is, whatever holds it; every thread still reads, verifies and exports after it.

Each leak is made for real: a step that lost its append, and a fan-out task whose result row a
racing run created first, by a process that then never let go of its chunks (a process whose
disposal is off leaves exactly what one killed before `orphans.let_go` leaves); a merge whose
retired segments were never deleted (the same, for `disposal.py`); and a chunk, a segment and a
task list put as a writer puts them, whose record was never committed (a unit of work that
failed after its puts). The clock starts at the real time: S3 lists an object's
`LastModified`, the bucket's clock.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durable_graph.backend import Backend
from durable_graph.backends.segment_payloads import pack
from durable_graph.backends.snapshots import SEGMENT_CONTENT_TYPE
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.canonical import canonical_bytes
from durable_graph.checkpoint import Actor, PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.payload_gc import Collected, collect
from durable_graph.payloads import CHUNK_CONTENT_TYPE
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.verification import verify_thread
from tests.conformance.test_encryption import Encrypted
from tests.conformance.test_erasure_saved import graph as saving_graph
from tests.conformance.test_lost_appends import (
    part_chunks,
    race_a_step,
    race_the_big_task,
    resume_to_the_end,
    settle,
    stored,
)

GRACE = timedelta(minutes=10)
ALICE = Actor(kind="cli", id="dpo@example.com")
COUNT = 400  # rows of 200 bytes: an 80 KB part, kept whole in a chunk


@pytest.fixture
def clock() -> ManualClock:
    """Starts at the real time (see the module docstring)."""
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


def careless(backend: Backend) -> Backend:
    """The same stores, used by a process that never lets go of what it no longer needs:
    what a process killed before its disposal leaves."""
    backend.checkpoints.deletes_payloads = False
    backend.checkpoints.leftovers = None
    return dataclasses.replace(backend, deletes_payloads=False, leftovers=None)


def careful(backend: Backend) -> None:
    backend.checkpoints.deletes_payloads = True


def strays(backend: Backend) -> list[PayloadRef]:
    """A chunk, a snapshot segment and a task list, put the way a step puts them, whose record
    was never committed."""
    payloads = backend.payloads
    chunk = canonical_bytes({"s": "5" * 32, "v": "a value no record names " * 400})
    return [
        payloads.put(chunk, CHUNK_CONTENT_TYPE),
        payloads.put(pack({"s": "6" * 32, "v": ["an item"] * 80}), SEGMENT_CONTENT_TYPE),
        payloads.put(canonical_bytes([{"id": "9:x", "node": "x"}] * 70), "application/json"),
    ]


def objects(backend: Backend) -> set[str]:
    found: set[str] = set()
    after = ""
    while page := raw_payloads(backend.payloads).list_objects(after, 500):
        found |= {o.sha256 for o in page}
        after = page[-1].sha256
    return found


def collected(backend: Backend, clock: ManualClock, **options: Any) -> Collected:
    done = collect(backend, grace=GRACE, clock=clock, **options)
    assert done.stopped is None, done.stopped
    return done


def test_what_a_dead_writer_left_is_deleted_after_the_grace_and_the_thread_runs_on(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a step that lost its append by a process that never let go of its two chunks,
    three stray objects of an uncommitted step, and one more put just now
    When the collector runs, first as a dry run, after the grace period of the first ones
    Then the dry run names exactly the five old ones and deletes nothing; the run deletes
    them, bytes counted, and leaves the recent one and everything else; the thread verifies,
    exports, and resumes to the end."""
    race = race_a_step(careless(backend), clock, COUNT)
    careful(backend)
    assert all(stored(backend, ref) for ref in race.mine)
    left = strays(backend)
    clock.advance(GRACE.total_seconds() + 60)
    recent = backend.payloads.put(b"put by a step still running" * 20)
    before = objects(backend)
    doomed = {r.sha256 for r in [*race.mine, *left]}

    dry = collected(backend, clock, dry_run=True)
    assert set(dry.doomed) == doomed and dry.deleted == len(doomed)
    assert objects(backend) == before
    done = collected(backend, clock)

    assert set(done.doomed) == doomed and done.deleted == len(doomed)
    assert done.deleted_bytes == sum(r.size for r in [*race.mine, *left])
    assert done.recent + done.kept == 1 and done.listed == len(before)
    assert objects(backend) == before - doomed
    assert stored(backend, recent) and all(stored(backend, r) for r in part_chunks(race.winner))
    assert verify_thread(backend, "race").ok
    assert verify_bundle(build_bundle(backend, "race")).ok
    resume_to_the_end(race, COUNT)
    assert verify_thread(backend, "race").ok


def test_a_fan_out_keeps_its_result_chunks_and_loses_the_racing_runs(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a fan-out whose big task ran twice at once, by processes that never let go, and
    which waits for its other task (the result row's two chunks are named by that row alone)
    When the collector runs after the grace period
    Then the losing run's two chunks are deleted, the row's are kept, and the thread completes
    with the row's result and verifies."""
    race = race_the_big_task(careless(backend), clock, COUNT)
    careful(backend)
    clock.advance(GRACE.total_seconds() + 60)

    done = collected(backend, clock)

    assert done.deleted == 2
    assert all(stored(backend, ref) for ref in race.kept)
    settle(backend, race, COUNT)
    assert verify_bundle(build_bundle(backend, "twice")).ok


def test_an_object_put_again_after_the_mark_is_not_deleted(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a stray object put long ago, which a writer puts again (the same bytes) after the
    collector's mark and before its sweep
    When the collector sweeps
    Then the object stays (stamped anew by the put), and the other strays go."""
    first, *others = strays(backend)
    clock.advance(GRACE.total_seconds() + 60)
    again: list[PayloadRef] = []

    def writer(phase: str, _: Collected) -> None:
        if phase == "mark" and not again:
            clock.advance(1)
            again.append(backend.payloads.put(raw_payloads(backend.payloads).get(first)))

    done = collected(backend, clock, progress=writer)

    assert again and stored(backend, first)
    assert done.deleted == len(others) and not any(stored(backend, r) for r in others)
    assert done.recent + done.kept == 1


def test_an_encrypted_store_collects_sealed_leftovers_and_reads_a_shredded_thread(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """Given an encrypted store: a step that lost its append by a process that never let go
    of its sealed chunks, and a thread holding `ctx.save` objects erased by destroying its key
    When the collector runs after the grace period
    Then it reads both threads (the shredded one as erased), deletes the two sealed chunks,
    and the raced thread verifies and resumes to the end."""
    backend = encrypted.backend
    race = race_a_step(careless(backend), clock, COUNT)
    careful(backend)
    saving_graph.with_backend(backend, clock=clock).invoke({"person": "Jo"}, thread_id="jo")
    erase(backend, "jo", reason="GDPR #9", actor=ALICE, clock=clock)
    clock.advance(GRACE.total_seconds() + 60)

    done = collected(backend, clock)

    assert done.threads == 2 and {r.sha256 for r in race.mine} <= set(done.doomed)
    assert not any(stored(backend, ref) for ref in race.mine)
    assert verify_thread(backend, "race").ok and verify_thread(backend, "jo").ok
    resume_to_the_end(race, COUNT)
