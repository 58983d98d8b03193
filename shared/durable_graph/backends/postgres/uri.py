"""`postgresql://...` (and `postgres://...`) as a store URI (`durable_graph.store_uri`).

The URI is libpq's own, handed to psycopg unchanged: `postgresql://user:pass@host:5432/db`,
with libpq's query parameters (`sslmode`, `connect_timeout`, `options=-csearch_path%3Dname` to
keep the store in a schema of its own, ...). Its queue is drained by `durable-graph worker`
processes on any number of hosts; a CLI command that starts or resumes a thread also runs it
in its own process (the scheme is not `deployed_workers`), sharing that queue safely.
"""

from __future__ import annotations

from durable_graph.backend import Backend
from durable_graph.backends.local import home
from durable_graph.backends.postgres import postgres_backend
from durable_graph.backends.postgres.db import upgrade_schema
from durable_graph.keys import local_kek
from durable_graph.store_uri import StoreURI


def open_uri(parsed: StoreURI) -> Backend:
    """Encryption at rest as the embedded store decides it: on when `$DURABLE_GRAPH_ENCRYPT` is
    on or the key file `keys/data-kek.key` exists in `$DURABLE_GRAPH_HOME` (beside the ledger
    key file every host shares)."""
    return postgres_backend(parsed.uri, kek=local_kek(home(), None))


def upgrade_uri(parsed: StoreURI) -> tuple[int, int]:
    """`durable-graph db upgrade`: apply pending migrations; (version before, after)."""
    return upgrade_schema(parsed.uri)
