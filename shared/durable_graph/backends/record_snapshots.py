"""Where a step's row points its cold readers (`RecordStore.append_checkpoint`): at the latest
snapshot of the thread's state, with a new snapshot written first once a cold read would fold
`SNAPSHOT_EVERY` rows or more (`snapshots.py`); and the snapshot of a step whose append lost,
deleted unless the winning row names it.
"""

from __future__ import annotations

from durable_graph.backends import snapshots
from durable_graph.backends.record_state import StateCache
from durable_graph.backends.segment_runs import Retirements, thread_salt
from durable_graph.backends.snapshots import Snapshot, write_snapshot
from durable_graph.checkpoint import Checkpoint
from durable_graph.disposal import Disposal
from durable_graph.keys import Keyring
from durable_graph.ports.payload_store import PayloadStore
from durable_graph.sealed_payloads import payloads_for


def with_snapshot(
    cache: StateCache, payloads: PayloadStore, keys: Keyring | None, checkpoint: Checkpoint
) -> tuple[Checkpoint, Snapshot | None]:
    """The row with its read hints pointing at the latest snapshot, and a new snapshot
    written first when a cold read of this row would otherwise fold `SNAPSHOT_EVERY` rows
    or more. Needs the previous step at hand (the writer just read or wrote it); without
    it the row keeps the sealer's anchor, which is correct, only slower to read."""
    cached = cache.get(checkpoint.thread_id)
    if (
        cached is None
        or cached.step != checkpoint.step - 1
        or cached.hash != checkpoint.prev_hash
        or checkpoint.values.keys() != checkpoint.digests.keys()
    ):
        return checkpoint, None
    latest = cached.snapshot
    anchor = checkpoint.anchor
    if latest is not None and anchor < latest.step:
        anchor = latest.step
    if checkpoint.step - anchor < snapshots.SNAPSHOT_EVERY:  # read here: tests lower it
        if anchor != checkpoint.anchor:  # the sealer saw a record older than the cache's
            checkpoint = checkpoint.model_copy(update={"anchor": anchor})
        return checkpoint, latest
    if keys is not None:
        tid = checkpoint.thread_id
        payloads = payloads_for(payloads, tid, keys.ensure(tid))
    snapshot = write_snapshot(
        payloads,
        step=checkpoint.step,
        values=checkpoint.values,
        digests=checkpoint.digests,
        anchors=checkpoint.anchors,
        chunks=checkpoint.chunks,
        previous=latest,
        salt=thread_salt(checkpoint.thread_id),
    )
    return checkpoint.model_copy(update={"anchor": checkpoint.step, "snap": snapshot.ref}), (
        snapshot
    )


def drop_lost_snapshot(
    retirements: Retirements, disposal: Disposal, thread_id: str, snapshot: Snapshot, winner: object
) -> None:
    """The snapshot document written for a step whose append lost, deleted unless the
    winning row names it (our own earlier write of the same record). It holds that
    record's field digests, so no other row can name it. What it retired stays (the rows
    that won name the snapshots that still hold those segments), and so do the segments
    it wrote: they are addressed by the thread's items, which the winner's or a later
    snapshot may hold alike (storage, never correctness)."""
    if not isinstance(winner, Checkpoint) or (
        winner.snap is not None and winner.snap.sha256 == snapshot.ref.sha256
    ):
        return
    retirements.retire(
        disposal, [snapshot.ref], thread_id=thread_id, step=snapshot.step, kind="lost"
    )


__all__ = ["drop_lost_snapshot", "with_snapshot"]
