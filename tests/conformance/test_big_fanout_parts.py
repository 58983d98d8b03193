"""A fan-out task's big result and a big `Send` argument, on every backend
(`docs/record-format.md` §6, §12): a 2 MB argument is kept whole in a salted chunk (the record's
task list and the queued message hold its ref), a task's 2 MB writes and 2 MB io response are
kept in chunks by its `done#` result row, so no row, item or queue message is over a few KB;
the fan-in reads them back, the thread verifies (in the store and as a bundle), erasure reaches
the chunks, and with encryption on no stored byte holds them."""

from __future__ import annotations

from typing import Any

from durable_graph.backend import Backend
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.checkpoint import PayloadRef
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.errors import PayloadCorrupted
from durable_graph.fanin import done_key, result_chunks
from durable_graph.payloads import MARKER, is_ref
from durable_graph.runtime import CompiledGraph
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.sealed_records import open_fields
from durable_graph.verification import verify_thread
from tests.big_state_graphs import fanout_parts_graph, many_small
from tests.conformance.store_contents import contents
from tests.conformance.test_encryption import ALICE, Encrypted, holds

COUNT, WIDTH = 10_000, 200  # 10,000 strings of 200 characters: about 2 MB of JSON per part
SMALL = 8_000  # bytes: the most any row, item or queued message may weigh here


def run_fan_out(app: CompiledGraph, backend: Backend, thread_id: str) -> list[int]:
    """Start the thread, look at its two queued `Send` messages as the queue holds them, then
    run it to the end; the sizes of the queued messages."""
    app.start({"count": COUNT, "width": WIDTH}, thread_id=thread_id)
    queued = backend.queue.receive(max_messages=10, visibility_timeout=30.0)
    for delivery in queued:
        backend.queue.release(delivery)
    app.run_until_settled(thread_id)
    return [len(d.message.model_dump_json()) for d in queued]


def rows(backend: Backend) -> list[str]:
    """Every stored row or item but payload objects (PostgreSQL keeps those in a table)."""
    return [r for r in contents(backend)["rows"] if not r.startswith("payloads:")]


def done_row(backend: Backend, thread_id: str) -> dict[str, Any]:
    """The big task's `done#` row, opened."""
    (record,) = [r for r in backend.checkpoints.ledger(thread_id) if len(r.next) == 2]
    task = next(t for t in record.next if t.id.endswith(":0"))
    key = done_key(record.step, task.id)
    found = backend.checkpoints.get_record(thread_id, key)
    assert found is not None
    return open_fields(found.value, backend.checkpoints.keys, thread_id, key)


def arg_ref(backend: Backend, thread_id: str) -> PayloadRef:
    (record,) = [r for r in backend.checkpoints.ledger(thread_id) if len(r.next) == 2]
    arg = record.next[0].arg
    assert is_ref(arg)
    return PayloadRef.model_validate(arg[MARKER])


def test_big_send_argument_and_task_result_are_chunked(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a `Send` with a 2 MB argument whose task records a 2 MB io response and writes
    2 MB, beside a small one, then both queued messages, the `done#` rows and every record are
    a few KB, the argument and the result parts are chunks, the fan-in merged everything back
    whole, and the thread verifies in the store and as a bundle (which holds the argument's
    chunk); the argument's chunk deleted fails `payload` at step 0."""
    app = fanout_parts_graph.with_backend(backend, clock=clock)
    sizes = run_fan_out(app, backend, "fan")
    assert len(sizes) == 2 and max(sizes) < SMALL
    values = app.get_state("fan").values
    assert values["args_seen"] == [COUNT, 0]
    assert values["found"] == [*many_small(COUNT, WIDTH, "out"), "small"]
    assert max(len(r) for r in rows(backend)) < SMALL
    done = done_row(backend, "fan")
    assert is_ref(done["writes"]) and is_ref(done["io"])
    assert len(result_chunks(done)) == 2
    arg = arg_ref(backend, "fan")
    assert arg.size > COUNT * WIDTH
    assert verify_thread(backend, "fan").ok
    bundle = build_bundle(backend, "fan")
    assert arg.sha256 in bundle.payloads and verify_bundle(bundle).ok
    assert raw_payloads(backend.payloads).delete(arg)
    report = verify_thread(backend, "fan")
    assert (report.first_bad_step, report.check) == (0, "payload")


def test_erasure_reaches_the_chunks(backend: Backend, clock: ManualClock) -> None:
    """Given the thread, when the written field, the io and the arguments are erased, then the
    argument's chunk and the `done#` row's chunks are gone from the payload store, no row
    holds their strings, and the thread still verifies."""
    app = fanout_parts_graph.with_backend(backend, clock=clock)
    run_fan_out(app, backend, "fan")
    done = done_row(backend, "fan")
    chunks = [arg_ref(backend, "fan"), *result_chunks(done)]
    erase(backend, "fan", fields=["found"], parts=["args", "io"], reason="GDPR", actor=ALICE)
    for ref in chunks:
        try:
            raw_payloads(backend.payloads).get(ref)
        except PayloadCorrupted:
            continue
        raise AssertionError(f"chunk {ref.sha256} is still stored")
    after = done_row(backend, "fan")
    assert after["io"] == [] and "found" not in after["writes"] and after["writes"]["args_seen"]
    stored = "\n".join(rows(backend))
    for tag in ("arg", "out", "io"):
        assert many_small(COUNT, WIDTH, tag)[4711] not in stored
    assert verify_thread(backend, "fan").ok
    assert verify_bundle(build_bundle(backend, "fan")).ok


def test_big_fan_out_parts_are_sealed_at_rest(encrypted: Encrypted, clock: ManualClock) -> None:
    """Given encryption at rest, then the argument and the task's result read back whole, no
    stored byte holds any of their strings, and the thread verifies."""
    app = fanout_parts_graph.with_backend(encrypted.backend, clock=clock)
    sizes = run_fan_out(app, encrypted.backend, "sealed")
    assert max(sizes) < SMALL
    values = app.get_state("sealed").values
    assert values["args_seen"] == [COUNT, 0] and len(values["found"]) == COUNT + 1
    stored = encrypted.stored()
    for tag in ("arg", "out", "io"):
        assert not holds(stored, many_small(COUNT, WIDTH, tag)[4711])
    assert verify_thread(encrypted.backend, "sealed").ok
