"""Shared payload objects an erasure could not delete yet because they were stored moments ago:
scheduled, so that `erase` returns at once, and deleted by whichever comes next of a retention
run (the sweeper on AWS), another `erase` of the thread, or `erase --wait`.

`payload_deletes.py` deletes a shared, content-addressed object only if no put stamped it within
`GRACE` (10 s) before the erasure's re-check of who refers to it: a step of another thread may
have stored the same bytes and be about to commit a record naming them. Such an object (usually
the erased thread's own put, when it ran seconds ago) used to make the erasure wait out the
grace and re-check, about 11 s per erase. Instead its ref is written to one compare-and-set
record, `deletes#pending` in the `__erasure__` partition of the store's small records, with the
erasure that named it and the time after which it may be tried (`after`: the erasure's time
plus `GRACE` and a second). `finish_deletes` later does what the wait did, with the same
guarantee:

1. `since` = now less `GRACE`, taken before the re-check;
2. the re-check reads which threads refer to the object *now*, the erased thread included
   (a suspended thread may have been resumed since): one that does keeps it, and the entry goes;
3. otherwise the object is deleted only if no put stamped it after `since`
   (`StampedPayloads.delete_if_idle`); one that was put again stays scheduled, `after` moved on.

So a step that stored the object and commits within `GRACE` of storing it never loses it, as
before, and no erasure sleeps. The erasure record names every object it set out to delete (its
`payloads`) from the start, so `verify` accepts each one gone at any moment; it notes the
objects still scheduled. An object that keeps being stored again stays scheduled (each run tries
it again) instead of being given up after three waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import BaseModel, ConfigDict

from durable_graph.backend import Backend
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import Clock, iso
from durable_graph.errors import RecordConflict
from durable_graph.payload_deletes import GRACE, grace_start
from durable_graph.ports.checkpoint_store import CheckpointStore
from durable_graph.ports.payload_store import StampedPayloads
from durable_graph.references import References
from durable_graph.sealed_payloads import raw_payloads

log = logging.getLogger("durable_graph.erasure")

NAMESPACE = "__erasure__"  # the record's partition (not a thread)
KEY = "deletes#pending"
ATTEMPTS = 8  # compare-and-set retries against concurrent erasures
EVERY_THREAD = ""  # `References.others` of no thread: every thread's references count


class PendingDelete(BaseModel):
    """One object an erasure will delete once the grace period of its last put is over."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    thread_id: str
    erasure: int  # the erasure record (`erasure#<n>`) whose `payloads` name it
    ref: PayloadRef
    deep: bool = False  # a `ctx.save` object: references are read inside values
    after: str  # ISO time from which it may be tried


@dataclass
class Finished:
    """What `finish_deletes` did: digests deleted, still waiting, and kept (a thread refers to
    them again)."""

    deleted: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def pending_deletes(store: CheckpointStore, thread_id: str | None = None) -> list[PendingDelete]:
    """The objects scheduled for deletion (of `thread_id`'s erasures, when given)."""
    entries, _ = _load(store)
    return [e for e in entries if thread_id is None or e.thread_id == thread_id]


def schedule_deletes(
    store: CheckpointStore,
    thread_id: str,
    erasure: int,
    refs: list[PayloadRef],
    *,
    deep: bool,
    clock: Clock,
) -> list[PendingDelete]:
    """Add `refs` (not deletable before the grace period of their last put is over)."""
    after = iso(clock.now() + GRACE + timedelta(seconds=1))
    new = [
        PendingDelete(thread_id=thread_id, erasure=erasure, ref=ref, deep=deep, after=after)
        for ref in refs
    ]
    if new:
        _update(store, lambda entries: [*_without(entries, new), *new])
    return new


def finish_deletes(
    backend: Backend,
    clock: Clock,
    *,
    thread_id: str | None = None,
    index: References | None = None,
) -> Finished:
    """Delete the scheduled objects whose time has come (of `thread_id`'s erasures, when given)
    that no thread refers to and nobody stored again within `GRACE` (module docstring)."""
    done = Finished()
    store = backend.checkpoints
    now = iso(clock.now())
    due = [e for e in pending_deletes(store, thread_id) if e.after <= now]
    if not due:
        return done
    since = grace_start(clock)  # before the re-check
    index = index or References(clock)
    deep = any(e.deep for e in due)
    live = index.others(backend, EVERY_THREAD, [e.ref.sha256 for e in due], deep=deep)
    raw = raw_payloads(backend.payloads)
    later: list[PendingDelete] = []
    for entry in due:
        sha = entry.ref.sha256
        if sha in live:
            done.kept.append(sha)
        elif isinstance(raw, StampedPayloads) and raw.delete_if_idle(entry.ref, since) == "in_use":
            done.waiting.append(sha)
            after = iso(clock.now() + GRACE + timedelta(seconds=1))
            later.append(entry.model_copy(update={"after": after}))
        else:
            if not isinstance(raw, StampedPayloads):
                backend.payloads.delete(entry.ref)
            done.deleted.append(sha)
    if done.kept:
        log.warning(
            "payload objects %s not deleted: a thread refers to them again",
            ", ".join(sha[:12] for sha in done.kept),
        )
    _update(store, lambda entries: [*_without(entries, due), *later])
    return done


def _key(entry: PendingDelete) -> tuple[str, str]:
    return entry.thread_id, entry.ref.sha256


def _without(entries: list[PendingDelete], gone: list[PendingDelete]) -> list[PendingDelete]:
    names = {_key(e) for e in gone}
    return [e for e in entries if _key(e) not in names]


def _load(store: CheckpointStore) -> tuple[list[PendingDelete], int | None]:
    found = store.get_record(NAMESPACE, KEY)
    if found is None:
        return [], None
    return [PendingDelete.model_validate(e) for e in found.value.get("objects", [])], found.version


def _update(store: CheckpointStore, change: Callable[[list[PendingDelete]], list[PendingDelete]]
            ) -> None:  # fmt: skip
    """Apply `change` to the stored list, compare-and-set, again on a concurrent change."""
    for _ in range(ATTEMPTS):
        entries, version = _load(store)
        after = change(entries)
        if after == entries:
            return
        value = {"objects": [e.model_dump(mode="json") for e in after]}
        try:
            store.put_record(NAMESPACE, KEY, value, expected_version=version)
            return
        except RecordConflict:
            continue
    raise RecordConflict(f"{KEY}: {ATTEMPTS} concurrent changes in a row")


__all__ = [
    "KEY",
    "NAMESPACE",
    "Finished",
    "PendingDelete",
    "finish_deletes",
    "pending_deletes",
    "schedule_deletes",
]
