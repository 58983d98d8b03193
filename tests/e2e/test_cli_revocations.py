"""`operator enrol --expires`, `operator revoke` and `operator list` as real processes over
SQLite: an expired or revoked operator's `resume --as` exits 2 naming the certificate and why,
with nothing stored changed; approvals made before the revocation keep verifying, in the store
and in a bundle; `list` shows each certificate's status; an altered revocation list makes
`operator list` and `verify` exit 1; the ledger key kept outside the store's folder
(`DURABLE_GRAPH_LEDGER_KEY`)."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from durable_graph.clock import ManualClock, SystemClock
from durable_graph.operator_keys import enrol, write_certificate
from durable_graph.operator_registry import OPERATORS_NAMESPACE, REVOCATIONS_KEY, list_enrolment
from durable_graph.signing import Ed25519Signer
from tests.e2e.conftest import Cli
from tests.e2e.test_cli_operators import DECIDE, FOUR_EYES, REQUEST, refused


def as_operator(name: str, key: Path, thread: str = "p1") -> tuple[str, ...]:
    """`resume THREAD` approving the payment as enrolled operator `name` with `key`."""
    return ("resume", thread, *DECIDE[2:], "--as", f"{name}@example.com", "--operator-key",
            str(key))  # fmt: skip


def test_revoked_and_expired_operators_are_refused_and_earlier_approvals_verify(
    cli: Cli, tmp_path: Path
) -> None:
    """Given bob and carol enrolled (bob for 30 days, carol by default), and dave holding a
    certificate of this store's ledger key that expired yesterday
    When bob approves payment p1, then is revoked ("left the company"), and tries p2; dave
    tries p2
    Then bob's and dave's attempts exit 2 naming the certificate and why, nothing stored
    changes; carol completes p1, which verifies with bob's earlier approval (store and bundle);
    `operator list` shows bob revoked (when, by whom, why), carol active until a year on."""
    cli.json("run", FOUR_EYES, "--thread", "p1", "--input", REQUEST)
    cli.json("run", FOUR_EYES, "--thread", "p2", "--input", REQUEST)
    keys = {n: tmp_path / f"{n}.key" for n in ("bob", "carol", "dave")}
    bob = cli.json("operator", "enrol", "bob@example.com", "--key", str(keys["bob"]),
                   "--expires", "30d")  # fmt: skip
    carol = cli.json("operator", "enrol", "carol@example.com", "--key", str(keys["carol"]))
    assert bob["expires_at"][:10] == (SystemClock().now() + timedelta(days=30)).date().isoformat()
    assert carol["expires_at"][:4] == str(SystemClock().now().year + 1)
    expired_certificate(cli, keys["dave"])

    cli.json(*as_operator("bob", keys["bob"]))
    revoked = cli.json("operator", "revoke", "bob@example.com", "--reason", "left the company")
    assert revoked["number"] == 1 and revoked["by"].startswith("os:")
    says = f"was revoked at {revoked['revoked_at']} by {revoked['by']} (left the company)"
    refused(cli, *as_operator("bob", keys["bob"], "p2"), says=says)
    refused(cli, *as_operator("dave", keys["dave"], "p2"), says="expired at")

    done = cli.json(*as_operator("carol", keys["carol"]))
    assert done["status"] == "completed"
    assert cli.run("verify", "p1").returncode == 0
    bundle = tmp_path / "p1.json"
    cli.json("export", "p1", "--out", str(bundle))
    assert cli.json("verify", "--bundle", str(bundle))["ok"]

    listed = {c["identity"]: c for c in cli.json("operator", "list")["certificates"]}
    assert listed["bob@example.com"]["status"] == "revoked"
    assert listed["bob@example.com"]["reason"] == "left the company"
    assert listed["carol@example.com"]["status"] == "active"
    assert listed["dave@example.com"]["status"] == "expired"
    text = cli.run("operator", "list").stdout
    assert f"revoked at {revoked['revoked_at']} by {revoked['by']}: left the company" in text


def expired_certificate(cli: Cli, key: Path) -> None:
    """A certificate for dave by this store's ledger key, issued two days ago for one day."""
    backend = cli.backend()
    try:
        assert backend.signer is not None
        private = ed25519.Ed25519PrivateKey.generate()
        then = ManualClock(SystemClock().now() - timedelta(days=2))
        public = Ed25519Signer(private).public_key()
        certificate = enrol(backend.signer, "dave@example.com", public, then,
                            then.now() + timedelta(days=1))  # fmt: skip
        list_enrolment(backend.checkpoints, certificate)
    finally:
        backend.close()
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    write_certificate(certificate, key.with_suffix(".cert.json"))


