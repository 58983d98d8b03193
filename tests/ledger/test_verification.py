"""The tamper suite: each way of rewriting history is caught by `durable-graph verify`, which
names the exact step and check. The attacker edits the real SQLite file and payload folder."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from durable_graph.backends.local import local_backend
from durable_graph.canonical import compact_json
from durable_graph.checkpoint import Checkpoint, ParentRef
from durable_graph.runtime import CompiledGraph
from durable_graph.signing import Ed25519Signer, make_signature
from durable_graph.verification import verify_thread
from tests.helpers import row_text, stored_rows
from tests.ledger.conftest import THREAD, Cli


def body(cli: Cli, step: int) -> str:
    rows = cli.sql("SELECT body FROM checkpoints WHERE thread_id=? AND step=?", (THREAD, step))
    return row_text(rows[0][0])


def set_body(cli: Cli, step: int, text: str) -> None:
    cli.sql("UPDATE checkpoints SET body=? WHERE thread_id=? AND step=?", (text, THREAD, step))


def logical(home: Path) -> list[Checkpoint]:
    """The chain as a fresh reader rebuilds it (what an attacker who knows the format sees)."""
    backend = local_backend(home)
    try:
        return backend.checkpoints.list_checkpoints(THREAD, newest_first=False)
    finally:
        backend.close()


def rewrite_from(cli: Cli, step: int, **update: object) -> list[Checkpoint]:
    """Change the logical record `step`, recompute every later hash and link, store them all
    as plain full rows: a consistent chain, as if nobody had touched it."""
    records = logical(cli.home)
    out = records[:step]
    for record in records[step:]:
        fields = dict(update) if record.step == step else {}
        previous = out[-1]
        fields["prev_hash"] = previous.hash
        fields["parent"] = ParentRef(thread_id=THREAD, step=previous.step, hash=previous.hash)
        forged = record.model_copy(update=fields).sealed()
        set_body(cli, record.step, compact_json(forged.stored().model_dump(mode="json")))
        out.append(forged)
    return out


def verify(cli: Cli) -> dict[str, object]:
    """What `durable-graph verify --json` reports, from a fresh store (another process's view:
    no cache). The command itself runs as a process in the first and the last tests."""
    backend = local_backend(cli.home)
    try:
        report = verify_thread(backend, THREAD).as_json()
    finally:
        backend.close()
    assert report["ok"] is False
    return report


def test_untouched_thread_verifies_with_its_signatures(chat: CompiledGraph, cli: Cli) -> None:
    report = cli.json("verify", THREAD)
    assert report["ok"] is True and report["checked"] == 9 and report["signed_steps"] == [6, 8]
    assert "signature" in report["checks"] and "transition" in report["checks"]


def test_modified_record_fails_its_hash(chat: CompiledGraph, cli: Cli) -> None:
    """Given a recorded LLM turn edited everywhere in a stored record (its io, hashed inline,
    and the chunk it appended), then `hash` and `state` at that step."""
    text = body(cli, 3)
    assert '"changes"' in text and "turn 2:" in text
    set_body(cli, 3, text.replace("turn 2:", "turn 9:"))
    report = cli.json("verify", THREAD, expect=1)
    assert (report["first_bad_step"], report["check"]) == (3, "hash")
    assert report["first_by_check"] == {"hash": 3, "state": 3}
    printed = cli.run("verify", THREAD)
    assert printed.returncode == 1 and printed.stdout.startswith("FAILED: c1: step 3: hash:")


def test_edited_chunk_fails_its_digest(chat: CompiledGraph, cli: Cli) -> None:
    """Given only the turn counter edited in the stored change (its digest kept), then `state`
    at that step: the record's hash covers the digest, the digest the value."""
    row = json.loads(body(cli, 3))
    row["changes"]["turns"]["v"] = 99
    set_body(cli, 3, json.dumps(row))
    report = verify(cli)
    assert (report["first_bad_step"], report["check"]) == (3, "state")
    assert report["first_by_check"] == {"state": 3}


