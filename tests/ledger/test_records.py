"""Record format 2 through `RecordStore`: a step stores what it changed, a cold read folds a
bounded window from the record's anchor, a tampered read hint is refused, and stores written in
format 1 stay readable and verifiable (`docs/record-format.md`)."""

from __future__ import annotations

import functools
import itertools
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from durable_graph.backends.local import local_backend
from durable_graph.backends.local.db import Database
from durable_graph.backends.local.folder_payloads import FolderPayloadStore
from durable_graph.backends.local.sqlite_store import SqliteCheckpointStore
from durable_graph.backends.records import RecordStore
from durable_graph.backends.snapshots import SNAPSHOT_EVERY
from durable_graph.checkpoint import Checkpoint
from durable_graph.clock import ManualClock
from durable_graph.errors import CorruptRecord, ThreadNotFound
from durable_graph.sealing import KEEP_EVERY
from durable_graph.timetravel import fork
from durable_graph.verification import verify_thread
from tests.graphs import docs_graph as fanout_graph
from tests.helpers import edit_stored_row, stored_rows
from tests.ledger import legacy_v1
from tests.ledger.graphs import graph as chat_graph
from tests.loops import loop_graph

# These threads loop for hundreds of steps on purpose: past LangGraph's default limit of 25.
NO_LIMIT = {"recursion_limit": 1_000_000}

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_v1_store"


class Counter(BaseModel):
    n: int = 0
    limit: int = 10
    label: str = "counting"
    started: str = ""


def bump(state: Counter) -> dict[str, Any]:
    if state.n == 0:
        return {"n": 1, "started": "at step 1"}  # a field set once, after step 0
    return {"n": state.n + 1}


counter = loop_graph(
    Counter,
    "bump",
    bump,
    more=lambda state: state.n < state.limit,
    name="tests.ledger.test_records:counter",
)


class CountingStore(SqliteCheckpointStore):
    """The real SQLite store, counting the checkpoint rows it hands out."""

    rows = 0

    def list_checkpoints(self, thread_id: str, **kwargs: Any) -> list[Checkpoint]:
        found = super().list_checkpoints(thread_id, **kwargs)
        self.rows += len(found)
        return found

    def head_checkpoint(self, thread_id: str) -> Checkpoint | None:
        self.rows += 1
        return super().head_checkpoint(thread_id)


def stored_bytes(home: Path) -> int:
    with sqlite3.connect(home / "state.db") as conn:
        rows = conn.execute("SELECT SUM(LENGTH(body)) FROM checkpoints").fetchone()[0]
    payloads = sum(p.stat().st_size for p in (home / "payloads").rglob("*") if p.is_file())
    return int(rows) + payloads


AUDIT_BYTES_PER_STEP = 1200  # hashes, state root, salted digests, io digests, route, actor


def test_chat_of_200_turns_stores_each_turn_once(tmp_path: Path) -> None:
    """Given a chat whose recorded 1 KB LLM reply is appended every turn (the reply is both an
    io record and a state change), then the records and payloads hold the raw text once plus a
    fixed audit envelope per step: never the history again (format 1 without deltas stored
    the whole state at every step, 100x here)."""
    home = tmp_path / "home"
    backend = local_backend(home, clock=ManualClock())
    app = chat_graph.with_backend(backend, clock=ManualClock())
    app.invoke({"limit": 200, "attachment": "A" * 10_000}, NO_LIMIT, thread_id="long")
    messages = app.get_state("long").values["messages"]
    raw = sum(len(m.encode()) for m in messages) + 10_000
    assert len(messages) == 200
    assert stored_bytes(home) < raw + AUDIT_BYTES_PER_STEP * 201, (stored_bytes(home), raw)
    backend.close()


def test_cold_reads_equal_warm_reads_at_every_step(tmp_path: Path) -> None:
    """Given 150 turns written by one process, then a fresh reader (no cache) rebuilds every
    step's state exactly as the writer handed it out, and the chain verifies."""
    home = tmp_path / "home"
    writer = local_backend(home, clock=ManualClock())
    app = chat_graph.with_backend(writer, clock=ManualClock())
    app.invoke({"limit": 150}, NO_LIMIT, thread_id="c")
    warm = writer.checkpoints.list_checkpoints("c", newest_first=False)
    cold_backend = local_backend(home)
    cold = cold_backend.checkpoints.list_checkpoints("c", newest_first=False)
    assert [r.values for r in cold] == [r.values for r in warm]
    assert [r.hash for r in cold] == [r.hash for r in warm]
    one = RecordStore(SqliteCheckpointStore(Database(home / "state.db")), cold_backend.payloads)
    assert one.get_checkpoint("c", 77) == warm[77]
    assert verify_thread(cold_backend, "c").ok
    writer.close()
    cold_backend.close()


