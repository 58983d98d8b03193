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

from durable_graph.backends.postgres import postgres_backend
from durable_graph.loader import load_graph
from tests.e2e.conftest import REPO, Cli


class PgCli(Cli):
    def __init__(self, home: Path, env: dict[str, str], uri: str) -> None:
        super().__init__(home=home, env=env)
        self.uri = uri

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.uri, autocommit=True) as conn:
            return conn.execute(sql.replace("?", "%s").encode(), params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with psycopg.connect(self.uri, autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s").encode(), params)

    def steps(self, thread_id: str) -> list[int]:
        rows = self.rows(
            "SELECT step FROM checkpoints WHERE thread_id = ? ORDER BY step", (thread_id,)
        )
        return [r[0] for r in rows]

    def start_detached(self, graph: str, thread_ids: Sequence[str], input: Any = None) -> None:
        """`run GRAPH --detach` for each thread, from this process (a CLI process per thread
        would cost a second each on a loaded machine and test nothing more)."""
        backend = postgres_backend(self.uri)
        try:
            app = load_graph(graph).with_backend(backend)
            for thread_id in thread_ids:
                app.start(input or {}, thread_id=thread_id)
        finally:
            backend.close()

    def ran(self, thread_id: str) -> list[tuple[int, str, list[str], str]]:
        """(step, source, nodes, status) of every checkpoint of the thread, oldest first."""
        backend = postgres_backend(self.uri)
        try:
            records = backend.checkpoints.list_checkpoints(thread_id, newest_first=False)
            return [(c.step, c.source, c.nodes, c.status) for c in records]
        finally:
            backend.close()


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
