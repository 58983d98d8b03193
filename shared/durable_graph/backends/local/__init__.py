"""The embedded backend: everything under one folder, no server, no cloud account."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from durable_graph.backend import Backend
from durable_graph.backends.local.db import Database
from durable_graph.backends.local.folder_payloads import FolderPayloadStore
from durable_graph.backends.local.outbox import OutboxNotifier
from durable_graph.backends.local.outbox_mailer import OutboxMailer
from durable_graph.backends.local.sqlite_queue import SqliteQueue
from durable_graph.backends.local.sqlite_store import SqliteCheckpointStore
from durable_graph.backends.record_units import rolls_back_cache
from durable_graph.backends.records import open_records
from durable_graph.backends.sql import SQLITE
from durable_graph.backends.sql_leftovers import SqlLeftovers
from durable_graph.clock import Clock
from durable_graph.keys import local_kek
from durable_graph.signing import FileSigner, ledger_key_file

HOME_ENV = "DURABLE_GRAPH_HOME"


def home() -> Path:
    return Path(os.environ.get(HOME_ENV, ".durable-graph")).resolve()


def local_backend(
    root: Path | None = None, *, clock: Clock | None = None, encrypt: bool | None = None
) -> Backend:
    """Open (creating if needed) the embedded store at `root` or $DURABLE_GRAPH_HOME.

    `encrypt=True` turns encryption at rest on (`keys.py`): thread data keys wrapped by the
    key file `keys/data-kek.key`, created on first use. None (the default): on iff that file
    exists or `$DURABLE_GRAPH_ENCRYPT` is on, so a store once encrypted stays so for every
    command that opens it."""
    base = root or home()
    db = Database(base / "state.db")  # a full disk or a locked file is transient (db.py)
    payloads = FolderPayloadStore(base / "payloads", clock)
    leftovers = SqlLeftovers(SQLITE, db.read, db.write, clock)
    records = open_records(
        SqliteCheckpointStore(db), payloads, local_kek(base, encrypt), leftovers=leftovers
    )
    return Backend(
        checkpoints=records,
        payloads=records.payloads,
        queue=SqliteQueue(db, clock),
        notifier=OutboxNotifier(db, base / "outbox"),
        mailer=OutboxMailer(base / "outbox" / "sent", db),
        signer=FileSigner(ledger_key_file(base)),
        # A unit of work that fails (a COMMIT refused, a full disk) may have remembered a step
        # it never committed: the records forget their cached states (rolls_back_cache).
        atomic=rolls_back_cache(records, db.write),
        relaxed=rolls_back_cache(records, functools.partial(db.write, durable=False)),
        group_commit=True,
        leftovers=leftovers,
    )


__all__ = ["HOME_ENV", "home", "local_backend"]
