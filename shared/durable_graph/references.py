"""Which threads refer to each payload object: read once, kept current, so erasing N threads
costs one read of the store instead of N (retention is linear in the store, not quadratic).

`$payload` objects and snapshot segments are content-addressed: two threads that recorded
the same large io response share one object. Before erasure deletes such an object it must
know that no other thread still refers to it. Reading every other ledger for each erasure
(what erasure did before) makes a retention pass over N threads read N^2 ledgers;
`References.scan` reads each ledger once and each erasure then consults the index.

**Threads written while the index is in use.** The index is a picture taken at `since` (the
scan's start, less `SKEW` for clocks that disagree). Before each erasure deletes anything,
`others` re-checks what could have changed since, without reading the store again:

- a thread whose record moved (created, forked, its status changed: its `updated_at` is past
  the one the scan read), found by one newest-first listing down to `since`, is read again;
- a thread that was running when read may have committed steps without moving its record (the
  hot path never writes it): its newest step is read, and its ledger again if it grew;
- a commit onto a thread that was not running (an `update_state`, a resume) writes its thread
  record (`followups.py`), so a settled or suspended thread that gains a step is listed too.

The index keeps every digest of every thread in memory (some 250 bytes per reference: a
million references, say 100,000 threads of ten objects each, take about 250 MB), which a
sweeper's memory setting must allow for at that size.

Parts of an encrypted thread kept whole in sealed chunks name them in the clear
(`sealed_fields.is_sealed_part`), so the index sees them like any other ref.

A step whose payload was already stored and whose commit lands between this re-check and the
delete is covered by the deletes themselves (`payload_deletes.py`: every put stamps the
object, and a shared object stored within a grace period of the re-check is only deleted
once that is over, after another re-check: `pending_deletes.py`). An object in a thread that
could not be read is never deleted unless it is salted (`erasure.SALTED`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from durable_graph.backend import Backend
from durable_graph.backends.snapshots import read_snapshot, snapshot_refs
from durable_graph.checkpoint import Checkpoint, PayloadRef, ThreadRecord
from durable_graph.clock import Clock, SystemClock, iso
from durable_graph.encryption import ThreadCipher
from durable_graph.errors import CorruptRecord, DataKeyUnavailable, PayloadCorrupted
from durable_graph.ledger_refs import chunk_refs, record_refs
from durable_graph.saved_objects import chunk_reader, refs_in_record
from durable_graph.sealed_payloads import raw_payloads

SKEW = timedelta(minutes=5)  # how far apart the writers' clocks and ours may be
PAGE = 500  # thread records per listing request


def references(
    backend: Backend,
    records: Iterable[Checkpoint],
    *,
    deep: bool = False,
    cipher: ThreadCipher | None = None,
) -> set[str]:
    """Every payload digest `records` refer to, the segments and pages of their snapshots
    included (read from the payload store); `deep`: the `ctx.save` objects their values point
    to as well (`saved_objects.py`: chunks read, sealed values opened with `cipher`)."""
    refs: set[str] = set()
    chunks = chunk_reader(raw_payloads(backend.payloads), cipher) if deep else None
    for record in records:
        refs |= set(record_refs(record)) | set(chunk_refs(record))
        if chunks is not None:
            refs |= set(refs_in_record(record, chunks, cipher))
        if record.snap is not None:
            refs.add(record.snap.sha256)
            refs |= {r.sha256 for r in read_snapshot_refs(backend, record.snap)}
    return refs


def read_snapshot_refs(backend: Backend, ref: PayloadRef) -> list[PayloadRef]:
    """The objects a snapshot names; none when it is gone or unreadable."""
    try:
        return snapshot_refs(backend.payloads, read_snapshot(backend.payloads, ref))
    except (PayloadCorrupted, ValueError, KeyError, TypeError):
        return []  # already gone or unreadable: nothing more to find through it


@dataclass
class References:
    """How many threads refer to each digest, and which digests each thread refers to: read
    by the first `others` (`since`: when), then kept current by each. `unreadable`: threads
    that could not be read (their references are unknown). One per retention run, or per
    erasure."""

    clock: Clock | None = None
    since: str | None = None  # None: not read yet
    counts: dict[str, int] = field(default_factory=dict)  # digest -> threads referring to it
    held: dict[str, frozenset[str]] = field(default_factory=dict)  # thread -> its digests
    seen: dict[str, str] = field(default_factory=dict)  # thread -> updated_at when read
    running: dict[str, int] = field(default_factory=dict)  # thread -> newest step read
    unreadable: set[str] = field(default_factory=set)
    deep: bool = False  # values looked into for `ctx.save` objects (`saved_objects.py`)

    def others(
        self, backend: Backend, thread_id: str, digests: Iterable[str], *, deep: bool = False
    ) -> set[str]:
        """Those of `digests` some thread other than `thread_id` refers to now: every thread
        read once on the first call, then re-checked (see the module docstring). `deep`: the
        `ctx.save` objects threads' values point to count too (an index read without them is
        read again, deep, once)."""
        if deep and not self.deep:
            self.deep, self.since = True, None
            self.counts, self.held, self.seen = {}, {}, {}
            self.running, self.unreadable = {}, set()
        if self.since is None:
            self._scan(backend)
        else:
            self._refresh(backend)
        mine = self.held.get(thread_id, frozenset())
        return {sha for sha in digests if self.counts.get(sha, 0) > (sha in mine)}

    def _scan(self, backend: Backend) -> None:
        """Read every thread's ledger once (one listing, one ledger read per thread)."""
        self.since = iso((self.clock or SystemClock()).now() - SKEW)
        store = backend.checkpoints
        cursor: str | None = None
        while True:
            page = store.page_threads(limit=PAGE, cursor=cursor)
            for thread in page.threads:
                self._read(backend, thread)
            cursor = page.cursor
            if cursor is None:
                return

    def replace(self, thread_id: str, digests: set[str]) -> None:
        """Record what `thread_id` refers to now (after its erasure rewrote its rows)."""
        before = self.held.pop(thread_id, frozenset())
        for sha in before - digests:
            left = self.counts[sha] - 1
            if left:
                self.counts[sha] = left
            else:
                del self.counts[sha]
        for sha in digests - before:
            self.counts[sha] = self.counts.get(sha, 0) + 1
        if digests:
            self.held[thread_id] = frozenset(digests)

    def unread(self, thread_id: str) -> bool:
        """Whether a thread other than `thread_id` could not be read."""
        return bool(self.unreadable - {thread_id})

    def _refresh(self, backend: Backend) -> None:
        store = backend.checkpoints
        cursor: str | None = None
        limit = 8  # usually nothing moved: the newest thread is older than `since`
        while True:  # newest first, down to the scan's start
            page = store.page_threads(limit=limit, cursor=cursor)
            limit = min(limit * 4, PAGE)
            older = False
            for thread in page.threads:
                older = thread.updated_at < (self.since or "")
                if older:
                    break
                if self.seen.get(thread.thread_id) != thread.updated_at:
                    self._read(backend, thread)
            if older or page.cursor is None:
                break
            cursor = page.cursor
        for thread_id, step in list(self.running.items()):
            newest = store.inner.list_checkpoints(thread_id, newest_first=True, limit=1)
            if newest and newest[0].step != step:
                self._read_ledger(backend, thread_id)

    def _read(self, backend: Backend, thread: ThreadRecord) -> None:
        self.seen[thread.thread_id] = thread.updated_at
        self.running.pop(thread.thread_id, None)
        head = self._read_ledger(backend, thread.thread_id)
        if thread.status == "running" and head is not None:
            self.running[thread.thread_id] = head

    def _read_ledger(self, backend: Backend, thread_id: str) -> int | None:
        """Index the thread's ledger as stored now; its newest step (None: unreadable)."""
        try:
            ledger = backend.checkpoints.ledger(thread_id)
            cipher = _cipher(backend, thread_id) if self.deep else None
            refs = references(backend, ledger, deep=self.deep, cipher=cipher)
        except (CorruptRecord, PayloadCorrupted, DataKeyUnavailable):
            self.unreadable.add(thread_id)  # it might share an object: see `erasure.SALTED`
            return None
        self.unreadable.discard(thread_id)
        self.replace(thread_id, refs)
        if thread_id in self.running and ledger:
            self.running[thread_id] = ledger[-1].step
        return ledger[-1].step if ledger else None


def _cipher(backend: Backend, thread_id: str) -> ThreadCipher | None:
    """The key to look into a thread's sealed values with: None when the store is not
    encrypted or the thread's key is gone (nobody can read its values any more); raises
    `DataKeyUnavailable` when it exists but cannot be unwrapped here."""
    keys = backend.checkpoints.keys
    if keys is None:
        return None
    state = keys.lookup(thread_id)
    if state.state == "locked":
        raise DataKeyUnavailable(thread_id, state.why)
    return state.cipher


__all__ = ["SKEW", "References", "read_snapshot_refs", "references"]
