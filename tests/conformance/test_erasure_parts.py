"""`erase --parts`, on every backend: what a thread's records hold besides its state (task
arguments, interrupt payloads, resume values, error messages, io responses, including those in
a task or io list kept in the payload store, and the `ctx.step` result records) is erased in
place, wherever the store keeps it. Afterwards no stored row, item or payload object holds the
person's data, `verify` and an exported bundle pass and list each erased part per step, reads
say "erased at step N by X", a tampered row is still caught, and a bad selector changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from durable_graph import END, START, NodeContext, Send, StateGraph
from durable_graph.backend import Backend
from durable_graph.backends.aws.dynamodb_store import DynamoDBCheckpointStore
from durable_graph.backends.aws.s3_payloads import S3PayloadStore
from durable_graph.backends.local.file_copies import COPIES
from durable_graph.backends.local.folder_payloads import FolderPayloadStore
from durable_graph.backends.local.row_bodies import decode_body
from durable_graph.backends.local.sqlite_store import SqliteCheckpointStore
from durable_graph.backends.memory import MemoryNotifier, MemoryPayloadStore
from durable_graph.bundle import build_bundle, verify_bundle
from durable_graph.clock import ManualClock
from durable_graph.erasure import erase
from durable_graph.erasure_parts import PARTS
from durable_graph.erasure_record import ERASED, describe_erased
from durable_graph.errors import InvalidInput, ThreadFailed
from durable_graph.salted_parts import DIGEST, digest_form, is_digest_form
from durable_graph.sealed_payloads import raw_payloads
from durable_graph.timetravel import replay
from durable_graph.verification import verify_thread
from tests.aws.resources import stored_row
from tests.conformance.parts_graph import Case, parts_graph
from tests.conformance.store_contents import contents
from tests.conformance.test_encryption import ALICE, FACTORIES, Encrypted, holds

MARK = "JANE-ROE-7781"
PAD = "x" * 40_000  # two such arguments put the task list in the payload store (over 64 KB)


def fan_out(state: Case) -> list[Send]:
    return [Send("work", {"doc": f"{MARK} {n}", "pad": PAD}) for n in ("a", "b")]


def work(arg: dict[str, str], ctx: NodeContext) -> dict[str, Any]:
    looked = ctx.record("lookup", lambda r: f"{MARK} looked up {r}", arg["doc"][-1])
    receipt = ctx.step("charge", lambda: {"note": f"{MARK} receipt"})
    return {"done": [len(looked) + len(receipt["note"])]}


def survey(state: Case, ctx: NodeContext) -> dict[str, Any]:
    """65 recorded answers: the step's io list goes to the payload store."""
    for n in range(65):
        ctx.record("ask", lambda r: f"{MARK} says {r}", n)
    return {}


graph = parts_graph(
    "tests.conformance.test_erasure_parts:graph",
    Case,
    MARK,
    fan_out,
    work,
    between=[("survey", survey)],
)


def run_case(backend: Backend, clock: ManualClock, thread_id: str = "p") -> Any:
    app = graph.with_backend(backend, clock=clock)
    app.invoke({}, thread_id=thread_id)
    with pytest.raises(ThreadFailed):
        app.resume(thread_id, resume_value=f"{MARK} resume")
    return app


def stored(backend: Backend) -> bytes:
    """Every row, item and payload object the store holds (the notification outbox too), rows
    decompressed, and the embedded store's `outbox/notifications.jsonl`."""
    out = [r.encode() for r in contents(backend)["rows"]]
    inner: Any = backend.checkpoints.inner
    if isinstance(inner, SqliteCheckpointStore):
        with inner.db.read() as conn:
            bodies = [decode_body(b) for (b,) in conn.execute("SELECT body FROM checkpoints")]
        out += [b if isinstance(b, bytes) else b.encode() for b in bodies]
    if isinstance(inner, DynamoDBCheckpointStore):
        items = inner.client.scan(TableName=inner.table)["Items"]
        out += [stored_row(i).encode() for i in items if "B" in i.get("body", {})]
    payloads: Any = raw_payloads(backend.payloads)
    if isinstance(payloads, MemoryPayloadStore):
        out += list(payloads._blobs.values())
    if isinstance(payloads, FolderPayloadStore):
        out += [p.read_bytes() for p in sorted(payloads.root.rglob("*")) if p.is_file()]
        copy = payloads.root.parent / "outbox" / "notifications.jsonl"
        COPIES.drain()  # the file copy is written in the background
        assert copy.exists(), copy
        out.append(copy.read_bytes())
    notifier: Any = backend.notifier
    if isinstance(notifier, MemoryNotifier):
        out += [n.model_dump_json().encode() for n in notifier.sent]
    if isinstance(payloads, S3PayloadStore):
        for obj in payloads.client.list_objects_v2(Bucket=payloads.bucket).get("Contents", []):
            body = payloads.client.get_object(Bucket=payloads.bucket, Key=obj["Key"])["Body"]
            out.append(body.read())
    return b"\n".join(out)