def test_edited_digest_fails_the_hash(chat: CompiledGraph, cli: Cli) -> None:
    """Given a change's digest replaced by the digest of another value (with its salt), then
    `hash` at that step: the digest is what the record's hash covers."""
    row = json.loads(body(cli, 3))
    row["changes"]["turns"]["d"] = "0" * 64
    set_body(cli, 3, json.dumps(row))
    report = verify(cli)
    assert (report["first_bad_step"], report["check"]) == (3, "hash")


def test_modified_record_with_recomputed_hash_breaks_the_next_link(
    chat: CompiledGraph, cli: Cli
) -> None:
    """Given step 3 rewritten with a correct new hash (and nothing after it), then `link` at 4."""
    record = logical(cli.home)[3]
    forged = record.model_copy(update={"created_at": "2020-01-01T00:00:00.000000Z"}).sealed()
    set_body(cli, 3, compact_json(forged.stored().model_dump(mode="json")))
    report = verify(cli)
    assert (report["first_bad_step"], report["check"]) == (4, "link")


def test_deleted_record_breaks_contiguity(chat: CompiledGraph, cli: Cli) -> None:
    cli.sql("DELETE FROM checkpoints WHERE thread_id=? AND step=4", (THREAD,))
    report = verify(cli)
    assert (report["first_bad_step"], report["check"]) == (4, "contiguity")


def test_inserted_record_breaks_the_link_after_it(chat: CompiledGraph, cli: Cli) -> None:
    """Given a forged, correctly sealed record inserted as step 5 and the later rows renumbered,
    then the record that followed no longer links: `link` at 6."""
    records = logical(cli.home)
    for step, row in sorted(stored_rows(cli.home / "state.db", THREAD).items(), reverse=True):
        if step >= 5:
            row["step"] = step + 1
            cli.sql(
                "UPDATE checkpoints SET step = ?, body = ? WHERE thread_id=? AND step = ?",
                (step + 1, compact_json(row), THREAD, step),
            )
    inserted = (
        records[4]
        .model_copy(
            update={
                "step": 5,
                "changes": {},  # changes nothing: its state root is step 4's, as it must be
                "prev_hash": records[4].hash,
                "parent": ParentRef(thread_id=THREAD, step=4, hash=records[4].hash),
            }
        )
        .sealed()
    )
    cli.sql(
        "INSERT INTO checkpoints (thread_id, step, body) VALUES (?, 5, ?)",
        (THREAD, compact_json(inserted.stored().model_dump(mode="json"))),
    )
    report = verify(cli)
    assert (report["first_bad_step"], report["check"]) == (6, "link")


def test_record_appended_after_completion_is_an_illegal_transition(
    chat: CompiledGraph, cli: Cli
) -> None:
    """Given a well-formed step 9 appended after the completed step 8 (valid hash and link),
    then `transition` names step 9, and the unsigned head is reported as well."""
    head = logical(cli.home)[-1]
    extra = head.model_copy(
        update={
            "step": 9,
            "source": "update",
            "prev_hash": head.hash,
            "parent": ParentRef(thread_id=THREAD, step=8, hash=head.hash),
        }
    ).sealed()
    cli.sql(
        "INSERT INTO checkpoints (thread_id, step, body) VALUES (?, 9, ?)",
        (THREAD, compact_json(extra.stored().model_dump(mode="json"))),
    )
    report = verify(cli)
    assert (report["first_bad_step"], report["check"]) == (9, "transition")
    assert report["first_by_check"] == {"transition": 9, "signature": 9}


def test_reordered_records_break_contiguity(chat: CompiledGraph, cli: Cli) -> None:
    three, four = body(cli, 3), body(cli, 4)
    set_body(cli, 3, four)
    set_body(cli, 4, three)
    report = verify(cli)
    assert (report["first_bad_step"], report["check"]) == (3, "contiguity")


def test_truncated_tail_is_caught_by_the_newest_signature(chat: CompiledGraph, cli: Cli) -> None:
    """Given the last two steps deleted and the thread record edited to match, then only the
    signed head still says 9 steps: `signature` at step 7, the first missing one."""
    cli.sql("DELETE FROM checkpoints WHERE thread_id=? AND step >= 7", (THREAD,))
    cli.sql(
        "UPDATE threads SET body = json_set(body, '$.head_step', 6, '$.status', 'suspended') "
        "WHERE thread_id=?",
        (THREAD,),
    )
    report = verify(cli)
    assert (report["first_bad_step"], report["check"]) == (7, "signature")
    assert "names 9 steps, the chain has 7" in str(report["reason"])


