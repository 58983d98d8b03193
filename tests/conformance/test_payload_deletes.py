"""Erasure's race with a concurrent step (`payload_deletes.py`), on every backend: a step of
another thread that stored a shared payload object before the erasure re-checked who refers to
it, and commits after that re-check, keeps the object. The interleaving is forced: the step's
payload is stored as its sealing stores it (`PayloadStore.put` of the same bytes), the erasure
runs, and the step commits (run by a real worker) after it. The erasure does not wait: an object
stored within the grace period is scheduled (`pending_deletes.py`), and deleted by the first
retention run (or erase of the thread) after the grace period that finds it idle and unreferenced.
"""

from __future__ import annotations

from datetime import datetime

from durable_graph.backend import Backend
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.payload_deletes import GRACE
from durable_graph.pending_deletes import pending_deletes
from durable_graph.retention import run_retention
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.verification import verify_thread
from tests.conformance.test_erasure import (
    ALICE,
    DOSSIER,
    EMAIL,
    KNOWLEDGE,
    gone,
    graph,
    io_payload,
    run_case,
)


class NoSleep:
    """The test's clock, for an erasure that must not wait."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def now(self) -> datetime:
        return self.clock.now()

    def sleep(self, seconds: float) -> None:
        raise AssertionError(f"the erasure slept {seconds} s")


def test_an_erase_right_after_a_run_returns_at_once_and_schedules_the_shared_object(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a thread that recorded a knowledge page just now (its own put: within the grace
    period; a shared, content-addressed object)
    When it is erased
    Then the erasure returns without waiting, names the page in its record, reports it
    scheduled and leaves it in place; `verify` passes and notes it; a retention run before the
    grace period is over leaves it, one after deletes it, and `verify` then notes nothing."""
    run_case(backend, clock, "t1")
    shared = io_payload(backend, "t1")

    record = erase(backend, "t1", reason="GDPR #93", actor=ALICE, clock=NoSleep(clock))

    assert record is not None and shared.sha256 in record.payloads
    assert record.scheduled == [shared.sha256]
    assert not gone(backend, shared)
    assert [e.ref.sha256 for e in pending_deletes(backend.checkpoints, "t1")] == [shared.sha256]
    report = verify_thread(backend, "t1")
    assert report.ok, report.reason
    assert any("1 payload object(s) named by erasure 1 are scheduled" in n for n in report.notes)
    early = run_retention(backend, policies={}, clock=clock)
    assert early.deletes.deleted == [] and not gone(backend, shared)

    clock.advance(GRACE.total_seconds() + 1)
    run = run_retention(backend, policies={}, clock=clock)

    assert run.deletes.deleted == [shared.sha256] and gone(backend, shared)
    assert pending_deletes(backend.checkpoints) == []
    report = verify_thread(backend, "t1")
    assert report.ok and not any("scheduled" in n for n in report.notes), report.notes


def test_a_step_that_stored_the_object_before_the_recheck_and_commits_after_keeps_it(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a thread that recorded a knowledge page an hour ago (a shared payload object no
    other thread refers to yet), and a step of another thread that has just stored the same
    page and not committed
    When the first thread is erased (its re-check finds nobody else referring to the page), and
    the step commits after that
    Then the erasure schedules the page (stored within the grace period); erasing the thread
    again once the grace is over re-checks, finds the committed step referring to the page and
    keeps it; the other thread verifies and reads it, and erasing that thread later deletes
    it."""
    run_case(backend, clock, "t1")
    shared = io_payload(backend, "t1")
    clock.advance(3600)
    app = graph.with_backend(backend, clock=clock)
    app.start({"email": EMAIL, "dossier": DOSSIER}, thread_id="late")
    raw_payloads(backend.payloads).put(KNOWLEDGE.encode(), shared.content_type)  # sealing's put

    record = erase(backend, "t1", reason="GDPR #93", actor=ALICE, clock=NoSleep(clock))
    worker = app.worker()
    (task,) = worker.claim("late")
    worker.handle(task)  # stores the page (already there) and commits step 1 with it

    assert record is not None and record.scheduled == [shared.sha256]
    clock.advance(GRACE.total_seconds() + 1)
    assert erase(backend, "t1", reason="GDPR #93", actor=ALICE, clock=clock) is None
    assert not gone(backend, shared), "the committed step refers to it"
    assert pending_deletes(backend.checkpoints) == []
    assert verify_thread(backend, "t1").ok
    assert verify_thread(backend, "late").ok
    assert app.get_state("late").values["summary"] == KNOWLEDGE[:12]
    app.run_until_settled("late")
    clock.advance(3600)
    last = erase(backend, "late", reason="GDPR #94", actor=ALICE, clock=clock)
    assert last is not None and shared.sha256 in last.payloads and gone(backend, shared)
    assert last.scheduled == []


def test_an_object_stored_again_stays_scheduled_until_idle(
    backend: Backend, clock: ManualClock
) -> None:
    """Given an erased thread whose page is scheduled
    When a step stores the page again (and never commits: it lost its append) just before each
    of two retention runs
    Then each run leaves it scheduled, and the first run after the puts stop deletes it."""
    run_case(backend, clock, "t1")
    shared = io_payload(backend, "t1")
    raw = raw_payloads(backend.payloads)
    erase(backend, "t1", reason="GDPR #95", actor=ALICE, clock=NoSleep(clock))

    for _ in range(2):
        clock.advance(GRACE.total_seconds() + 1)
        raw.put(KNOWLEDGE.encode(), shared.content_type)
        run = run_retention(backend, policies={}, clock=clock)
        assert run.deletes.waiting == [shared.sha256] and not gone(backend, shared)
        assert verify_thread(backend, "t1").ok

    clock.advance(GRACE.total_seconds() + 1)
    run = run_retention(backend, policies={}, clock=clock)
    assert run.deletes.deleted == [shared.sha256] and gone(backend, shared)