def parts_of(report_erased: dict[int, list[str]]) -> set[str]:
    return {name.split(":")[0] for names in report_erased.values() for name in names}


def test_every_part_is_erased_wherever_the_store_keeps_it(
    backend: Backend, clock: ManualClock
) -> None:
    """Given a thread whose `Send` arguments (a task list in the payload store), recorded
    answers (65 in one step: an io list in the payload store), `ctx.step` result, interrupt
    payload, resume value and error message all name a person
    When its parts are erased (no state field named)
    Then no stored byte names the person, the state is untouched, `verify` and an exported
    bundle pass and list the erased parts per step, and reads say who erased what."""
    app = run_case(backend, clock)
    assert holds(stored(backend), MARK), "the person is there before"
    done_before = app.get_state("p").values["done"]

    record = erase(backend, "p", parts=list(PARTS), reason="GDPR Art. 17 #15", actor=ALICE)

    assert record is not None and not record.steps and not record.kept
    named = {n.split(":")[0] for names in record.parts.values() for n in names}
    assert named == {"arg", "interrupt", "resume", "error"}
    assert record.io, "io responses erased, those in an io list included"
    data = stored(backend)
    assert holds(data, "tests.conformance.test_erasure_parts:graph"), "rows are read in full"
    assert not holds(data, MARK)
    assert app.get_state("p").values["done"] == done_before, "no state field was named"
    report = verify_thread(backend, "p")
    assert report.ok, report.reason
    assert parts_of(report.erased) == {"arg", "interrupt", "resume", "error"}
    # Salted parts keep their records' hashes: only a step whose task or io list in the
    # payload store was written again (a new ref in the hash body) is attested.
    listed = {
        str(r.step)
        for r in backend.checkpoints.inner.list_checkpoints("p")
        if r.next_ref is not None or r.io_ref is not None
    }
    assert record.attested and set(record.attested) <= listed
    bundle = build_bundle(backend, "p")
    assert MARK not in bundle.model_dump_json()
    offline = verify_bundle(bundle)
    assert offline.ok, offline.reason
    assert offline.erased == report.erased
    history = backend.checkpoints.list_checkpoints("p")
    suspended = next(c for c in history if c.interrupt and c.interrupt.payload)
    assert suspended.interrupt is not None
    assert describe_erased(suspended.interrupt.payload) == (
        f"erased at step {suspended.step} by cli:dpo@example.com"
    )
    args = [t.arg for c in history for t in c.next if t.arg is not None]
    assert len(args) == 2 and all(a[ERASED]["erasure"] == 1 for a in args)
    head = backend.checkpoints.get_thread("p")
    assert head is not None and head.error is not None
    assert head.error.message.startswith("(the message is erased at step")
    assert "by cli:dpo@example.com" in head.error.message
    resumed = next(c for c in history if c.resume)
    replayed = replay(app, "p", resumed.step + 1)
    assert replayed.verdict == "not_reproducible" and "a resume value" in replayed.reason
    fed = replay(app, "p", 2)
    assert fed.verdict == "not_reproducible" and "the argument of task" in fed.reason
    assert erase(backend, "p", parts=list(PARTS), reason="again", actor=ALICE) is None


def test_tampering_after_erasing_parts_is_detected(backend: Backend, clock: ManualClock) -> None:
    """Given a thread whose interrupt payloads were erased (each kept as its salted digest
    alone: the record's hash unchanged, nothing to attest)
    When someone edits the digest left in the erased record, drops a resume value and its salt
    by hand (even keeping the right digest), or changes a resume value or its salt
    Then `verify` names the step: `hash` for an edit, `erasure` for a value gone that no
    erasure record names."""
    run_case(backend, clock)
    store = backend.checkpoints.inner
    before = {r.step: r.hash for r in store.list_checkpoints("p")}
    record = erase(backend, "p", parts=["interrupts"], reason="GDPR #16", actor=ALICE)
    assert record is not None and record.parts and not record.attested
    row = next(r for r in store.list_checkpoints("p") if r.interrupt and r.interrupt.payload)
    assert row.interrupt is not None and row.interrupt.s is None
    assert is_digest_form(row.interrupt.payload) and row.hash == before[row.step]
    edited = row.interrupt.model_copy(update={"payload": {DIGEST: "0" * 64}})
    store.rewrite_checkpoint(row.model_copy(update={"interrupt": edited}))
    backend.checkpoints.forget_thread("p")

    report = verify_thread(backend, "p")
    assert (report.ok, report.first_bad_step, report.check) == (False, row.step, "hash")

    store.rewrite_checkpoint(row)
    assert verify_thread(backend, "p").ok
    resumed = next(r for r in store.list_checkpoints("p") if r.resume)
    task, (salt,) = next(iter(resumed.resume_s.items()))
    (value,) = resumed.resume[task]
    cut = resumed.model_copy(update={"resume": {task: [digest_form(salt, value)]}, "resume_s": {}})
    changed = resumed.model_copy(update={"resume": {task: [f"{value} forged"]}})
    resalted = resumed.model_copy(update={"resume_s": {task: ["ab" * 16]}})
    for tampered, check in ((cut, "erasure"), (changed, "hash"), (resalted, "hash")):
        store.rewrite_checkpoint(tampered)
        backend.checkpoints.forget_thread("p")
        report = verify_thread(backend, "p")
        assert (report.ok, report.first_bad_step, report.check) == (False, resumed.step, check)
    store.rewrite_checkpoint(resumed)
    assert verify_thread(backend, "p").ok


