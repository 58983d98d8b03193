"""Reading records of format 1, the format before `docs/record-format.md`'s format 2.

Format-1 records hold the whole state in `values` (strings over 8 KB as `$payload` refs), and the
earlier `DeltaStore` stored them as `$delta` documents against the previous step. Their hash
covers the whole logical record. Stores written then stay readable and verifiable: this reader
rebuilds their full `values` exactly as `DeltaStore` did (the hash check then proves it), and a
thread that continues under format 2 starts its first format-2 record by setting every field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from durable_graph.backends.delta import DeltaStore, start_of
from durable_graph.checkpoint import Checkpoint
from durable_graph.ports import CheckpointStore

Finish = Callable[[Checkpoint], Checkpoint]


class LegacyReader:
    """Rebuilds format-1 records from the rows an inner store holds."""

    def __init__(self, inner: CheckpointStore) -> None:
        self.inner = inner
        self._delta = DeltaStore(inner)

    def decode_one(self, row: Checkpoint, finish: Finish) -> Checkpoint:
        return finish(self._delta.decode_one(row))

    def decode(self, rows: Sequence[Checkpoint], finish: Finish) -> list[Checkpoint]:
        """Consecutive format-1 rows, oldest first, rebuilt (earlier rows read as needed)."""
        if not rows:
            return []
        first = rows[0]
        start = start_of(first)
        earlier: list[Checkpoint] = []
        if start < first.step:
            earlier = self.inner.list_checkpoints(
                first.thread_id, newest_first=True, before_step=first.step, limit=first.step - start
            )
            earlier.reverse()
        decoded = self._delta.fold([*earlier, *rows], keep=len(rows))
        return [finish(r) for r in decoded]


__all__ = ["LegacyReader"]