def test_truncated_tail_with_thread_record_intact(chat: CompiledGraph, cli: Cli) -> None:
    cli.sql("DELETE FROM checkpoints WHERE thread_id=? AND step = 8", (THREAD,))
    report = verify(cli)
    assert report["first_by_check"] == {"contiguity": 8, "signature": 8}


def test_replaced_payload_fails_its_digest(chat: CompiledGraph, cli: Cli) -> None:
    """Given the offloaded 10 KB attachment's chunk file rewritten, then `payload` at step 0,
    the record whose change refers to it."""
    files = [p for p in (cli.home / "payloads").rglob("*") if p.is_file()]
    attachment = [p for p in files if b"A" * 10_000 in p.read_bytes()]
    assert len(attachment) == 1
    attachment[0].write_bytes(attachment[0].read_bytes().replace(b"A" * 10_000, b"B" * 10_000))
    report = verify(cli)
    assert (report["first_bad_step"], report["check"]) == (0, "payload")


def test_rewritten_chain_fails_the_signature_it_no_longer_matches(
    chat: CompiledGraph, cli: Cli
) -> None:
    """Given step 3 changed and every later hash and link recomputed, then hashes and links
    all hold, but the signed head at step 6 no longer names the stored record."""
    rewrite_from(cli, 3, created_at="2020-01-01T00:00:00.000000Z")
    report = verify(cli)
    assert (report["first_bad_step"], report["check"]) == (6, "signature")
    assert report["first_by_check"] == {"signature": 6}


def test_chain_re_signed_with_another_key_is_rejected(chat: CompiledGraph, cli: Cli) -> None:
    """Given a rewritten chain whose signatures were re-made with the attacker's own key, then
    `signature` at step 6: signed by a key that is not the ledger key."""
    forged = rewrite_from(cli, 3, created_at="2020-01-01T00:00:00.000000Z")
    attacker = Ed25519Signer.generate()
    for step in (6, 8):
        signature = make_signature(attacker, forged[step], "2026-01-01T00:00:00.000000Z")
        cli.sql(
            "UPDATE records SET body=? WHERE thread_id=? AND key=?",
            (json.dumps(signature.model_dump(mode="json")), THREAD, f"sig#{step}"),
        )
    report = verify(cli)
    assert (report["first_bad_step"], report["check"]) == (6, "signature")
    assert "not a trusted ledger key" in str(report["reason"])


def test_forged_signature_bytes_are_rejected(chat: CompiledGraph, cli: Cli) -> None:
    (raw,) = cli.sql("SELECT body FROM records WHERE thread_id=? AND key='sig#6'", (THREAD,))[0]
    signature = json.loads(raw)
    signature["signature"] = base64.b64encode(b"\x00" * 64).decode()
    cli.sql(
        "UPDATE records SET body=? WHERE thread_id=? AND key='sig#6'",
        (json.dumps(signature), THREAD),
    )
    report = verify(cli)
    assert (report["first_bad_step"], report["check"]) == (6, "signature")


def test_verify_all_summarises_every_thread(chat: CompiledGraph, cli: Cli) -> None:
    """Given two healthy threads and one tampered, then `verify --all` counts them and fails."""
    from durable_graph.timetravel import fork

    fork(chat, THREAD, 2, "c2")
    chat.run_until_settled("c2")
    cli.sql("DELETE FROM checkpoints WHERE thread_id='c2' AND step=1")
    summary = cli.json("verify", "--all", expect=1)
    assert (summary["threads"], summary["verified"], summary["failed"]) == (2, 1, 1)
    bad = [r for r in summary["reports"] if not r["ok"]]
    assert bad[0]["thread_id"] == "c2" and bad[0]["check"] == "contiguity"
    text = cli.run("verify", "--all")
    assert text.returncode == 1 and "2 threads: 1 ok, 1 failed" in text.stdout