def test_a_bad_part_is_refused_and_nothing_changes(backend: Backend, clock: ManualClock) -> None:
    """Given a thread
    When an erasure names a part that does not exist, or an empty list of parts
    Then `InvalidInput` names the parts there are, and the store is as it was."""
    run_case(backend, clock)
    before = contents(backend)

    with pytest.raises(InvalidInput, match="the parts are args, interrupts") as bad:
        erase(backend, "p", parts=["args", "emails"], reason="GDPR #17", actor=ALICE)
    assert bad.value.field == "parts"
    with pytest.raises(InvalidInput, match="at least one part"):
        erase(backend, "p", parts=[" "], reason="GDPR #17", actor=ALICE)

    assert contents(backend) == before


@pytest.fixture(params=sorted(FACTORIES))
def encrypted(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> Iterator[Encrypted]:
    with FACTORIES[request.param](tmp_path, clock) as built:
        yield built


def test_erasing_sealed_parts_keeps_the_key(encrypted: Encrypted, clock: ManualClock) -> None:
    """Given an encrypted thread (its parts sealed)
    When its arguments, resume values and errors are erased
    Then the data key stays (the interrupt payload still opens), the sealed forms of the
    erased parts are gone from the rows, and `verify` (with the key) passes."""
    backend = encrypted.backend
    app = run_case(backend, clock)

    record = erase(backend, "p", parts=["args", "resume", "errors"], reason="GDPR #18", actor=ALICE)

    assert record is not None and not record.data_key
    history = backend.checkpoints.list_checkpoints("p")
    suspended = next(c for c in history if c.interrupt and c.interrupt.payload)
    assert suspended.interrupt is not None
    assert suspended.interrupt.payload == {"question": f"{MARK} approve?"}
    assert all(ERASED in v[0] for c in history for v in c.resume.values())
    assert app.get_state("p").values["answer"] == "yes"
    sealed_left = [
        r for r in backend.checkpoints.inner.list_checkpoints("p") if r.resume or r.error
    ]
    assert all("$sealed" not in json.dumps(r.resume) for r in sealed_left)
    report = verify_thread(backend, "p")
    assert report.ok, report.reason
    assert {"arg", "resume", "error"} <= parts_of(report.erased)


class Big(BaseModel):
    answer: str = ""


BIG = f"{MARK} " + "y" * 70_000  # over 64 KiB: kept whole in a chunk (record-format §12)


def ask_big(state: Big, ctx: NodeContext) -> dict[str, Any]:
    answer = ctx.interrupt({"document": BIG})
    return {"answer": "seen" if answer else ""}


def _big_graph() -> Any:
    builder = StateGraph(Big)
    builder.add_node("ask", ask_big)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder.compile(name="tests.conformance.test_erasure_parts:big_graph")


big_graph = _big_graph()


def test_parts_kept_whole_in_chunks_are_deleted(backend: Backend, clock: ManualClock) -> None:
    """Given an interrupt payload and a resume value too big for a record (each kept whole in
    a chunk of the payload store)
    When the interrupts and resume values are erased
    Then their chunks are deleted (no stored byte names the person), and the thread verifies
    and names the erased payloads."""
    app = big_graph.with_backend(backend, clock=clock)
    app.invoke({}, thread_id="big")
    app.resume("big", resume_value={"copy": BIG})
    assert holds(stored(backend), MARK)

    record = erase(backend, "big", parts=["interrupts", "resume"], reason="GDPR #19", actor=ALICE)

    assert record is not None and len(record.payloads) == 2, record
    assert not holds(stored(backend), MARK)
    report = verify_thread(backend, "big")
    assert report.ok, report.reason
    assert parts_of(report.erased) == {"interrupt", "resume"}


def test_sealed_parts_kept_whole_in_chunks_are_deleted(
    encrypted: Encrypted, clock: ManualClock
) -> None:
    """The same on an encrypted store: the sealed parts are opened to find their chunks."""
    backend = encrypted.backend
    app = big_graph.with_backend(backend, clock=clock)
    app.invoke({}, thread_id="big")
    app.resume("big", resume_value={"copy": BIG})

    record = erase(backend, "big", parts=["interrupts", "resume"], reason="GDPR #20", actor=ALICE)

    assert record is not None and len(record.payloads) == 2, record
    report = verify_thread(backend, "big")
    assert report.ok, report.reason
