"""Processes killed with SIGKILL mid-node, racing workers, racing approvers."""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.conftest import Cli, kill
from tests.helpers import row_text

SLOW = "tests.graphs:slow_graph"
EMAIL = "examples.email_approval:graph"


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def marks(tmp_path: Path, name: str) -> int:
    path = tmp_path / "marks" / name
    return len(path.read_text().splitlines()) if path.exists() else 0


def assert_each_step_once(cli: Cli, thread_id: str) -> None:
    steps = [
        r[0]
        for r in cli.rows(
            "SELECT step FROM checkpoints WHERE thread_id = ? ORDER BY step", (thread_id,)
        )
    ]
    assert steps == list(range(len(steps)))
    history = cli.json("history", thread_id)
    ran = [h["node"] for h in history if h["source"] == "node"]
    assert sorted(ran) == ["first", "last", "slow"]


def kill_mid_node_then_finish(cli: Cli) -> None:
    """Given `run` on thread k1 SIGKILLed while `slow` sleeps (its lease 2 s), when a worker
    starts after the lease ran out, then it commits the two steps left and k1 completes; `slow`
    ran again, its recorded effect once (the marks are in the folder above the CLI's home)."""
    victim = cli.spawn(
        "run",
        SLOW,
        "--thread",
        "k1",
        "--input",
        "{}",
        extra_env={"DG_SLOW_SECONDS": "30", "DURABLE_GRAPH_LEASE_SECONDS": "2"},
    )
    wait_for(cli.home.parent / "marks" / "slow-started")
    kill(victim)
    assert cli.json("status", "k1")["status"] == "running"

    cli.env["DG_SLOW_SECONDS"] = "0.2"
    stats = cli.json("worker", "--until-idle", "--visibility-timeout", "5")
    assert stats["committed"] == 2
    status = cli.json("status", "k1")
    assert status["status"] == "completed" and status["values"]["log"] == ["first", "slow", "last"]
    assert marks(cli.home.parent, "slow-started") == 2  # the node ran again (at least once) ...
    assert marks(cli.home.parent, "slow-effect") == 1  # ... but its recorded effect happened once


def test_worker_killed_mid_node_is_finished_by_a_new_worker(cli: Cli, tmp_path: Path) -> None:
    """Given a run killed with SIGKILL while `slow` sleeps, when a new worker starts after the
    lease expires, then the thread completes, each step is committed once, the recorded side
    effect happened once, and verify passes."""
    kill_mid_node_then_finish(cli)
    assert marks(tmp_path, "first") == 1 and marks(tmp_path, "last") == 1
    assert_each_step_once(cli, "k1")
    assert cli.json("verify", "k1")["ok"] is True


def test_two_workers_racing_one_thread_commit_each_step_once(cli: Cli, tmp_path: Path) -> None:
    """Given several detached threads, when two worker processes drain the queue at once, then
    every step of every thread is committed once and every effect happens once."""
    threads = [f"r{i}" for i in range(4)]
    for tid in threads:
        cli.json("run", SLOW, "--thread", tid, "--input", "{}", "--detach")
    env = {"DG_SLOW_SECONDS": "0.3"}
    workers = [cli.spawn("worker", "--until-idle", "--json", extra_env=env) for _ in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    for tid in threads:
        assert cli.json("status", tid)["status"] == "completed"
        assert_each_step_once(cli, tid)
    assert marks(tmp_path, "slow-effect") == len(threads)
    assert marks(tmp_path, "last") == len(threads)


def test_redelivered_transition_changes_nothing(cli: Cli) -> None:
    """Given a completed thread, when an old transition message is queued again, then the
    worker recognises the committed step, commits nothing and leaves the chain intact."""
    cli.json("run", EMAIL, "--thread", "d1", "--input", '{"user_prompt": "x"}')
    cli.json("resume", "d1", "--values", '{"approved": true}', "--as-node", "human_review")
    before = cli.stored()
    body = row_text(cli.rows("SELECT body FROM checkpoints WHERE thread_id='d1' AND step=2")[0][0])
    import json

    checkpoint = json.loads(body)
    message = {
        "thread_id": "d1",
        "step": 2,
        "task": checkpoint["next"][0],
        "graph": checkpoint["graph"],
        "parallel": 1,
        "carried": None,
    }
    cli.execute(
        "INSERT INTO queue (dedup_id, group_id, thread_id, body) VALUES (?,?,?,?)",
        ("again", "d1", "d1", json.dumps(message)),
    )
    stats = cli.json("worker", "--until-idle")
    assert stats == {"committed": 0, "duplicates": 1, "failed_threads": 0, "retried": 0}
    assert cli.stored() == before


def test_two_concurrent_resumes_exactly_one_wins(cli: Cli, tmp_path: Path) -> None:
    """Given a suspended thread, when two processes approve it at the same moment, then one
    wins, the other exits 2 with a clear message, and send_email ran once."""
    cli.json("run", EMAIL, "--thread", "c1", "--input", '{"user_prompt": "x"}')
    args = [
        "resume",
        "c1",
        "--values",
        '{"approved": true}',
        "--as-node",
        "human_review",
        "--expected-step",
        "1",
    ]
    racers = [cli.spawn(*args, "--actor", name) for name in ("alice", "bob")]
    results = [(p.wait(timeout=60), p.communicate()[1]) for p in racers]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "moved on" in loser or "not suspended" in loser
    assert len(list((cli.home / "outbox" / "sent").iterdir())) == 1
    history = cli.json("history", "c1")
    assert [h["source"] for h in history].count("update") == 1
