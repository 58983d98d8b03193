"""The embedded store's fsync budget (DESIGN.md §9): a seed approval thread (run → suspend →
approve → complete) takes at most 4 durable commits; leases, effect claims and results and the
notification ride along without an fsync of their own (db.py, outbox.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from durable_graph.backends.local import local_backend
from durable_graph.backends.local.db import Database, DurableCommits
from examples.email_approval import graph as email_graph


def test_an_approval_thread_takes_at_most_four_durable_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the embedded store, when the seed flow runs start to finish, then it commits
    durably at most 4 times, and every relaxed write it made is on the chain's side of them
    (the effect result is read back after the run)."""
    backend = local_backend(tmp_path / "home")
    db = backend.queue.db  # type: ignore[attr-defined]
    assert isinstance(db, Database)
    counter = DurableCommits()
    db.trace(counter)
    app = email_graph.with_backend(backend)
    app.invoke({"user_prompt": "pay"}, thread_id="t-1")
    app.resume("t-1", values={"approved": True}, as_node="human_review")
    db.trace(None)
    assert app.get_state("t-1").values["outcome"] == "sent"
    assert counter.durable <= 4, counter
    assert counter.relaxed >= 1, counter  # the effect claim at least
    backend.close()
