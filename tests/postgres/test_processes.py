"""Real processes on a real server: worker processes (as on separate hosts) drain one queue,
workers SIGKILLed mid-step, two approvers racing, bad input refused without a trace."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_crash_and_races import EMAIL, SLOW, kill_mid_node_then_finish, marks
from tests.postgres.cli import STAMP_TRANSACTIONS, PgCli

pytestmark = pytest.mark.slow


def assert_each_step_once(cli: PgCli, thread_id: str) -> None:
    """The thread completed in steps 0..3, stored once each (the primary key allows no
    other): first, slow and last, each once."""
    assert cli.ran(thread_id) == [
        (0, "input", [], "running"),
        (1, "node", ["first"], "running"),
        (2, "node", ["slow"], "running"),
        (3, "node", ["last"], "completed"),
    ]


def test_worker_processes_drain_one_queue_and_commit_each_step_once(
    cli: PgCli, tmp_path: pytest.TempPathFactory
) -> None:
    """Given 8 detached threads, when 3 `durable-graph worker --concurrency 2` processes
    drain the store's one queue at once, each group-committing the tasks it leased, then
    every step of every thread is committed once (24 in all, summed over the workers), each
    recorded effect happened once, more than one process did the work, and some transaction
    committed the steps of several threads (a worker's first lease takes 2 of 8 waiting)."""
    threads = [f"n{i}" for i in range(8)]
    cli.start_detached(SLOW, threads)
    cli.execute(STAMP_TRANSACTIONS)
    env = {"DG_SLOW_SECONDS": "1.0"}  # one worker alone would need 4 s: all take part
    args = ("worker", "--until-idle", "--json", "--concurrency", "2")
    workers = [cli.spawn(*args, extra_env=env) for _ in range(3)]
    stats = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        stats.append(json.loads(out))
    assert sum(s["committed"] for s in stats) == 3 * len(threads), stats
    assert sum(1 for s in stats if s["committed"]) >= 2, stats
    for tid in threads:
        assert_each_step_once(cli, tid)
    assert marks(cli.home.parent, "slow-effect") == len(threads)
    assert marks(cli.home.parent, "last") == len(threads)
    assert cli.rows("SELECT count(*) FROM queue") == [(0,)]
    [(steps, transactions)] = cli.rows(
        "SELECT count(*), count(DISTINCT txid) FROM checkpoints WHERE step > 0"
    )
    assert steps == 3 * len(threads) and transactions < steps, (steps, transactions)


def test_a_worker_killed_mid_node_is_finished_by_another(cli: PgCli) -> None:
    """Given a run SIGKILLed while `slow` sleeps, when a worker starts after its lease ran
    out, then the thread completes, each step once, the effect once, and verify passes."""
    kill_mid_node_then_finish(cli)
    assert_each_step_once(cli, "k1")
    assert cli.json("verify", "k1")["ok"] is True


def test_two_approvers_racing_exactly_one_wins(cli: PgCli) -> None:
    """Given a suspended thread, when two processes approve it at the same moment, then one
    wins, the other exits 2 saying why, and send_email ran once."""
    cli.json("run", EMAIL, "--thread", "c1", "--input", '{"user_prompt": "x"}')
    args = ["resume", "c1", "--values", '{"approved": true}', "--as-node", "human_review"]
    racers = [cli.spawn(*args, "--expected-step", "1", "--actor", n) for n in ("alice", "bob")]
    results = [(p.wait(timeout=60), p.communicate()[1]) for p in racers]
    assert sorted(code for code, _ in results) == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "moved on" in loser or "not suspended" in loser
    assert len(list((cli.home / "outbox" / "sent").iterdir())) == 1
    history = cli.json("history", "c1")
    assert [h["source"] for h in history].count("update") == 1


def stored(cli: PgCli) -> list[tuple[object, ...]]:
    """Everything the store holds that a bad request must not change."""
    return (
        cli.rows("SELECT thread_id, step, body FROM checkpoints ORDER BY thread_id, step")
        + cli.rows("SELECT thread_id, revision, body FROM threads ORDER BY thread_id")
        + cli.rows("SELECT thread_id, key, version, body FROM records ORDER BY thread_id, key")
        + cli.rows("SELECT dedup_id, receipt FROM queue ORDER BY id")
        + cli.rows("SELECT sha256 FROM payloads ORDER BY sha256")
    )


BAD = [
    (["resume", "nope", "--values", '{"approved": true}'], "thread 'nope' does not exist"),
    (["resume", "b1", "--values", '{"approved": tru}'], "--values is not valid JSON"),
    (
        ["resume", "b1", "--values", '{"approved": "maybe"}', "--as-node", "human_review"],
        "field 'approved'",
    ),
    (["resume", "b1", "--as-node", "human_review", "--expected-step", "0"], "moved on"),
    (
        ["run", EMAIL, "--thread", "b1", "--input", '{"user_prompt": "again"}'],
        "waits for a decision",
    ),
]


def test_bad_input_is_refused_and_changes_nothing(cli: PgCli) -> None:
    """Given a suspended thread, when each bad command runs, then it exits 2 with a specific
    message and no traceback, and no row of the store changed."""
    cli.json("run", EMAIL, "--thread", "b1", "--input", '{"user_prompt": "x"}')
    before = stored(cli)
    for args, message in BAD:
        done = cli.run(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert stored(cli) == before


def test_a_store_uri_that_cannot_work_is_one_line_and_exit_2(cli: PgCli) -> None:
    cli.env["DURABLE_GRAPH_STORE"] = cli.uri.replace("/postgres?", "/missing_db?")
    done = cli.run("status", "b1")
    assert done.returncode == 2, done.stderr
    assert "missing_db" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_poison_message_fails_its_thread_with_the_reason(cli: PgCli) -> None:
    """Given a detached thread whose queued message is garbled in the table, when a worker
    runs, then the row goes to dead_letters, the thread fails naming the field, and the
    worker exits normally."""
    cli.start_detached(SLOW, ["p1"])
    cli.execute("UPDATE queue SET body = ? WHERE thread_id = 'p1'", ('{"thread_id": "p1"}',))
    done = cli.run("worker", "--until-idle", "--json")
    assert done.returncode == 0, done.stderr
    status = cli.json("status", "p1")
    assert status["status"] == "failed"
    assert "malformed transition message" in json.dumps(status)
    assert cli.rows("SELECT count(*) FROM dead_letters") == [(1,)]
    assert cli.rows("SELECT count(*) FROM queue") == [(0,)]
