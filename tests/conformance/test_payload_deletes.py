"""Erasure's race with a concurrent step (`payload_deletes.py`), on every backend: a step of
another thread that stored a shared payload object before the erasure re-checked who refers to
it, and commits after that re-check, keeps the object. The interleaving is forced: the step's
payload is stored as its sealing stores it (`PayloadStore.put` of the same bytes), the erasure
runs, and the step commits (run by a real worker) when the erasure waits, through the clock the
erasure is given.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from durable_graph.backend import Backend
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.payload_deletes import GRACE
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


class RacingClock:
    """The test's clock, but the erasure's first wait runs `race` (once) after the time passed."""

    def __init__(self, clock: ManualClock, race: Callable[[], None]) -> None:
        self.clock = clock
        self.race: Callable[[], None] | None = race
        self.waits = 0

    def now(self) -> datetime:
        return self.clock.now()

    def sleep(self, seconds: float) -> None:
        self.waits += 1
        self.clock.sleep(seconds)
        race, self.race = self.race, None
        if race is not None:
            race()


def test_a_step_that_stored_the_object_before_the_recheck_and_commits_after_keeps_it(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a thread that recorded a knowledge page an hour ago (a shared payload object no
    other thread refers to yet), and a step of another thread that has just stored the same
    page and not committed
    When the first thread is erased (its re-check finds nobody else referring to the page), and
    the step commits while the erasure runs
    Then the erasure leaves the page (it was stored within the grace period, so it waited and
    re-checked), the other thread verifies and reads it, and erasing that thread later deletes
    it."""
    run_case(backend, clock, "t1")
    shared = io_payload(backend, "t1")
    clock.advance(3600)
    app = graph.with_backend(backend, clock=clock)
    app.start({"email": EMAIL, "dossier": DOSSIER}, thread_id="late")
    raw_payloads(backend.payloads).put(KNOWLEDGE.encode(), shared.content_type)  # sealing's put

    def commit() -> None:
        worker = app.worker()
        (task,) = worker.claim("late")
        worker.handle(task)  # stores the page (already there) and commits step 1 with it

    racing = RacingClock(clock, commit)
    record = erase(backend, "t1", reason="GDPR #93", actor=ALICE, clock=racing)

    assert racing.race is None and racing.waits == 1, "the erasure waited once, the step committed"
    assert record is not None and shared.sha256 in record.payloads
    assert not gone(backend, shared)
    assert verify_thread(backend, "t1").ok
    assert verify_thread(backend, "late").ok
    assert app.get_state("late").values["summary"] == KNOWLEDGE[:12]
    app.run_until_settled("late")
    clock.advance(3600)
    last = erase(backend, "late", reason="GDPR #94", actor=ALICE, clock=clock)
    assert last is not None and shared.sha256 in last.payloads and gone(backend, shared)


def test_an_object_stored_again_during_the_wait_is_left_and_one_idle_is_deleted(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a thread whose page was recorded just now (its own put: within the grace period)
    When it is erased while another step stores the page again during every wait and never
    commits (a step that lost its append)
    Then the page is left in place after the attempts run out, the thread verifies; and erased
    with nothing storing it, a thread's page goes after one wait."""
    run_case(backend, clock, "t1")
    shared = io_payload(backend, "t1")
    raw = raw_payloads(backend.payloads)

    class Storing(RacingClock):
        def sleep(self, seconds: float) -> None:
            super().sleep(seconds)
            raw.put(KNOWLEDGE.encode(), shared.content_type)

    storing = Storing(clock, lambda: None)
    erase(backend, "t1", reason="GDPR #95", actor=ALICE, clock=storing)
    assert storing.waits >= 2 and not gone(backend, shared)
    assert verify_thread(backend, "t1").ok

    run_case(backend, clock, "t2")
    started = clock.now()
    last = erase(backend, "t2", reason="GDPR #96", actor=ALICE, clock=clock)
    assert last is not None and shared.sha256 in last.payloads and gone(backend, shared)
    assert clock.now() - started > GRACE, "it waited out the grace period of its own put"
