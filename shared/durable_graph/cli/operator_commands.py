"""`operator enrol | revoke | list`: the ledger key certifies operators' keys for `resume
--as`, and withdraws them.

`enrol` and `revoke` are run by whoever holds the ledger key (the key file beside the embedded
store, or KMS Sign on AWS): certificates and revocations are signed by the key that signs chain
heads, so write access to the store cannot make one (`operator_keys.py`, `docs/approvals.md`).
`enrol` lists the certificate in the store, `revoke` appends a signed revocation to the store's
list (`operator_registry.py`), `list` shows each certificate's status now. Exit 2 for bad input,
with nothing in the store changed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from durable_graph.cli.common import backend
from durable_graph.cli.output import emit_json, table
from durable_graph.cli.run_commands import os_account
from durable_graph.clock import SystemClock
from durable_graph.errors import InvalidInput
from durable_graph.operator_keys import (
    certificate_path,
    enrol,
    new_key_file,
    operator_identity,
    read_private_key,
    read_public_key,
    write_certificate,
)
from durable_graph.operator_registry import enrolments, list_enrolment, revocations_of, revoke
from durable_graph.operator_validity import expiry_of, status_of
from durable_graph.signing import Ed25519Signer


def register(sub: Any) -> None:
    o = sub.add_parser("operator", help="operator keys: decide as a named identity (resume --as)")
    actions = o.add_subparsers(dest="action", required=True)
    e = actions.add_parser(
        "enrol",
        help="certify an operator's key with the ledger key",
        description="Sign a certificate binding an operator's Ed25519 public key to IDENTITY "
        "with the store's ledger key. With --key, the operator's private key file (created, "
        "mode 0600, if it does not exist); with --public-key, only their public key (they keep "
        "the private half). The certificate is written beside it (NAME.cert.json) or to --out; "
        "the operator then decides with `resume --as IDENTITY --operator-key KEY`. The "
        "certificate expires (--expires, default 365 days) and is listed in the store "
        "(`operator list`).",
    )
    e.add_argument("identity", help="who the operator decides as: an email or user name")
    key = e.add_mutually_exclusive_group(required=True)
    key.add_argument("--key", type=Path, help="the operator's private key file (made if absent)")
    key.add_argument("--public-key", type=Path, help="the operator's PEM public key")
    e.add_argument("--out", type=Path, help="the certificate file (default: KEY.cert.json)")
    e.add_argument(
        "--expires",
        help="when the certificate stops certifying: a duration (90d, 12h, 8w, 1y) or an ISO "
        "8601 date or time (2027-06-30 is its start, UTC); default 365d",
    )
    e.add_argument("--json", action="store_true")
    e.set_defaults(handler=cmd_enrol)
    r = actions.add_parser(
        "revoke",
        help="withdraw an operator's certificates with the ledger key",
        description="Append a revocation signed by the ledger key to the store's list: every "
        "certificate for IDENTITY issued until now (or only --key-id's) stops certifying now. "
        "Approvals made before stay valid; later ones are refused, and fail verify.",
    )
    r.add_argument("identity", help="whose certificates: the identity they were enrolled as")
    r.add_argument("--reason", required=True, help="why (kept, signed, with the revocation)")
    r.add_argument("--key-id", help="only the certificate for this operator key id")
    r.add_argument("--json", action="store_true")
    r.set_defaults(handler=cmd_revoke)
    ls = actions.add_parser(
        "list",
        help="the certificates enrolled in this store and their status now",
        description="Every certificate `operator enrol` listed in this store, with its status "
        "now: active (until its expiry), expired, or revoked (when, by whom, why). Exit 1 "
        "when the store's revocation list fails its checks (an entry altered or removed).",
    )
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=cmd_list)


def cmd_enrol(args: argparse.Namespace) -> int:
    signer = backend(args.store).signer
    if signer is None:
        raise InvalidInput("this store has no ledger key to enrol operators with", field="--store")
    identity = operator_identity(args.identity)  # before a key file is made
    expiry_of(args.expires, SystemClock().now())  # so is a bad --expires
    created = False
    if args.public_key is not None:
        public = read_public_key(args.public_key)
        source: Path = args.public_key
    else:
        source = args.key
        created = not source.exists()
        private = new_key_file(source) if created else read_private_key(source, "--key")
        public = Ed25519Signer(private).public_key()
    out: Path = args.out or certificate_path(source)
    clock = SystemClock()
    certificate = enrol(signer, identity, public, clock, expiry_of(args.expires, clock.now()))
    write_certificate(certificate, out)
    list_enrolment(backend(args.store).checkpoints, certificate)
    if args.json:
        emit_json(
            {
                "certificate": str(out),
                "key": str(args.key) if args.key is not None else None,
                "key_created": created,
                **certificate.model_dump(mode="json"),
            }
        )
    else:
        if created:
            print(f"new key   {source} (keep it private: it decides as {certificate.identity})")
        print(f"enrolled  {certificate.identity}")
        print(f"key id    {certificate.key_id}")
        print(f"issuer    {certificate.issuer} (the ledger key)")
        print(f"expires   {certificate.expires_at}")
        print(f"written   {out}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    store = backend(args.store)
    if store.signer is None:
        raise InvalidInput("this store has no ledger key to revoke operators with", field="--store")
    revocation = revoke(
        store.checkpoints,
        store.signer,
        operator_identity(args.identity),
        reason=args.reason,
        by=os_account().actor.id,
        clock=SystemClock(),
        key_id=args.key_id,
    )
    if args.json:
        emit_json(revocation.model_dump(mode="json"))
    else:
        scope = f"key {revocation.key_id}" if revocation.key_id else "every certificate"
        print(f"revoked   {revocation.identity} ({scope} issued until now)")
        print(f"at        {revocation.revoked_at} by {revocation.by}")
        print(f"reason    {revocation.reason}")
        print(f"entry     {revocation.number} of the store's revocations")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = backend(args.store)
    revocations = revocations_of(store.checkpoints, store.signer)
    now = SystemClock().now()
    rows = [
        {
            "identity": c.identity,
            "key_id": c.key_id,
            "issued_at": c.issued_at,
            "expires_at": c.expires_at,
            **status_of(c, revocations, now),
        }
        for c in enrolments(store.checkpoints)
    ]
    if args.json:
        emit_json({"certificates": rows, "revocation_problems": list(revocations.problems)})
    else:
        print(table(("identity", "key id", "issued", "expires", "status"), [
            (r["identity"], r["key_id"], r["issued_at"], r["expires_at"] or "never", _status(r))
            for r in rows
        ]))  # fmt: skip
        for problem in revocations.problems:
            print(f"REVOCATION LIST ALTERED: {problem}")
    return 1 if revocations.problems else 0


def _status(row: dict[str, Any]) -> str:
    if row["status"] == "revoked":
        return f"revoked at {row['revoked_at']} by {row['by']}: {row['reason']}"
    if row["status"] == "expired":
        return f"expired at {row['expired_at']}"
    return "active"
