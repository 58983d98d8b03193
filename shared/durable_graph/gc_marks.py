"""The mark of the payload collector (`payload_gc.py`): every payload object some thread still
needs, read from the whole store.

Where references live (`docs/record-format.md` §6, §7, §8), per thread, all read here:

- its records (`ledger()`: the rows as stored, with their task and io lists): each change's
  chunk, the task and io lists (`next_ref`, `io_ref`), `$payload` refs in io responses, task
  arguments, interrupt payloads and resume values (`ledger_refs.py`), a format-1 record's
  `$payload` values;
- the values themselves, for the `ctx.save` objects a node keeps in its state, an io response,
  a `Send` or an interrupt as the ref's JSON (`saved_objects.py`): inline values, chunks read,
  sealed ones opened with the thread's data key (a destroyed key: nothing can be read from them
  any more, and nobody can read the objects they point to either);
- the snapshot each row names (`snap`) and what it needs: its segments, pages and whole-value
  chunks (`snapshots.snapshot_refs`). A list segment a later merge retired
  (`segment_runs.retirement`) is needed only by the snapshots from the newest snapshot's
  `gone_before` on, and by that newest one: an older snapshot that misses it is read through
  the newest (`record_fold._through_newer`), exactly as when its writer deleted it at once. A
  dict's segments are never retired (an older dict is no prefix of a newer one), so every
  snapshot keeps its own;
- the fan-out result rows (`done#<step>#<task>`) of every step with several tasks or a task
  carrying `done_at`: their chunks and every ref their values hold, as above.

Not read: the thread head, its signatures, approval and effect records (copies of what the
records hold, or written by a step that commits within the grace period), and queue messages
(a transition message names a record's task; a claim-checked body over SQS's limit is a
payload no record names: `docs/compliance-on-aws.md`). Bundles written by `export` are
self-contained files, never names in the store.

**Threads written while the mark reads.** The threads are listed oldest update first, then
listed again newest first down to the mark's start (less `references.SKEW`), as often as a
listing finds a thread that moved since it was read (one whose record was written meanwhile
jumps the cursor). A record committed after the mark's start names only objects put after
the collector's cutoff (a step takes less than the grace period from its puts to its commit),
which the sweep never deletes, or objects an earlier record of a thread names too (a `keep`,
an io payload recognised by digest, a fork's step 0 naming its origin's chunks), which the
mark has read.

A thread that cannot be read (a corrupt row, a data key this process cannot unwrap, a snapshot
of a newer format) makes the mark incomplete: the collector then deletes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from durable_graph.backend import Backend
from durable_graph.backends.snapshots import (
    Snapshot,
    SnapshotFormatError,
    read_snapshot,
    snapshot_refs,
)
from durable_graph.checkpoint import Checkpoint, PayloadRef, ThreadRecord
from durable_graph.clock import Clock, iso
from durable_graph.encryption import ThreadCipher
from durable_graph.errors import CorruptRecord, DataKeyUnavailable, PayloadCorrupted
from durable_graph.fanin import done_key
from durable_graph.ledger_refs import chunk_refs, record_refs
from durable_graph.payloads import MARKER, is_chunk
from durable_graph.references import SKEW
from durable_graph.saved_objects import (
    Chunks,
    change_value,
    chunk_reader,
    record_values,
    saved_ref,
)
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.sealed_records import open_fields

PAGE = 500  # thread records per listing request
RELISTS = 8  # listings of the threads that moved, before the mark gives up (nothing deleted)


class MarkIncomplete(Exception):
    """Some thread could not be read: what it needs is unknown, so nothing may be deleted."""


@dataclass
class Marks:
    """What the mark found: every needed digest, the threads read (`threads`, each once), and
    those that could not be read (`unreadable`, thread id -> why)."""

    live: set[str] = field(default_factory=set)
    threads: int = 0
    seen: dict[str, str] = field(default_factory=dict)  # thread -> updated_at when read
    unreadable: dict[str, str] = field(default_factory=dict)


def mark(backend: Backend, clock: Clock, progress: Callable[[Marks], None] | None = None) -> Marks:
    """Every payload digest some thread of `backend` needs now (module docstring);
    `progress(marks)` after each page of threads."""
    marks = Marks()
    since = iso(clock.now() - SKEW)
    store = backend.checkpoints
    cursor: str | None = None
    while True:
        page = store.page_threads(newest_first=False, limit=PAGE, cursor=cursor)
        for thread in page.threads:
            _read(backend, thread, marks)
        if progress is not None:
            progress(marks)
        cursor = page.cursor
        if cursor is None:
            break
    for _ in range(RELISTS):
        if not _moved(backend, marks, since):
            return marks
    raise MarkIncomplete(f"threads kept moving through {RELISTS} listings; try again")


def _moved(backend: Backend, marks: Marks, since: str) -> bool:
    """Read again every thread whose record moved since it was read (newest first, down to
    `since`); whether any had."""
    store = backend.checkpoints
    cursor: str | None = None
    moved = False
    while True:
        page = store.page_threads(limit=PAGE, cursor=cursor)
        for thread in page.threads:
            if thread.updated_at < since:
                return moved
            if marks.seen.get(thread.thread_id) != thread.updated_at:
                _read(backend, thread, marks)
                moved = True
        cursor = page.cursor
        if cursor is None:
            return moved


def _read(backend: Backend, thread: ThreadRecord, marks: Marks) -> None:
    marks.seen[thread.thread_id] = thread.updated_at
    try:
        marks.live |= thread_needs(backend, thread.thread_id)
    except (CorruptRecord, PayloadCorrupted, DataKeyUnavailable, SnapshotFormatError) as exc:
        marks.unreadable[thread.thread_id] = str(exc)
        return
    marks.unreadable.pop(thread.thread_id, None)
    marks.threads = len(marks.seen) - len(marks.unreadable)


def thread_needs(backend: Backend, thread_id: str) -> set[str]:
    """Every payload digest thread `thread_id` needs, read now (module docstring)."""
    cipher = _cipher(backend, thread_id)
    raw = raw_payloads(backend.payloads)
    chunks = chunk_reader(raw, cipher)
    store = backend.checkpoints
    ledger = store.ledger(thread_id)
    needed: set[str] = set()
    for record in ledger:
        needed |= set(record_refs(record)) | set(chunk_refs(record))
        # Sealed parts (io responses, arguments, payloads) opened: refs may be inside them.
        parts = store.opened(record) if store.keys is not None else record
        needed |= set(record_refs(parts))
        values = [change_value(change, chunks, cipher) for change in record.changes.values()]
        needed |= _walk([*values, *record_values(parts)], chunks)
    needed |= _snapshots_need(backend, ledger)
    needed |= _results_need(backend, thread_id, ledger, chunks)
    return needed


def _walk(value: Any, chunks: Chunks) -> set[str]:
    """The digests of every `{"$payload": ref}` and every saved ref's JSON inside `value`, the
    values of the chunks they name looked into too."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            ref = saved_ref(item)
            if ref is None and len(item) == 1 and MARKER in item:
                ref = saved_ref(item[MARKER])
                if ref is not None and is_chunk(ref):
                    stack.append(chunks(ref))
            if ref is not None:
                found.add(ref.sha256)
            else:
                stack.extend(item.values())
    return found


