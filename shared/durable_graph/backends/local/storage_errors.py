"""The embedded backend's storage conditions, translated once into `TransientError`s.

A full disk (ENOSPC, EDQUOT, a file-size limit's EFBIG, SQLite's SQLITE_FULL or an I/O error it
reports for a refused write) and a database locked past SQLite's busy timeout are temporary:
the same write succeeds once space is freed or the lock released. Raised raw, they looked like
bugs to the worker (a traceback per attempt, then the thread failed for good); translated, the
worker logs one line, releases the task with backoff, and the thread finishes when the condition
clears. Every SQLite access of the embedded backend (checkpoint store, queue, the unit of work)
goes through one `Database`, whose `read`/`write` translate with `raise_storage_error`; the
payload folder calls `storage_errors` around its file writes.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from durable_graph.errors import StorageFull, StoreBusy, TransientError

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
SQLITE_FULL = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR}  # primary codes (low byte)
SQLITE_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def translate(exc: BaseException, where: str) -> TransientError | None:
    """The transient error `exc` stands for, or None when it is something else (a bug, a
    corrupt file, a constraint: those keep their own handling)."""
    if isinstance(exc, sqlite3.OperationalError):
        code = int(getattr(exc, "sqlite_errorcode", -1) or -1) & 0xFF
        if code in SQLITE_FULL:
            return StorageFull(f"{where}: the store's disk refused the write ({exc})")
        if code in SQLITE_BUSY:
            return StoreBusy(f"{where}: the store is locked by another writer ({exc})")
    if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
        return StorageFull(f"{where}: the disk refused the write ({exc.strerror or exc})")
    return None


@contextmanager
def storage_errors(where: str) -> Iterator[None]:
    """Raise a full disk or a locked store inside the block as its `TransientError`."""
    try:
        yield
    except (sqlite3.OperationalError, OSError) as exc:
        raise_storage_error(exc, where)


def raise_storage_error(exc: sqlite3.OperationalError | OSError, where: str) -> NoReturn:
    """`exc` again as the transient error it stands for, or as itself."""
    transient = translate(exc, where)
    if transient is None:
        raise exc
    raise transient from exc


# SQLite cannot open or write the file at all (a directory, no permission, a read-only folder):
# the store's location is wrong, which no retry fixes.
CANNOT_OPEN = (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM)


def sqlite_code(exc: sqlite3.Error) -> int:
    """The primary result code (the low byte of an extended one)."""
    return int(getattr(exc, "sqlite_errorcode", -1)) & 0xFF


def is_corruption(exc: BaseException) -> bool:
    """SQLite found the file is no database, or a damaged one: no retry can help (unlike a
    locked or full database, which are also `sqlite3.DatabaseError`s)."""
    return isinstance(exc, sqlite3.DatabaseError) and sqlite_code(exc) in (
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    )


__all__ = [
    "CANNOT_OPEN",
    "is_corruption",
    "raise_storage_error",
    "sqlite_code",
    "storage_errors",
    "translate",
]
