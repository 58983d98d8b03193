"""The seed's exercise with real, separate processes: run → suspend → exit; later another
process approves (or rejects) and the email lands in the outbox once."""

from __future__ import annotations

import itertools
from pathlib import Path

from tests.e2e.conftest import Cli

GRAPH = "examples.email_approval:graph"


def test_execution_1_suspends_and_exits_then_execution_2_sends(cli: Cli, tmp_path: Path) -> None:
    # Execution 1: start, draft, suspend, exit 0; nothing left queued.
    first = cli.json(
        "run", GRAPH, "--thread", "tx-99812", "--input", '{"user_prompt": "pay the new supplier"}'
    )
    assert first["status"] == "suspended"
    assert first["next"] == ["human_review"]
    assert first["values"]["risk"] == "high"
    assert cli.rows("SELECT COUNT(*) FROM queue") == [(0,)]
    status = cli.json("status", "tx-99812")
    assert status == first

    # Execution 2: a different process, given only the thread id and the decision.
    second = cli.json(
        "resume",
        "tx-99812",
        "--values",
        '{"approved": true}',
        "--as-node",
        "human_review",
        "--actor",
        "alice@example.com",
    )
    assert second["status"] == "completed"
    assert second["values"]["outcome"] == "sent"
    assert second["values"]["draft"] == first["values"]["draft"]
    sent = list((cli.home / "outbox" / "sent").iterdir())
    assert len(sent) == 1 and "USD 250,000" in sent[0].read_text()

    # The user reads the whole history, any past state, and verifies the chain.
    history = cli.json("history", "tx-99812")
    assert [h["step"] for h in history] == [3, 2, 1, 0]
    assert set(history[0]) >= {
        "step",
        "node",
        "source",
        "status",
        "hash",
        "prev_hash",
        "created_at",
    }
    assert [h["node"] for h in history] == ["send_email", "human_review", "draft_email", None]
    assert all(newer["prev_hash"] == older["hash"] for newer, older in itertools.pairwise(history))
    past = cli.json("show", "tx-99812", "--step", "1")
    assert past["status"] == "suspended" and past["values"]["approved"] is None
    assert past["hash"] == history[2]["hash"]
    verified = cli.json("verify", "tx-99812")
    assert (verified["ok"], verified["thread_id"], verified["checked"]) == (True, "tx-99812", 4)


def test_rejection_ends_the_thread_without_sending(cli: Cli, tmp_path: Path) -> None:
    cli.json("run", GRAPH, "--thread", "tx-2", "--input", '{"user_prompt": "pay"}')
    done = cli.json(
        "resume", "tx-2", "--values", '{"approved": false}', "--as-node", "human_review"
    )
    assert done["status"] == "completed" and done["values"]["outcome"] == "rejected"
    assert not (cli.home / "outbox" / "sent").exists()


def test_detached_run_is_finished_by_a_worker(cli: Cli) -> None:
    started = cli.json(
        "run", GRAPH, "--thread", "tx-3", "--input", '{"user_prompt": "x"}', "--detach"
    )
    assert started["status"] == "running" and started["step"] == 0
    assert cli.rows("SELECT COUNT(*) FROM queue") == [(1,)]
    worker = cli.json("worker", "--until-idle")
    assert worker["committed"] == 1
    assert cli.json("status", "tx-3")["status"] == "suspended"
