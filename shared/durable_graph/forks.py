"""Which threads were forked from a thread: an index the fork writes, so that lineage is a
lookup, exact for any number of threads (no scan of the thread list).

Layout, in the origin thread's own records (`CheckpointStore.get_record`/`put_record`, so every
store keeps it with no method of its own): keys `forks#0`, `forks#1`, ..., each holding up to
`FORKS_PER_RECORD` entries `{"thread_id", "step"}` in the order they were noted. A fork appends
to the last record with a compare-and-set on its version (a concurrent fork makes it re-read and
retry), or creates the next one once the last is full; 200 entries of thread ids up to 200
characters stay far below DynamoDB's 400 KB item limit.

The entry is written *before* the fork's step 0 is committed (`Engine.fork`), so no committed
fork is ever missing from the index, whatever process dies where. The other order's failure is
harmless and filtered out on read: an entry whose fork was never committed (a crash between the
two writes, or a thread id that was already taken) has no thread record naming this origin,
and `forks_of` keeps only the entries whose thread record does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from durable_graph.errors import RecordConflict
from durable_graph.ports.checkpoint_store import CheckpointStore

FORKS_PREFIX = "forks#"
FORKS_PER_RECORD = 200
_BATCH = 16  # index records read per batched request


@dataclass(frozen=True)
class Fork:
    thread_id: str
    step: int  # the origin's step it branched from


def _key(index: int) -> str:
    return f"{FORKS_PREFIX}{index}"


def note_fork(store: CheckpointStore, origin: str, step: int, fork: str) -> None:
    """Add `fork` (from `origin` at `step`) to the origin's index; idempotent."""
    entry = {"thread_id": fork, "step": step}
    index = 0
    while True:
        record = store.get_record(origin, _key(index))
        forks: list[dict[str, Any]] = list(record.value["forks"]) if record else []
        if entry in forks:
            return  # noted already (a retried fork)
        if len(forks) >= FORKS_PER_RECORD:
            index += 1
            continue
        try:
            # Create the record (None: it must not exist yet) or replace exactly the version
            # read: a concurrent fork's append makes this one re-read and append after it.
            store.put_record(
                origin,
                _key(index),
                {"forks": [*forks, entry]},
                expected_version=record.version if record else None,
            )
            return
        except RecordConflict:
            continue


def noted_forks(store: CheckpointStore, origin: str) -> list[Fork]:
    """Every entry of the origin's index, in the order noted: `_BATCH` records per read."""
    entries: list[Fork] = []
    start = 0
    while True:
        keys = [_key(i) for i in range(start, start + _BATCH)]
        found = store.get_records(origin, keys)
        for key in keys:
            if key not in found:
                return entries
            entries += [Fork(e["thread_id"], int(e["step"])) for e in found[key].value["forks"]]
        start += _BATCH


def forks_of(
    store: CheckpointStore, origin: str, limit: int | None = None
) -> tuple[list[Fork], int]:
    """The threads forked from `origin` (each confirmed by its thread record), the first
    `limit` of them, and how many the index notes in all (forks never committed included)."""
    noted = noted_forks(store, origin)
    confirmed: list[Fork] = []
    for fork in noted:
        if limit is not None and len(confirmed) >= limit:
            break
        thread = store.get_thread(fork.thread_id)
        if thread is not None and thread.origin is not None and thread.origin.thread_id == origin:
            confirmed.append(fork)
    return confirmed, len(noted)


__all__ = ["FORKS_PER_RECORD", "FORKS_PREFIX", "Fork", "forks_of", "note_fork", "noted_forks"]
