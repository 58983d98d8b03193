"""One SQLite file (WAL): a commit is synced to disk before the next step is queued.

A write may also be *relaxed* (`write(durable=False)`): committed without an fsync of its own.
In WAL mode commits are appended to one log in order, so the next durable commit's fsync puts
every relaxed commit before it on disk too. A killed process loses nothing either way (the bytes
are in the OS's cache once COMMIT returns); only a power cut can lose relaxed commits made since
the last durable one. That suits writes whose loss a crash already has to survive: queue leases
(a lost lease is a message seen again), effect claims and results (a lost claim is a claim never
made: the next delivery runs the effect, with the same idempotency key). A step is never relaxed.

A row may also be *deferred* (`defer`): written by the next write transaction of the store, in
it, rather than by a commit of its own. The embedded mailer's rows go so: a message sent inside
`ctx.step` is written by the transaction that records the step's result (the next write of the
process), so the mail and the record that says it was sent commit together or not at all, in one
relaxed commit instead of two. A process killed before that commit sent nothing and recorded
nothing: the next delivery of the task sends it (once). `close` writes what is still deferred.

How a commit is made durable: the connection runs `synchronous=NORMAL` (SQLite syncs the WAL only
around its checkpoints), and a durable write, once its COMMIT returned, syncs the WAL file itself
before `write` returns (`Database._sync`): the one sync `synchronous=FULL` makes at a commit in
WAL mode, and nothing more. So no write switches the setting (a relaxed write between durable
ones took two PRAGMA statements, about 17 us each). A store not in WAL mode keeps FULL.

Bytes per commit: every page a commit changes is a whole page appended to the WAL, and fsynced
with it. A new store keeps SQLite's 4 KB pages: 2 KB pages halve the WAL bytes of an approval
thread (102 KB against 185 KB) but ran the flow 1.2x slower on a quiet disk, and a compressed
1.2 KB chat row then fills a page alone (a 1 KB-per-turn chat store grew from 1.87x to 2.50x its
raw bytes); both measured in `bench/`. Its queue and outbox ids are plain rowids, not
AUTOINCREMENT (which rewrote the `sqlite_sequence` page in every commit that queued a task).
An existing store keeps its page size and tables (SQLite cannot change the page size of a WAL
database without a VACUUM) and reads and writes exactly as before: the SQL is the same for both.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from durable_graph.backends.local.storage_errors import raise_storage_error
from durable_graph.errors import StoreUnavailable, StoreUnreadable

SCHEMA = """
-- A rowid table, not WITHOUT ROWID: checkpoint bodies are often 1-4 KB, and a WITHOUT ROWID
-- row above ~1 KB spills into an overflow page of its own (4 KB on disk for a 1.7 KB row).
CREATE TABLE IF NOT EXISTS checkpoints (
    thread_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (thread_id, step)
);
-- The thread heads: WITHOUT ROWID (a row is ~300 bytes), so the table is its thread_id b-tree
-- and the status index's entries end with the thread_id: a head's write changes two b-trees,
-- not four (a rowid table's key index, and an (updated_at, thread_id) index that listings of
-- every thread now read as one range per status instead: `page_threads_query`).
-- `head_step`, `created_at` and `origin` repeat the body's: what a head write compares and
-- carries over without parsing the stored body (`SqliteCheckpointStore.advance_thread`).
CREATE TABLE IF NOT EXISTS threads (
    thread_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL,
    head_step INTEGER,
    created_at TEXT,
    origin TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS threads_by_status ON threads (status, updated_at);
-- A store of an earlier release keeps its rowid `threads` table; the index it had for listings
-- of every thread is dropped (no query uses it), which its next open does once.
DROP INDEX IF EXISTS threads_by_update;
CREATE TABLE IF NOT EXISTS records (
    thread_id TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (thread_id, key)
) WITHOUT ROWID;
-- The notifications outbox: a row per notification, written in the transaction of the step
-- that caused it (outbox.py), so a notification exists iff its step committed.
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    thread_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    body TEXT NOT NULL
);
-- Mail the embedded mailer sent, one row per idempotency key (outbox_mailer.py): written by the
-- effect's own relaxed commit, made durable by the step's commit that records the effect.
CREATE TABLE IF NOT EXISTS mail (
    key TEXT PRIMARY KEY,
    body TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    dedup_id TEXT NOT NULL,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    failed_at TEXT NOT NULL
);
-- Payload objects left by a process that may not delete them (`backends/sql_leftovers.py`):
-- empty unless a store is opened with `deletes_payloads=False`.
CREATE TABLE IF NOT EXISTS leftovers (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    body TEXT NOT NULL
);
"""

# The queue of a new store (an existing one keeps its own: `QUEUE_BEFORE`). Queue and outbox ids
# are rowids (no AUTOINCREMENT, whose sqlite_sequence row was one more page per commit): a new
# row's id is above every id in the table, which is all FIFO order and `ORDER BY id` need; an id
# freed by a delete may come back, but a receipt holds a random part as well, so a stale receipt
# never matches a new message. One index, unique on (group, dedup id), serves both the dedup of
# `INSERT OR IGNORE` (a message's group follows from its dedup id: its thread, and its task when
# its step has several) and the per-group FIFO look (a group holds a message or two; their ids
# are in the index entries): every queue write changes one index instead of two.
QUEUE = """
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY,
    dedup_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    body TEXT NOT NULL,
    visible_at REAL NOT NULL DEFAULT 0,
    receipt TEXT,
    receive_count INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS queue_by_group_dedup ON queue (group_id, dedup_id);