def test_a_cold_read_folds_a_bounded_window(tmp_path: Path) -> None:
    """Given 400 steps of a thread whose fields do not grow, then a cold read of its head
    reads at most KEEP_EVERY + 1 rows: small fields are re-set (`keep`) every KEEP_EVERY
    steps, so the anchor stays near the head however long the thread."""
    home = tmp_path / "home"
    backend = local_backend(home, clock=ManualClock())
    counter.with_backend(backend, clock=ManualClock()).invoke(
        {"limit": 400}, NO_LIMIT, thread_id="n"
    )
    inner = CountingStore(Database(home / "state.db"))
    cold = RecordStore(inner, backend.payloads)
    head = cold.head_checkpoint("n")
    assert head is not None
    assert head.values == {"n": 400, "limit": 400, "label": "counting", "started": "at step 1"}
    assert inner.rows <= KEEP_EVERY + 1
    assert head.step - head.anchor <= KEEP_EVERY


def test_a_cold_history_page_folds_its_window_once(tmp_path: Path) -> None:
    """Given 400 steps, then a cold `get_state_history(limit=10)` reads the ten rows and the
    window they fold from once (it read the head and folded its window first, just to know
    the thread exists: twice the work), and an unknown thread is still `ThreadNotFound`."""
    home = tmp_path / "home"
    backend = local_backend(home, clock=ManualClock())
    app = counter.with_backend(backend, clock=ManualClock())
    app.invoke({"limit": 400}, NO_LIMIT, thread_id="n")
    inner = CountingStore(Database(home / "state.db"))
    cold = local_backend(home)
    cold.checkpoints = RecordStore(inner, cold.payloads)
    page = app.with_backend(cold).get_state_history("n", limit=10)
    assert [s.values["n"] for s in page] == list(range(400, 390, -1))
    oldest = backend.checkpoints.get_checkpoint("n", 391)
    assert oldest is not None and oldest.anchor < 391
    assert inner.rows == 10 + (391 - oldest.anchor)  # the page, and the rows it folds from
    with pytest.raises(ThreadNotFound):
        app.with_backend(cold).get_state_history("nobody", limit=10)
    cold.close()
    backend.close()
    backend.close()


def chat_with_snapshots(home: Path, turns: int = 300) -> list[Checkpoint]:
    """A chat of `turns` appended messages, written by one process; its warm records."""
    backend = local_backend(home, clock=ManualClock())
    app = chat_graph.with_backend(backend, clock=ManualClock())
    app.invoke({"limit": turns}, NO_LIMIT, thread_id="c")
    warm = backend.checkpoints.list_checkpoints("c", newest_first=False)
    backend.close()
    return warm


def snapshot_rows(home: Path) -> list[tuple[int, str]]:
    """(step, snapshot sha256) of every stored row that names a snapshot, oldest first."""
    rows = stored_rows(home / "state.db", "c")
    return [(step, row["snap"]["sha256"]) for step, row in rows.items() if "snap" in row]


def test_a_cold_read_of_a_growing_list_starts_from_a_snapshot(tmp_path: Path) -> None:
    """Given a 300-turn chat (its message list only ever appended to, so never re-set), then
    snapshots were written every SNAPSHOT_EVERY steps, a cold read of the head reads at most
    SNAPSHOT_EVERY + 1 rows, and the state, a past step and a page of history all equal what
    the writer handed out."""
    home = tmp_path / "home"
    warm = chat_with_snapshots(home)
    steps = [step for step, _ in snapshot_rows(home)]
    assert steps and all(b - a == SNAPSHOT_EVERY for a, b in itertools.pairwise(steps))
    inner = CountingStore(Database(home / "state.db"))
    cold = RecordStore(inner, local_backend(home).payloads)
    head = cold.head_checkpoint("c")
    assert head is not None and head.values == warm[-1].values
    assert len(head.values["messages"]) == 300
    assert inner.rows <= SNAPSHOT_EVERY + 1
    fresh = RecordStore(SqliteCheckpointStore(Database(home / "state.db")), cold.payloads)
    assert fresh.get_checkpoint("c", steps[1] + 5) == warm[steps[1] + 5]
    page = fresh.list_checkpoints("c", limit=10)
    assert [r.values for r in page] == [r.values for r in reversed(warm[-10:])]


