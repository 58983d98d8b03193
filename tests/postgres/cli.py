"""The CLI against a PostgreSQL store: `tests.e2e.conftest.Cli` whose rows come from the server.

Every command runs in its own process with `DURABLE_GRAPH_STORE` set to the store's URI, so
the CLI, the workers and the test see one database, as separate hosts would.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from durable_graph.backend import Backend
from durable_graph.backends.local.outbox_mailer import OutboxMailer
from durable_graph.backends.postgres import postgres_backend
from durable_graph.loader import load_graph
from durable_graph.signing import KEY_FILE, FileSigner
from tests.e2e.conftest import REPO, Cli

# Stamps every checkpoint row written from now on with its top-level transaction's id (a
# column default, evaluated by the writing transaction; unlike `xmin`, the same inside a
# savepoint), so a test can count the transactions that wrote steps: `count(DISTINCT txid)`.
STAMP_TRANSACTIONS = (
    "ALTER TABLE checkpoints ADD COLUMN IF NOT EXISTS txid bigint DEFAULT txid_current()"
)


class PgCli(Cli):
    def __init__(self, home: Path, env: dict[str, str], uri: str) -> None:
        super().__init__(home=home, env=env)
        self.uri = uri

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.uri, autocommit=True) as conn:
            return conn.execute(*_pg(sql, params)).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with psycopg.connect(self.uri, autocommit=True) as conn:
            conn.execute(*_pg(sql, params))

    def backend(self) -> Backend:
        """The store, opened in this process with the commands' ledger key and outbox."""
        return postgres_backend(
            self.uri,
            signer=FileSigner(self.home / KEY_FILE),
            mailer=OutboxMailer(self.home / "outbox" / "sent"),
        )

    def steps(self, thread_id: str) -> list[int]:
        rows = self.rows(
            "SELECT step FROM checkpoints WHERE thread_id = ? ORDER BY step", (thread_id,)
        )
        return [r[0] for r in rows]

    def start_detached(self, graph: str, thread_ids: Sequence[str], input: Any = None) -> None:
        """`run GRAPH --detach` for each thread, from this process (a CLI process per thread
        would cost a second each on a loaded machine and test nothing more)."""
        backend = self.backend()
        try:
            app = load_graph(graph).with_backend(backend)
            for thread_id in thread_ids:
                app.start(input or {}, thread_id=thread_id)
        finally:
            backend.close()

    def ran(self, thread_id: str) -> list[tuple[int, str, list[str], str]]:
        """(step, source, nodes, status) of every checkpoint of the thread, oldest first."""
        backend = self.backend()
        try:
            records = backend.checkpoints.list_checkpoints(thread_id, newest_first=False)
            return [(c.step, c.source, c.nodes, c.status) for c in records]
        finally:
            backend.close()


def _pg(sql: str, params: Sequence[Any]) -> tuple[bytes, Sequence[Any] | None]:
    """An SQLite-style statement (`?` placeholders) for psycopg; without parameters, a `%` in
    it (`LIKE 'fx#%'`) is a literal, as in SQLite."""
    if not params:
        return sql.encode(), None
    return sql.replace("?", "%s").encode(), params


def pg_cli(tmp_path: Path, uri: str) -> PgCli:
    home = tmp_path / "home"  # the ledger key file and the mail outbox: the state is in the server
    env = {
        **os.environ,
        "DURABLE_GRAPH_STORE": uri,
        "DURABLE_GRAPH_HOME": str(home),
        "DG_MARKS": str(tmp_path / "marks"),
        "PYTHONPATH": os.pathsep.join((str(REPO / "shared"), str(REPO))),
    }
    return PgCli(home, env, uri)
