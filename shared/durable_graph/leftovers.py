"""Deleting what a process which may not delete payload objects left behind (`disposal.py`,
`ports.leftovers`): on AWS the worker, S3-start and DLQ functions leave it (their roles have no
payload delete: deleting is erasure's), and the sweeper, whose role may, deletes it here on each
sweep (`docs/record-format.md` §7, §12). Two kinds, one pass:

- **lost**: the chunks of a step or task result that lost its conditional append. Each is
  deleted only if its address is its own record's: salted or sealed (`erasure_plan.SALTED`,
  `is_sealed`), as every chunk a lost append leaves is (an object addressed by content alone
  could be shared with another thread, which only the reference index over the whole store
  could rule out, so such a ref, a damaged or forged leftover, is kept); and if the record that
  won, read again now (the step's checkpoint, or the task's `done#` row), does not name it
  (every ref `references.references` finds in the checkpoint, its snapshot's included; every
  chunk of the row). A leftover whose winner cannot be found, or read as data (a destroyed
  data key, a corrupt row), deletes nothing and is forgotten.
- **retired**: the snapshot segments a merge replaced, left once the merging step committed.
  Each is deleted only if the snapshot of that step (read again now, through its row) lists it
  in its `retired` (so a damaged or forged leftover deletes nothing; format-3 segments are
  salted for their thread, so no other thread, a fork included, names them: a fork writes its
  own), if neither that snapshot nor the thread's newest names it (the same items salted alike
  make the same object), and if it was not put again after the leftover was left (a later
  snapshot that wrote the same bytes stamps it anew: `payload_deletes.delete_payloads` with
  `since` = when it was left). Older snapshots still name it: a reader that finds it gone reads
  that snapshot's lists through the newest one (`gone_before`, `segment_runs.py`), and one that
  loaded such a snapshot moments ago had `GRACE` to read its segments. A snapshot that cannot be
  read (the thread deleted, its snapshots dropped by an erasure, which deletes their segments,
  retired ones included, itself; its data key destroyed) deletes nothing.

A leftover is looked at only `GRACE` after it was left, when no invocation that was running
then still runs. The deletes go through erasure's one delete path
(`payload_deletes.delete_payloads`), then the leftover is forgotten. A leftover whose record
could not be read (an outage) stays for the next sweep.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from durable_graph.backend import Backend
from durable_graph.backends.snapshots import (
    Snapshot,
    SnapshotFormatError,
    read_snapshot,
    snapshot_refs,
)
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import Clock, parse_iso
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
from durable_graph.ports.leftovers import Leftover
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
    """Delete the objects of the oldest `limit` leftovers left `GRACE` before `now` (default:
    the clock's) that nothing names (module docstring); nothing where this process may not
    delete payloads or the backend keeps no leftovers."""
    cleared = Cleared()
    leftovers = backend.leftovers
    if leftovers is None or not backend.deletes_payloads:
        return cleared
    for left in leftovers.due((now or clock.now()) - GRACE, limit):
        try:
            # Taken before the re-check: an object put after it is kept (`payload_deletes`).
            since = grace_start(clock)
            if left.kind == "retired":
                # Put again since it was left: a later snapshot wrote the same segment.
                since = parse_iso(left.at)
                doomed = _retired(backend, left)
            else:
                named = _named(backend, left)
                doomed = [r for r in left.refs if named is not None and _deletable(r, named)]
            # Salted or sealed ones are deleted at once (never left waiting out a put's grace).
            waiting = delete_payloads(backend, doomed, since=since, salted=SALTED)
            kept = [ref.sha256 for ref in waiting]
            leftovers.forget(left)
        except DurableGraphError:
            log.exception("leftover objects of %r not cleared", left.thread_id)
            continue
        cleared.leftovers += 1
        cleared.deleted += len(doomed) - len(kept)
        cleared.kept += [r.sha256 for r in left.refs if r not in doomed] + kept
    if cleared.kept:
        log.warning(
            "leftover objects %s kept: named by a record, not salted, or put again since",
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


def _retired(backend: Backend, left: Leftover) -> list[PayloadRef]:
    """Those of `left`'s refs that the snapshot of its step lists as `retired` and that
    neither it nor the thread's newest snapshot names, read now; none when that snapshot
    cannot be found or read (the thread deleted, its snapshots dropped by an erasure, which
    deleted their segments itself, its data key destroyed). An outage raises."""
    try:
        return _read_retired(backend, left)
    except (DataKeyUnavailable, CorruptRecord, PayloadCorrupted, SnapshotFormatError) as exc:
        log.warning("retired segments of %r, snapshot unread: %s", left.thread_id, exc)
        return []
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("retired segments of %r, snapshot unreadable: %s", left.thread_id, exc)
        return []


def _read_retired(backend: Backend, left: Leftover) -> list[PayloadRef]:
    store = backend.checkpoints
    row = store.stored_record(left.thread_id, left.step) if left.step is not None else None
    if row is None or row.snap is None:
        return []
    merging = read_snapshot(backend.payloads, row.snap)
    if merging.step != left.step:
        return []
    retired = {str(ref["sha256"]) for ref in merging.retired}
    named = _live(backend, merging)
    head = store.lazy_head(left.thread_id)
    newest = store.stored_record(left.thread_id, head[0].anchor) if head is not None else None
    if newest is not None and newest.snap is not None:
        named |= _live(backend, read_snapshot(backend.payloads, newest.snap))
    return [ref for ref in left.refs if ref.sha256 in retired and ref.sha256 not in named]


def _live(backend: Backend, snapshot: Snapshot) -> set[str]:
    """The digests of the objects a snapshot needs to be read (not those it retired)."""
    needed = snapshot_refs(backend.payloads, dataclasses.replace(snapshot, retired=[]))
    return {snapshot.ref.sha256} | {ref.sha256 for ref in needed}


__all__ = ["BATCH", "GRACE", "Cleared", "clear_leftovers"]
