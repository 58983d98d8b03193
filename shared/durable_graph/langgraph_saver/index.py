"""What a saver must find without materialising any state: which step holds which LangGraph
checkpoint, which steps hold the pending writes of a checkpoint, and whether the chain ends in a
deletion. Built by reading the stored rows of a ledger thread once and kept up to date by reading
only the rows appended since (the chain is append-only, so an index never goes stale backwards).

A ledger thread written by the saver holds three kinds of record (fields of the ledger state):

- a checkpoint: `$checkpoint` is set to its header (ids, versions, sealed metadata; stored as a
  delta on the previous checkpoint's header, `header.py`) and each
  LangGraph channel whose value changed is set, appended to (`add`) or removed;
- pending writes: `$write` (checkpoint id unless it is the last checkpoint stored, task id and
  path, write indexes and channels) and
  `$write_values` (the sealed values) are set;
- a deletion, the last record of a generation: `$deleted`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from durable_graph.checkpoint import Change, Checkpoint
from durable_graph.encryption import chunk_value, is_sealed
from durable_graph.errors import CorruptRecord
from durable_graph.langgraph_saver.header import expand
from durable_graph.ports.payload_store import PayloadStore
from durable_graph.sealed_payloads import sealed_chunk

HEADER = "$checkpoint"
WRITE = "$write"
WRITE_VALUES = "$write_values"
DELETED = "$deleted"


def channel_field(channel: str) -> str:
    """The state field of a channel: names starting with '$' are the saver's own, so a channel
    that starts with one gets a second."""
    return f"${channel}" if channel.startswith("$") else channel


def field_channel(name: str) -> str | None:
    """The channel of a state field, or None for the saver's own fields."""
    if name.startswith("$$"):
        return name[1:]
    return None if name.startswith("$") else name


def change_value(row: Checkpoint, name: str, change: Change, payloads: PayloadStore) -> Any:
    """The value of one change of a stored row, fetched from the payload store when offloaded,
    opened with the thread's data key when sealed (encryption at rest on)."""
    if change.e is not None or (change.ref is not None and is_sealed(change.ref)):
        return chunk_value(sealed_chunk(row.thread_id, change, payloads))
    if change.ref is None:
        return change.v
    if change.ref.sha256 != change.d:
        raise CorruptRecord(row.thread_id, row.step, f"chunk of {name!r} is not the one hashed")
    chunk = json.loads(payloads.get(change.ref))
    return chunk.get("v") if isinstance(chunk, dict) else None


@dataclass
class WriteSet:
    """One `put_writes` call as the index keeps it (values are read on demand)."""

    step: int
    task_id: str
    task_path: str
    writes: list[tuple[int, str]]  # (idx, channel), parallel to the record's `$write_values`


@dataclass
class LedgerIndex:
    next_step: int = 0
    head_hash: str = ""
    checkpoints: dict[str, int] = field(default_factory=dict)  # checkpoint id -> step
    headers: dict[int, dict[str, Any]] = field(default_factory=dict)  # step -> header
    writes: dict[str, list[WriteSet]] = field(default_factory=dict)  # checkpoint id -> writes
    last_checkpoint_step: int = -1
    deleted: bool = False

    def add(self, row: Checkpoint, payloads: PayloadStore) -> None:
        """Take in the next stored row (rows arrive oldest first, each once)."""
        # Changes that remove a field carry no value, nor do erased ones (no salt, no value,
        # no chunk: `erasure.py`): the records of a deleted thread after its erasure.
        # Only a `set` is news: a `keep` re-states a field unchanged for 64 steps (`sealing.py`),
        # so a header or write kept that way is not a new checkpoint or write.
        changes = {
            k: c
            for k, c in row.changes.items()
            if c.op == "set" and (c.s or c.e or c.ref or k == DELETED)
        }
        if HEADER in changes:
            stored = change_value(row, HEADER, changes[HEADER], payloads)
            header = expand(stored, self.headers.get(self.last_checkpoint_step))
            self.checkpoints[header["id"]] = row.step
            self.headers[row.step] = header
            self.last_checkpoint_step = row.step
        if WRITE in changes:
            write = change_value(row, WRITE, changes[WRITE], payloads)
            # Left out when it is the checkpoint just before (what a write almost always is for).
            checkpoint_id = write.get("checkpoint_id") or self.latest_stored()
            self.writes.setdefault(str(checkpoint_id), []).append(
                WriteSet(
                    step=row.step,
                    task_id=write["task_id"],
                    task_path=write["task_path"],
                    writes=[(int(i), str(c)) for i, c in write["writes"]],
                )
            )
        if DELETED in changes:
            self.deleted = True
        self.next_step = row.step + 1
        self.head_hash = row.hash

    def has_write(self, checkpoint_id: str, task_id: str, idx: int) -> bool:
        return any(
            ws.task_id == task_id and any(i == idx for i, _ in ws.writes)
            for ws in self.writes.get(checkpoint_id, [])
        )

    def latest_stored(self) -> str | None:
        """The id of the last checkpoint in the chain (in the order they were stored)."""
        header = self.headers.get(self.last_checkpoint_step)
        return None if header is None else str(header["id"])

    def latest(self) -> str | None:
        """The checkpoint id LangGraph calls latest: the greatest (ids are time-ordered)."""
        return max(self.checkpoints, default=None)


__all__ = [
    "DELETED",
    "HEADER",
    "WRITE",
    "WRITE_VALUES",
    "LedgerIndex",
    "WriteSet",
    "change_value",
    "channel_field",
    "field_channel",
]
