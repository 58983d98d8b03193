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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from durable_graph.clock import iso
from durable_graph.erasure import erase
from durable_graph.errors import InvalidInput
from durable_graph.langgraph_saver import manifest
from durable_graph.langgraph_saver.cipher import ThreadCipher
from durable_graph.langgraph_saver.diff import Serde
from durable_graph.langgraph_saver.index import DELETED, LedgerIndex
from durable_graph.langgraph_saver.ledger_chains import GRAPH
from durable_graph.langgraph_saver.ledger_entries import LedgerEntries
from durable_graph.langgraph_saver.names import LedgerName
from durable_graph.langgraph_saver.reads import StoredCheckpoint, StoredTuple, StoredWrites
from durable_graph.state import FieldChange


class LangGraphLedger(LedgerEntries):
    """Writes and reads LangGraph threads on one `Backend` (thread-safe within a process; other
    processes are seen through the store, and a lost append is retried on the new head). Its
    checkpoints and writes are `ledger_entries.py`, the chains they go on `ledger_chains.py`;
    here, what removes them: `delete_thread`, `prune`, `delete_for_runs`, and `copy_thread`."""

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


def _only(latest: Mapping[str, str | None]) -> Callable[[str, StoredTuple], bool]:
    """Keep, in each namespace, only the checkpoint `latest` names."""
    return lambda ns, got: got.checkpoint["id"] == latest.get(ns)


__all__ = ["GRAPH", "LangGraphLedger", "Serde", "StoredTuple"]
