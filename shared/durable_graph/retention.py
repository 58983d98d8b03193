"""Retention: erase the values of steps older than a graph's policy allows.

A graph declares `compile(retention=Retention(days=N))` (`retention_policy.py`). `run_retention`
goes through the threads, finds each one's policy by the graph name its thread record carries
(importing that graph, as `replay` does, unless the caller passes the policies), and erases the
values of every step created more than N days before the clock's now, through the same
`erasure.erase` as `durable-graph erase`. What stays is the chain skeleton (hashes, digests,
links, signatures) and the erasure record, signed, as the tombstone: actor `system:retention`,
reason `retention: ...`. Only completed and failed threads are erased: a running or suspended
one is left for the first run after it ends. A thread with nothing old enough, or already
erased, writes nothing.

A value re-set at a recent step (a `keep`, a later `set`) is part of that recent step and stays
until it is old enough itself. The clock is a parameter so tests run it on a `ManualClock`.

**At scale.** The threads are read a page at a time, oldest update first, and a run stops
before its time budget runs out (`time_left`: the sweeper passes Lambda's remaining time) after
saving where it got to (`retention_cursor.py`); the next run continues the same pass from there.
A run that dies mid-page redoes that page, which is safe: a thread erased already is a no-op,
and one whose erasure was interrupted is finished under the erasure record already written.
A run reads which threads refer to each shared payload object once (`references.py`), the
first time an erasure may delete one, and every erasure of the run consults that index: a
pass is linear in the store, not quadratic. A run starts by deleting the objects erasures
scheduled (stored moments before them: `pending_deletes.py`) whose grace period is over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from durable_graph.backend import Backend
from durable_graph.checkpoint import Actor, Checkpoint, ThreadRecord
from durable_graph.clock import Clock, SystemClock, iso, parse_iso
from durable_graph.erasure import erase
from durable_graph.erasure_record import ErasureRecord
from durable_graph.errors import DurableGraphError, RecordConflict
from durable_graph.listing import encode_cursor, key_of
from durable_graph.loader import load_graph
from durable_graph.pending_deletes import Finished, finish_deletes
from durable_graph.references import References
from durable_graph.retention_cursor import PASS_ORDER, Position, Totals, load, save
from durable_graph.retention_policy import Retention

log = logging.getLogger("durable_graph.retention")

RETENTION_ACTOR = Actor(kind="system", id="retention")
PAGE = 100  # threads read per page (and between two saves of the cursor)
Outcome = Literal["erased", "unchanged", "skipped", "failed"]


def policies_of(names: Iterable[str]) -> dict[str, Retention]:
    """The retention policies of the graphs `names` ("module:attr"), imported; graphs without
    one, or that cannot be imported, are left out (and logged)."""
    found: dict[str, Retention] = {}
    for name in sorted(set(names)):
        try:
            policy = load_graph(name).retention
        except Exception:
            log.warning("cannot import graph %s: its threads are skipped", name)
            continue
        if policy is not None:
            found[name] = policy
    return found


@dataclass
class RetentionRun:
    """What one run did. `totals`: this run's threads by outcome; `erased`: the tombstones it
    wrote; `finished`: it reached the end of the pass (the next run starts a new one), else
    it saved where it stopped (`stopped` says why: out of time, or another run moved the
    cursor); `pass_totals`: the pass's totals over every run of it so far."""

    totals: Totals = field(default_factory=Totals)
    erased: list[ErasureRecord] = field(default_factory=list)
    finished: bool = False
    stopped: str | None = None
    pass_totals: Totals = field(default_factory=Totals)
    # Objects earlier erasures scheduled for deletion, deleted (or not yet) by this run's start
    deletes: Finished = field(default_factory=Finished)


