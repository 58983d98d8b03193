"""`durable-graph retention run` SIGKILLed mid-pass: the next run continues from the saved
position and erases every old thread exactly once."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

from durable_graph.backends.local import local_backend
from durable_graph.clock import ManualClock
from durable_graph.erasure_record import load_erasures
from durable_graph.retention_cursor import load
from tests.e2e.conftest import Cli
from tests.e2e.retention_graphs import graph

THREADS = 60
PAGE = "5"


def test_a_killed_retention_run_is_continued_and_erases_each_thread_once(cli: Cli) -> None:
    """Given 60 threads run 40 days ago of a graph kept 30 days
    When `retention run --page-size 5` is SIGKILLed once it reports its first page, and run
    again
    Then the killed run left a saved position mid-pass; the second run continues from it (it
    checks fewer than 60 threads) and finishes the pass; the pass counted 60 threads; every
    thread has exactly one erasure record and `verify --all` passes."""
    clock = ManualClock(datetime.now(UTC) - timedelta(days=40))
    backend = local_backend(cli.home, clock=clock)
    app = graph.with_backend(backend, clock=clock)
    for i in range(THREADS):
        app.invoke({"email": f"person{i}@example.org"}, thread_id=f"t{i:03}")
    backend.close()

    victim = cli.spawn("retention", "run", "--page-size", PAGE)
    assert victim.stderr is not None
    line = victim.stderr.readline()
    while line and "retention:" not in line:
        line = victim.stderr.readline()
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert line, "the run ended without reporting a page"
    assert victim.returncode == -signal.SIGKILL

    backend = local_backend(cli.home)
    try:
        position, _ = load(backend.checkpoints)
        assert position.started_at is not None and position.cursor is not None, position
        saved = position.totals.checked
        assert 5 <= saved < THREADS
    finally:
        backend.close()

    done = cli.json("retention", "run", "--page-size", PAGE)

    assert done["finished"] is True
    assert done["totals"]["checked"] == THREADS - saved
    assert done["pass_totals"]["checked"] == THREADS
    assert done["pass_totals"]["erased"] + done["pass_totals"]["unchanged"] == THREADS
    backend = local_backend(cli.home)
    try:
        counts = {
            f"t{i:03}": len(load_erasures(backend.checkpoints, f"t{i:03}")) for i in range(THREADS)
        }
    finally:
        backend.close()
    assert set(counts.values()) == {1}, counts
    verified = cli.json("verify", "--all", "--quiet")
    assert verified["ok"] is True and verified["verified"] == THREADS
