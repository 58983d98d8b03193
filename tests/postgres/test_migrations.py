"""The schema is the project's: versioned migrations, applied once, refused when mismatched."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from durable_graph.backends.postgres import postgres_backend
from durable_graph.backends.postgres.migrations import LATEST, current_version, upgrade
from durable_graph.errors import SchemaMismatch, StoreUnavailable
from tests.postgres.server import PostgresServer


def test_a_fresh_store_is_migrated_to_the_latest_version_once(pg_uri: str) -> None:
    """Given an empty schema, when eight processes' worth of connections upgrade it at once,
    then exactly one applies each migration and the store is at LATEST."""
    with psycopg.connect(pg_uri, autocommit=True) as conn:
        assert current_version(conn) == 0

    def run() -> tuple[int, int]:
        with psycopg.connect(pg_uri, autocommit=True) as conn:
            return upgrade(conn)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: run(), range(8)))

    assert sorted(results) == [(0, LATEST)] + [(LATEST, LATEST)] * 7
    with psycopg.connect(pg_uri, autocommit=True) as conn:
        rows = conn.execute("SELECT version FROM durable_graph_schema ORDER BY version").fetchall()
    assert [r[0] for r in rows] == list(range(1, LATEST + 1))


def test_without_migrate_an_unmigrated_store_is_refused(pg_uri: str) -> None:
    with pytest.raises(SchemaMismatch, match="durable-graph db upgrade"):
        postgres_backend(pg_uri, migrate=False)
    with psycopg.connect(pg_uri, autocommit=True) as conn:
        assert current_version(conn) == 0  # nothing was created


def test_a_store_migrated_by_a_newer_release_is_refused(pg_uri: str) -> None:
    postgres_backend(pg_uri).close()
    with psycopg.connect(pg_uri, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO durable_graph_schema (version, name) VALUES (%s, 'future')", (LATEST + 1,)
        )
    with pytest.raises(SchemaMismatch, match="upgrade durable-graph"):
        postgres_backend(pg_uri)


def test_a_wrong_uri_is_one_clear_line_without_the_password(pg_server: PostgresServer) -> None:
    """Given a database that does not exist, then StoreUnavailable names it and hides the
    password; given a port nobody listens on, the same."""
    missing = pg_server.uri("no_such_db").replace("postgres@", "postgres:s3cret@")
    with pytest.raises(StoreUnavailable) as caught:
        postgres_backend(missing)
    assert "no_such_db" in str(caught.value) and "s3cret" not in str(caught.value)
    with pytest.raises(StoreUnavailable, match="check the store URI"):
        postgres_backend("postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2")
