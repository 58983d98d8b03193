"""A dict's snapshot segments merged in runs, on every backend (`segment_runs.dict_runs`,
`docs/record-format.md` §7): a thread whose dicts grow a key a step (one through a reducer,
with an old key replaced every step; one written back whole) is read cold from O(log n)
payload objects instead of one per snapshot; every step reads back as a plain fold of its rows
gives it; the thread verifies, in the store and as a bundle; a tampered or deleted merged
segment is named at its snapshot's step; a writer with nothing cached writes the dict whole
once and merges from there. Small thresholds as in `test_merged_segments.py` (a snapshot every
4 steps, dicts in segments from 4 keys, runs of 2 segments merged)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from durable_graph.backend import Backend
from durable_graph.backends import segment_runs
from durable_graph.backends.records import RecordStore
from durable_graph.backends.segment_payloads import pack
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.errors import CorruptRecord
from durable_graph.verification import verify_thread
from tests.big_state_graphs import dict_graph
from tests.conformance.test_merged_segments import (
    EVERY,
    FANIN,
    NO_LIMIT,
    cold,
    small_thresholds,
    snaps,
)

__all__ = ["small_thresholds"]  # the thresholds fixture, autouse here too

STEPS = 120
DICTS = ("facts", "index")


def segments_at_most(snapshots: int) -> int:
    """The most segments a dict kept in merged runs has after `snapshots` snapshots: at most
    `FANIN - 1` of each level, levels up to log_FANIN(snapshots)."""
    return (FANIN - 1) * (1 + int(math.log(snapshots, FANIN)))


def plain(backend: Backend, step: int) -> dict[str, Any]:
    """The state at `step` folded from step 0, without snapshots (what a read must equal)."""
    reader = RecordStore(backend.checkpoints.inner, backend.payloads)
    row = backend.checkpoints.inner.get_checkpoint("dict", step)
    assert row is not None
    return reader.fold.fold_rows([row], plain_from=0)[-1].values


def test_a_cold_read_of_growing_dicts_fetches_a_few_merged_segments(
    backend: Backend, clock: ManualClock
) -> None:
    """Given 120 steps that each add a key to two dicts (30 snapshots), then a cold head read
    fetches the snapshot and at most one segment per level of each dict (computed: 11
    objects, not 61), every step reads back cold as the plain fold of its rows gives it, and
    the thread verifies, also as a bundle."""
    dict_graph.with_backend(backend, clock=clock).invoke(
        {"limit": STEPS}, NO_LIMIT, thread_id="dict"
    )
    written = snaps(backend, "dict")
    assert len(written) == STEPS // EVERY
    bound = 1 + len(DICTS) * segments_at_most(len(written))
    assert bound < len(written)
    reader, counting = cold(backend)
    head = reader.head_checkpoint("dict")
    assert head is not None and len(head.values["facts"]) == STEPS
    assert head.values == plain(backend, head.step)
    assert counting.objects <= bound, (counting.objects, bound)
    latest = written[-1][1].fields
    assert all(len(latest[name]["dsegs"]) == len(latest[name]["lv"]) for name in DICTS)
    assert sum(len(latest[name]["dsegs"]) for name in DICTS) == counting.objects - 1
    for step in range(0, STEPS + 2, 7):
        record = cold(backend)[0].get_checkpoint("dict", step)
        assert record is not None and record.values == plain(backend, step), step
    assert verify_thread(backend, "dict").ok
    assert verify_bundle(build_bundle(backend, "dict")).ok


def test_a_tampered_merged_dict_segment_is_named_at_its_snapshots_step(
    backend: Backend, clock: ManualClock
) -> None:
    """Given the head's snapshot's biggest merged segment of `facts` altered (on a folder
    store: another patch under its name) or deleted (every store), then a cold read of the
    head is refused naming the snapshot's step; `verify`, which folds the changes themselves,
    still passes."""
    dict_graph.with_backend(backend, clock=clock).invoke({"limit": 40}, NO_LIMIT, thread_id="dict")
    step, latest = snaps(backend, "dict")[-1]
    entry = latest.fields["facts"]
    assert max(entry["lv"]) >= 2
    biggest = PayloadRef.model_validate(entry["dsegs"][entry["lv"].index(max(entry["lv"]))])
    folder = getattr(backend.payloads, "path_for", None)
    if folder is not None:
        folder(biggest.sha256).write_bytes(pack({"fact-000001": "forged"}))
        with pytest.raises(CorruptRecord) as refused:
            cold(backend)[0].head_checkpoint("dict")
        assert refused.value.step == step
    assert backend.payloads.delete(biggest) or folder is not None
    with pytest.raises(CorruptRecord) as refused:
        cold(backend)[0].head_checkpoint("dict")
    assert refused.value.step == step
    assert verify_thread(backend, "dict").ok


def test_a_new_writer_writes_the_dict_whole_once_then_merges(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a dict thread of 60 steps continued to 120 by a writer with nothing cached (a new
    process), then its first snapshot keeps each dict as one segment of all its keys, at the
    level of their count, later ones merge from there to a few segments, and every step reads
    back as the plain fold gives it."""
    app = dict_graph.with_backend(backend, clock=clock)
    app.invoke({"limit": 60}, NO_LIMIT, thread_id="dict")
    before = len(snaps(backend, "dict"))
    backend.checkpoints.forget()
    app.invoke({"limit": STEPS}, NO_LIMIT, thread_id="dict")
    written = snaps(backend, "dict")
    first = written[before][1].fields["facts"]
    assert first["cnt"] == [first["n"]]
    assert first["lv"] == [segment_runs.level_of(first["n"], FANIN)]
    assert len(written[-1][1].fields["facts"]["dsegs"]) <= segments_at_most(len(written)) + 1
    for step in (30, 60, 61, 62, 80, 100, STEPS + 1):
        record = cold(backend)[0].get_checkpoint("dict", step)
        assert record is not None and record.values == plain(backend, step), step
