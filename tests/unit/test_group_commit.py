"""Group commit on the embedded store (`Worker.handle_group`): a worker leasing many threads'
tasks commits their steps in one transaction, one fsync for the batch, and acknowledges and
queues nothing before it. The SIGKILL case is `tests/e2e/test_group_commit_crash.py`."""

from __future__ import annotations

from pathlib import Path

from durable_graph.backends.local import local_backend
from durable_graph.backends.local.db import Database, DurableCommits
from durable_graph.backends.local.outbox_mailer import OutboxMailer
from durable_graph.verification import verify_thread
from examples.email_approval import graph as email_graph

THREADS = 20


def test_a_batch_of_threads_costs_one_durable_commit_per_wave(tmp_path: Path) -> None:
    """Given 20 approval threads started in one unit of work, when a worker with concurrency
    20 drains the queue, then the 20 drafts commit in one durable transaction; given their
    approvals in one unit, the 20 sends do too, each email is sent once, and every thread
    completes with a chain that verifies (hashes, links, signed heads)."""
    backend = local_backend(tmp_path / "home")
    db = backend.queue.db  # type: ignore[attr-defined]
    assert isinstance(db, Database)
    app = email_graph.with_backend(backend)
    worker = app.worker(concurrency=THREADS)
    ids = [f"t-{i}" for i in range(THREADS)]
    with backend.atomic():
        for tid in ids:
            app.start({"user_prompt": f"pay {tid}"}, thread_id=tid)

    drafts = DurableCommits()
    db.trace(drafts)
    stats = worker.run(until_idle=True)
    db.trace(None)
    assert stats.committed == THREADS
    assert drafts.durable == 1, drafts
    assert {app.get_state(tid).values["risk"] for tid in ids} == {"high"}
    assert {backend.checkpoints.head_checkpoint(t).status for t in ids} == {"suspended"}  # type: ignore[union-attr]

    with backend.atomic():
        for tid in ids:
            app.resume(tid, values={"approved": True}, as_node="human_review", run=False)
    sends = DurableCommits()
    db.trace(sends)
    worker.run(until_idle=True)
    db.trace(None)
    assert sends.durable == 1, sends
    for tid in ids:
        assert app.get_state(tid).values["outcome"] == "sent"
        report = verify_thread(backend, tid)
        assert report.ok, report
    mailer = backend.mailer
    assert isinstance(mailer, OutboxMailer)
    assert len(mailer.read_all()) == THREADS
    backend.close()
