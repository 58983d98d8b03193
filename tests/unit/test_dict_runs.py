"""A dict's snapshot segments merged in runs at the real thresholds (`segment_runs.dict_runs`,
`backends/snapshots.py`): the snapshots of a dict grown a key a step for 2,000 steps (one old
key replaced every step) are written as the `RecordStore` writes them, every
`SNAPSHOT_EVERY` steps, each extending the one before; the newest is read back from a few
segments, not one per snapshot, and gives the dict the writer held, key for key and in
order; a dict entry of the release before dict runs reads as it did and is written whole once.
The engine path, on every backend, is `tests/conformance/test_merged_dict_segments.py`."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from durable_graph.backends.memory import MemoryPayloadStore
from durable_graph.backends.segment_runs import MERGE_FANIN, level_of
from durable_graph.backends.snapshot_values import snapshot_values
from durable_graph.backends.snapshots import SNAPSHOT_EVERY, Snapshot, write_snapshot
from tests.conformance.test_merged_segments import Counting

STEPS = 2_000


def grow(steps: int) -> tuple[dict[str, Any], Snapshot, MemoryPayloadStore]:
    """The newest of the snapshots written on the way through `steps` steps, and the dict
    it was written from."""
    payloads = MemoryPayloadStore()
    facts: dict[str, Any] = {}
    newest: Snapshot | None = None
    snapped: dict[str, Any] = {}
    for step in range(steps + 1):
        facts = {**facts, f"fact-{step:06d}": f"fact number {step} " + "x" * 100}
        if step:
            facts["fact-000000"] = f"revised at step {step}"
        if step and step % SNAPSHOT_EVERY == 0:
            newest = write_snapshot(
                payloads,
                step=step,
                values={"facts": facts},
                digests={"facts": "0" * 64},
                anchors={"facts": 0},
                chunks={},
                previous=newest,
                salt="0" * 32,
            )
            snapped = facts
    assert newest is not None
    return snapped, newest, payloads


def test_a_dict_grown_for_2000_steps_reads_from_a_few_merged_segments() -> None:
    """Given 2,000 steps (31 snapshots), then the newest snapshot's dict is at most
    MERGE_FANIN - 1 segments per level (computed: 14; one per snapshot would be 31), read
    back in that many objects equal to the writer's dict, in its key order."""
    facts, newest, payloads = grow(STEPS)
    snapshots = STEPS // SNAPSHOT_EVERY
    bound = (MERGE_FANIN - 1) * (1 + int(math.log(snapshots, MERGE_FANIN)))
    assert bound < snapshots
    counting = Counting(payloads)
    values = snapshot_values(counting, newest)
    assert counting.objects <= bound, (counting.objects, bound)
    assert len(newest.fields["facts"]["dsegs"]) == counting.objects
    assert list(values["facts"].items()) == list(facts.items())


def test_a_dict_kept_by_the_release_before_dict_runs_is_written_whole_once() -> None:
    """Given the newest snapshot's dict entry as the release before dict runs kept it (patch
    segments, no levels or counts), then it reads as it did, and the next snapshot keeps the
    dict as one segment of all its keys at the level of their count, then merges from there."""
    facts, newest, payloads = grow(10 * SNAPSHOT_EVERY)
    entry = newest.fields["facts"]
    old_entry = {key: entry[key] for key in ("d", "a", "dsegs", "n")}
    before = replace(newest, fields={"facts": old_entry})
    assert snapshot_values(payloads, before)["facts"] == facts
    grown = {**facts, "fact-new": "one more"}
    after = write_snapshot(
        payloads,
        step=newest.step + SNAPSHOT_EVERY,
        values={"facts": grown},
        digests={"facts": "0" * 64},
        anchors={"facts": 0},
        chunks={},
        previous=before,
        salt="0" * 32,
    )
    written = after.fields["facts"]
    assert written["cnt"] == [len(grown)] and len(written["dsegs"]) == 1
    assert written["lv"] == [level_of(len(grown), MERGE_FANIN)]
    assert list(snapshot_values(payloads, after)["facts"].items()) == list(grown.items())
