"""A state that grows large, on every backend (`docs/record-format.md` §3, §12): a dict grown a
key a step is written as `merge` patches, so a step's row stays the size of what it added; the
thread still verifies (in the store and as an exported bundle), and a tampered patch is named
at its step."""

from __future__ import annotations

from durable_graph.backend import Backend
from durable_graph.backends.records import RecordStore
from durable_graph.backends.snapshots import read_snapshot
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.checkpoint import Change
from durable_graph.clock import ManualClock
from durable_graph.ledger import verify_chain
from durable_graph.verification import verify_thread
from tests.big_state_graphs import big_chat_graph, dict_graph

NO_LIMIT = {"recursion_limit": 1_000_000}


def cold(backend: Backend) -> RecordStore:
    return RecordStore(backend.checkpoints.inner, backend.payloads)


def test_a_growing_dict_costs_what_each_step_added(backend: Backend, clock: ManualClock) -> None:
    """Given 500 steps that each add a 200-byte key to a reducer dict and to a dict written
    back whole (and replace one old key), then from step 3 both are `merge` patches of the
    keys that changed, the stored row at step 500 is about the size of the row at step 10
    (the dicts are over 100 KB by then), snapshots hold them as segments of what changed, a
    cold reader rebuilds them equal, and the thread verifies."""
    app = dict_graph.with_backend(backend, clock=clock)
    values = app.invoke({"limit": 500}, NO_LIMIT, thread_id="dict")
    assert len(values["facts"]) == 500 and values["facts"]["fact-000000"] == "revised at turn 499"
    rows = backend.checkpoints.inner.list_checkpoints("dict", newest_first=False)
    assert [r.changes["facts"].op for r in rows[3:]] == ["merge"] * (len(rows) - 3)
    assert all(r.changes["index"].op == "merge" for r in rows[3:])
    patch = rows[300].changes["facts"]
    assert patch.ref is None and set(patch.v or {}) == {"fact-000299", "fact-000000"}
    early, late = len(rows[10].to_stored_json()), len(rows[500].to_stored_json())
    assert len(str(values["facts"])) > 100_000
    assert late < early * 1.2, (early, late)
    head = cold(backend).head_checkpoint("dict")
    assert head is not None and head.values == values
    warm = backend.checkpoints.get_checkpoint("dict", 250)
    assert cold(backend).get_checkpoint("dict", 250) == warm
    # Snapshots keep the dicts as segments of the keys changed since the one before: the
    # latest is about a kilobyte, not the dicts' 100 KB, and a cold read from it is exact.
    snapped = [r for r in rows if r.snap is not None]
    assert len(snapped) >= 7 and snapped[-1].snap is not None
    assert snapped[-1].snap.size < 4_000
    fields = read_snapshot(backend.payloads, snapped[-1].snap).fields
    assert "dsegs" in fields["facts"] and "dsegs" in fields["index"]
    at = snapped[-1].step
    assert cold(backend).get_checkpoint("dict", at) == backend.checkpoints.get_checkpoint(
        "dict", at
    )
    assert verify_thread(backend, "dict").ok


def test_a_tampered_merge_patch_is_named_at_its_step(backend: Backend, clock: ManualClock) -> None:
    """Given a dict thread, then its exported bundle verifies; a patch's value altered (its
    salt kept) fails `state` at that step, its digest altered fails `hash` there, a patch
    row left out fails `contiguity` there."""
    app = dict_graph.with_backend(backend, clock=clock)
    app.invoke({"limit": 40}, NO_LIMIT, thread_id="dict")
    assert verify_bundle(build_bundle(backend, "dict")).ok
    records = backend.checkpoints.ledger("dict")

    def edited(step: int, change: Change) -> list:  # type: ignore[type-arg]
        copy = list(records)
        row = copy[step]
        copy[step] = row.model_copy(update={"changes": {**row.changes, "facts": change}})
        return copy

    original = records[20].changes["facts"]
    assert original.op == "merge" and original.v is not None
    altered = original.model_copy(update={"v": {**original.v, "fact-000019": "forged"}})
    report = verify_chain("dict", edited(20, altered), backend.payloads)
    assert (report.first_bad_step, report.check) == (20, "state")
    report = verify_chain(
        "dict", edited(20, original.model_copy(update={"d": "0" * 64})), backend.payloads
    )
    assert (report.first_bad_step, report.check) == (20, "hash")
    report = verify_chain("dict", records[:20] + records[21:], backend.payloads)
    assert (report.first_bad_step, report.check) == (20, "contiguity")


def test_a_conversation_of_megabytes_stays_under_the_item_limit(
    backend: Backend, clock: ManualClock
) -> None:
    """Given 80 turns that each append a 40 KB message and every 10th a 600 KB document (a
    state of 8 MB, over twenty times the 350 KiB record limit), then every stored
    row stays under `max_record_bytes` (a few KB), a cold reader rebuilds the state equal to
    what `invoke` returned, and the thread verifies."""
    app = big_chat_graph.with_backend(backend, clock=clock)
    values = app.invoke(
        {
            "limit": 80,
            "message_bytes": 40_000,
            "document_bytes": 600_000,
            "document_every": 10,
        },
        NO_LIMIT,
        thread_id="big",
    )
    assert len(values["messages"]) == 80 and len(values["documents"]) == 8
    assert sum(map(len, values["messages"] + values["documents"])) > 20 * 350 * 1024
    rows = backend.checkpoints.inner.list_checkpoints("big", newest_first=False)
    assert max(len(r.to_stored_json()) for r in rows) < 8_000 < backend.max_record_bytes
    head = cold(backend).head_checkpoint("big")
    assert head is not None and head.values == values
    assert verify_thread(backend, "big").ok
