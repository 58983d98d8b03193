"""Group commit (`Worker.handle_group`) on the embedded store and on a real PostgreSQL server:
a worker leasing many threads' tasks commits their steps in one transaction, and acknowledges
and queues nothing before it; a step another worker committed first is a duplicate for its
thread alone, and a step whose write the database refuses is undone alone while the rest of
the batch commits. The SIGKILL case is `tests/e2e/test_group_commit_crash.py`."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel

from durable_graph import END, START, NodeContext, StateGraph
from durable_graph.backend import Backend
from durable_graph.backends.local import local_backend
from durable_graph.backends.local.commit_count import DurableCommits
from durable_graph.backends.local.db import Database
from durable_graph.backends.local.outbox_mailer import OutboxMailer
from durable_graph.backends.postgres import postgres_backend
from durable_graph.clock import ManualClock
from durable_graph.signing import KEY_FILE, FileSigner
from durable_graph.verification import verify_thread
from examples.email_approval import graph as email_graph
from tests.postgres.cli import STAMP_TRANSACTIONS
from tests.postgres.server import fresh_schema_uri

THREADS = 20
LEASE = 10.0


@dataclass
class Store:
    """A backend on fresh storage, with what the tests need to look under it."""

    backend: Backend
    clock: ManualClock
    kind: str
    uri: str = ""

    def sql(self, statement: str) -> None:
        """Run `statement` on the store's database from a connection of its own."""
        if self.kind == "sqlite":
            db = self.backend.queue.db  # type: ignore[attr-defined]
            with sqlite3.connect(db.path) as conn:
                conn.executescript(statement)
        else:
            with psycopg.connect(self.uri, autocommit=True) as conn:
                conn.execute(statement.encode())

    def commits_of(self, run: Callable[[], object]) -> int:
        """How many transactions `run` committed steps in. Embedded: every durable COMMIT
        (relaxed writes skip the fsync and are not counted); PostgreSQL: the distinct
        top-level transaction ids of the checkpoint rows `run` wrote (`STAMP_TRANSACTIONS`)."""
        if self.kind == "sqlite":
            db = self.backend.queue.db  # type: ignore[attr-defined]
            assert isinstance(db, Database)
            counter = DurableCommits()
            db.trace(counter)
            try:
                run()
            finally:
                db.trace(None)
            return counter.durable
        query = "SELECT thread_id, step, txid FROM checkpoints"
        with psycopg.connect(self.uri, autocommit=True) as conn:
            conn.execute(STAMP_TRANSACTIONS)
            before = {(t, s) for t, s, _ in conn.execute(query).fetchall()}
            run()
            rows = conn.execute(query).fetchall()
        return len({xid for t, s, xid in rows if (t, s) not in before})


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    clock = ManualClock()
    if request.param == "sqlite":
        backend = local_backend(tmp_path / "home", clock=clock)
        try:
            yield Store(backend, clock, "sqlite")
        finally:
            backend.close()
        return
    with fresh_schema_uri() as uri:
        backend = postgres_backend(
            uri,
            clock=clock,
            mailer=OutboxMailer(tmp_path / "sent"),
            signer=FileSigner(tmp_path / KEY_FILE),
        )
        try:
            yield Store(backend, clock, "postgres", uri)
        finally:
            backend.close()


def test_a_batch_of_threads_commits_in_one_transaction_per_wave(store: Store) -> None:
    """Given 20 approval threads started in one unit of work, when a worker with concurrency
    20 drains the queue, then the 20 drafts commit in one transaction; given their approvals
    in one unit, the 20 sends do too, each email is sent once, and every thread completes
    with a chain that verifies (hashes, links, signed heads)."""
    backend = store.backend
    app = email_graph.with_backend(backend, clock=store.clock)
    worker = app.worker(concurrency=THREADS)
    ids = [f"t-{i}" for i in range(THREADS)]
    with backend.atomic():
        for tid in ids:
            app.start({"user_prompt": f"pay {tid}"}, thread_id=tid)

    assert store.commits_of(lambda: worker.run(until_idle=True)) == 1
    assert worker.stats.committed == THREADS
    assert {app.get_state(tid).values["risk"] for tid in ids} == {"high"}
    assert {backend.checkpoints.head_checkpoint(t).status for t in ids} == {"suspended"}  # type: ignore[union-attr]

    with backend.atomic():
        for tid in ids:
            app.resume(tid, values={"approved": True}, as_node="human_review", run=False)
    assert store.commits_of(lambda: worker.run(until_idle=True)) == 1
    for tid in ids:
        assert app.get_state(tid).values["outcome"] == "sent"
        report = verify_thread(backend, tid)
        assert report.ok, report
    mailer = backend.mailer
    assert isinstance(mailer, OutboxMailer)
    assert len(mailer.read_all()) == THREADS