def test_a_tampered_snapshot_is_refused_and_verify_never_needs_one(tmp_path: Path) -> None:
    """Given a chat with snapshots, then: a snapshot whose bytes were altered, or a row
    pointed at another step's snapshot, is refused by a cold read naming the step; and
    `verify` passes with every snapshot deleted, because it folds the changes themselves."""
    home = tmp_path / "home"
    chat_with_snapshots(home, turns=200)
    (first, first_sha), (second, second_sha), *_ = snapshot_rows(home)
    payloads = FolderPayloadStore(home / "payloads")
    first_snap = stored_rows(home / "state.db", "c")[first]["snap"]
    edit_stored_row(home / "state.db", "c", second, lambda row: row.update(snap=first_snap))
    with pytest.raises(CorruptRecord, match="not the state after this step") as refused:
        local_backend(home).checkpoints.get_checkpoint("c", second + 1)
    assert refused.value.step == second
    payloads.path_for(first_sha).write_bytes(b"not a snapshot")
    with pytest.raises(CorruptRecord, match="snapshot"):
        local_backend(home).checkpoints.get_checkpoint("c", first + 1)
    for _, sha in snapshot_rows(home):
        payloads.path_for(sha).unlink(missing_ok=True)
    payloads.path_for(second_sha).unlink(missing_ok=True)
    assert verify_thread(local_backend(home), "c").ok


def test_a_value_stripped_of_its_salt_fails_verification(tmp_path: Path) -> None:
    """Given a stored change whose salt was removed and whose value was replaced (posing as
    an erased value that is still there), then `state` names the step."""
    home = tmp_path / "home"
    backend = local_backend(home, clock=ManualClock())
    counter.with_backend(backend, clock=ManualClock()).invoke({"limit": 5}, thread_id="n")

    def strip_salt(row: dict[str, Any]) -> None:
        del row["changes"]["n"]["s"]
        row["changes"]["n"]["v"] = 99

    edit_stored_row(home / "state.db", "n", 3, strip_salt)
    report = verify_thread(local_backend(home), "n")
    assert (report.ok, report.first_bad_step, report.check) == (False, 3, "state")
    backend.close()


def test_a_task_list_stored_beside_its_ref_is_never_read(tmp_path: Path) -> None:
    """Given a 70-task fan-out (its task list in the payload store) and a forged task written
    into the stored row beside the ref, then reads take the tasks from the payload the hash
    covers, and the forged one never runs."""
    home = tmp_path / "home"
    backend = local_backend(home, clock=ManualClock())
    app = fanout_graph.with_backend(backend, clock=ManualClock())
    app.invoke({"documents": [f"d{i}" for i in range(70)]}, thread_id="f")
    (step,) = [s for s, row in stored_rows(home / "state.db", "f").items() if "next_ref" in row]
    forged = [{"id": "x", "node": "summarise", "arg": {"doc": "forged"}}]
    edit_stored_row(home / "state.db", "f", step, lambda row: row.update(next=forged))
    record = local_backend(home).checkpoints.get_checkpoint("f", step)
    assert record is not None and len(record.next) == 71  # 70 summaries and the lint
    assert all(t.arg is None or t.arg["doc"] != "forged" for t in record.next)
    assert verify_thread(local_backend(home), "f").ok
    backend.close()


def test_a_tampered_read_hint_is_refused(tmp_path: Path) -> None:
    """Given the head's `anchor` (an unhashed read hint) moved past the step that set a field,
    then a cold read refuses the record instead of returning a state without that field."""
    home = tmp_path / "home"
    backend = local_backend(home, clock=ManualClock())
    counter.with_backend(backend, clock=ManualClock()).invoke({"limit": 20}, thread_id="n")
    last = max(stored_rows(home / "state.db", "n"))
    edit_stored_row(home / "state.db", "n", last, lambda row: row.update(anchor=last))
    cold = local_backend(home)
    with pytest.raises(CorruptRecord, match="state root"):
        cold.checkpoints.head_checkpoint("n")
    backend.close()
    cold.close()


def test_a_format_1_store_reads_verifies_and_forks_into_format_2(tmp_path: Path) -> None:
    """Given a store written by the previous release (format 1, `$delta` rows, an offloaded
    9 KB string, a signed completed head), then it reads back whole and verifies; a fork of
    its step 20 continues in format 2 and verifies against its format-1 origin."""
    home = tmp_path / "home"
    shutil.copytree(FIXTURE, home)
    backend = local_backend(home, clock=ManualClock())
    app = legacy_v1.chat.with_backend(backend, clock=ManualClock())
    state = app.get_state("chat-v1")
    assert state.checkpoint.format == 1
    assert state.values["turns"] == 40 and len(state.values["messages"]) == 40
    assert state.values["note"] == "x" * 9000
    report = verify_thread(backend, "chat-v1")
    assert report.ok, report.reason
    assert report.signed_steps
    fork(app, "chat-v1", 20, "chat-v2", {"limit": 30})
    app.run_until_settled("chat-v2")
    forked = app.get_state("chat-v2")
    assert forked.checkpoint.format == 2 and forked.values["turns"] == 30
    assert forked.values["messages"][:20] == state.values["messages"][:20]
    assert verify_thread(backend, "chat-v2").ok
    backend.close()


