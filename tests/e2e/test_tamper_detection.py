"""Changing any stored checkpoint or payload byte makes `verify` fail and name the step."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Cli
from tests.helpers import row_text

EMAIL = "examples.email_approval:graph"


def finished(cli: Cli, thread_id: str, prompt: str = "pay") -> None:
    cli.json("run", EMAIL, "--thread", thread_id, "--input", json.dumps({"user_prompt": prompt}))
    cli.json("resume", thread_id, "--values", '{"approved": true}', "--as-node", "human_review")
    assert cli.json("verify", thread_id)["ok"] is True


def test_edited_value_is_caught_at_its_step(cli: Cli) -> None:
    """Given the drafted risk edited in the stored change, then `state` at that step: the
    value no longer matches the digest the record's hash covers."""
    finished(cli, "t1")
    body = row_text(cli.rows("SELECT body FROM checkpoints WHERE thread_id='t1' AND step=1")[0][0])
    cli.execute(
        "UPDATE checkpoints SET body=? WHERE thread_id='t1' AND step=1",
        (body.replace("high", "low"),),
    )
    report = cli.json("verify", "t1", expect=1)
    assert report["ok"] is False and report["first_bad_step"] == 1
    assert report["check"] == "state"


def test_recomputed_hash_breaks_the_next_link(cli: Cli) -> None:
    """Given an attacker who edits step 1 and recomputes its hash, then the signature made when
    the thread suspended at step 1 and the link from step 2 no longer match."""
    from durable_graph.checkpoint import Checkpoint

    finished(cli, "t2")
    body = row_text(cli.rows("SELECT body FROM checkpoints WHERE thread_id='t2' AND step=1")[0][0])
    forged = Checkpoint.from_stored_json(body.replace('"op":"set"', '"op":"keep"', 1))
    forged = forged.with_io_restored().sealed()
    cli.execute(
        "UPDATE checkpoints SET body=? WHERE thread_id='t2' AND step=1", (forged.to_stored_json(),)
    )
    report = cli.json("verify", "t2", expect=1)
    # The signed head of the suspension at step 1 no longer matches, and step 2's link breaks.
    assert report["first_bad_step"] == 1 and report["check"] == "signature"
    assert report["first_by_check"] == {"signature": 1, "link": 2}


def test_deleted_step_is_caught(cli: Cli) -> None:
    finished(cli, "t3")
    cli.execute("DELETE FROM checkpoints WHERE thread_id='t3' AND step=2")
    report = cli.json("verify", "t3", expect=1)
    assert report["first_bad_step"] == 2


def test_replaced_payload_bytes_are_caught(cli: Cli) -> None:
    finished(cli, "t4", prompt="long " * 4000)
    files = [p for p in (cli.home / "payloads").rglob("*") if p.is_file()]
    prompt = [p for p in files if b'"v":"long long' in p.read_bytes()]
    assert len(prompt) == 1  # the prompt's chunk, offloaded once and shared by every step
    prompt[0].write_bytes(prompt[0].read_bytes().replace(b"long", b"LONG", 1))
    report = cli.json("verify", "t4", expect=1)
    assert report["first_bad_step"] == 0 and report["check"] == "payload"


def test_garbage_record_is_named(cli: Cli, tmp_path: Path) -> None:
    finished(cli, "t5")
    cli.execute("UPDATE checkpoints SET body='{\"thread_id\": 1}' WHERE thread_id='t5' AND step=3")
    report = cli.json("verify", "t5", expect=1)
    assert report["first_bad_step"] == 3
