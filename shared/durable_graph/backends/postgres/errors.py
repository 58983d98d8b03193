"""psycopg's errors, translated once into the engine's (like `backends/aws/errors.py`).

What the worker must do decides the type: a server that is down, restarting, or refusing
connections, and a transaction PostgreSQL aborted to break a deadlock or a serialization
conflict, are transient (the task is released with backoff and the thread finishes once the
server is back); a URI that cannot work (no such host, database or role, a wrong password) is a
user error, said in one line with the password hidden; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors

from durable_graph.errors import StoreBusy, StoreUnavailable, StoreUnreachable, TransientError

# SQLSTATEs of a transaction PostgreSQL rolled back to let another one through: retry it.
_RETRY_STATES = frozenset({"40001", "40P01", "55P03"})  # serialization, deadlock, lock timeout


def redact(uri: str) -> str:
    """`uri` without its password, for messages and logs."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparseable store URI>"
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def translate(exc: BaseException, where: str) -> TransientError | None:
    """The transient error `exc` stands for, or None (a bug, a constraint: raised as is)."""
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return StoreUnreachable(f"{where}: no connection to the store in time ({exc})")
    if isinstance(exc, psycopg.Error) and exc.sqlstate in _RETRY_STATES:
        return StoreBusy(f"{where}: PostgreSQL rolled the transaction back ({exc.sqlstate})")
    if isinstance(exc, psycopg.OperationalError | pg_errors.AdminShutdown):
        return StoreUnreachable(f"{where}: the store is unreachable ({_first_line(exc)})")
    if isinstance(exc, psycopg.InterfaceError) and "closed" in str(exc):
        return StoreUnreachable(f"{where}: the connection was closed ({_first_line(exc)})")
    return None


@contextmanager
def store_errors(where: str) -> Iterator[None]:
    """Raise a lost connection or a rolled-back transaction inside the block as transient."""
    try:
        yield
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        transient = translate(exc, where)
        if transient is None:
            raise
        raise transient from exc


def unavailable(uri: str, exc: BaseException) -> StoreUnavailable:
    """The user error for a store that cannot be opened at all."""
    return StoreUnavailable(redact(uri), _first_line(exc), hint="check the store URI")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["redact", "store_errors", "translate", "unavailable"]