def run_retention(
    backend: Backend,
    *,
    policies: Mapping[str, Retention] | None = None,
    graphs: Iterable[str] = (),
    clock: Clock | None = None,
    as_of: datetime | None = None,
    time_left: Callable[[], float] | None = None,
    reserve: float = 0.0,
    page_size: int = PAGE,
    progress: Callable[[RetentionRun], None] | None = None,
) -> RetentionRun:
    """Erase what each thread's retention policy no longer allows, continuing the pass a
    previous run left unfinished. `policies` by graph name; default: imported from `graphs`,
    else from the graph name of each thread met. Ages are measured from `as_of` (default: the
    clock's now); the tombstones are dated by the clock. With `time_left` (seconds), the run
    stops once fewer than `reserve` seconds are left, having saved its place. `progress(run)`
    is called after every page."""
    clock = clock or SystemClock()
    now = as_of or clock.now()
    policy_of = _resolver(policies, graphs)
    store = backend.checkpoints
    position, version = load(store)
    if position.started_at is None:
        position = Position(started_at=iso(clock.now()), last_finished_at=position.last_finished_at)
    start = position.totals
    run = RetentionRun(pass_totals=start)
    index = References(clock)  # read once per run, by the first erasure that needs it
    # What erasures scheduled (stored moments before them): deleted now their grace is over.
    run.deletes = finish_deletes(backend, clock, index=index)
    status, cursor = position.status, position.cursor

    def keep(status: str, cursor: str | None, finished: bool = False) -> bool:
        """Save the position (a finished pass: none in progress); False if another run
        moved it meanwhile (this one then stops)."""
        nonlocal version
        run.pass_totals = start.add(run.totals)
        if finished:
            saved = Position(last_finished_at=iso(clock.now()))
        else:
            saved = position.model_copy(
                update={"status": status, "cursor": cursor, "totals": run.pass_totals}
            )
        try:
            version = save(store, saved, version)
        except RecordConflict:
            run.stopped = "another retention run moved the cursor: it carries on"
            return False
        return True

    while True:
        page = store.page_threads(status=status, newest_first=False, limit=page_size, cursor=cursor)
        for thread in page.threads:
            if time_left is not None and time_left() <= reserve:
                if keep(status, cursor):
                    run.stopped = "out of time: the next run continues from here"
                return run
            policy = policy_of(thread.graph.name)
            outcome, record = _one(backend, thread, policy, now, clock, index)
            run.totals = run.totals.add(Totals(checked=1, **{outcome: 1}))
            if record is not None:
                run.erased.append(record)
            cursor = encode_cursor(key_of(thread))
        last = page.cursor is None and status == PASS_ORDER[-1]
        if last:
            run.finished = keep(status, None, finished=True)
        elif page.cursor is None:
            status, cursor = PASS_ORDER[PASS_ORDER.index(status) + 1], None
        if not last and not keep(status, cursor):
            return run
        if progress is not None and page.threads:
            progress(run)
        if last:
            return run


def _resolver(
    policies: Mapping[str, Retention] | None, graphs: Iterable[str]
) -> Callable[[str], Retention | None]:
    """A graph's policy by name: from `policies`, else from `graphs` imported now, else the
    graph itself imported when first met (once per name)."""
    chosen = list(graphs)
    known = dict(policies) if policies is not None else policies_of(chosen) if chosen else None
    met: dict[str, Retention | None] = {}

    def policy_of(name: str) -> Retention | None:
        if known is not None:
            return known.get(name)
        if name not in met:
            met[name] = policies_of([name]).get(name)
        return met[name]

    return policy_of


def _one(
    backend: Backend,
    thread: ThreadRecord,
    policy: Retention | None,
    now: datetime,
    clock: Clock,
    index: References,
) -> tuple[Outcome, ErasureRecord | None]:
    if policy is None:
        return "skipped", None
    cutoff = now - timedelta(days=policy.days)
    if parse_iso(thread.created_at) >= cutoff:
        return "unchanged", None  # no step is older than its thread: nothing to read

    def expired(row: Checkpoint) -> bool:
        return parse_iso(row.created_at) < cutoff

    try:
        record = erase(
            backend,
            thread.thread_id,
            fields=policy.fields,
            strict_fields=False,
            steps=expired,
            reason=f"retention: values older than {policy.days:g} days "
            f"(policy of {thread.graph.name})",
            actor=RETENTION_ACTOR,
            clock=clock,
            index=index,
            finish=False,  # the run finished every thread's at its start
        )
    except DurableGraphError as exc:  # one thread's problem must not stop the others
        log.warning("thread %s not erased: %s", thread.thread_id, exc)
        return "failed", None
    return ("unchanged", None) if record is None else ("erased", record)


__all__ = ["PAGE", "RETENTION_ACTOR", "RetentionRun", "policies_of", "run_retention"]
