"""Reading LangGraph checkpoints back from the ledger: a checkpoint's channels are the ledger's
state at its step (or at the head, when no checkpoint came after it: the state this process
usually has at hand), its header comes from the index, its pending writes from the rows the
index names, read as one range."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from durable_graph.backends.records import RecordStore
from durable_graph.langgraph_saver.cipher import ThreadCipher
from durable_graph.langgraph_saver.diff import Serde
from durable_graph.langgraph_saver.index import (
    WRITE_VALUES,
    LedgerIndex,
    WriteSet,
    change_value,
    field_channel,
)
from durable_graph.langgraph_saver.names import LedgerName
from durable_graph.ports.payload_store import PayloadStore


@dataclass(frozen=True)
class StoredTuple:
    """A checkpoint as LangGraph's `CheckpointTuple` needs it, in plain values."""

    thread_id: str
    ns: str
    checkpoint: dict[str, Any]
    metadata: dict[str, Any]
    parent_id: str | None
    pending_writes: list[tuple[str, str, Any]]


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint of a generation, as `entries` yields it (pending writes come apart)."""

    step: int
    tuple: StoredTuple
    changed: list[str]  # the channels its record changed


@dataclass(frozen=True)
class StoredWrites:
    """One `put_writes` of a generation, as `entries` yields it."""

    step: int
    checkpoint_id: str
    task_id: str
    task_path: str
    writes: list[tuple[int, str, Any]]


class TupleReader:
    def __init__(self, store: RecordStore, payloads: PayloadStore, serde: Serde) -> None:
        self.store = store
        self.payloads = payloads
        self.serde = serde

    def matches(
        self,
        index: LedgerIndex,
        cipher: ThreadCipher,
        step: int,
        filter: Mapping[str, Any],
        name: LedgerName,
    ) -> bool:
        meta = self.open_value(cipher, index.headers[step]["meta"], name.ledger_id, step)
        return all(meta.get(k) == v for k, v in filter.items())

    def tuples(
        self,
        name: LedgerName,
        index: LedgerIndex,
        cipher: ThreadCipher,
        steps: Sequence[int],
        *,
        with_writes: bool = True,
    ) -> list[StoredTuple]:
        lid = name.ledger_id
        out = []
        for step in steps:
            header = index.headers[step]
            # Only checkpoint records change channels: the latest checkpoint's channels are
            # the head's, which this process usually has at hand (no read).
            at = index.next_step - 1 if step == index.last_checkpoint_step else step
            record = self.store.peek(lid, at) or self.store.get_checkpoint(lid, at)
            assert record is not None, f"step {at} of {lid} is indexed but missing"
            channels = {}
            for field, value in record.values.items():
                channel = field_channel(field)
                if channel is not None:
                    channels[channel] = self.decode(cipher, value, lid, step)
            checkpoint: dict[str, Any] = {
                "v": header["v"],
                "id": header["id"],
                "ts": header["ts"],
                "channel_values": channels,
                # Copies: LangGraph updates the checkpoint it is handed in place, and the
                # index must keep what was stored.
                "channel_versions": dict(header["versions"]),
                "versions_seen": {node: dict(seen) for node, seen in header["seen"].items()},
                "updated_channels": header["updated"],
            }
            if header.get("extra"):
                checkpoint.update(self.open_value(cipher, header["extra"], lid, step))
            out.append(
                StoredTuple(
                    thread_id=name.thread_id,
                    ns=name.ns,
                    checkpoint=checkpoint,
                    metadata=self.open_value(cipher, header["meta"], lid, step),
                    parent_id=header["parent"],
                    pending_writes=(
                        self.pending(lid, index, cipher, header["id"]) if with_writes else []
                    ),
                )
            )
        return out

    def entries(
        self, name: LedgerName, index: LedgerIndex, cipher: ThreadCipher
    ) -> Iterator[StoredCheckpoint | StoredWrites]:
        """Every checkpoint and write of a ledger thread, decoded, in the order stored: what
        a copy or a rewrite puts again."""
        lid = name.ledger_id
        by_step = {ws.step: (cid, ws) for cid, sets in index.writes.items() for ws in sets}
        for step in range(index.next_step):
            if step in index.headers:
                got = self.tuples(name, index, cipher, [step], with_writes=False)[0]
                row = self.store.inner.get_checkpoint(lid, step)
                fields = row.changes if row is not None else {}
                changed = [c for c in map(field_channel, fields) if c is not None]
                yield StoredCheckpoint(step, got, changed)
            elif step in by_step:
                cid, ws = by_step[step]
                values = self.write_values(lid, cipher, [ws])[ws.step]
                writes = [(i, c, v) for (i, c), v in zip(ws.writes, values, strict=True)]
                yield StoredWrites(step, cid, ws.task_id, ws.task_path, writes)

    def pending(
        self, lid: str, index: LedgerIndex, cipher: ThreadCipher, checkpoint_id: str
    ) -> list[tuple[str, str, Any]]:
        sets = index.writes.get(checkpoint_id, [])
        if not sets:
            return []
        values = self.write_values(lid, cipher, sets)
        kept: dict[tuple[str, int], tuple[str, str, int, str, Any]] = {}
        for ws in sets:
            for (idx, channel), value in zip(ws.writes, values[ws.step], strict=True):
                key = (ws.task_id, idx)
                if idx >= 0 and key in kept:
                    continue  # a regular write is stored once; a special one is replaced
                kept[key] = (ws.task_path, ws.task_id, idx, channel, value)
        ordered = sorted(kept.values(), key=lambda w: (w[0], w[1], w[2]))
        return [(task_id, channel, value) for _, task_id, _, channel, value in ordered]

    def write_values(
        self, lid: str, cipher: ThreadCipher, sets: Sequence[WriteSet]
    ) -> dict[int, list[Any]]:
        """The decoded values of some `put_writes` records, read as one range of rows."""
        low, high = min(ws.step for ws in sets), max(ws.step for ws in sets)
        rows = self.store.inner.list_checkpoints(
            lid, newest_first=True, before_step=high + 1, limit=high - low + 1
        )
        wanted = {ws.step for ws in sets}
        payloads = self.payloads
        return {
            row.step: [
                self.open_value(cipher, sealed, lid, row.step)
                for sealed in change_value(row, WRITE_VALUES, row.changes[WRITE_VALUES], payloads)
            ]
            for row in rows
            if row.step in wanted
        }

    def decode(self, cipher: ThreadCipher, value: Any, lid: str, step: int) -> Any:
        if isinstance(value, list):
            return [self.open_value(cipher, item, lid, step) for item in value]
        return self.open_value(cipher, value, lid, step)

    def open_value(self, cipher: ThreadCipher, sealed: str, lid: str, step: int) -> Any:
        return self.serde.loads_typed(cipher.open(sealed, where=(lid, step)))

    # ------------------------------------------------------------------ plumbing


__all__ = ["StoredCheckpoint", "StoredTuple", "StoredWrites", "TupleReader"]
