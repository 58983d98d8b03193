"""Fixtures on the session's real PostgreSQL server (`server.py`): a fresh store per test.

A server that cannot start raises `ServerUnavailable` here, which fails every test that uses
it (never a skip): install the package with `bash .ci/install-postgres` (`make test` does).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from durable_graph.backend import Backend
from durable_graph.backends.postgres import postgres_backend
from durable_graph.clock import ManualClock
from tests.postgres.cli import PgCli, pg_cli
from tests.postgres.server import PostgresServer, fresh_schema_uri, shared_server


@pytest.fixture(scope="session")
def pg_server() -> PostgresServer:
    return shared_server()


@pytest.fixture
def pg_uri(pg_server: PostgresServer) -> Iterator[str]:
    """The URI of a new, empty store (its own schema), dropped after the test."""
    with fresh_schema_uri() as uri:
        yield uri


@pytest.fixture
def pg_backend(pg_uri: str) -> Iterator[Backend]:
    backend = postgres_backend(pg_uri, clock=ManualClock())
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def sql(pg_uri: str) -> Iterator[psycopg.Connection]:
    """A plain connection to the test's store, for looking at (and garbling) rows."""
    with psycopg.connect(pg_uri, autocommit=True) as conn:
        yield conn


@pytest.fixture
def cli(tmp_path: Path, pg_uri: str) -> PgCli:
    """The CLI, each command in its own process, on the test's store."""
    return pg_cli(tmp_path, pg_uri)
