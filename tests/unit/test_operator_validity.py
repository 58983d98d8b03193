"""When an operator certificate certifies (`durable_graph.operator_validity`): `--expires`
parsing, certificates from before expiry existed, and the revocation list's own checks."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from durable_graph.canonical import canonical_bytes
from durable_graph.clock import ManualClock, iso
from durable_graph.errors import InvalidInput
from durable_graph.operator_keys import certificate_problem, enrol
from durable_graph.operator_proof import (
    CERTIFICATE_TYPE,
    OperatorCertificate,
    Revocation,
    revocation_bytes,
)
from durable_graph.operator_validity import (
    check_revocations,
    entry_digest,
    expiry_of,
    invalidity,
)
from durable_graph.signing import Ed25519Signer

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, NOW + timedelta(days=365)),
        ("90d", NOW + timedelta(days=90)),
        ("12h", NOW + timedelta(hours=12)),
        ("8W", NOW + timedelta(weeks=8)),
        ("1y", NOW + timedelta(days=365)),
        ("2027-06-30", datetime(2027, 6, 30, tzinfo=UTC)),
        ("2026-06-01T17:00:00+02:00", datetime(2026, 6, 1, 15, tzinfo=UTC)),
        ("2026-06-01T13:00:00Z", datetime(2026, 6, 1, 13, tzinfo=UTC)),
    ],
)
def test_expires_is_a_duration_or_an_iso_date(text: str | None, expected: datetime) -> None:
    assert expiry_of(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [("2026-06-01", "not later than now"), ("0d", "not later than now"), ("soon", "duration")],
)
def test_a_bad_or_past_expiry_is_refused(text: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        expiry_of(text, NOW)


def test_a_certificate_from_before_expiry_verifies_and_never_expires() -> None:
    """Given a certificate signed the way it was before `expires_at` existed
    When it is checked, dumped, and judged in a hundred years
    Then the ledger key's signature verifies, its dump has no `expires_at` (records holding it
    hash as before), and it certifies."""
    ledger = Ed25519Signer.generate()
    operator = Ed25519Signer.generate().public_key()
    body = {"identity": "bob@example.com", "key_id": operator.key_id, "algorithm": "ed25519",
            "pem": operator.pem, "issuer": ledger.public_key().key_id,
            "issued_at": iso(NOW)}  # fmt: skip
    signature = ledger.sign(canonical_bytes({"type": CERTIFICATE_TYPE, **body}))
    old = OperatorCertificate(**body, signature=base64.b64encode(signature).decode("ascii"))
    trusted = {ledger.public_key().key_id: ledger.public_key()}
    assert certificate_problem(old, trusted) is None
    assert "expires_at" not in old.model_dump(mode="json")
    assert invalidity(old, iso(NOW + timedelta(days=36500)), check_revocations([], None)) is None

    new = enrol(ledger, "bob@example.com", operator, ManualClock(NOW))
    assert new.expires_at == iso(NOW + timedelta(days=365))
    assert certificate_problem(new, trusted) is None
    forged = new.model_copy(update={"expires_at": iso(NOW + timedelta(days=3650))})
    assert "not signed by the ledger key" in str(certificate_problem(forged, trusted))


def signed(ledger: Ed25519Signer, **fields: object) -> dict[str, object]:
    unsigned = Revocation.model_validate({**fields, "issuer": ledger.public_key().key_id,
                                          "signature": ""})  # fmt: skip
    raw = base64.b64encode(ledger.sign(revocation_bytes(unsigned))).decode("ascii")
    return unsigned.model_copy(update={"signature": raw}).model_dump(mode="json")


def test_the_revocation_list_checks_signatures_places_and_links() -> None:
    """Given a list of two revocations signed by the ledger key, linked in order
    When it is checked as is, with an entry edited, reordered, or signed by another key
    Then as is it has no problems; each edit is named; only sound entries count."""
    ledger = Ed25519Signer.generate()
    first = signed(ledger, number=1, previous="", identity="bob@example.com",
                   revoked_at=iso(NOW), reason="left", by="os:sec@h")  # fmt: skip
    second = signed(ledger, number=2, previous=entry_digest(first), identity="dave@example.com",
                    revoked_at=iso(NOW), reason="lost", by="os:sec@h")  # fmt: skip
    trusted = {ledger.public_key().key_id: ledger.public_key()}
    sound = check_revocations([first, second], trusted)
    assert not sound.problems and len(sound.entries) == 2

    edited = check_revocations([{**first, "reason": "routine"}, second], trusted)
    assert any("revocation 1 (bob@example.com" in p and "altered" in p for p in edited.problems)
    assert any("revocation 2" in p and "out of its place" in p for p in edited.problems)
    assert [e.identity for e in edited.entries] == ["dave@example.com"]
    reordered = check_revocations([second, first], trusted)
    assert len(reordered.problems) == 2
    stranger = Ed25519Signer.generate()
    other = signed(stranger, number=1, previous="", identity="bob@example.com",
                   revoked_at=iso(NOW), reason="x", by="y")  # fmt: skip
    assert "not a trusted ledger key" in check_revocations([other], trusted).problems[0]
    garbage = check_revocations([{"number": "x"}], trusted)
    assert "is not a revocation" in garbage.problems[0]