def _snapshots_need(backend: Backend, ledger: list[Checkpoint]) -> set[str]:
    """The snapshots the rows name and what each needs (module docstring: a retired list
    segment only from the newest snapshot's `gone_before` on)."""
    if not ledger:
        return set()
    payloads = backend.payloads
    read: dict[str, Snapshot] = {}
    for row in ledger:
        if row.snap is not None and row.snap.sha256 not in read:
            snapshot = _snapshot(backend, row.snap)
            if snapshot is not None:
                read[row.snap.sha256] = snapshot
    head = ledger[-1]
    by_step = {row.step: row for row in ledger}
    anchor = by_step.get(head.anchor)
    newest = read.get(anchor.snap.sha256) if anchor is not None and anchor.snap else None
    gone_before = newest.gone_before if newest is not None else 0
    retired = {str(r["sha256"]) for snapshot in read.values() for r in snapshot.retired}
    needed = set(read)
    for snapshot in read.values():
        names = {
            r.sha256 for r in snapshot_refs(payloads, dataclasses.replace(snapshot, retired=[]))
        }
        if snapshot is newest or snapshot.step >= gone_before:
            needed |= names
        else:
            needed |= names - retired
    return needed


def _snapshot(backend: Backend, ref: PayloadRef) -> Snapshot | None:
    """The snapshot under `ref`; None when it is gone or damaged (a read of its step fails
    already: nothing is kept through it). One of another format raises: what it needs is
    unknown."""
    try:
        return read_snapshot(backend.payloads, ref)
    except PayloadCorrupted:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise SnapshotFormatError(f"snapshot {ref.sha256[:12]} unreadable: {exc}") from exc


def _results_need(
    backend: Backend, thread_id: str, ledger: Iterable[Checkpoint], chunks: Chunks
) -> set[str]:
    """What the fan-out result rows of the thread's supersteps name (their chunks, and refs in
    their values)."""
    keys = [
        done_key(record.step, task.id)
        for record in ledger
        if len(record.next) > 1 or any(task.done_at is not None for task in record.next)
        for task in record.next
    ]
    if not keys:
        return set()
    store = backend.checkpoints
    found = store.get_records(thread_id, keys)
    needed: set[str] = set()
    for key, row in found.items():
        value = open_fields(row.value, store.keys, thread_id, key)
        needed |= _walk(value, chunks)
    return needed


def _cipher(backend: Backend, thread_id: str) -> ThreadCipher | None:
    """The key to look into a thread's sealed values with: None when the store is not
    encrypted or the thread's key was destroyed; raises `DataKeyUnavailable` when it exists
    but cannot be unwrapped here."""
    keys = backend.checkpoints.keys
    if keys is None:
        return None
    state = keys.lookup(thread_id)
    if state.state == "locked":
        raise DataKeyUnavailable(thread_id, state.why)
    return state.cipher


__all__ = ["MarkIncomplete", "Marks", "mark", "thread_needs"]
