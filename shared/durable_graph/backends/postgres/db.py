"""One connection pool per store, and the unit of work that makes several calls one transaction.

Every statement of the Postgres backend runs through `Database.connection()` (one statement, or
several that need no atomicity) or `Database.transaction()` (several that must commit together).
Both join the unit of work the calling thread already holds, if any: `Backend.atomic` is
`transaction`, so the engine's "commit the step, queue its successors, acknowledge the message"
is one PostgreSQL transaction, exactly as it is one SQLite transaction when embedded. A unit of
work belongs to one thread (a worker runs tasks on a thread pool; each has its own).

Connections are in autocommit mode, so a lone statement costs one round trip and holds no
transaction open; `transaction()` brackets with BEGIN/COMMIT. The isolation level is READ
COMMITTED (PostgreSQL's default), on which the conditions are built: every conditional write is
one statement (`INSERT ... ON CONFLICT DO NOTHING`, `UPDATE ... WHERE version = %s`), and the
statement after a lost condition sees the winner, because each statement takes a new snapshot.

A lost connection (the server restarted) surfaces once per pooled connection as
`StoreUnreachable`: the pool discards it and checks its idle ones, and the caller (the worker)
releases the task and retries with backoff (`errors.py`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import psycopg
import psycopg_pool

from durable_graph.backends.postgres.errors import store_errors, translate, unavailable
from durable_graph.backends.postgres.migrations import check_current, upgrade

CONNECT_TIMEOUT_SECONDS = 10
# How long a call waits for a pooled connection (all busy, or the server down) before it gives
# up with `StoreUnreachable`: the worker then backs off, so this bounds a wasted wait, not a run.
POOL_TIMEOUT_SECONDS = 15.0


class Database:
    """A connection pool on one PostgreSQL database, with a per-thread unit of work."""

    def __init__(self, uri: str, *, max_connections: int = 10, migrate: bool = True) -> None:
        self.uri = uri
        _open_once(uri, migrate=migrate)  # a wrong URI is one clear line, before any pool
        self.pool = psycopg_pool.ConnectionPool(
            uri,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
            timeout=POOL_TIMEOUT_SECONDS,
            open=False,
            name="durable-graph",
        )
        try:
            self.pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        except psycopg_pool.PoolTimeout as exc:
            raise unavailable(uri, exc) from None
        self._local = threading.local()

    def _held(self) -> psycopg.Connection | None:
        held: psycopg.Connection | None = getattr(self._local, "conn", None)
        return held

    @contextmanager
    def connection(self, where: str) -> Iterator[psycopg.Connection]:
        """The thread's unit-of-work connection, or a pooled one in autocommit mode."""
        held = self._held()
        if held is not None:
            yield held
            return
        try:
            with self.pool.connection() as conn:
                yield conn
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self._after(exc, where)
            raise

    @contextmanager
    def transaction(self, where: str = "writing the store") -> Iterator[psycopg.Connection]:
        """One transaction, joining the thread's unit of work when one is open (then the
        enclosing unit commits or rolls back the whole)."""
        held = self._held()
        if held is not None:
            yield held
            return
        try:
            with self.pool.connection() as conn, conn.transaction():
                self._local.conn = conn
                try:
                    yield conn
                finally:
                    self._local.conn = None
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self._after(exc, where)
            raise

    def unit_of_work(self) -> AbstractContextManager[psycopg.Connection]:
        """`Backend.atomic`: a transaction that every store and queue call of this thread
        joins until it ends."""
        return self.transaction("committing a step")

    @contextmanager
    def relaxed(self) -> Iterator[psycopg.Connection]:
        """`Backend.relaxed`: a transaction committed without waiting for its WAL flush
        (`synchronous_commit = off`, for this transaction only); the next ordinary commit
        flushes it with its own. Inside a unit of work it is simply part of it."""
        held = self._held()
        with self.transaction("writing the store") as conn:
            if held is None:
                conn.execute("SET LOCAL synchronous_commit TO OFF")
            yield conn

    def _after(self, exc: BaseException, where: str) -> None:
        """Raise `exc` as the transient error it stands for; a lost connection also makes
        the pool check its idle connections (a restart broke them all)."""
        transient = translate(exc, where)
        if transient is None:
            return
        if isinstance(exc, psycopg.OperationalError):
            with contextlib.suppress(psycopg.Error, psycopg_pool.PoolTimeout):
                self.pool.check()  # best effort: the pool replaces what it cannot use anyway
        raise transient from exc

    def close(self) -> None:
        self.pool.close()


def _connect_once(uri: str) -> psycopg.Connection:
    """One connection; a URI that cannot work (no server, database or role, a wrong password,
    not a connection string) is `StoreUnavailable`."""
    try:
        return psycopg.connect(uri, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        raise unavailable(uri, exc) from None


def _open_once(uri: str, *, migrate: bool) -> None:
    """Connect once: check the URI, and bring the schema up to date (`migrations.upgrade`,
    idempotent and serialised across processes) or check it is."""
    with _connect_once(uri) as conn, store_errors("opening the store"):
        if migrate:
            upgrade(conn)
        else:
            check_current(conn)


def upgrade_schema(uri: str) -> tuple[int, int]:
    """Apply the pending migrations to the store at `uri`; (version before, version after)."""
    with _connect_once(uri) as conn, store_errors("migrating the store"):
        return upgrade(conn)


__all__ = ["Database", "upgrade_schema"]