@pytest.fixture(scope="module")
def long_chat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 150-turn chat with a 10 KB attachment (an offloaded chunk), written once."""
    home = tmp_path_factory.mktemp("long") / "home"
    backend = local_backend(home, clock=ManualClock())
    app = chat_graph.with_backend(backend, clock=ManualClock())
    app.invoke({"limit": 150, "attachment": "A" * 10_000}, NO_LIMIT, thread_id="long")
    backend.close()
    return home


def tampered_copy(home: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(home, copy)
    return copy


def edit_row(home: Path, step: int, path: str, value: Any) -> None:
    """Set the JSON path `path` (`$.a.b`) of the stored row of step `step` to `value`."""

    def edit(row: dict[str, Any]) -> None:
        *parents, last = path.removeprefix("$.").split(".")
        for key in parents:
            row = row[key]
        row[last] = value

    edit_stored_row(home / "state.db", "long", step, edit)


def test_a_long_thread_verifies_and_every_kind_of_tamper_names_its_step(
    long_chat: Path, tmp_path: Path
) -> None:
    """Given a 150-step chat, then it verifies; an offloaded chunk's bytes, a periodic keep
    (the re-set of a small field), an appended delta's digest and a state root each fail at
    their own step with their own check."""
    backend = local_backend(long_chat)
    assert verify_thread(backend, "long").ok
    keep_step = KEEP_EVERY
    kept = backend.checkpoints.get_checkpoint("long", keep_step)
    assert kept is not None and kept.changes["limit"].op == "keep"
    backend.close()

    home = tampered_copy(long_chat, tmp_path / "chunk")
    (chunk,) = [
        p for p in (home / "payloads").rglob("*") if p.is_file() and b"A" * 100 in p.read_bytes()
    ]
    chunk.write_bytes(chunk.read_bytes().replace(b"AAAA", b"BBBB", 1))
    report = verify_thread(local_backend(home), "long")
    assert (report.first_bad_step, report.check) == (0, "payload")

    home = tampered_copy(long_chat, tmp_path / "keep")
    edit_row(home, keep_step, "$.changes.limit.v", 7)
    report = verify_thread(local_backend(home), "long")
    assert (report.first_bad_step, report.check) == (keep_step, "state")

    home = tampered_copy(long_chat, tmp_path / "delta")
    edit_row(home, 100, "$.changes.messages.d", "0" * 64)
    report = verify_thread(local_backend(home), "long")
    assert (report.first_bad_step, report.check) == (100, "hash")

    home = tampered_copy(long_chat, tmp_path / "root")
    edit_row(home, 120, "$.root", "0" * 64)
    report = verify_thread(local_backend(home), "long")
    assert (report.first_bad_step, report.check) == (120, "hash")


def test_a_step_run_from_a_carried_state_keeps_a_chunk_by_reference(tmp_path: Path) -> None:
    """Given a small state with one 9 KB field (a chunk) whose every step runs in a process
    that has nothing at hand (so from the state its message carried), then after KEEP_EVERY
    steps the field is kept by reference to its chunk, exactly as in a process that had it:
    the carried state carries which fields are whole chunks."""
    home = tmp_path / "home"
    first = local_backend(home, clock=ManualClock())
    counter.with_backend(first).start({"limit": KEEP_EVERY + 2, "label": "x" * 9000}, thread_id="c")
    first.close()
    for _ in range(KEEP_EVERY + 2):
        fresh = local_backend(home)  # a new process's view: nothing cached
        (delivery,) = fresh.queue.receive()
        assert delivery.message.carried is not None
        engine = counter.with_backend(fresh).engine()
        engine.execute(delivery.message, finalize=functools.partial(fresh.queue.ack, delivery))
        fresh.close()
    reader = local_backend(home)
    rows = reader.checkpoints.inner.list_checkpoints("c", newest_first=False)
    kept = [r.changes["label"] for r in rows[1:] if "label" in r.changes]
    assert kept and all(c.op == "keep" and c.ref == rows[0].changes["label"].ref for c in kept)
    assert verify_thread(reader, "c").ok
    reader.close()