def test_bad_expiry_and_revocations_exit_2_and_an_altered_list_exits_1(
    cli: Cli, tmp_path: Path
) -> None:
    """Given the waiting payment and bob enrolled
    When `enrol` gets an expiry in the past or unreadable, and `revoke` someone never
    enrolled, no reason, or bob twice; then someone edits bob's revocation in the store
    Then each bad command exits 2 saying which (no key file made, nothing stored changed);
    after the edit `operator list` and `verify` of the payment bob and carol approved exit 1,
    and carol's decision on another payment is refused."""
    cli.json("run", FOUR_EYES, "--thread", "p1", "--input", REQUEST)
    bob_key = tmp_path / "bob.key"
    cli.json("operator", "enrol", "bob@example.com", "--key", str(bob_key))
    for expires, says in (("2020-01-01", "not later than now"), ("soon", "is a duration")):
        refused(cli, "operator", "enrol", "x@example.com", "--key", str(tmp_path / "x.key"),
                "--expires", expires, says=says)  # fmt: skip
        assert not (tmp_path / "x.key").exists()
    refused(cli, "operator", "revoke", "nobody@example.com", "--reason", "r",
            says="no certificate for 'nobody@example.com' is listed")  # fmt: skip
    refused(cli, "operator", "revoke", "bob@example.com", says="--reason")
    refused(cli, "operator", "revoke", "bob@example.com", "--reason", "  ", says="says why")

    carol_key = tmp_path / "carol.key"
    cli.json("operator", "enrol", "carol@example.com", "--key", str(carol_key))
    cli.json(*as_operator("bob", bob_key))
    cli.json(*as_operator("carol", carol_key))
    cli.json("run", FOUR_EYES, "--thread", "p2", "--input", REQUEST)
    cli.json("operator", "revoke", "bob@example.com", "--reason", "key lost")
    refused(cli, "operator", "revoke", "bob@example.com", "--reason", "again",
            says="is revoked already")  # fmt: skip
    assert cli.run("operator", "list").returncode == 0
    assert cli.run("verify", "p1").returncode == 0

    backend = cli.backend()
    try:
        store = backend.checkpoints
        found = store.get_record(OPERATORS_NAMESPACE, REVOCATIONS_KEY)
        assert found is not None
        [entry] = found.value["revocations"]
        store.put_record(OPERATORS_NAMESPACE, REVOCATIONS_KEY,
                         {"revocations": [{**entry, "reason": "routine"}]},
                         expected_version=found.version)  # fmt: skip
    finally:
        backend.close()
    listed = cli.run("operator", "list")
    assert listed.returncode == 1 and "REVOCATION LIST ALTERED" in listed.stdout
    verified = cli.run("verify", "p1")
    assert verified.returncode == 1 and "not signed by the ledger key" in verified.stdout
    refused(cli, *as_operator("carol", carol_key, "p2"), says="was altered")


def test_the_ledger_key_can_live_outside_the_store_folder(cli: Cli, tmp_path: Path) -> None:
    """Given DURABLE_GRAPH_LEDGER_KEY naming a file outside the store's folder
    When a payment runs, bob is enrolled and approves, and the thread is verified; then the
    variable names another file while the folder holds a key
    Then the key is made at that path and none in the folder, it signs the heads and bob's
    certificate, `verify` passes; the mixed setup exits 2 ("move that file") changing nothing."""
    key = tmp_path / "secure" / "ledger.pem"
    outside = dataclasses.replace(cli, env={**cli.env, "DURABLE_GRAPH_LEDGER_KEY": str(key)})
    outside.json("run", FOUR_EYES, "--thread", "p1", "--input", REQUEST)
    bob = outside.json("operator", "enrol", "bob@example.com", "--key", str(tmp_path / "b.key"))
    assert key.exists() and not (cli.home / "keys" / "ledger-ed25519.pem").exists()
    assert bob["issuer"] == outside.json("ledger-key")["key_id"]
    outside.json(*as_operator("bob", tmp_path / "b.key"))
    assert outside.json("verify", "p1")["signed_steps"]

    (cli.home / "keys").mkdir(exist_ok=True)
    shutil.copy(key, cli.home / "keys" / "ledger-ed25519.pem")
    elsewhere = dataclasses.replace(
        cli, env={**cli.env, "DURABLE_GRAPH_LEDGER_KEY": str(tmp_path / "other.pem")}
    )
    refused(elsewhere, "operator", "list", says="move that file there")
    assert not (tmp_path / "other.pem").exists()
