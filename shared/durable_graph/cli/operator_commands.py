"""`operator enrol`: the ledger key certifies an operator's key for `resume --as`.

Run by whoever holds the ledger key (the key file beside the embedded store, or KMS Sign on
AWS): the certificate is signed by the key that signs chain heads, so write access to the store
cannot make one (`operator_keys.py`, `docs/approvals.md`). Exit 2 for bad input; nothing in the
store changes either way.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from durable_graph.cli.common import backend
from durable_graph.cli.output import emit_json
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
        "the operator then decides with `resume --as IDENTITY --operator-key KEY`.",
    )
    e.add_argument("identity", help="who the operator decides as: an email or user name")
    key = e.add_mutually_exclusive_group(required=True)
    key.add_argument("--key", type=Path, help="the operator's private key file (made if absent)")
    key.add_argument("--public-key", type=Path, help="the operator's PEM public key")
    e.add_argument("--out", type=Path, help="the certificate file (default: KEY.cert.json)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(handler=cmd_enrol)


def cmd_enrol(args: argparse.Namespace) -> int:
    signer = backend(args.store).signer
    if signer is None:
        raise InvalidInput("this store has no ledger key to enrol operators with", field="--store")
    identity = operator_identity(args.identity)  # before a key file is made
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
    certificate = enrol(signer, identity, public, SystemClock())
    write_certificate(certificate, out)
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
        print(f"written   {out}")
    return 0
