"""`durable-graph db upgrade`: bring a store's schema to this release's version.

The PostgreSQL schema is versioned and migrated by the project (never by hand): this applies
the pending migrations in one transaction, serialised across processes (a store is also
migrated when first opened, so this is for deployments that migrate before rolling workers
out). The embedded and AWS stores have no schema to migrate: they say so and exit 0.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from durable_graph.cli.output import emit_json
from durable_graph.store_uri import parse_store_uri

# Schemes whose stores have a migrated schema, and the function that upgrades one.
UPGRADERS = {
    "postgresql": "durable_graph.backends.postgres.uri:upgrade_uri",
    "postgres": "durable_graph.backends.postgres.uri:upgrade_uri",
}


def register(sub: Any) -> None:
    db = sub.add_parser("db", help="the store's schema (PostgreSQL)")
    actions = db.add_subparsers(dest="db_command", required=True)
    upgrade = actions.add_parser("upgrade", help="apply pending schema migrations")
    upgrade.add_argument("--json", action="store_true")
    # After `upgrade` too (the CLI adds it after `db`); SUPPRESS keeps one given earlier.
    upgrade.add_argument("--store", metavar="URI", default=argparse.SUPPRESS, help="the store")
    upgrade.set_defaults(handler=cmd_upgrade)


def cmd_upgrade(args: argparse.Namespace) -> int:
    parsed = parse_store_uri(args.store)
    target = UPGRADERS.get(parsed.scheme)
    if target is None:
        message = f"the {parsed.scheme} store has no schema to migrate: nothing to do"
        before = after = None
    else:
        module, _, name = target.partition(":")
        # Imported here, for this scheme only: the core never imports psycopg.
        before, after = getattr(importlib.import_module(module), name)(parsed)
        message = (
            f"schema at version {after} (was {before})"
            if before != after
            else f"schema already at version {after}"
        )
    if args.json:
        emit_json({"scheme": parsed.scheme, "before": before, "after": after})
    else:
        print(message)
    return 0
