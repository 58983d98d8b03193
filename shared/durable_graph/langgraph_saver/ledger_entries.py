"""Writing and reading LangGraph checkpoints and pending writes as ledger records: `put` (the
channels that changed, a list that only grew as an `add`), `put_writes` (one task's writes),
`get` and `find` (`reads.TupleReader` turns records back into LangGraph's tuples)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from durable_graph.langgraph_saver.cipher import ThreadCipher, Typed
from durable_graph.langgraph_saver.diff import checkpoint_changes
from durable_graph.langgraph_saver.header import compress
from durable_graph.langgraph_saver.index import WRITE, WRITE_VALUES, LedgerIndex
from durable_graph.langgraph_saver.ledger_chains import LedgerChains, ListsAt
from durable_graph.langgraph_saver.names import LedgerName
from durable_graph.langgraph_saver.reads import StoredTuple
from durable_graph.state import FieldChange


class LedgerEntries(LedgerChains):
    """A `LangGraphLedger`'s checkpoints and writes, as `BaseCheckpointSaver` puts and reads
    them."""

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
        self._lists[name.ledger_id] = ListsAt(record.step, dict(lists))

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
