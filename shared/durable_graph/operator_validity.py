"""When an operator certificate certifies: its expiry, the ledger key's revocations, and the
time an approval is judged at.

A certificate (`operator_proof.OperatorCertificate`) certifies from its issue until its
`expires_at`, or until a `Revocation` signed by a trusted ledger key withdraws it. Both are
judged at the time of each approval, the same way at decision time (`sign_off` refuses an
approval made now with an expired or revoked certificate, before anything is written) and by
`verify` / `verify --bundle` (an approval made before a later revocation stays valid; one dated
after it fails `signoff` at its step). Which time: each approval's own `at` (signed by the
operator), and for the approval that completes the rule, the later of its `at` and the time its
step was written (`created_at`, in the hash chain): a stolen key can date its own signature
back to before the revocation, but the decision it completes is dated by the step.

The revocation list is checked as a whole (`check_revocations`): an entry not signed by a
trusted ledger key, or out of its numbered, digest-linked place, is a problem of the list, and
while the list has one, decisions by operators are refused and `verify` names it at every step
an operator approved (a list someone edited cannot be trusted to say who is still certified).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from durable_graph.canonical import canonical_bytes, sha256_hex
from durable_graph.checkpoint import Approval, Checkpoint
from durable_graph.clock import iso
from durable_graph.errors import InvalidInput
from durable_graph.operator_proof import OperatorCertificate, Revocation, revocation_bytes
from durable_graph.signing import PublicKey, verify_signature

DEFAULT_VALIDITY = timedelta(days=365)  # `operator enrol` without --expires
_DURATION = re.compile(r"^\s*(\d{1,5})\s*([hdwy])\s*$", re.IGNORECASE)
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1),
          "y": timedelta(days=365)}  # fmt: skip


def expiry_of(text: str | None, now: datetime) -> datetime:
    """When a certificate enrolled `now` expires: `--expires` as a duration (`90d`, `12h`,
    `8w`, `1y` = 365 days) or an ISO 8601 date or time (`2027-06-30`: the start of that day,
    UTC; `2027-06-30T17:00:00+02:00`), default `DEFAULT_VALIDITY`. Refused when not later
    than `now`."""
    if text is None:
        return now + DEFAULT_VALIDITY
    duration = _DURATION.match(text)
    if duration is not None:
        amount, unit = int(duration.group(1)), duration.group(2).lower()
        when = now + amount * _UNITS[unit]
    else:
        try:
            parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(
                f"--expires is a duration (90d, 12h, 8w, 1y) or an ISO 8601 date or time "
                f"(2027-06-30, 2027-06-30T17:00:00Z), not {text!r}",
                field="--expires",
            ) from None
        when = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    if when <= now:
        raise InvalidInput(
            f"--expires {text.strip()} is {iso(when)}, not later than now ({iso(now)}): a "
            "certificate must certify for some time",
            field="--expires",
        )
    return when


def entry_digest(entry: Mapping[str, Any]) -> str:
    """What the next revocation's `previous` names: sha256 of the entry's canonical bytes."""
    return sha256_hex(canonical_bytes(dict(entry)))


def verifies(key: PublicKey, message: bytes, signature: str) -> bool:
    """Whether `signature` (base64) over `message` is by `key`; False for malformed input."""
    try:
        return verify_signature(key, message, base64.b64decode(signature, validate=True))
    except (ValueError, TypeError):
        return False


@dataclass(frozen=True)
class Revocations:
    """A store's (or a bundle's) revocation list as checked: the entries a trusted ledger key
    signed, in order, and what is wrong with the list (empty: nothing)."""

    entries: tuple[Revocation, ...] = ()
    problems: tuple[str, ...] = ()


NO_REVOCATIONS = Revocations()


def check_revocations(
    raw: Sequence[Mapping[str, Any]], trusted: Mapping[str, PublicKey] | None
) -> Revocations:
    """Check every entry of a stored list: it parses, holds its place (`number`, `previous`)
    and is signed by a trusted ledger key. Without trusted keys (a store with no ledger key,
    which cannot revoke) the signatures go unchecked and every entry counts."""
    entries: list[Revocation] = []
    problems: list[str] = []
    previous = ""
    for number, item in enumerate(raw, start=1):
        where = f"revocation {number}"
        try:
            entry = Revocation.model_validate(item)
        except ValidationError as exc:
            problems.append(f"{where} is not a revocation: {exc.errors()[0]['msg']}")
            previous = entry_digest(item)
            continue
        where = f"revocation {number} ({entry.identity}, {entry.revoked_at})"
        if entry.number != number or entry.previous != previous:
            problems.append(
                f"{where} is out of its place in the list (it says number {entry.number}): an "
                "entry was removed, reordered or inserted"
            )
        previous = entry_digest(item)
        key = trusted.get(entry.issuer) if trusted is not None else None
        if trusted is not None and key is None:
            problems.append(f"{where} was signed by key {entry.issuer}, not a trusted ledger key")
        elif key is not None and not verifies(key, revocation_bytes(entry), entry.signature):
            problems.append(f"{where} is not signed by the ledger key {entry.issuer}: altered")
        else:
            entries.append(entry)
    return Revocations(tuple(entries), tuple(problems))


def revokes(revocation: Revocation, certificate: OperatorCertificate) -> bool:
    """Whether `revocation` withdraws `certificate` (from its `revoked_at` on)."""
    return (
        revocation.identity.lower() == certificate.identity.lower()
        and revocation.key_id in (None, certificate.key_id)
        and certificate.issued_at <= revocation.revoked_at
    )


def revocation_of(
    certificate: OperatorCertificate, revocations: Revocations, at: str
) -> Revocation | None:
    """The first revocation in force at `at` (ISO, UTC) that withdraws `certificate`."""
    for revocation in revocations.entries:
        if revocation.revoked_at <= at and revokes(revocation, certificate):
            return revocation
    return None


def invalidity(certificate: OperatorCertificate, at: str, revocations: Revocations) -> str | None:
    """Why `certificate` does not certify an approval made at `at` (None: it does)."""
    named = f"the certificate for {certificate.identity} (key {certificate.key_id})"
    revoked = revocation_of(certificate, revocations, at)
    if revoked is not None:
        return (
            f"{named} was revoked at {revoked.revoked_at} by {revoked.by} "
            f"({revoked.reason}); this approval is dated {at}"
        )
    if certificate.expires_at is not None and at >= certificate.expires_at:
        return f"{named} expired at {certificate.expires_at}; this approval is dated {at}"
    return None


def judged_at(record: Checkpoint, approval: Approval, last: bool) -> str:
    """The time an approval of `record` is judged at: its own `at`, and for the last one
    (which completes the rule) the time its step was written, if later."""
    if last and record.created_at > approval.at:
        return record.created_at
    return approval.at


def status_of(
    certificate: OperatorCertificate, revocations: Revocations, now: datetime
) -> dict[str, Any]:
    """What `operator list` shows of a certificate now: `status` (active, expired, revoked),
    and when, why and by whom for a revoked one."""
    at = iso(now)
    revoked = revocation_of(certificate, revocations, at)
    if revoked is not None:
        return {"status": "revoked", "revoked_at": revoked.revoked_at, "by": revoked.by,
                "reason": revoked.reason}  # fmt: skip
    expires = certificate.expires_at
    if expires is not None and at >= expires:
        return {"status": "expired", "expired_at": expires}
    return {"status": "active"}


__all__ = [
    "DEFAULT_VALIDITY",
    "NO_REVOCATIONS",
    "Revocations",
    "check_revocations",
    "entry_digest",
    "expiry_of",
    "invalidity",
    "judged_at",
    "revocation_of",
    "revokes",
    "status_of",
    "verifies",
]