"""
# The queue of stores created before this release (kept, and used by the same SQL): a unique
# dedup id and a (group_id, id) index.
QUEUE_BEFORE = """
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY,
    dedup_id TEXT NOT NULL UNIQUE,
    group_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    body TEXT NOT NULL,
    visible_at REAL NOT NULL DEFAULT 0,
    receipt TEXT,
    receive_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_by_group ON queue (group_id, id);
"""

# The page size of a new store (see the module docstring); an existing one keeps its own.
PAGE_SIZE = 4096
# How a relaxed write commits: a COMMIT (SQLite ignores the comment) that `DurableCommits`, the
# benchmarks and a reader of a statement trace can tell from a durable one, which syncs after it.
RELAXED_COMMIT = "COMMIT /* relaxed */"
# The columns a head write compares and carries (`upgrade_threads`), by a store that predates
# them added empty: a row without them is read from its body instead.
THREAD_COLUMNS = ("head_step INTEGER", "created_at TEXT", "origin TEXT")
_fdatasync = getattr(os, "fdatasync", os.fsync)  # the call SQLite makes (fsync where none)


@dataclass(frozen=True)
class Deferred:
    """A statement for the next write transaction (`Database.defer`)."""

    statement: str
    params: tuple[Any, ...]
    then: Callable[[], None] | None  # after the commit, if the statement changed a row


class DurableCommits:
    """A `Database.trace` callback that counts commits, durable (fsynced) and relaxed apart:
    what the benchmarks and the fsync-budget test report."""

    def __init__(self) -> None:
        self.durable = 0
        self.relaxed = 0
        self._relaxing = False

    def __call__(self, statement: str) -> None:
        head = statement.lstrip()[:32].upper()
        if head.startswith("PRAGMA SYNCHRONOUS"):  # a connection that switches (not ours)
            self._relaxing = "NORMAL" in head
        elif head.startswith("COMMIT"):
            if self._relaxing or head == RELAXED_COMMIT.upper():
                self.relaxed += 1
            else:
                self.durable += 1

    def __repr__(self) -> str:
        return f"DurableCommits(durable={self.durable}, relaxed={self.relaxed})"


# SQLite cannot open or write the file at all (a directory, no permission, a read-only folder):
# the store's location is wrong, which no retry fixes.
_CANNOT_OPEN = (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM)


def _sqlite_code(exc: sqlite3.Error) -> int:
    """The primary result code (the low byte of an extended one)."""
    return int(getattr(exc, "sqlite_errorcode", -1)) & 0xFF


def is_corruption(exc: BaseException) -> bool:
    """SQLite found the file is no database, or a damaged one: no retry can help (unlike a
    locked or full database, which are also `sqlite3.DatabaseError`s)."""
    return isinstance(exc, sqlite3.DatabaseError) and _sqlite_code(exc) in (
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    )


def _connect(path: Path) -> sqlite3.Connection:
    """Open the file, creating its folder; a location that cannot hold it is a `UserError`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(
            str(path), timeout=30.0, isolation_level=None, check_same_thread=False
        )
    except (FileNotFoundError, FileExistsError, NotADirectoryError, PermissionError) as exc:
        raise StoreUnavailable(str(path), exc.strerror or str(exc)) from None
    except sqlite3.OperationalError as exc:
        if _sqlite_code(exc) not in _CANNOT_OPEN:
            raise
        raise StoreUnavailable(str(path), str(exc)) from None


