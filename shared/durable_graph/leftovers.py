"""Deleting the chunks of lost appends that a process which may not delete payload objects left
behind (`orphans.let_go`, `ports.Leftovers`): on AWS the worker, S3-start and DLQ functions
leave them (their roles have no payload delete: deleting is erasure's), and the sweeper, whose
role may, deletes them here on each sweep (`docs/record-format.md` §12).

A leftover is looked at only `GRACE` after it was left, when no invocation that was running
then still runs. Each of its chunks is then deleted only if

- its address is its own record's: salted or sealed (`erasure_plan.SALTED`, `is_sealed`), as
  every chunk a lost append leaves is. An object addressed by content alone could be shared
  with another thread, which only the reference index over the whole store could rule out, so
  such a ref (a damaged or forged leftover) is kept;
- the record that won, read again now (the step's checkpoint, or the task's `done#` row), does
  not name it (every ref `references.references` finds in the checkpoint, its snapshot's
  included; every chunk of the row). A leftover whose winner cannot be found, or read as
  data (a destroyed data key, a corrupt row), deletes nothing and is forgotten.

The deletes go through erasure's one delete path (`payload_deletes.delete_payloads`), then the
leftover is forgotten. A leftover whose winner could not be read (an outage) stays for the next
sweep.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from durable_graph.backend import Backend
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import Clock
from durable_graph.encryption import is_sealed
from durable_graph.erasure_plan import SALTED
from durable_graph.errors import (
    CorruptRecord,
    DataKeyUnavailable,
    DurableGraphError,
    PayloadCorrupted,
)
from durable_graph.fanin import result_chunks
from durable_graph.payload_deletes import delete_payloads, grace_start
from durable_graph.ports import Leftover
from durable_graph.references import references
from durable_graph.sealed_records import open_fields

log = logging.getLogger("durable_graph.leftovers")

GRACE = timedelta(minutes=15)  # a Lambda invocation's longest life
BATCH = 100  # leftovers looked at per sweep; the rest wait for the next


@dataclass
class Cleared:
    """What one pass did: leftovers forgotten, chunks deleted, digests kept (named by the
    winner, not salted, or taken up meanwhile)."""

    leftovers: int = 0
    deleted: int = 0
    kept: list[str] = field(default_factory=list)


def clear_leftovers(
    backend: Backend, *, clock: Clock, now: datetime | None = None, limit: int = BATCH
) -> Cleared:
    """Delete the chunks of the oldest `limit` leftovers left `GRACE` before `now` (default:
    the clock's) that nothing names (module docstring); nothing where this process may not
    delete payloads or the backend keeps no leftovers."""
    cleared = Cleared()
    leftovers = backend.leftovers
    if leftovers is None or not backend.deletes_payloads:
        return cleared
    for left in leftovers.due((now or clock.now()) - GRACE, limit):
        try:
            named = _named(backend, left)
            doomed = [r for r in left.refs if named is not None and _deletable(r, named)]
            # Salted or sealed only: deleted at once (never left waiting out a put's grace).
            waiting = delete_payloads(backend, doomed, since=grace_start(clock), salted=SALTED)
            kept = [ref.sha256 for ref in waiting]
            leftovers.forget(left)
        except DurableGraphError:
            log.exception("leftover chunks of %r not cleared", left.thread_id)
            continue
        cleared.leftovers += 1
        cleared.deleted += len(doomed) - len(kept)
        cleared.kept += [r.sha256 for r in left.refs if r not in doomed] + kept
    if cleared.kept:
        log.warning(
            "leftover chunks %s kept: named by a record, or not salted",
            ", ".join(sha[:12] for sha in cleared.kept),
        )
    return cleared


def _deletable(ref: PayloadRef, named: set[str]) -> bool:
    """Salted or sealed (nobody else can hold it) and not named by the record that won."""
    return (ref.content_type in SALTED or is_sealed(ref)) and ref.sha256 not in named


def _named(backend: Backend, left: Leftover) -> set[str] | None:
    """Every digest the record that won names, read now; None when it cannot be found or
    read as data (its data key destroyed, a corrupt row: the same answer at every sweep). An
    outage or a refused request raises: the leftover waits for the next sweep."""
    try:
        return _read_named(backend, left)
    except (DataKeyUnavailable, CorruptRecord, PayloadCorrupted) as exc:
        log.warning("the record %r of leftover chunks cannot be read: %s", left.thread_id, exc)
        return None


def _read_named(backend: Backend, left: Leftover) -> set[str] | None:
    store = backend.checkpoints
    if left.step is not None:
        record = store.get_checkpoint(left.thread_id, left.step)
        return references(backend, [record]) if record is not None else None
    if left.row is not None:
        row = store.get_record(left.thread_id, left.row)
        if row is None:
            return None
        value = open_fields(row.value, store.keys, left.thread_id, left.row)
        return {ref.sha256 for ref in result_chunks(value)}
    return None


__all__ = ["BATCH", "GRACE", "Cleared", "clear_leftovers"]
