"""SIGKILL of the inline runner between the commit of step k and the commit of step k+1.

The runner of `durable-graph run` goes on with the thread it runs without receiving: the
commit of step k writes the next task's queue row already leased to it (worker.py `inline`).
Killed after that commit, with the next task's effect performed and recorded but its step not
committed, the process leaves that leased row behind; another worker takes it when the lease
runs out, and the thread completes with the effect replayed from its record, not performed
again.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.e2e.conftest import Cli, effect_folder, kill, wait_while_running

GRAPH = "tests.e2e.effect_graphs:order_graph"
LEASE = 2.0  # seconds: the visibility timeout of every process here
SLACK = 10.0  # process start-up and polling, generously


def _recorded(cli: Cli) -> bool:
    """Whether an effect's result is recorded (False while the store is still being made)."""
    done = "SELECT 1 FROM records WHERE key LIKE 'fx#%' AND body LIKE '%\"done\"%'"
    try:
        return (cli.home / "state.db").exists() and bool(cli.rows(done))
    except sqlite3.OperationalError:  # the file is there, its tables not yet
        return False


def test_run_killed_between_two_commits_completes_on_restart_without_a_second_effect(
    cli: Cli, tmp_path: Path
) -> None:
    """Given `run` of a two-step graph (take_order, then charge with a `ctx.step` effect),
    SIGKILLed after step 1 committed and the charge was performed and recorded, before step 2
    commits, then the charge's queue row was written leased by step 1's commit (never
    received); a worker started afterwards takes it once the lease ran out and completes the
    thread within about a lease, the receiver saw the charge once, and the chain verifies."""
    folder = effect_folder(cli, tmp_path, LEASE)
    proc = cli.spawn(
        "run", GRAPH, "--thread", "o1", "--input", "{}",
        extra_env={"DG_AFTER_EFFECT_SLEEP": "60"},
    )  # fmt: skip
    wait_while_running(proc, lambda: _recorded(cli), "the effect was never recorded")
    kill(proc)
    killed_at = time.monotonic()

    assert cli.rows("SELECT MAX(step) FROM checkpoints WHERE thread_id = 'o1'") == [(1,)]
    # The charge's row: leased by the commit of step 1, delivered once (to the killed runner),
    # its lease not yet run out; a receive would have found nothing else to take.
    rows = cli.rows("SELECT dedup_id, receipt IS NOT NULL, receive_count, body FROM queue")
    assert [(r[0], r[1], r[2]) for r in rows] == [("o1:1:1:charge", 1, 1)], rows
    assert '"carried"' not in rows[0][3]  # a later delivery reads the step from the store
    assert cli.json("status", "o1")["status"] == "running"

    done = cli.run("worker", "--until-idle", "--json", "--visibility-timeout", str(LEASE))
    elapsed = time.monotonic() - killed_at

    assert done.returncode == 0, done.stderr
    status = cli.json("status", "o1")
    assert status["status"] == "completed", status
    assert elapsed < LEASE + SLACK, f"took {elapsed:.1f}s after the kill"
    received = (folder / "received").read_text().split("\n")[:-1]
    assert len(received) == 1, received  # replayed from its record, not performed again
    key = received[0].split()[0]
    assert status["values"]["receipt"] == f"charged:{key[:8]}"
    assert cli.rows("SELECT COUNT(*) FROM queue") == [(0,)]
    assert cli.json("verify", "o1")["ok"] is True
