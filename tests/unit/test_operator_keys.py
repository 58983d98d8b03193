"""Operator key files (`durable_graph.operator_keys`): a key made once, read back with the
certificate beside it; missing or mismatched files are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from durable_graph.clock import ManualClock
from durable_graph.errors import InvalidInput
from durable_graph.operator_keys import (
    OperatorKey,
    certificate_problem,
    enrol,
    new_key_file,
    operator_identity,
    write_certificate,
)
from durable_graph.signing import Ed25519Signer


def test_an_operator_key_loads_with_the_certificate_beside_it(tmp_path: Path) -> None:
    """Given a key file made by `new_key_file` and enrolled by a ledger key
    When it is loaded before and after its certificate is written beside it
    Then first a clear error, then the key with that certificate, which the ledger key (and
    only it) vouches for; making the key file again is refused."""
    ledger = Ed25519Signer.generate()
    private = new_key_file(tmp_path / "bob.key")
    assert (tmp_path / "bob.key").stat().st_mode & 0o077 == 0
    public = Ed25519Signer(private).public_key()
    certificate = enrol(ledger, "  bob@example.com ", public, ManualClock())
    assert certificate.identity == "bob@example.com"
    with pytest.raises(InvalidInput, match="no operator certificate"):
        OperatorKey.load(tmp_path / "bob.key")

    write_certificate(certificate, tmp_path / "bob.cert.json")

    assert OperatorKey.load(tmp_path / "bob.key").certificate == certificate
    key = ledger.public_key()
    assert certificate_problem(certificate, {key.key_id: key}) is None
    other = Ed25519Signer.generate().public_key()
    assert "not a trusted ledger key" in str(
        certificate_problem(certificate, {other.key_id: other})
    )
    with pytest.raises(InvalidInput, match="exists already"):
        new_key_file(tmp_path / "bob.key")


@pytest.mark.parametrize("identity", ["", "   ", "bob\n@x", "x" * 201])
def test_an_identity_is_a_printable_name(identity: str) -> None:
    with pytest.raises(InvalidInput, match="operator identity"):
        operator_identity(identity)


def test_a_key_file_that_is_not_a_private_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.key").write_text("not a key")
    with pytest.raises(InvalidInput, match="not an unencrypted PEM private key"):
        OperatorKey.load(tmp_path / "bad.key")
    with pytest.raises(InvalidInput, match="no operator key at"):
        OperatorKey.load(tmp_path / "missing.key")
