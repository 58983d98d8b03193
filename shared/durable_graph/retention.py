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
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from durable_graph.backend import Backend
from durable_graph.checkpoint import Actor, Checkpoint, ThreadRecord
from durable_graph.clock import Clock, SystemClock, parse_iso
from durable_graph.erasure import erase
from durable_graph.erasure_record import ErasureRecord
from durable_graph.errors import DurableGraphError
from durable_graph.loader import load_graph
from durable_graph.retention_policy import Retention

log = logging.getLogger("durable_graph.retention")

RETENTION_ACTOR = Actor(kind="system", id="retention")
# Only threads that are done: a running or suspended one (awaiting a decision) still works on
# its values, and would resume on erased ones. It is erased by the first run after it ends.
SETTLED = frozenset({"completed", "failed"})


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


def run_retention(
    backend: Backend,
    *,
    policies: Mapping[str, Retention] | None = None,
    graphs: Iterable[str] = (),
    clock: Clock | None = None,
    as_of: datetime | None = None,
) -> list[ErasureRecord]:
    """Erase what each thread's retention policy no longer allows; return the tombstones
    written. `policies` by graph name; default: imported from `graphs`, else from the graph
    names of the threads themselves. Ages are measured from `as_of` (default: the clock's
    now); the tombstones are dated by the clock."""
    threads = backend.checkpoints.list_threads(limit=10**9)
    if policies is None:
        names = list(graphs) or [t.graph.name for t in threads]
        policies = policies_of(names)
    now = as_of or (clock or SystemClock()).now()
    done: list[ErasureRecord] = []
    for thread in threads:
        policy = policies.get(thread.graph.name)
        if policy is None or thread.status not in SETTLED:
            continue
        record = _apply(backend, thread, policy, now - timedelta(days=policy.days), clock)
        if record is not None:
            done.append(record)
    return done


def _apply(
    backend: Backend,
    thread: ThreadRecord,
    policy: Retention,
    cutoff: datetime,
    clock: Clock | None,
) -> ErasureRecord | None:
    def expired(row: Checkpoint) -> bool:
        return parse_iso(row.created_at) < cutoff

    if parse_iso(thread.created_at) >= cutoff:
        return None  # no step is older than its thread: nothing to read
    try:
        return erase(
            backend,
            thread.thread_id,
            fields=policy.fields,
            strict_fields=False,
            steps=expired,
            reason=f"retention: values older than {policy.days:g} days "
            f"(policy of {thread.graph.name})",
            actor=RETENTION_ACTOR,
            clock=clock,
        )
    except DurableGraphError as exc:  # one thread's problem must not stop the others
        log.warning("thread %s not erased: %s", thread.thread_id, exc)
        return None


__all__ = ["RETENTION_ACTOR", "policies_of", "run_retention"]
