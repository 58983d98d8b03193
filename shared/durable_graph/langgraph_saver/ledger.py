"""LangGraph checkpoints, pending writes and deletions as records of our hash-chained ledger.

This module knows the ledger and nothing of LangGraph's classes: it takes and returns plain dicts
and `(type, bytes)` values from LangGraph's serializer (`Serde`), so it is typed and tested
without LangGraph installed. `saver.DurableGraphSaver` adapts it to `BaseCheckpointSaver`.

One LangGraph (thread_id, checkpoint_ns) is one ledger thread per generation (`names.py`); its
chain holds, in the order the saver received them, a record per `put` (the channels that changed,
a list channel that only grew as an `add` of the new items), a record per `put_writes`, and at
the end a deletion record (`index.py` describes the fields). The ledger's state at a checkpoint's
step is exactly that checkpoint's channel values, whatever its LangGraph parent: a checkpoint
whose parent is not the previous one (time travel, `update_state` on an old checkpoint) simply
sets the channels that differ. Every value is sealed with the generation's data key
(`cipher.py`), so `delete_thread` erases by destroying the key (`manifest.py`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from durable_graph.backend import Backend
from durable_graph.checkpoint import Actor, Checkpoint, GraphRef, Status
from durable_graph.clock import Clock, SystemClock, iso
from durable_graph.erasure import erase
from durable_graph.errors import InvalidInput, StepConflict
from durable_graph.langgraph_saver import manifest
from durable_graph.langgraph_saver.cipher import ThreadCipher, Typed
from durable_graph.langgraph_saver.diff import Serde, checkpoint_changes
from durable_graph.langgraph_saver.header import compress
from durable_graph.langgraph_saver.index import (
    DELETED,
    HEADER,
    WRITE,
    WRITE_VALUES,
    LedgerIndex,
)
from durable_graph.langgraph_saver.names import GRAPH_NAME, LedgerName
from durable_graph.langgraph_saver.reads import (
    StoredCheckpoint,
    StoredTuple,
    StoredWrites,
    TupleReader,
)
from durable_graph.sealing import Base, StepSealer
from durable_graph.signing import sign_head
from durable_graph.state import FieldChange
from durable_graph.threads import sync_thread

log = logging.getLogger("durable_graph.langgraph_saver")

GRAPH = GraphRef(name=GRAPH_NAME, version="saver-1")
CACHE_THREADS = 1024
_ATTEMPTS = 50


@dataclass(frozen=True)
class _Lists:
    """The serialized items of each list channel as of one checkpoint step: how a later put
    tells a list that only grew (stored as an `add` of the new items) from one that changed."""

    step: int
    items: dict[str, list[Typed]]


class LangGraphLedger:
    """Writes and reads LangGraph threads on one `Backend` (thread-safe within a process; other
    processes are seen through the store, and a lost append is retried on the new head)."""

    def __init__(
        self, backend: Backend, serde: Serde, *, clock: Clock | None = None, sign_every: int = 1
    ) -> None:
        self.backend = backend
        self.store = backend.checkpoints
        self.serde = serde
        self.clock = clock or SystemClock()
        self.sign_every = sign_every
        self.sealer = StepSealer(backend, GRAPH, self.clock)
        self.reader = TupleReader(backend.checkpoints, backend.payloads, serde)
        self.actor = Actor(kind="worker", id=f"langgraph:{socket.gethostname()}:{os.getpid()}")
        self._lock = threading.RLock()
        self._indexes: OrderedDict[str, LedgerIndex] = OrderedDict()
        self._lists: dict[str, _Lists] = {}
        self._manifests: dict[str, manifest.Manifest] = {}
        self._ciphers: dict[str, ThreadCipher] = {}

    # ------------------------------------------------------------------ writing

    def put(
        self,
        thread_id: str,
        ns: str,
        checkpoint: Mapping[str, Any],
        metadata: Mapping[str, Any],
        new_versions: Mapping[str, Any],
        parent_id: str | None,
    ) -> None:
        """Append checkpoint `checkpoint` (its whole `channel_values`, as LangGraph passes it)."""
        with self._lock:
            live = self._live(thread_id, ns)
            name = LedgerName(thread_id, ns, live.generation)
            self._put(
                name, self._cipher(str(live.key)), checkpoint, metadata, new_versions, parent_id
            )

    def _put(
        self,
        name: LedgerName,
        cipher: ThreadCipher,
        checkpoint: Mapping[str, Any],
        metadata: Mapping[str, Any],
        new_versions: Mapping[str, Any],
        parent_id: str | None,
    ) -> None:
        extra = {
            k: v
            for k, v in checkpoint.items()
            if k not in ("v", "id", "ts", "channel_values", "channel_versions")
            and k not in ("versions_seen", "updated_channels")
        }
        full = {
            "id": checkpoint["id"],
            "parent": parent_id,
            "ts": checkpoint["ts"],
            "v": checkpoint.get("v", 1),
            "versions": dict(checkpoint["channel_versions"]),
            "seen": {k: dict(v) for k, v in checkpoint["versions_seen"].items()},
            "updated": checkpoint.get("updated_channels"),
            "meta": cipher.seal(self.serde.dumps_typed(dict(metadata))),
            "extra": cipher.seal(self.serde.dumps_typed(extra)) if extra else None,
        }
        lists: dict[str, list[Typed]] = {}

        def build(
            prev: dict[str, Any], index: LedgerIndex
        ) -> tuple[dict[str, FieldChange], dict[str, Any]]:
            lists.clear()
            last = index.headers.get(index.last_checkpoint_step)
            before = last["versions"] if last is not None else {}
            cached = self._lists.get(name.ledger_id)
            fresh = cached is not None and cached.step == index.last_checkpoint_step
            known = cached.items if cached is not None and fresh else {}
            header = compress(full, last)
            return checkpoint_changes(
                self.serde, cipher, header, checkpoint, new_versions, prev, before, known, lists
            )

        record = self._append(name, build)
        self._lists[name.ledger_id] = _Lists(record.step, dict(lists))

    def put_writes(
        self,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        writes: Sequence[tuple[int, str, Any]],
        task_id: str,
        task_path: str,
        relaxed: bool = False,
    ) -> None:
        """Append one task's writes `(idx, channel, value)` for checkpoint `checkpoint_id`.
        A write whose (task, idx) is already stored is skipped, except the special channels
        (negative idx: error, interrupt, resume...), whose later value wins on read."""
        with self._lock:
            live = self._live(thread_id, ns)
            name = LedgerName(thread_id, ns, live.generation)
            cipher = self._cipher(str(live.key))
            self._put_writes(
                name, cipher, checkpoint_id, writes, task_id, task_path, relaxed=relaxed
            )

    def _put_writes(
        self,
        name: LedgerName,
        cipher: ThreadCipher,
        checkpoint_id: str,
        writes: Sequence[tuple[int, str, Any]],
        task_id: str,
        task_path: str,
        relaxed: bool = False,
    ) -> None:
        def build(
            prev: dict[str, Any], index: LedgerIndex
        ) -> tuple[dict[str, FieldChange], dict[str, Any]]:
            fresh = [
                (idx, channel, value)
                for idx, channel, value in writes
                if idx < 0 or not index.has_write(checkpoint_id, task_id, idx)
            ]
            if not fresh:
                return {}, prev
            head: dict[str, Any] = (
                {} if checkpoint_id == index.latest_stored() else {"checkpoint_id": checkpoint_id}
            )
            head |= {
                "task_id": task_id,
                "task_path": task_path,
                "writes": [[idx, channel] for idx, channel, _ in fresh],
            }
            sealed = [cipher.seal(self.serde.dumps_typed(value)) for _, _, value in fresh]
            changes = {
                WRITE: FieldChange("set", head),
                WRITE_VALUES: FieldChange("set", sealed),
            }
            return changes, {**prev, WRITE: head, WRITE_VALUES: sealed}

        self._append(name, build, relaxed=relaxed)

    def delete_thread(self, thread_id: str) -> None:
        """Erase the live generation's values by destroying its data key, then make sure every
        erased generation's ledger threads end in a signed deletion record and have their
        stored values erased (so a call after a crash completes an earlier one's work). See
        docs/migrating-from-langgraph.md, "delete_thread"."""
        with self._lock:
            manifest.erase(self.store, thread_id, iso(self.clock.now()))
            self._close_erased(thread_id, "delete_thread")

    def _close_erased(self, thread_id: str, why: str) -> None:
        """Close every erased generation of a thread (idempotent)."""
        self._manifests.pop(thread_id, None)
        current, _ = manifest.read(self.store, thread_id)
        for erasure in current.erased:
            note = {"at": erasure.at, "generation": erasure.generation, "key_destroyed": True}
            for ns in erasure.namespaces:
                name = LedgerName(thread_id, ns, erasure.generation)
                self._close_generation(name, {**note, "by": why})

    def _close_generation(self, name: LedgerName, note: dict[str, Any]) -> None:
        """End an erased generation's chain with the deletion record, then erase the stored
        ciphertexts themselves (`erasure.erase`: values and salts destroyed, digests kept,
        offloaded chunks deleted, a signed erasure record written), all but the deletion note.
        Both steps are idempotent, so a call after a crash finishes the work."""
        index = self._index(name.ledger_id, sync=True)
        if index.next_step == 0:
            return
        if not index.deleted:

            def build(
                prev: dict[str, Any], index: LedgerIndex
            ) -> tuple[dict[str, FieldChange], dict[str, Any]]:
                return {DELETED: FieldChange("set", note)}, {**prev, DELETED: note}

            self._append(name, build, status="completed")
        rows = self.store.inner.list_checkpoints(name.ledger_id, newest_first=False)
        fields = {field for row in rows for field in row.changes} - {DELETED}
        erase(
            self.backend,
            name.ledger_id,
            reason=(
                f"LangGraph {note.get('by', 'delete_thread')} of {name.thread_id!r} "
                f"(generation {name.generation})"
            ),
            actor=self.actor,
            fields=sorted(fields),
            clock=self.clock,
            strict_fields=False,
        )
        self._lists.pop(name.ledger_id, None)
        self._indexes.pop(name.ledger_id, None)

    def copy_thread(self, source: str, target: str) -> None:
        """Re-write every checkpoint and write of `source`, namespace by namespace, in the
        order they were stored, onto `target` (sealed with the target's own key)."""
        with self._lock:
            current = self._manifest(source)
            if current is None or current.key is None:
                return
            cipher = self._cipher(current.key)
            for ns in current.namespaces:
                name = LedgerName(source, ns, current.generation)
                index = self._index(name.ledger_id, sync=True)
                for entry in self.reader.entries(name, index, cipher):
                    live = self._live(target, ns)
                    into = LedgerName(target, ns, live.generation)
                    self._put_entry(into, self._cipher(str(live.key)), entry)

    def _put_entry(
        self, name: LedgerName, cipher: ThreadCipher, entry: StoredCheckpoint | StoredWrites
    ) -> None:
        """Put again what `TupleReader.entries` read (a copy keeps the same changes: the
        channels the record changed are the ones given new versions)."""
        if isinstance(entry, StoredWrites):
            self._put_writes(
                name, cipher, entry.checkpoint_id, entry.writes, entry.task_id, entry.task_path
            )
            return
        got = entry.tuple
        versions = got.checkpoint["channel_versions"]
        new_versions = {c: versions[c] for c in entry.changed if c in versions}
        self._put(name, cipher, got.checkpoint, got.metadata, new_versions, got.parent_id)

    def prune(self, thread_ids: Sequence[str], strategy: str) -> None:
        """LangGraph's `prune`: `keep_latest` keeps each namespace's latest checkpoint (and its
        pending writes), `delete` deletes the threads (`delete_thread`)."""
        if strategy not in ("keep_latest", "delete"):
            raise InvalidInput(
                f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'",
                field="strategy",
            )
        for thread_id in thread_ids:
            if strategy == "delete":
                self.delete_thread(str(thread_id))
                continue
            with self._lock:
                latest = {
                    ns: index.latest() for ns, index in self._generation(str(thread_id)).items()
                }
                self._rewrite(str(thread_id), _only(latest), "prune(keep_latest)")

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """LangGraph's `delete_for_runs`: every checkpoint whose metadata names one of
        `run_ids` (in any thread and namespace of the store) goes, with its pending writes."""
        runs = {str(r) for r in run_ids}
        if not runs:
            return
        with self._lock:
            for thread_id in self._thread_ids():
                self._rewrite(
                    thread_id,
                    lambda ns, got: got.metadata.get("run_id") not in runs,
                    "delete_for_runs",
                )

    def _generation(self, thread_id: str) -> dict[str, LedgerIndex]:
        """The live generation's index of each namespace of a thread."""
        out: dict[str, LedgerIndex] = {}
        current = self._manifest(thread_id)
        for ns in current.namespaces if current is not None else []:
            found = self._open(thread_id, ns)
            if found is not None:
                out[ns] = found[1]
        return out

    def _rewrite(self, thread_id: str, keep: Callable[[str, StoredTuple], bool], why: str) -> None:
        """Remove the checkpoints `keep` refuses (and their writes) from a thread, in the only
        way an append-only, hash-chained ledger can: what is kept is written again, in stored
        order, into a staged generation with a new key; one compare-and-set makes it live and
        destroys the old generation's key; the old chains then end in a signed deletion record
        and their values are erased (`_close_generation`), so every chain still verifies.
        Nothing is written when `keep` keeps everything."""
        current = self._manifest(thread_id)
        if current is None or current.key is None:
            return
        cipher = self._cipher(current.key)
        kept: dict[str, list[StoredCheckpoint | StoredWrites]] = {}
        dropped = False
        for ns in current.namespaces:
            found = self._open(thread_id, ns)
            if found is None:
                continue
            name, index, _ = found
            stored = list(self.reader.entries(name, index, cipher))
            live = {
                e.tuple.checkpoint["id"]
                for e in stored
                if isinstance(e, StoredCheckpoint) and keep(ns, e.tuple)
            }
            dropped = dropped or len(live) < len(index.checkpoints)
            # A write may be stored before its checkpoint (LangGraph puts them concurrently);
            # one for a checkpoint never stored is kept.
            kept[ns] = [
                e
                for e in stored
                if (
                    e.tuple.checkpoint["id"] if isinstance(e, StoredCheckpoint) else e.checkpoint_id
                )
                in live
                or (isinstance(e, StoredWrites) and e.checkpoint_id not in index.checkpoints)
            ]
        if not dropped:
            return
        at = iso(self.clock.now())
        _, staged = manifest.stage(self.store, thread_id, at)
        staged_cipher = self._cipher(staged.key)
        for ns, entries in kept.items():
            name = LedgerName(thread_id, ns, staged.generation)
            for entry in entries:
                self._put_entry(name, staged_cipher, entry)
        namespaces = [ns for ns, entries in kept.items() if entries]
        manifest.switch(self.store, thread_id, staged, current.generation, namespaces, at)
        self._close_erased(thread_id, why)

    # ------------------------------------------------------------------ reading

    def get(self, thread_id: str, ns: str, checkpoint_id: str | None) -> StoredTuple | None:
        with self._lock:
            found = self._open(thread_id, ns)
            if found is None:
                return None
            name, index, cipher = found
            wanted = checkpoint_id or index.latest()
            step = index.checkpoints.get(wanted) if wanted is not None else None
            if step is None:
                return None
            return self.reader.tuples(name, index, cipher, [step])[0]

    def find(
        self,
        thread_id: str | None,
        ns: str | None,
        *,
        checkpoint_id: str | None = None,
        filter: Mapping[str, Any] | None = None,
        before: str | None = None,
        limit: int | None = None,
    ) -> Iterator[StoredTuple]:
        """Checkpoints newest first (by id), across namespaces when `ns` is None and across
        every LangGraph thread of the store when `thread_id` is None."""
        with self._lock:
            chosen: list[tuple[str, LedgerName, LedgerIndex, ThreadCipher, int]] = []
            for tid in [thread_id] if thread_id is not None else self._thread_ids():
                current = self._manifest(tid)
                if current is None or current.key is None:
                    continue
                for space in current.namespaces if ns is None else [ns]:
                    found = self._open(tid, space)
                    if found is None:
                        continue
                    name, index, cipher = found
                    for cid, step in index.checkpoints.items():
                        if checkpoint_id is not None and cid != checkpoint_id:
                            continue
                        if before is not None and cid >= before:
                            continue
                        if filter and not self.reader.matches(index, cipher, step, filter, name):
                            continue
                        chosen.append((cid, name, index, cipher, step))
            chosen.sort(key=lambda c: c[0], reverse=True)
            if limit is not None:
                chosen = chosen[:limit]
            out = []
            for _, name, index, cipher, step in chosen:
                out.extend(self.reader.tuples(name, index, cipher, [step]))
        yield from out

    def _append(
        self,
        name: LedgerName,
        build: Callable[
            [dict[str, Any], LedgerIndex], tuple[dict[str, FieldChange], dict[str, Any]]
        ],
        *,
        status: Status = "running",
        relaxed: bool = False,
    ) -> Checkpoint:
        """Build the record on the head this process knows and append it; on a lost race,
        catch up with the chain and build again."""
        lid = name.ledger_id
        for attempt in range(_ATTEMPTS):
            index = self._index(lid, sync=attempt > 0)
            step = index.next_step
            prev = self.store.peek(lid, step - 1) or self.store.get_checkpoint(lid, step - 1)
            changed, values = build(prev.values if prev is not None else {}, index)
            if not changed and prev is not None:
                return prev
            record = self.sealer.seal(
                thread_id=lid,
                step=step,
                source="input" if step == 0 else "node",
                values=values,
                next_tasks=[],
                status=status,
                actor=self.actor,
                changed=changed,
                previous=Base.of(prev) if prev is not None else None,
            )
            count = len(index.checkpoints) + (HEADER in changed)
            sign = status != "running" or (
                HEADER in changed and self.sign_every > 0 and count % self.sign_every == 0
            )
            try:
                # One transaction on the embedded store (one fsync for the record, the thread
                # head and the signature); elsewhere the order alone is safe: a head or a
                # signature missing after a crash is what `verify` reports and `sign` repairs.
                with self.backend.relaxed() if relaxed else self.backend.atomic():
                    self.store.append_checkpoint(record)
                    if step == 0 or status != "running":
                        sync_thread(self.store, record, self.clock)
                    if sign:
                        self._sign(record)
            except StepConflict:
                continue
            index.add(record, self.backend.payloads)
            return record
        raise StepConflict(lid, self._index(lid).next_step)

    def _sign(self, record: Checkpoint) -> None:
        """Sign the head; a signing failure (key file unreadable, KMS down) is logged and left
        to `durable-graph sign`, as the engine does."""
        if self.backend.signer is None:
            return
        try:
            sign_head(self.store, self.backend.signer, record, self.clock)
        except Exception:
            log.exception("could not sign the chain head", extra={"thread_id": record.thread_id})

    def _index(self, lid: str, *, sync: bool = False) -> LedgerIndex:
        index = self._indexes.get(lid)
        if index is None:
            index = self._indexes[lid] = LedgerIndex()
            sync = True
        self._indexes.move_to_end(lid)
        while len(self._indexes) > CACHE_THREADS:
            dropped, _ = self._indexes.popitem(last=False)
            self._lists.pop(dropped, None)
        if sync:
            head = self.store.inner.head_checkpoint(lid)
            missing = head.step + 1 - index.next_step if head is not None else 0
            if missing > 0:
                rows = self.store.inner.list_checkpoints(lid, newest_first=True, limit=missing)
                for row in reversed(rows):
                    index.add(row, self.backend.payloads)
        return index

    def _cipher(self, key: str) -> ThreadCipher:
        cipher = self._ciphers.get(key)
        if cipher is None:
            if len(self._ciphers) >= CACHE_THREADS:
                self._ciphers.clear()
            cipher = self._ciphers[key] = ThreadCipher(key)
        return cipher

    def _manifest(self, thread_id: str) -> manifest.Manifest | None:
        cached = self._manifests.get(thread_id)
        if cached is None:
            found, version = manifest.read(self.store, thread_id)
            if version is None:
                return None
            cached = self._manifests[thread_id] = found
        return cached

    def _live(self, thread_id: str, ns: str) -> manifest.Manifest:
        cached = self._manifests.get(thread_id)
        if cached is not None and cached.key is not None and ns in cached.namespaces:
            name = LedgerName(thread_id, ns, cached.generation)
            deleted = self._index(name.ledger_id).deleted  # by another saver, since cached
            if not deleted:
                return cached
        fresh = self._manifests[thread_id] = manifest.live(self.store, thread_id, ns)
        return fresh

    def _open(self, thread_id: str, ns: str) -> tuple[LedgerName, LedgerIndex, ThreadCipher] | None:
        """The live ledger thread of (thread, ns), its index caught up with the store."""
        for _ in range(2):
            current = self._manifest(thread_id)
            if current is None or current.key is None or ns not in current.namespaces:
                return None
            name = LedgerName(thread_id, ns, current.generation)
            index = self._index(name.ledger_id, sync=True)
            if not index.deleted:
                return name, index, self._cipher(current.key)
            self._manifests.pop(thread_id, None)  # deleted elsewhere: read the manifest again
        return None

    def _thread_ids(self) -> list[str]:
        ids = []
        for record in self.store.list_threads(limit=1_000_000):
            if record.graph.name != GRAPH.name:
                continue
            name = LedgerName.parse(record.thread_id)
            if name.thread_id not in ids:
                ids.append(name.thread_id)
        return ids


def _only(latest: Mapping[str, str | None]) -> Callable[[str, StoredTuple], bool]:
    """Keep, in each namespace, only the checkpoint `latest` names."""
    return lambda ns, got: got.checkpoint["id"] == latest.get(ns)


__all__ = ["GRAPH", "LangGraphLedger", "Serde", "StoredTuple"]
