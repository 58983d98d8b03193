"""Deleting the payload objects an erasure frees, without racing a step of another thread that
stored the same bytes and has not committed yet.

Content-addressed objects without a salt (a long string of an io response, a task or io list,
a snapshot segment or page) can be shared by threads. Erasure deletes one only when the
reference index (`references.py`), re-checked just before, finds no other thread referring to
it. A step of another thread that stores those very bytes (a put of an object already there is
a no-op for its bytes) and commits *after* that re-check would be left pointing at nothing.
Every backend's payload store therefore stamps an object with its clock at each put, a put of
bytes already there included (`ports.StampedPayloads`), and deletes conditionally:

1. `since` is taken before the re-check: now less `GRACE`;
2. each shared candidate is deleted only if it was not put after `since`, in one step against
   concurrent puts (a conditional DELETE on PostgreSQL, a rename aside and a look at the
   file's stamp on the folder, a lock in memory; on S3 a HEAD then a DELETE, two requests);
3. one put after `since` (a step that may still commit) leaves it: the erasure waits out
   `GRACE` (on its clock), re-checks which threads refer to it, and tries again, `ATTEMPTS`
   times, after which it leaves it in place (logged; a later erasure of a thread that still
   refers to it deletes it then).

So a step that stored the object less than `GRACE` before the re-check, or at any time after
it, keeps it, as long as it commits within `GRACE` of storing it (sealing puts a step's
payloads right before its one conditional write: milliseconds). What remains: a step that
stored the object and then stalled for more than `GRACE` before committing, and, on S3, a put
that lands between the HEAD and the DELETE of one object. Salted or sealed objects (a change's
chunk, a snapshot, any sealed payload) are never shared and are deleted at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from durable_graph.backend import Backend
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import Clock
from durable_graph.encryption import is_sealed
from durable_graph.ports import StampedPayloads
from durable_graph.sealed_payloads import raw_payloads

log = logging.getLogger("durable_graph.erasure")

GRACE = timedelta(seconds=10)  # longer than a step takes from storing its payloads to its commit
ATTEMPTS = 3
Recheck = Callable[[list[str]], set[str]]  # digests -> those another thread refers to now


def grace_start(clock: Clock) -> datetime:
    """The `since` of a delete whose re-check starts now."""
    return clock.now() - GRACE


def delete_payloads(
    backend: Backend,
    refs: Iterable[PayloadRef],
    *,
    since: datetime,
    clock: Clock,
    recheck: Recheck,
    salted: frozenset[str],
) -> list[str]:
    """Delete `refs` (`salted`: content types of objects no other thread can hold); a shared
    one only if not put after `since`, waiting out `GRACE` for one that was (module
    docstring). Returns the digests left in place because a step of another thread stored or
    took them up meanwhile."""
    raw = raw_payloads(backend.payloads)
    stamped = raw if isinstance(raw, StampedPayloads) else None
    waiting: list[PayloadRef] = []
    for ref in refs:
        if stamped is None or ref.content_type in salted or is_sealed(ref):
            backend.payloads.delete(ref)
        elif stamped.delete_if_idle(ref, since) == "in_use":
            waiting.append(ref)
    kept: list[str] = []
    for _ in range(ATTEMPTS):
        if not waiting or stamped is None:
            break
        clock.sleep(GRACE.total_seconds() + 1)  # every put before the wait is GRACE old
        since = grace_start(clock)
        live = recheck([ref.sha256 for ref in waiting])
        kept += [ref.sha256 for ref in waiting if ref.sha256 in live]
        waiting = [
            ref
            for ref in waiting
            if ref.sha256 not in live and stamped.delete_if_idle(ref, since) == "in_use"
        ]
    kept += [ref.sha256 for ref in waiting]
    if kept:
        log.warning(
            "payload objects %s left in place: a step of another thread stored or took them "
            "up during the erasure",
            ", ".join(sha[:12] for sha in kept),
        )
    return kept


__all__ = ["ATTEMPTS", "GRACE", "delete_payloads", "grace_start"]
