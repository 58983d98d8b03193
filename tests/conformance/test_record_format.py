"""Record format 2 on every backend (memory, SQLite, DynamoDB + S3 on moto): long threads store
their changes and read back whole from a cold reader, big changes and long task lists live in
the payload store, and the records verify (`docs/record-format.md`)."""

from __future__ import annotations

from durable_graph.backend import Backend
from durable_graph.backends.records import RecordStore
from durable_graph.backends.snapshots import SNAPSHOT_EVERY
from durable_graph.clock import ManualClock
from durable_graph.ledger import verify_chain
from durable_graph.sealing import KEEP_EVERY
from tests import graphs
from tests.ledger.graphs import graph as chat_graph

# These threads loop for hundreds of steps on purpose: past LangGraph's default limit of 25.
NO_LIMIT = {"recursion_limit": 1_000_000}


def cold(backend: Backend) -> RecordStore:
    """A reader with nothing cached, over the same stored rows and payloads."""
    return RecordStore(backend.checkpoints.inner, backend.payloads)


def test_a_long_chat_stores_changes_and_reads_back_whole(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a 140-turn chat with an attachment over the offload threshold, then every stored
    row holds changes and no state, the attachment's chunk is in the payload store once, a cold
    reader rebuilds every step exactly, small fields are re-set within KEEP_EVERY steps, and
    the chain verifies with its chunks."""
    backend.offload_threshold = 2048
    app = chat_graph.with_backend(backend, clock=clock)
    app.invoke({"limit": 140, "attachment": "A" * 5000}, NO_LIMIT, thread_id="chat")
    warm = backend.checkpoints.list_checkpoints("chat", newest_first=False)
    rows = backend.checkpoints.inner.list_checkpoints("chat", newest_first=False)
    assert all(r.format == 2 and r.values == {} for r in rows)
    assert rows[0].changes["attachment"].ref is not None
    assert all(
        "attachment" not in r.changes or r.changes["attachment"].op == "keep" for r in rows[1:]
    )
    reader = cold(backend)
    assert [r.values for r in reader.list_checkpoints("chat", newest_first=False)] == [
        r.values for r in warm
    ]
    head = reader.head_checkpoint("chat")
    assert head is not None and len(head.values["messages"]) == 140
    kept = [r.changes["attachment"] for r in rows[1:] if "attachment" in r.changes]
    assert kept and all(c.op == "keep" and c.ref == rows[0].changes["attachment"].ref for c in kept)
    # Only the message list grows from step 0; every other field, the 5 KB attachment included
    # (kept by reference to its chunk, no bytes copied), was re-set within KEEP_EVERY steps.
    others = ("turns", "limit", "approved", "note", "attachment")
    assert all(head.step - head.anchors[name] <= KEEP_EVERY for name in others)
    assert verify_chain("chat", backend.checkpoints.ledger("chat"), backend.payloads).ok
    # The message list only grows, so the store wrote snapshots (`backends/snapshots.py`): the
    # head's rows point at the latest one, and a cold read from it equals the warm state.
    snapped = [r.step for r in rows if r.snap is not None]
    assert snapped and rows[-1].anchor == snapped[-1] > rows[-1].step - SNAPSHOT_EVERY
    assert cold(backend).head_checkpoint("chat") == warm[-1]
    assert cold(backend).get_checkpoint("chat", snapped[0]) == warm[snapped[0]]


def test_a_fan_out_keeps_its_task_list_outside_the_record(
    backend: Backend, clock: ManualClock
) -> None:
    """Given 80 documents through Send, then the fan-out step's task list is a payload its
    record points to, every summary merges once, and a cold reader sees all 81 tasks."""
    app = graphs.docs_graph.with_backend(backend, clock=clock)
    values = app.invoke({"documents": [f"doc-{i}" for i in range(80)]}, thread_id="fan")
    assert sorted(values["summaries"]) == sorted(f"summary of doc-{i}" for i in range(80))
    rows = backend.checkpoints.inner.list_checkpoints("fan", newest_first=False)
    fan = [r for r in rows if r.next_ref is not None]
    assert len(fan) == 1 and fan[0].next == []
    record = cold(backend).get_checkpoint("fan", fan[0].step)
    assert record is not None and len(record.next) == 81
    assert verify_chain("fan", backend.checkpoints.ledger("fan"), backend.payloads).ok
