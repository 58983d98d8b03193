"""The PostgreSQL backend: many worker processes on many hosts sharing one database.

    graph.with_backend(postgres_backend("postgresql://user:pass@db.example:5432/app"))

Every port on one database: checkpoint records (`store.py`, the same stored format as every
other store, read through `RecordStore`), payloads (`payloads.py`, or any `PayloadStore`
passed in, e.g. S3), the transition queue (`queue.py`: `SKIP LOCKED` leases, `LISTEN/NOTIFY`)
and the notifications outbox (`outbox.py`). `Backend.atomic` is one PostgreSQL transaction
(`db.py`), so a step's commit, its successor messages and the acknowledgement of its message
commit together, as in the embedded mode; a worker leasing several tasks commits all their
steps in one transaction (a group commit). The schema is the
project's own, versioned (`migrations.py`): opening a store applies pending migrations unless
`migrate=False`, and `durable-graph db upgrade` does it explicitly. Docs: docs/postgres.md.
"""

from __future__ import annotations

import functools

from durable_graph.backend import Backend
from durable_graph.backends.local import home
from durable_graph.backends.local.outbox_mailer import OutboxMailer
from durable_graph.backends.postgres.db import Database
from durable_graph.backends.postgres.outbox import PostgresOutbox
from durable_graph.backends.postgres.payloads import PostgresPayloadStore
from durable_graph.backends.postgres.queue import PostgresQueue
from durable_graph.backends.postgres.store import PostgresCheckpointStore
from durable_graph.backends.record_units import rolls_back_cache
from durable_graph.backends.records import open_records
from durable_graph.backends.sql import POSTGRES
from durable_graph.backends.sql_leftovers import SqlLeftovers
from durable_graph.clock import Clock
from durable_graph.keys import KeyWrapper
from durable_graph.mail import Mailer
from durable_graph.ports.payload_store import PayloadStore
from durable_graph.signing import FileSigner, Signer, ledger_key_file

URI_SCHEMES = ("postgresql", "postgres")


def postgres_backend(
    uri: str,
    *,
    clock: Clock | None = None,
    payloads: PayloadStore | None = None,
    signer: Signer | None = None,
    mailer: Mailer | None = None,
    migrate: bool = True,
    max_connections: int = 10,
    kek: KeyWrapper | None = None,
) -> Backend:
    """Open the store at `uri` (a libpq URI: `postgresql://user:pass@host:port/dbname`).

    Args:
        uri: where the store is; `?options=-csearch_path%3Dname` keeps it in schema `name`.
        clock: the time leases are measured by (tests pass a manual one).
        payloads: a payload store to use instead of the database's `payloads` table.
        signer: the ledger key; default: the key file in $DURABLE_GRAPH_HOME, as embedded
            (give every host the same file, or pass a signer, e.g. KMS).
        mailer: sends the emails nodes ask for (`ctx.mailer`); default: the outbox folder in
            $DURABLE_GRAPH_HOME, as embedded (pass a real one, e.g. `SesMailer`, in production).
        migrate: apply pending schema migrations on open (else refuse an outdated schema).
        max_connections: the pool's size for this process.
        kek: turns encryption at rest on: thread data keys wrapped by this key-encryption key
            (`keys.LocalKeyFile(home() / keys.KEK_FILE)`, the same file on every host, or
            `backends.aws.kms_keys.KmsKeyWrapper`).

    Example:
        >>> app = graph.with_backend(postgres_backend(os.environ["DATABASE_URL"]))  # doctest: +SKIP
    """
    db = Database(uri, max_connections=max_connections, migrate=migrate)
    content = payloads or PostgresPayloadStore(db, clock)
    leftovers = SqlLeftovers(
        POSTGRES,
        functools.partial(db.connection, "reading leftovers"),
        functools.partial(db.transaction, "writing leftovers"),
        clock,
    )
    records = open_records(PostgresCheckpointStore(db), content, kek, leftovers=leftovers)
    return Backend(
        checkpoints=records,
        payloads=records.payloads,
        queue=PostgresQueue(db, clock),
        notifier=PostgresOutbox(db, clock),
        signer=signer or FileSigner(ledger_key_file(home())),
        mailer=mailer or OutboxMailer(home() / "outbox" / "sent"),
        # A lost connection rolls a step's unit back: forget the state it remembered.
        atomic=rolls_back_cache(records, db.unit_of_work),
        relaxed=db.relaxed,
        # Several leased tasks' steps commit in one transaction (`Worker.handle_group`): one
        # WAL flush for the batch.
        group_commit=True,
        leftovers=leftovers,
    )


__all__ = ["URI_SCHEMES", "postgres_backend"]
