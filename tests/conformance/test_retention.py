"""Retention at scale, on every backend: a pass pages through the threads, stops before its
time budget, and the next run continues where it stopped; a run that dies midway is finished
by the next one without a second erasure record. The clock skips; the budget counts threads.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.erasure_record import load_erasures
from durable_graph.retention import RetentionRun, run_retention
from durable_graph.retention_cursor import Totals
from durable_graph.retention_policy import Retention
from durable_graph.verification import verify_thread
from tests.conformance.test_erasure import (
    ALICE,
    DOSSIER,
    EMAIL,
    KNOWLEDGE,
    chunk_ref,
    gone,
    graph,
    io_payload,
    run_case,
)

POLICIES = {graph.name: Retention(days=30)}
DAY = 86_400


def budget(threads: int) -> Callable[[], float]:
    """A time budget that runs out after `threads` threads (each check costs one "second")."""
    left = iter(range(threads, -1, -1))
    return lambda: float(next(left, 0))


def old_and_new(backend: Backend, clock: ManualClock, old: int, new: int) -> list[str]:
    """`old` threads run on day 0 and `new` on day 31; returns the old ones' ids."""
    olds = [f"old-{i:02}" for i in range(old)]
    for thread_id in olds:
        run_case(backend, clock, thread_id)
    clock.advance(31 * DAY)
    for i in range(new):
        run_case(backend, clock, f"new-{i:02}")
    return olds


def values_text(backend: Backend, thread_id: str) -> str:
    return json.dumps(graph.with_backend(backend).get_state(thread_id).values)


def test_a_pass_over_many_threads_spans_runs_and_erases_each_thread_once(
    backend: Backend, clock: ManualClock
) -> None:
    """Given 10 threads from day 0 and 2 from day 31 of a graph kept 30 days
    When retention runs with a budget of 4 threads per run, 3 threads a page, until a run says
    its pass is finished
    Then it took 3 runs, which together checked every thread once and erased each old one
    under one tombstone; everything verifies; and a new pass checks all 12 and writes nothing."""
    olds = old_and_new(backend, clock, old=10, new=2)

    runs: list[RetentionRun] = []
    while not (runs and runs[-1].finished):
        assert len(runs) < 10, "the pass never finished"
        runs.append(
            run_retention(backend, policies=POLICIES, clock=clock, time_left=budget(4), page_size=3)
        )

    assert len(runs) == 3
    assert [r.totals.checked for r in runs] == [4, 4, 4]
    assert [r.stopped is not None for r in runs] == [True, True, False]
    assert sorted(record.thread_id for r in runs for record in r.erased) == olds
    assert runs[-1].pass_totals == Totals(checked=12, erased=10, unchanged=2)
    for thread_id in olds:
        assert len(load_erasures(backend.checkpoints, thread_id)) == 1
        assert EMAIL not in values_text(backend, thread_id)
        assert verify_thread(backend, thread_id).ok
    assert EMAIL in values_text(backend, "new-00") and verify_thread(backend, "new-01").ok

    again = run_retention(backend, policies=POLICIES, clock=clock, page_size=5)
    assert again.finished and again.erased == []
    assert again.totals == Totals(checked=12, unchanged=12)


class Died(BaseException):
    """The process died here (not an error retention could catch and log)."""


def test_a_run_that_died_mid_erasure_is_finished_by_the_next_without_a_second_record(
    backend: Backend, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given 3 old threads, and a retention run that dies after writing the first thread's
    erasure record and deleting its chunk, before rewriting any of its rows
    When the next run starts (from the start of the page: the cursor was not saved)
    Then the first thread verifies in between (its record names what is gone), and the next run
    finishes it under that same record: one erasure record per thread, values gone, every
    thread verifies."""
    olds = old_and_new(backend, clock, old=3, new=0)
    dossier = chunk_ref(backend, olds[0], "dossier")

    def die(checkpoint: Checkpoint) -> None:
        raise Died(f"killed before rewriting step {checkpoint.step}")

    monkeypatch.setattr(backend.checkpoints, "rewrite_checkpoint", die)
    with pytest.raises(Died):
        run_retention(backend, policies=POLICIES, clock=clock, page_size=2)
    monkeypatch.undo()
    (record,) = load_erasures(backend.checkpoints, olds[0])
    assert gone(backend, dossier) and EMAIL in values_text(backend, olds[0])
    assert verify_thread(backend, olds[0]).ok

    run = run_retention(backend, policies=POLICIES, clock=clock, page_size=2)

    assert run.finished and run.totals == Totals(checked=3, erased=3)
    assert [(r.thread_id, r.seq) for r in run.erased] == [(t, 1) for t in olds]
    assert load_erasures(backend.checkpoints, olds[0]) == [record]
    for thread_id in olds:
        assert len(load_erasures(backend.checkpoints, thread_id)) == 1
        assert EMAIL not in values_text(backend, thread_id)
        assert verify_thread(backend, thread_id).ok


@pytest.mark.parametrize("late", ["a thread started during the pass", "a thread running"])
def test_a_thread_that_takes_up_a_shared_object_during_a_pass_keeps_it(
    backend: Backend, clock: ManualClock, late: str
) -> None:
    """Given two old threads that recorded the same knowledge page (one shared payload object)
    When a retention pass erases the first (reading which threads refer to what, once), then
    `late` records that page too (a new thread run to completion, or a thread that was already
    running when the pass read it and now commits its next step without its thread record
    moving), then the pass erases the second
    Then the object stays (the pass re-checks what changed since it read the store), the late
    thread verifies and reads its page; and erasing the late thread afterwards deletes it."""
    olds = old_and_new(backend, clock, old=2, new=0)
    shared = io_payload(backend, olds[0])
    app = graph.with_backend(backend, clock=clock)
    if late == "a thread running":
        app.start({"email": EMAIL, "dossier": DOSSIER}, thread_id="late")

    def take_up(run: RetentionRun) -> None:
        if run.totals.checked != 1:
            return
        assert not gone(backend, shared), "the other old thread still refers to it"
        if late == "a thread running":
            worker = app.worker()
            (task,) = worker.claim("late")
            worker.handle(task)  # the knowledge page, committed at step 1; review still to run
            assert app.get_state("late").next == ("review",)
        else:
            run_case(backend, clock, "late")

    run = run_retention(backend, policies=POLICIES, clock=clock, page_size=1, progress=take_up)

    assert run.finished and run.totals.erased == 2
    assert all(shared.sha256 not in record.payloads for record in run.erased)
    assert not gone(backend, shared)
    assert verify_thread(backend, "late").ok
    assert app.get_state("late").values["summary"] == KNOWLEDGE[:12]
    if late == "a thread running":
        app.run_until_settled("late")
    last = erase(backend, "late", reason="GDPR #92", actor=ALICE)
    assert last is not None and shared.sha256 in last.payloads and gone(backend, shared)


def test_a_step_added_to_a_settled_thread_moves_its_thread_record(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a completed thread
    When `update_state` commits a step onto it (its status stays `completed`)
    Then its thread record's `updated_at` moves: what the retention index re-reads by."""
    app = run_case(backend, clock, "t1")
    before = backend.checkpoints.get_thread("t1")
    clock.advance(60)

    app.update_state({"configurable": {"thread_id": "t1"}}, {"summary": "edited"}, "review")

    after = backend.checkpoints.get_thread("t1")
    assert before is not None and after is not None and after.status == "completed"
    assert after.updated_at > before.updated_at and after.head_step == before.head_step + 1