# ---------------------------------------------------------------- one thread's step fails alone

# Called by `work` with the thread id before it returns: the test's hook lets another worker
# commit the same step first, while the batch's worker is still running its tasks.
BEFORE_RETURN: list[Callable[[str], None]] = []


class Job(BaseModel):
    done_by: str = ""


def work(state: Job, ctx: NodeContext) -> dict[str, Any]:
    for hook in list(BEFORE_RETURN):
        hook(ctx.thread_id)
    return {"done_by": ctx.thread_id}


_builder = StateGraph(Job)
_builder.add_node("work", work)
_builder.add_edge(START, "work")
_builder.add_edge("work", END)
job_graph = _builder.compile(name="tests.unit.test_group_commit:job_graph")


def _heads(backend: Backend, ids: list[str]) -> dict[str, tuple[int, str]]:
    heads: dict[str, tuple[int, str]] = {}
    for tid in ids:
        head = backend.checkpoints.head_checkpoint(tid)
        assert head is not None
        heads[tid] = (head.step, head.status)
    return heads


def test_a_step_another_worker_committed_first_is_a_duplicate_for_its_thread_alone(
    store: Store,
) -> None:
    """Given a worker that leased 4 threads' tasks, when, while it runs them, its lease on
    `j-0` runs out and another worker leases and commits `j-0`'s step, then the batch commits
    the other 3 steps and counts `j-0` as a duplicate: every thread has its step once and
    completes, the queue is empty, and every chain verifies."""
    backend = store.backend
    app = job_graph.with_backend(backend, clock=store.clock)
    ids = [f"j-{i}" for i in range(4)]
    with backend.atomic():
        for tid in ids:
            app.start({}, thread_id=tid)
    first = app.worker(concurrency=4, visibility_timeout=LEASE, worker_id="first")
    other = app.worker(concurrency=1, visibility_timeout=LEASE, worker_id="other")
    batch = first.claim(None)
    assert sorted(d.message.thread_id for d in batch) == ids

    overtaken: list[str] = []

    def overtake(thread_id: str) -> None:
        if thread_id != "j-0" or overtaken:  # once: the other worker's run of it goes on
            return
        overtaken.append(thread_id)
        store.clock.advance(LEASE + 1)  # the first worker's lease on j-0 runs out
        [again] = other.claim("j-0")
        assert again.receive_count == 2
        outcome = other.handle(again)
        assert outcome is not None and outcome.kind == "committed"

    BEFORE_RETURN.append(overtake)
    try:
        first.handle_group(batch, None)
    finally:
        BEFORE_RETURN.remove(overtake)

    assert (first.stats.committed, first.stats.duplicates, first.stats.retried) == (3, 1, 0)
    assert _heads(backend, ids) == {tid: (1, "completed") for tid in ids}
    assert backend.queue.depth() == 0
    for tid in ids:
        assert [c.step for c in backend.checkpoints.list_checkpoints(tid)] == [1, 0]
        assert verify_thread(backend, tid).ok


def _refuse_head_writes(store: Store, thread_id: str) -> None:
    """Make the database itself refuse every write of `thread_id`'s head row (a trigger), as
    a constraint or a failing statement would: the step's checkpoint row is written first, so
    the failure lands in the middle of the step."""
    if store.kind == "sqlite":
        store.sql(
            f"CREATE TRIGGER refuse_i BEFORE INSERT ON threads WHEN NEW.thread_id = '{thread_id}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
            f"CREATE TRIGGER refuse_u BEFORE UPDATE ON threads WHEN NEW.thread_id = '{thread_id}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
        )
        return
    store.sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF NEW.thread_id = '{thread_id}' THEN RAISE EXCEPTION 'refused by the test'; END IF; "
        "RETURN NEW; END $$"
    )
    store.sql("CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON threads FOR EACH ROW "
              "EXECUTE FUNCTION refuse()")  # fmt: skip


