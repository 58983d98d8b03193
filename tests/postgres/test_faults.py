"""Faults with real processes on a real server: the server stopped and restarted under running
workers, and workers SIGKILLed in the middle of a fan-out.

What is asserted is what the engine guarantees (DESIGN.md §3): nothing committed is lost, no
step is committed twice (the primary key allows no second row, and the history shows each
node once), and a `ctx.step` effect happens once unless a process died between performing it
and recording it, a window no engine can close for an external system (`effects.py`).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from durable_graph.store_uri import STORE_ENV
from tests.e2e.fanout_graphs import EFFECTS_ENV, SECONDS_ENV
from tests.e2e.test_crash_and_races import SLOW, marks
from tests.postgres.cli import PgCli, pg_cli
from tests.postgres.server import PostgresServer
from tests.postgres.test_processes import assert_each_step_once

pytestmark = pytest.mark.slow

FANOUT = "tests.e2e.fanout_graphs:fanout_graph"


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of this test's own, since the test stops it (the session's server serves
    every other test)."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def connected(server: PostgresServer) -> set[str]:
    """The application names of the processes connected to the server."""
    with server.connect() as conn:
        rows = conn.execute(
            "SELECT DISTINCT application_name FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchall()
    return {r[0] for r in rows}


def finish(
    workers: list[subprocess.Popen[str]], timeout: float = 120
) -> tuple[list[dict[str, int]], str]:
    """Wait for the workers to go idle; their summaries, and what they logged."""
    stats, logs = [], []
    for worker in workers:
        out, err = worker.communicate(timeout=timeout)
        assert worker.returncode == 0, err[-3000:]
        stats.append(json.loads(out))
        logs.append(err)
    return stats, "\n".join(logs)


def test_workers_survive_a_server_restart_mid_run(
    own_server: PostgresServer, tmp_path: Path
) -> None:
    """Given two worker processes running six threads whose middle node sleeps, when the
    server is stopped (fast shutdown: every connection cut) while nodes run and started again
    two seconds later, then the workers reconnect by themselves and drain the queue: every
    thread completes, each step is committed once, each recorded effect happened once, and
    every chain verifies."""
    cli = pg_cli(tmp_path, own_server.uri())
    threads = [f"s{i}" for i in range(6)]
    cli.start_detached(SLOW, threads)
    env = {"DG_SLOW_SECONDS": "1.0", "DURABLE_GRAPH_LEASE_SECONDS": "4"}
    args = ("worker", "--until-idle", "--json", "--concurrency", "2", "--visibility-timeout", "4")
    names = ["worker-0", "worker-1"]  # each worker's connections carry its name
    workers = [
        cli.spawn(*args, extra_env={**env, STORE_ENV: f"{cli.uri}?application_name={name}"})
        for name in names
    ]
    try:
        # Both workers connected (a worker that starts while the server is down exits 2, as
        # a bad URI does), and nodes asleep mid-step.
        wait_until(
            lambda: set(names) <= connected(own_server) and marks(tmp_path, "slow-started") >= 2,
            "both workers connected and nodes running",
        )
        own_server.restart(down_seconds=2.0)
        stats, logs = finish(workers)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert "unreachable" in logs, logs[-3000:]  # the restart did cut the workers off
    assert "Traceback" not in logs, logs[-3000:]  # ... and was handled as transient
    assert sum(s["committed"] for s in stats) == 3 * len(threads), stats
    for tid in threads:
        assert_each_step_once(cli, tid)
    assert marks(tmp_path, "slow-effect") == len(threads)
    report = cli.json("verify", "--all")
    assert json.dumps(report).count('"ok": true') >= len(threads), report
    assert '"ok": false' not in json.dumps(report), report


def _effects(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [
        (doc, int(pid)) for doc, pid in (line.split() for line in path.read_text().splitlines())
    ]


def test_workers_killed_mid_fanout_lose_nothing(cli: PgCli, tmp_path: Path) -> None:
    """Given a 300-task fan-out drained by two workers, when one is SIGKILLed a third of the
    way through and a replacement started, then the thread completes with all 300 results
    merged once, steps 0..3 each once, verify passes, and only an effect in flight in the
    killed worker ran twice (at most its concurrency of them)."""
    n, concurrency = 300, 4
    docs = [f"doc-{i:04d}" for i in range(n)]
    effects = tmp_path / "effects.txt"
    cli.env.update({EFFECTS_ENV: str(effects), SECONDS_ENV: "0.01"})
    cli.env["DURABLE_GRAPH_LEASE_SECONDS"] = "3"
    cli.start_detached(FANOUT, ["fan"], {"documents": docs})
    args = ("worker", "--until-idle", "--json", "--visibility-timeout", "3")

    def spawn() -> subprocess.Popen[str]:
        return cli.spawn(*args, "--concurrency", str(concurrency))

    victim, other = spawn(), spawn()
    try:
        wait_until(
            lambda: (
                sum(pid == victim.pid for _, pid in _effects(effects)) >= 10
                and len(_effects(effects)) >= n // 3
            ),
            "a third of the fan-out",
        )
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        killed_at = len(_effects(effects))
        finish([other, spawn()])
    finally:
        for proc in (victim, other):
            if proc.poll() is None:
                proc.kill()
    assert killed_at < n, "the fan-out was over before the kill"
    assert cli.ran("fan") == [
        (0, "input", [], "running"),
        (1, "node", ["split"], "running"),
        (2, "node", ["work"], "running"),
        (3, "node", ["collect"], "completed"),
    ]
    summary = cli.json("status", "fan")["values"]["summary"]
    assert summary["count"] == n and summary["distinct"] == n
    assert cli.json("verify", "fan")["ok"] is True
    by_doc: dict[str, list[int]] = defaultdict(list)
    for doc, pid in _effects(effects):
        by_doc[doc].append(pid)
    assert sorted(by_doc) == docs
    twice = {doc: pids for doc, pids in by_doc.items() if len(pids) > 1}
    assert len(twice) <= concurrency, twice
    assert all(len(p) == 2 and p[0] == victim.pid for p in twice.values()), (twice, victim.pid)
