"""Deleting the payload objects an erasure frees, without racing a step of another thread that
stored the same bytes and has not committed yet.

Content-addressed objects without a salt (a long string of an io response, a task or io list,
a snapshot segment or page) can be shared by threads. Erasure deletes one only when the
reference index (`references.py`), re-checked just before, finds no other thread referring to
it. A step of another thread that stores those very bytes (a put of an object already there is
a no-op for its bytes) and commits *after* that re-check would be left pointing at nothing.
Every backend's payload store therefore stamps an object with its clock at each put, a put of
bytes already there included (`ports.payload_store.StampedPayloads`), and deletes conditionally:

1. `since` is taken before the re-check: now less `GRACE`;
2. each shared candidate is deleted only if it was not put after `since`, in one step against
   concurrent puts (a conditional DELETE on PostgreSQL, a rename aside and a look at the
   file's stamp on the folder, a lock in memory; on S3 a HEAD then a DELETE, two requests);
3. one put after `since` (a step that may still commit, or the erased thread's own put when it
   ran moments ago) leaves it: it is returned, and the erasure schedules it
   (`pending_deletes.py`): the next retention run, or erasure of the thread, re-checks and
   deletes it once `GRACE` has passed. The erasure itself does not wait.

So a step that stored the object less than `GRACE` before the re-check, or at any time after
it, keeps it, as long as it commits within `GRACE` of storing it (sealing puts a step's
payloads right before its one conditional write: milliseconds). What remains: a step that
stored the object and then stalled for more than `GRACE` before committing, and, on S3, a put
that lands between the HEAD and the DELETE of one object. Salted or sealed objects (a change's
chunk, a snapshot, any sealed payload) are never shared and are deleted at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from durable_graph.backend import Backend
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import Clock
from durable_graph.encryption import is_sealed
from durable_graph.ports.payload_store import StampedPayloads
from durable_graph.sealed_payloads import raw_payloads

GRACE = timedelta(seconds=10)  # longer than a step takes from storing its payloads to its commit


def grace_start(clock: Clock) -> datetime:
    """The `since` of a delete whose re-check starts now."""
    return clock.now() - GRACE


def delete_payloads(
    backend: Backend,
    refs: Iterable[PayloadRef],
    *,
    since: datetime,
    salted: frozenset[str],
) -> list[PayloadRef]:
    """Delete `refs` (`salted`: content types of objects no other thread can hold); a shared
    one only if not put after `since` (module docstring). Returns those that were: they may
    be deleted only once `GRACE` has passed and a re-check finds no thread referring to them
    (`pending_deletes.py`)."""
    raw = raw_payloads(backend.payloads)
    stamped = raw if isinstance(raw, StampedPayloads) else None
    waiting: list[PayloadRef] = []
    for ref in refs:
        if stamped is None or ref.content_type in salted or is_sealed(ref):
            backend.payloads.delete(ref)
        elif stamped.delete_if_idle(ref, since) == "in_use":
            waiting.append(ref)
    return waiting


__all__ = ["GRACE", "delete_payloads", "grace_start"]
