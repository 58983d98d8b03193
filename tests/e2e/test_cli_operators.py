"""`resume --as` with operator keys, as real processes over SQLite: `operator enrol` certifies
keys with the ledger key; operators decide a four-eyes payment as named identities, each
approval signed; every bad key, certificate or flag is exit 2 with nothing stored changed; and
`verify`, `verify --bundle` and a tampered store show what the signatures prove."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from durable_graph.checkpoint import Actor
from durable_graph.verification import verify_thread
from tests.conformance.test_signoff_operators import rechained, swapped_identity
from tests.e2e.conftest import Cli

FOUR_EYES = "examples.four_eyes:graph"
REQUEST = '{"requested_by": "alice@example.com", "amount_eur": 25000}'
DECIDE = ("resume", "p1", "--values", '{"approved": true}', "--as-node", "approve_payment")


def refused(cli: Cli, *args: str, says: str) -> None:
    """`args` exit 2 with `says` on stderr, no traceback, and the store unchanged."""
    before = cli.stored()
    done = cli.run(*args)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert says in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert cli.stored() == before


def test_enrolled_operators_decide_as_themselves_and_verify_checks_them(
    cli: Cli, tmp_path: Path
) -> None:
    """Given a payment requested by alice, waiting for two approvers
    When the ledger key enrols bob (a key it makes) and carol (her public key only), and
    they resume the thread with --as and their keys
    Then bob's approval is recorded and the thread waits, carol's completes it; `show`,
    `verify` and the exported bundle (pinned to the ledger key) name both; and after someone
    with write access swaps bob's identity and recomputes the hashes, `verify` fails at that
    step (exit 1)."""
    cli.json("run", FOUR_EYES, "--thread", "p1", "--input", REQUEST)
    bob_key = tmp_path / "bob.key"
    enrolled = cli.json("operator", "enrol", "bob@example.com", "--key", str(bob_key))
    assert enrolled["key_created"] and enrolled["identity"] == "bob@example.com"
    assert Path(enrolled["certificate"]) == tmp_path / "bob.cert.json"
    ledger = cli.json("ledger-key", "--out", str(tmp_path / "ledger.pem"))
    assert enrolled["issuer"] == ledger["key_id"]
    carol_key = tmp_path / "carol.key"
    carol_pub = tmp_path / "carol.pub"
    cli.json("operator", "enrol", "carol@example.com", "--key", str(carol_key))  # makes a key
    (tmp_path / "carol.cert.json").unlink()  # ...whose public half alone is then enrolled
    carol_pub.write_text(_public_pem(carol_key))
    cli.json("operator", "enrol", "carol@example.com", "--public-key", str(carol_pub))

    doc = cli.json(*DECIDE, "--as", "bob@example.com", "--operator-key", str(bob_key))
    assert doc["status"] == "suspended"
    [first] = doc["approvals"]["approvals"]
    assert (first["actor"]["id"], first["method"], first["via"]) == (
        "operator:bob@example.com", "operator_key", "cli"
    )  # fmt: skip
    refused(cli, *DECIDE, "--as", "bob@example.com", "--operator-key", str(bob_key),
            says="already approved")  # fmt: skip
    done = cli.json(*DECIDE, "--as", "Carol@Example.com", "--operator-key", str(carol_key))
    assert done["status"] == "completed" and done["values"]["outcome"] == "released"

    step = str(doc["step"] + 1)
    shown = cli.run("show", "p1", "--step", step)
    assert "approve by human:operator:carol@example.com (identity: operator_key; via cli)" in (
        shown.stdout
    )
    verified = cli.run("verify", "p1")
    assert verified.returncode == 0, verified.stdout
    assert (
        f"approved at step {step} by human:operator:bob@example.com, "
        "human:operator:carol@example.com"
    ) in verified.stdout
    bundle = tmp_path / "p1.json"
    cli.json("export", "p1", "--out", str(bundle))
    offline = cli.json(
        "verify", "--bundle", str(bundle), "--trusted-key", str(tmp_path / "ledger.pem")
    )
    assert offline["ok"] and offline["approved"][step] == [
        "human:operator:bob@example.com",
        "human:operator:carol@example.com",
    ]
    doc_bundle = json.loads(bundle.read_bytes())
    assert (
        doc_bundle["records"][int(step)]["signoff"]["approvals"][0]["operator"]["certificate"][
            "identity"
        ]
        == "bob@example.com"
    )

    backend = cli.backend()
    try:
        store = backend.checkpoints.inner
        for row in rechained(store.list_checkpoints("p1", newest_first=False), int(step),
                             swapped_identity):  # fmt: skip
            store.rewrite_checkpoint(row)
        assert not verify_thread(backend, "p1").ok
    finally:
        backend.close()
    tampered = cli.run("verify", "p1", "--json")
    assert tampered.returncode == 1, tampered.stdout
    report = json.loads(tampered.stdout)
    assert report["first_by_check"]["signoff"] == int(step)
    assert "hash" not in report["first_by_check"]
    assert any(
        "operator:dave@example.com" in p["reason"] and "certificate names bob" in p["reason"]
        for p in report["problems"]
    )


def test_bad_keys_certificates_and_flags_exit_2_and_write_nothing(cli: Cli, tmp_path: Path) -> None:
    """Given the waiting payment, bob enrolled by this store's ledger key and mallory by
    another store's
    When `resume` is given --as without a key, a key without --as, a key whose certificate
    names someone else, a certificate for another key, --as with --actor, and mallory's
    certificate, or --as on a step no approval rule governs; and `operator enrol` a blank
    identity or neither --key nor --public-key
    Then each exits 2 with a message saying which, and nothing stored changes."""
    cli.json("run", FOUR_EYES, "--thread", "p1", "--input", REQUEST)
    bob_key, carol_key = tmp_path / "bob.key", tmp_path / "carol.key"
    cli.json("operator", "enrol", "bob@example.com", "--key", str(bob_key))
    cli.json("operator", "enrol", "carol@example.com", "--key", str(carol_key))
    other = tmp_path / "other"
    elsewhere = dataclasses.replace(
        cli, home=other, env={**cli.env, "DURABLE_GRAPH_HOME": str(other)}
    )
    mallory_key = tmp_path / "mallory.key"
    elsewhere.json("operator", "enrol", "mallory@example.com", "--key", str(mallory_key))

    refused(cli, *DECIDE, "--as", "bob@example.com", says="needs the operator's key")
    refused(cli, *DECIDE, "--operator-key", str(bob_key), says="go with --as IDENTITY")
    refused(cli, *DECIDE, "--as", "carol@example.com", "--operator-key", str(bob_key),
            says="names 'bob@example.com', not 'carol@example.com'")  # fmt: skip
    refused(cli, *DECIDE, "--as", "bob@example.com", "--operator-key", str(bob_key),
            "--certificate", str(tmp_path / "carol.cert.json"), says="not this key")  # fmt: skip
    refused(cli, *DECIDE, "--as", "bob@example.com", "--operator-key", str(bob_key),
            "--actor", "bob", says="name who decides twice")  # fmt: skip
    refused(cli, *DECIDE, "--as", "mallory@example.com", "--operator-key", str(mallory_key),
            says="not a trusted ledger key")  # fmt: skip
    refused(cli, *DECIDE, "--as", "bob@example.com", "--operator-key", str(tmp_path / "no.key"),
            says="no operator key at")  # fmt: skip
    refused(cli, "operator", "enrol", "  ", "--key", str(tmp_path / "x.key"),
            says="operator identity")  # fmt: skip
    assert not (tmp_path / "x.key").exists()
    refused(cli, "operator", "enrol", "dave@example.com", says="one of the arguments")
    cli.json("run", "examples.email_approval:graph", "--thread", "e1", "--input",
             '{"user_prompt": "pay"}')  # fmt: skip
    refused(cli, "resume", "e1", "--values", '{"approved": true}', "--as-node", "human_review",
            "--as", "bob@example.com", "--operator-key", str(bob_key),
            says="does not wait under an approval rule")  # fmt: skip

    backend = cli.backend()
    try:
        head = backend.checkpoints.head_checkpoint("p1")
        assert head is not None and head.status == "suspended"
        assert backend.checkpoints.get_record("p1", f"approvals#{head.step}") is None
        assert head.actor != Actor(kind="human", id="operator:bob@example.com")
    finally:
        backend.close()


def _public_pem(key_path: Path) -> str:
    private = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
