"""Re-drive stalled threads and report what sits in the DLQ (the `sweeper` function's logic).

A thread can stall without any error: a worker committed step k and died before sending its
successors, and the redelivery that would repair it never came (the message was deleted, or
expired). The thread record says `running`, and the head has not moved for `stale_seconds`.
The sweeper re-sends the head's pending tasks (`followups.messages_for`); that is always safe,
because a task whose step is already committed is a duplicate the worker recognises.

Cost: one index Query for the running threads (oldest status change first) plus one Query per
running thread whose record is older than the cutoff. The thread record is only rewritten on a
status change, so "record older than the cutoff" is the cheap pre-filter and the head's
`created_at` the real test. Keep `stale_seconds` above SQS's five-minute deduplication window,
or a re-send may be dropped as a duplicate of the original message.

Each sweep also deletes the chunks of lost appends and the snapshot segments merges retired
that the functions which may not delete payload objects left behind (`durable_graph.leftovers`:
the oldest `BATCH`, `GRACE` after they were left, only those no record names): one Query of the
leftovers partition when there are none.

On a third schedule it runs the payload collector (`collect_payloads`): exactly `durable-graph
gc` with the deployment's grace (`gc_grace_seconds`), which deletes the payload objects no
thread needs that no leftover names (a worker killed before it left them, a merge's segments
never retired), stopping before the invocation's time runs out (a store too big to mark in one
invocation needs `durable-graph gc --store aws://STACK` run from a host with the sweeper's
permissions).

The same function runs the retention job on its own, slower schedule (`retention`): exactly
`durable-graph retention run` (`durable_graph.retention.run_retention`) over the deployment's
store, with the runtime's clock, so a test on a skipping clock sees what a run N days later does.
It stops before the invocation's time runs out and the next invocation continues the pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from durable_graph.backends.aws.factory import AwsRuntime
from durable_graph.backends.aws.sqs_queue import peek_thread_ids, queue_depth
from durable_graph.clock import parse_iso
from durable_graph.errors import DurableGraphError
from durable_graph.followups import messages_for
from durable_graph.leftovers import clear_leftovers
from durable_graph.payload_gc import Collected, collect
from durable_graph.retention import run_retention
from durable_graph.retention_cursor import Totals
from durable_graph.threads import sync_thread

log = logging.getLogger("durable_graph.aws.sweeper")


@dataclass
class SweepReport:
    checked: int = 0
    resent: dict[str, int] = field(default_factory=dict)  # thread id → messages re-sent
    resynced: list[str] = field(default_factory=list)  # thread records that lagged their head
    dlq_depth: int | None = None
    dlq_threads: list[str] = field(default_factory=list)
    # chunks of lost appends and retired snapshot segments (`durable_graph.leftovers`)
    leftover_chunks_deleted: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "resent": self.resent,
            "resynced": self.resynced,
            "dlq_depth": self.dlq_depth,
            "dlq_threads": self.dlq_threads,
            "leftover_chunks_deleted": self.leftover_chunks_deleted,
        }


def sweep(
    rt: AwsRuntime,
    *,
    now: datetime | None = None,
    stale_seconds: int | None = None,
    limit: int = 1000,
) -> SweepReport:
    """One pass: re-send the pending tasks of every stalled running thread; read the DLQ;
    delete the chunks lost appends left behind."""
    clock = rt.graph.clock
    now = now or clock.now()
    cutoff = now - timedelta(seconds=stale_seconds or rt.settings.stale_seconds)
    store = rt.backend.checkpoints
    report = SweepReport()
    for record in store.list_threads(status="running", limit=limit):
        if parse_iso(record.updated_at) > cutoff:
            continue
        report.checked += 1
        try:
            head = store.head_checkpoint(record.thread_id)
            if head is None:
                continue
            if head.status != "running":
                sync_thread(store, head, clock)
                report.resynced.append(record.thread_id)
                continue
            if parse_iso(head.created_at) > cutoff:
                continue
            rt.engine_for(head.graph.name)  # raises for a graph this deployment cannot load
            messages = messages_for(head, keys=store.keys)
            rt.backend.queue.send(messages)
        except DurableGraphError:
            log.exception("could not sweep thread %r", record.thread_id)
            continue
        report.resent[record.thread_id] = len(messages)
        log.warning(
            "re-sent %d stalled task(s) of step %d",
            len(messages),
            head.step,
            extra={"thread_id": record.thread_id},
        )
    if rt.settings.dlq_url:
        report.dlq_depth = queue_depth(rt.clients.sqs, rt.settings.dlq_url)
        if report.dlq_depth:
            report.dlq_threads = peek_thread_ids(rt.clients.sqs, rt.settings.dlq_url)
    report.leftover_chunks_deleted = clear_leftovers(rt.backend, clock=clock, now=now).deleted
    return report


# Seconds of the invocation kept back when the retention job stops: the thread being erased
# when the time check passes must finish, and the cursor be saved, before Lambda's timeout.
RETENTION_RESERVE_SECONDS = 30.0


@dataclass
class RetentionReport:
    erased: dict[str, list[int]] = field(default_factory=dict)  # thread id → steps erased
    totals: Totals = field(default_factory=Totals)  # this invocation's threads, by outcome
    finished: bool = False  # the pass is complete; else the next invocation continues it
    deleted: list[str] = field(default_factory=list)  # objects erasures had scheduled

    def as_json(self) -> dict[str, object]:
        return {
            "job": "retention",
            "erased": self.erased,
            "totals": self.totals.model_dump(),
            "finished": self.finished,
            **({"scheduled_deleted": self.deleted} if self.deleted else {}),
        }


def retention(
    rt: AwsRuntime,
    *,
    now: datetime | None = None,
    time_left: Callable[[], float] | None = None,
) -> RetentionReport:
    """The scheduled retention job: erase what each thread's graph `Retention` no longer
    allows, as `durable-graph retention run --as-of NOW` does (policies found by the graph
    each thread names; the signed erasure records, actor `system:retention`, are the
    tombstones). `now` defaults to the runtime clock's. With `time_left` (the invocation's
    remaining seconds) it stops `RETENTION_RESERVE_SECONDS` before the end, having saved its
    place: the next invocation continues the pass (`retention_cursor.py`)."""
    run = run_retention(
        rt.backend,
        clock=rt.graph.clock,
        as_of=now,
        time_left=time_left,
        reserve=RETENTION_RESERVE_SECONDS,
    )
    report = RetentionReport(totals=run.totals, finished=run.finished, deleted=run.deletes.deleted)
    for record in run.erased:
        report.erased[record.thread_id] = sorted(int(step) for step in record.steps)
        log.info(
            "retention erased %d step(s)",
            len(record.steps),
            extra={"thread_id": record.thread_id, "erasure": record.seq},
        )
    if not run.finished:
        log.info("retention stopped: %s", run.stopped, extra=run.pass_totals.model_dump())
    return report


# Seconds of the invocation kept back when the payload collector stops (a page of deletes).
GC_RESERVE_SECONDS = 20.0


def collect_payloads(rt: AwsRuntime, *, time_left: Callable[[], float] | None = None) -> Collected:
    """The scheduled payload collector (`durable-graph gc`): delete the payload objects no
    thread needs, put more than the deployment's `gc_grace_seconds` ago; with `time_left`, it
    stops `GC_RESERVE_SECONDS` before the invocation's end."""
    done = collect(
        rt.backend,
        grace=timedelta(seconds=rt.settings.gc_grace_seconds),
        clock=rt.graph.clock,
        time_left=time_left,
        reserve=GC_RESERVE_SECONDS,
    )
    log.info(
        "payload collector: %d object(s) deleted (%d bytes) of %d listed",
        done.deleted,
        done.deleted_bytes,
        done.listed,
        extra={"stopped": done.stopped, "threads": done.threads},
    )
    return done