def upgrade_threads(conn: sqlite3.Connection) -> None:
    """Give the `threads` table of a store made before `THREAD_COLUMNS` those columns (empty:
    its rows are read from their bodies until their next head write fills them). Checked by a
    read; added in one write transaction that checks again (two first opens may race)."""
    if _missing_columns(conn):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for column in _missing_columns(conn):
                conn.execute(f"ALTER TABLE threads ADD COLUMN {column}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _missing_columns(conn: sqlite3.Connection) -> list[str]:
    have = {str(row[1]) for row in conn.execute("PRAGMA table_info(threads)")}
    return [c for c in THREAD_COLUMNS if c.split()[0] not in have]


class Database:
    """A shared connection guarded by a lock; safe across threads of one process and, through
    SQLite's own locking, across processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reading = f"reading {path}"  # every access names the store: format it once
        self._writing = f"writing {path}"
        self._conn = _connect(path)
        self._lock = threading.RLock()
        self._depth = 0
        self._after_commit: list[Callable[[], None]] = []
        self._deferred: list[Deferred] = []  # rows for the next write transaction (`defer`)
        self._writer = 0  # the thread holding the open write transaction, if any
        # The WAL file, opened at the first durable commit, which syncs it (`_sync`); None
        # while the store is not in WAL mode, where every commit is SQLite's own FULL one.
        self._wal: int | None = None
        self._syncs = False  # whether durable commits sync the WAL here (WAL mode)
        try:
            with self._lock:
                # Before anything is written: only a new, empty file takes it (a no-op else).
                self._conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
                mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()
                self._conn.execute("PRAGMA synchronous=FULL")
                self._conn.execute("PRAGMA busy_timeout=30000")
                # One transaction: each CREATE committing on its own was an fsync each (16
                # for a new store); on an existing store nothing is written. An existing queue
                # is left as it is (two racing first opens both create the new one: IF NOT
                # EXISTS makes that one creation).
                found = self._conn.execute("SELECT 1 FROM sqlite_schema WHERE name = 'queue'")
                queue = "" if found.fetchone() else QUEUE
                self._conn.executescript(f"BEGIN;{SCHEMA}{queue}COMMIT;")
                upgrade_threads(self._conn)
                if mode is not None and str(mode[0]).lower() == "wal":
                    # From here on SQLite never syncs at a commit; a durable one syncs the WAL
                    # itself (`_sync`), so no write switches the setting (see the docstring).
                    self._conn.execute("PRAGMA synchronous=NORMAL")
                    self._syncs = True
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            if is_corruption(exc):
                raise StoreUnreadable(str(path), str(exc)) from None
            if _sqlite_code(exc) in _CANNOT_OPEN:
                raise StoreUnavailable(str(path), str(exc)) from None
            if isinstance(exc, sqlite3.OperationalError):  # creating the schema writes too
                raise_storage_error(exc, f"opening {path}")
            raise

    def read(self) -> Reading:
        """The connection, for reads, under the lock (a full disk or a lock timeout raised as
        its transient error)."""
        return Reading(self)

    def write(self, *, durable: bool = True) -> Transaction:
        """BEGIN IMMEDIATE: take the write lock up front so check-then-write is atomic.

        `durable=False` commits without an fsync (see the module docstring); nested inside an
        enclosing transaction, a write is part of it, durable or not as that one is."""
        return Transaction(self, durable)

    def _begin(self) -> list[Deferred]:
        """Open the write transaction (the lock is held); the deferred rows it carries."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except (sqlite3.OperationalError, OSError) as exc:
            raise_storage_error(exc, self._writing)
        self._depth = 1
        self._writer = threading.get_ident()
        carried, self._deferred = self._deferred, []
        try:
            for deferred in carried:
                self._write_deferred(deferred)
        except BaseException as exc:
            self._end(True, carried, exc)
            raise
        return carried

    def _end(self, durable: bool, carried: list[Deferred], failed: BaseException | None) -> None:
        """Commit the open write transaction, or roll it back when its body raised `failed`
        (the lock is held). A full disk or a lock timeout, the body's or the COMMIT's, is
        raised as its transient error (`raise_storage_error`); any other failure of the body
        is left to propagate."""
        try:
            try:
                if failed is not None:
                    self._undo(carried)
                    if isinstance(failed, (sqlite3.OperationalError, OSError)):
                        raise failed
                    return
                try:
                    self._conn.execute("COMMIT" if durable or not self._syncs else RELAXED_COMMIT)
                except BaseException:
                    self._undo(carried)
                    raise
                if durable:
                    try:
                        self._sync()
                    except BaseException:
                        self._after_commit.clear()  # committed, its durability unknown: fail
                        raise
            finally:
                self._depth = 0
                self._writer = 0
        except (sqlite3.OperationalError, OSError) as exc:
            # A full disk or a lock held past the busy timeout: transient (storage_errors).
            raise_storage_error(exc, self._writing)
        self._run_after_commit()

    def _undo(self, carried: list[Deferred]) -> None:
        """Roll back: a failed COMMIT (a full disk) leaves the transaction open too."""
        self._after_commit.clear()
        self._deferred[:0] = carried  # not written: the next transaction's again
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _sync(self) -> None:
        """Make the commit just made durable: fsync the WAL (what `synchronous=FULL` does at
        every commit in WAL mode, and nothing more). The WAL file stays the same file while
        this connection is open: SQLite deletes or replaces it only once no connection has the
        database open. A commit the WAL did not take (no WAL mode) was synced by SQLite."""
        if not self._syncs:
            return
        if self._wal is None:
            self._wal = os.open(f"{self.path}-wal", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        _fdatasync(self._wal)

    def in_write(self) -> bool:
        """Whether this thread is inside a write transaction (reads then see its writes)."""
        return self._depth > 0 and self._writer == threading.get_ident()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the enclosing write transaction has committed (dropped if it
        rolls back). Outside a transaction, it runs now. For what must not be seen before the
        commit, and need not survive a crash right after it (the outbox's file mirror)."""
        with self._lock:
            if not self._depth:
                callback()
                return
            self._after_commit.append(callback)

    def defer(
        self, statement: str, params: tuple[Any, ...], then: Callable[[], None] | None = None
    ) -> None:
        """Have the store's next write transaction (any thread's) execute `statement`, and run
        `then` once it committed, if the statement changed a row. Inside a write transaction
        of this thread, it is executed now, as part of it. For a row whose loss before the next
        commit loses nothing committed (see the module docstring): an idempotent statement
        (`INSERT OR IGNORE`), since a failed transaction carries it on to the next."""
        deferred = Deferred(statement, params, then)
        with self._lock:  # waits for another thread's open transaction to end
            if self._depth:
                self._write_deferred(deferred)
            else:
                self._deferred.append(deferred)

    def write_deferred(self) -> None:
        """Commit what is deferred now (before reading it back, or closing the store)."""
        with self._lock:
            if self._deferred:
                with self.write(durable=False):
                    pass

    def _write_deferred(self, deferred: Deferred) -> None:
        if self._conn.execute(deferred.statement, deferred.params).rowcount and deferred.then:
            self._after_commit.append(deferred.then)

    def _run_after_commit(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def trace(self, callback: Callable[[str], None] | None) -> None:
        """Observe every SQL statement (benchmarks count COMMITs with it)."""
        with self._lock:
            self._conn.set_trace_callback(callback)

    def close(self) -> None:
        with self._lock:
            try:
                if self._deferred:
                    with self.write():
                        pass
            finally:
                if self._wal is not None:
                    os.close(self._wal)  # before SQLite deletes the file, on closing the last
                    self._wal = None
                self._conn.close()


class Transaction:
    """`Database.write`'s context manager: a class rather than a generator, since a step's
    commit enters several, mostly nested in its unit of work (a nested one only counts)."""

    __slots__ = ("_carried", "_db", "_durable", "_outer")

    def __init__(self, db: Database, durable: bool) -> None:
        self._db = db
        self._durable = durable
        self._outer = False
        self._carried: list[Deferred] = []

    def __enter__(self) -> sqlite3.Connection:
        db = self._db
        db._lock.acquire()
        if db._depth:  # nested: part of the enclosing transaction (a unit of work)
            db._depth += 1
            return db._conn
        try:
            self._carried = db._begin()
        except BaseException:
            db._lock.release()
            raise
        self._outer = True
        return db._conn

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        db = self._db
        try:
            if not self._outer:
                db._depth -= 1
                return
            self._outer = False
            if exc is None and kind is not None:
                exc = kind()
            db._end(self._durable, self._carried, exc)
            self._carried = []
        finally:
            db._lock.release()


class Reading:
    """`Database.read`'s context manager (a class, like `Transaction`)."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db._lock.acquire()
        return self._db._conn

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._db._lock.release()
        if isinstance(exc, (sqlite3.OperationalError, OSError)):
            raise_storage_error(exc, self._db._reading)
