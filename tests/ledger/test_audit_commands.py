"""The time-travel and audit commands, run as a user would: JSON shapes and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from durable_graph.runtime import CompiledGraph
from tests.ledger.conftest import THREAD, Cli


def test_diff_fork_replay_from_the_command_line(chat: CompiledGraph, cli: Cli) -> None:
    """Given the chat thread, then `diff`, `fork` and `replay` work from the shell and the fork's
    lineage shows in `status` and `history`."""
    changes = cli.json("diff", THREAD, "6", "7")["changes"]
    assert changes == [{"field": "approved", "change": "changed", "old": None, "new": True}]
    status = cli.json(
        "fork", THREAD, "--step", "6", "--new-thread", "c1-x", "--values", '{"approved": false}'
    )
    assert status["status"] == "suspended" and status["origin"]["thread_id"] == THREAD
    assert status["origin"]["step"] == 6 and status["values"]["approved"] is False
    history = cli.json("history", "c1-x")
    assert history[0]["source"] == "fork" and history[0]["parent"]["step"] == 6
    assert history[0]["actor"]["kind"] == "human"
    text = cli.run("history", "c1-x").stdout
    assert text.startswith(f"forked from {THREAD} step 6")
    replayed = cli.json("replay", THREAD, "--step", "3")
    assert replayed["verdict"] == "reproduced" and replayed["reproducible"] is True
    human = cli.json("replay", THREAD, "--step", "7")
    assert human["verdict"] == "not_applicable"


def test_resume_records_the_approver(app: CompiledGraph, cli: Cli) -> None:
    """Given a suspended thread resumed from the CLI with --actor, then that step's actor is
    the human approver; without --actor it is the login name, never a placeholder."""
    app.invoke({}, thread_id="r1")
    app.invoke({}, thread_id="r2")
    cli.json("resume", "r1", "--values", '{"approved": true}', "--actor", "dana@example.com")
    cli.json("resume", "r2", "--values", '{"approved": true}')
    one = [r for r in cli.json("history", "r1") if r["source"] == "update"]
    two = [r for r in cli.json("history", "r2") if r["source"] == "update"]
    assert one[0]["actor"] == {"kind": "human", "id": "dana@example.com"}
    assert two[0]["actor"]["kind"] == "human" and two[0]["actor"]["id"] not in ("", "cli")


def test_sign_on_demand_and_verify_text_output(chat: CompiledGraph, cli: Cli) -> None:
    """Given a running fork (unsigned head), when `sign` is run, then its head is signed and
    verify lists it; a second `sign` returns the same signature."""
    cli.json("fork", THREAD, "--step", "2", "--new-thread", "c1-s", "--detach")
    first = cli.json("sign", "c1-s")
    again = cli.json("sign", "c1-s")
    assert first == again and first["step"] == 0 and first["step_count"] == 1
    done = cli.run("verify", "c1-s")
    assert done.returncode == 0 and "signed heads at steps: 0" in done.stdout


def test_verify_usage_and_unknown_threads(cli: Cli, tmp_path: Path) -> None:
    assert cli.run("verify").returncode == 2
    assert cli.run("verify", "t", "--all").returncode == 2
    missing = cli.run("verify", "nope")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert cli.run("diff", "nope", "0", "1").returncode == 2
    bad_values = cli.run("fork", "nope", "--step", "0", "--new-thread", "x", "--values", "[1]")
    assert bad_values.returncode == 2


def test_export_reports_what_it_wrote(chat: CompiledGraph, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    doc = cli.json("export", THREAD, "--out", str(out))
    bundle = json.loads(out.read_text())
    assert doc["records"] == len(bundle["records"]) == 9
    assert doc["signatures"] == 2 and doc["key_ids"] == [bundle["public_keys"][0]["key_id"]]
