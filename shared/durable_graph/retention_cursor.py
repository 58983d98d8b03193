"""Where the retention job got to: one compare-and-set record, so a pass over a big store can
span several invocations (the sweeper Lambda stops before its 300 s, a local run is killed) and
each continues where the last one stopped instead of starting over.

A *pass* reads every settled thread once, oldest update first, one status at a time
(`PASS_ORDER`), through the store's `page_threads` (the status index on DynamoDB). The record
(`retention#cursor` in the `__retention__` partition of the store's small records) holds the
status being read, the listing cursor after the last thread handled, when the pass started and
its totals so far. It is saved after every page and when a run stops early, so a run that dies
mid-page redoes at most that page: erasing a thread again is a no-op (`erasure.erase` writes
nothing when nothing is left, and finishes an interrupted erasure under its existing record).

Ordering by `(updated_at, thread_id)` makes a pass complete: a thread that settles or changes
status during the pass gets a newer `updated_at`, which sorts after the cursor, so this pass
still reaches it. Erasure does not touch the thread record, so an erased thread never moves.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from durable_graph.ports.checkpoint_store import CheckpointStore

RETENTION_NAMESPACE = "__retention__"  # the records' partition (not a thread)
CURSOR_KEY = "retention#cursor"
PASS_ORDER = ("completed", "failed")  # the settled statuses, in the order a pass reads them


class Totals(BaseModel):
    """Threads a pass (or one run) has read so far, by what became of them."""

    model_config = ConfigDict(extra="forbid")

    checked: int = 0  # settled threads read from the listing
    erased: int = 0  # an erasure record written (or an interrupted one finished)
    unchanged: int = 0  # nothing old enough, or erased already
    skipped: int = 0  # its graph has no retention policy (or cannot be imported)
    failed: int = 0  # an error (logged); retried by the next pass

    def add(self, other: Totals) -> Totals:
        return Totals(**{k: getattr(self, k) + getattr(other, k) for k in Totals.model_fields})


class Position(BaseModel):
    """The stored cursor record's value: where the pass in progress stands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str = PASS_ORDER[0]
    cursor: str | None = None  # `page_threads` cursor within `status`; None: from its start
    started_at: str | None = None  # None: no pass in progress (the next run starts one)
    totals: Totals = Totals()
    last_finished_at: str | None = None  # when the previous pass ended


def load(store: CheckpointStore) -> tuple[Position, int | None]:
    """The stored position and its version (None: no run ever saved one)."""
    record = store.get_record(RETENTION_NAMESPACE, CURSOR_KEY)
    if record is None:
        return Position(), None
    return Position.model_validate(record.value), record.version


def save(store: CheckpointStore, position: Position, version: int | None) -> int | None:
    """Store `position` iff the record is still at `version` (None: iff absent), so two runs
    at once cannot both move it: the one that loses stops (`RecordConflict`) and the other
    carries on. Returns the new version; raises `RecordConflict` when it lost."""
    # Create iff absent (version None) or replace iff no other run moved it since we read it.
    stored = store.put_record(
        RETENTION_NAMESPACE,
        CURSOR_KEY,
        position.model_dump(mode="json"),
        expected_version=version,
    )
    return stored.version


__all__ = [
    "CURSOR_KEY",
    "PASS_ORDER",
    "RETENTION_NAMESPACE",
    "Position",
    "Totals",
    "load",
    "save",
]