def _allow_head_writes(store: Store) -> None:
    if store.kind == "sqlite":
        store.sql("DROP TRIGGER refuse_i; DROP TRIGGER refuse_u;")
    else:
        store.sql("DROP TRIGGER refuse ON threads")


def test_a_step_the_database_refuses_is_undone_alone_and_the_batch_commits(
    store: Store,
) -> None:
    """Given 4 leased tasks, one of whose step the database refuses half-way (its head write
    fails after its checkpoint row was written), when the worker group-commits them, then the
    3 other steps commit, nothing of the refused step is left (no checkpoint row, no ack: its
    message is released), and once the database takes it, the thread completes alone; every
    chain verifies."""
    backend = store.backend
    app = job_graph.with_backend(backend, clock=store.clock)
    ids = ["j-0", "bad", "j-2", "j-3"]
    with backend.atomic():
        for tid in ids:
            app.start({}, thread_id=tid)
    _refuse_head_writes(store, "bad")
    worker = app.worker(concurrency=4, visibility_timeout=LEASE)
    batch = worker.claim(None)
    assert len(batch) == 4

    assert store.commits_of(lambda: worker.handle_group(batch, None)) == 1
    assert (worker.stats.committed, worker.stats.retried) == (3, 1)
    assert _heads(backend, ids) == {
        **{tid: (1, "completed") for tid in ids},
        "bad": (0, "running"),
    }
    assert backend.queue.depth() == 1  # bad's message, released

    _allow_head_writes(store)
    store.clock.advance(LEASE)  # past the release's backoff
    worker.run(until_idle=True)
    assert worker.stats.committed == 4
    assert _heads(backend, ids) == {tid: (1, "completed") for tid in ids}
    for tid in ids:
        assert verify_thread(backend, tid).ok


def test_a_batch_is_leased_and_acknowledged_by_one_statement_each(tmp_path: Path) -> None:
    """Given 20 started threads, when a worker with concurrency 20 drains the embedded queue,
    then it leases their 20 tasks in one statement and acknowledges them in one (not one
    statement per task), their steps commit, and the queue is left empty."""
    backend = local_backend(tmp_path / "home", clock=ManualClock())
    app = job_graph.with_backend(backend)
    with backend.atomic():
        for i in range(THREADS):
            app.start({}, thread_id=f"j-{i}")
    db = backend.queue.db  # type: ignore[attr-defined]
    assert isinstance(db, Database)
    statements: list[str] = []
    worker = app.worker(concurrency=THREADS, threads=1)
    db.trace(statements.append)
    try:
        worker.run(until_idle=True)
    finally:
        db.trace(None)
    leases = [s for s in statements if s.startswith("UPDATE queue")]
    acks = [s for s in statements if s.startswith("DELETE FROM queue")]
    assert (len(leases), len(acks)) == (1, 1)
    assert worker.stats.committed == THREADS
    assert backend.queue.depth() == 0
    backend.close()


@pytest.mark.parametrize(("threads", "on_worker_thread"), [(1, True), (None, False)])
def test_threads_1_runs_a_batch_in_turn_on_the_workers_thread(
    tmp_path: Path, threads: int | None, on_worker_thread: bool
) -> None:
    """Given 4 started threads, when a worker with concurrency 4 and `threads=1` drains the
    queue, then every task ran on the worker's own thread and their steps committed in one
    transaction; by default (`threads` = concurrency) they ran on a pool's threads."""
    backend = local_backend(tmp_path / "home", clock=ManualClock())
    store = Store(backend, ManualClock(), "sqlite")
    app = job_graph.with_backend(backend)
    ids = [f"j-{i}" for i in range(4)]
    with backend.atomic():
        for tid in ids:
            app.start({}, thread_id=tid)
    ran_on: set[int] = set()
    BEFORE_RETURN.append(lambda _: ran_on.add(threading.get_ident()))
    worker = app.worker(concurrency=4, threads=threads)
    try:
        assert store.commits_of(lambda: worker.run(until_idle=True)) == 1
    finally:
        BEFORE_RETURN.clear()
        backend.close()
    assert worker.stats.committed == 4
    assert (ran_on == {threading.get_ident()}) is on_worker_thread
