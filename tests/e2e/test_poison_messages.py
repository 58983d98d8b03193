"""A poison row in the embedded queue (a body no worker can parse) among healthy ones, drained
by real `durable-graph worker --until-idle` processes on a real SQLite file: the poison rows end
in `dead_letters` with their reason, the thread one of them names is failed with that reason,
the healthy threads complete, and every worker exits 0."""

from __future__ import annotations

import json

from tests.e2e.conftest import Cli

SLOW = "tests.graphs:slow_graph"


def test_poison_rows_are_dead_lettered_and_the_healthy_threads_complete(cli: Cli) -> None:
    healthy = [f"h{i}" for i in range(4)]
    for tid in [*healthy, "p1"]:
        cli.json("run", SLOW, "--thread", tid, "--input", "{}", "--detach")
    # p1's queued transition is garbled; two more rows name no thread: one holds JSON of the
    # wrong shape, one bytes that are not even UTF-8.
    cli.execute("UPDATE queue SET body = ? WHERE thread_id = 'p1'", ('{"thread_id": "p1", "st',))
    cli.execute(
        "INSERT INTO queue (dedup_id, group_id, thread_id, body) VALUES (?,?,?,?)",
        ("ghost:0:x", "ghost", "ghost", json.dumps({"thread_id": "ghost", "step": "zero"})),
    )
    cli.execute(
        "INSERT INTO queue (dedup_id, group_id, thread_id, body) "
        "VALUES ('junk', 'junk', 'junk', CAST(X'80FF7B' AS TEXT))"
    )

    env = {"DG_SLOW_SECONDS": "0"}
    workers = [cli.spawn("worker", "--until-idle", "--json", extra_env=env) for _ in range(2)]
    failed = 0
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        assert "Traceback" not in err
        failed += json.loads(out)["failed_threads"]

    assert failed == 1
    for tid in healthy:
        assert cli.json("status", tid)["status"] == "completed"
    poisoned = cli.json("status", "p1")
    assert poisoned["status"] == "failed"
    assert "malformed transition message" in poisoned["error"]["message"]
    assert cli.rows("SELECT COUNT(*) FROM queue") == [(0,)]
    letters = dict(cli.rows("SELECT dedup_id, reason FROM dead_letters"))
    assert sorted(letters) == ["ghost:0:x", "junk", "p1:0:0:first"]
    assert all(reason.startswith("malformed transition message") for reason in letters.values())
    assert "step" in letters["ghost:0:x"]
    assert cli.json("verify", "p1")["ok"] is True
