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
before `write` returns (`Database._sync_through`): the one sync `synchronous=FULL` makes at a
commit in WAL mode, and nothing more. So no write switches the setting (a relaxed write between
durable ones took two PRAGMA statements, about 17 us each). A store not in WAL mode keeps FULL.

That sync runs after the connection's lock is released, and is shared (group commit across the
callers' threads): while one thread fdatasyncs, others BEGIN, write and COMMIT, and the next
fdatasync covers all of their commits at once; a thread whose commit an fdatasync that began
after it already covered does not sync again. Held under the lock, every fsync was serialized
and no other thread could even BEGIN meanwhile (100 OS threads running the approval flow on one
store: 283 flows/s, against 324-345 with the shared sync; one thread: unchanged).

So another thread of this process can read a commit before its fsync completed. Nothing it reads
may become an action before that (DESIGN: every step durable before the next is scheduled): the
queue hands out a leased message only after `Database.durable` (sync through every durable
commit made so far, a comparison of two counters when there is none pending), and a write's
after-commit callbacks run only once its commit is synced. Another *process* on the same store
could already read a commit before its fsync, and still can: with `synchronous=NORMAL` SQLite
makes a commit visible at COMMIT, and the sync made here follows it (`synchronous=FULL` syncs
before it publishes the commit). So a worker process may lease a task that a commit of this one
queued up to one fsync before that commit is on disk (the worker's first durable commit, after
it in the WAL, syncs it too); a power cut in that window loses the commit though the task may
have started: what a crash at any point already leaves to idempotency keys.

The tables, and the page size of a new store, are `schema.py`'s.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from durable_graph.backends.local.commit_count import RELAXED_COMMIT
from durable_graph.backends.local.schema import PAGE_SIZE, QUEUE, SCHEMA, upgrade_threads
from durable_graph.backends.local.storage_errors import (
    CANNOT_OPEN,
    is_corruption,
    raise_storage_error,
    sqlite_code,
)
from durable_graph.errors import StoreUnavailable, StoreUnreadable

_fdatasync = getattr(os, "fdatasync", os.fsync)  # the call SQLite makes (fsync where none)


@dataclass(frozen=True)
class Deferred:
    """A statement for the next write transaction (`Database.defer`)."""

    statement: str
    params: tuple[Any, ...]
    then: Callable[[], None] | None  # after the commit, if the statement changed a row


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
        if sqlite_code(exc) not in CANNOT_OPEN:
            raise
        raise StoreUnavailable(str(path), str(exc)) from None


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
        # The WAL file, opened at the first sync (`_sync_through`); None while the store is
        # not in WAL mode, where every commit is SQLite's own FULL one, and once closed.
        self._wal: int | None = None
        self._syncs = False  # whether durable commits sync the WAL here (WAL mode)
        # Group sync (`_sync_through`), by positions in the WAL: commits appended to it so
        # far (counted under `_lock` once COMMIT returned, relaxed ones too), the latest
        # durable one's position (what `durable` syncs through), and how many commits an
        # fdatasync has covered. `_sync_lock` guards the sync and `_synced`; it is only ever
        # taken after `_lock` or without it, never the other way round.
        self._appended = 0
        self._wanted = 0
        self._synced = 0
        self._sync_lock = threading.Lock()
        self._closed = False
        self._must_sync = False  # `durable` inside the open transaction: its commit syncs
        self.fsyncs = 0  # fdatasyncs made (what a test of the group sync counts)
        self._nested = Nested(self)
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
                    # itself (`_sync_through`), so no write switches the setting (docstring).
                    self._conn.execute("PRAGMA synchronous=NORMAL")
                    self._syncs = True
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            if is_corruption(exc):
                raise StoreUnreadable(str(path), str(exc)) from None
            if sqlite_code(exc) in CANNOT_OPEN:
                raise StoreUnavailable(str(path), str(exc)) from None
            if isinstance(exc, sqlite3.OperationalError):  # creating the schema writes too
                raise_storage_error(exc, f"opening {path}")
            raise

    def read(self) -> Reading:
        """The connection, for reads, under the lock (a full disk or a lock timeout raised as
        its transient error)."""
        return Reading(self)

    def write(self, *, durable: bool = True) -> Transaction | Nested:
        """BEGIN IMMEDIATE: take the write lock up front so check-then-write is atomic.

        `durable=False` commits without an fsync (see the module docstring); nested inside an
        enclosing transaction, a write is part of it, durable or not as that one is."""
        if self._depth and self._writer == threading.get_ident():
            # Nested in this thread's open transaction, whose lock it holds: only counted
            # (`Nested`). An approval thread's steps open 13 such writes in their 6 commits.
            return self._nested
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

    def _end(self, durable: bool, carried: list[Deferred], failed: BaseException | None) -> int:
        """Commit the open write transaction, or roll it back when its body raised `failed`
        (the lock is held). A full disk or a lock timeout, the body's or the COMMIT's, is
        raised as its transient error (`raise_storage_error`); any other failure of the body
        is left to propagate. Returns the WAL position a durable commit must be synced
        through (`_sync_through`, once the lock is released), 0 when there is nothing to sync:
        a rollback, a relaxed commit, or any commit outside WAL mode (SQLite's FULL synced it
        before COMMIT returned)."""
        try:
            try:
                if failed is not None:
                    self._undo(carried)
                    if isinstance(failed, (sqlite3.OperationalError, OSError)):
                        raise failed
                    return 0
                durable = durable or self._must_sync
                try:
                    self._conn.execute("COMMIT" if durable or not self._syncs else RELAXED_COMMIT)
                except BaseException:
                    self._undo(carried)
                    raise
                if not self._syncs:
                    return 0
                self._appended += 1
                if not durable:
                    return 0
                self._wanted = self._appended
                return self._wanted
            finally:
                self._depth = 0
                self._writer = 0
                self._must_sync = False
        except (sqlite3.OperationalError, OSError) as exc:
            # A full disk or a lock held past the busy timeout: transient (storage_errors).
            raise_storage_error(exc, self._writing)

    def _undo(self, carried: list[Deferred]) -> None:
        """Roll back: a failed COMMIT (a full disk) leaves the transaction open too."""
        self._after_commit.clear()
        self._deferred[:0] = carried  # not written: the next transaction's again
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _sync_through(self, position: int) -> None:
        """Make every commit up to WAL `position` durable: fdatasync the WAL (what
        `synchronous=FULL` does at every commit in WAL mode), outside the write lock, so that
        other threads commit meanwhile, and one fsync covers every commit appended before it
        began: a thread whose commit an fsync begun after it already covered returns without
        syncing (group commit across callers' threads). A commit is counted once its COMMIT
        returned, so every counted one is in the WAL when the fsync starts.

        The WAL stays the same file while this connection is open (SQLite deletes it only once
        no connection has the database open), and a checkpoint that backfills and restarts it
        syncs it first (`synchronous=NORMAL`), so a commit restarted over is already on disk.

        A failed fsync raises the store's transient error (a full disk) or the OSError, to the
        thread that made it only: a thread whose commit it should have covered makes its own
        fsync next, as it did when each thread synced its own commit."""
        with self._sync_lock:
            if self._synced >= position:
                return
            through = self._appended  # every commit counted so far is in the WAL
            try:
                if self._wal is None:
                    if self._closed:  # `close` synced what it could: its sync failed
                        raise OSError(errno.EBADF, "the store closed before the commit synced")
                    self._wal = os.open(
                        f"{self.path}-wal", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
                    )
                _fdatasync(self._wal)
            except OSError as exc:
                raise_storage_error(exc, self._writing)
            self.fsyncs += 1
            self._synced = through

    def durable(self) -> None:
        """Wait until every durable commit this process made so far is on disk, syncing it if
        no other thread is: before what a read found becomes an action (the queue hands out
        a message that a commit not yet synced queued; see the module docstring). A compare
        of two counters when nothing waits for a sync, so it may guard every hand-over.

        Inside this thread's open write transaction, what it read is acted on once that one
        ends: its commit is then made durable (a relaxed one too), and its sync, after the
        lock is released, covers every commit before it; syncing here, under the lock, would
        hold every other thread up meanwhile."""
        wanted = self._wanted
        if self._synced >= wanted:
            return
        if self._depth and self._writer == threading.get_ident():
            self._must_sync = True
            return
        self._sync_through(wanted)

    def appended(self) -> int:
        """The WAL position of the latest commit (0 outside WAL mode): once `synced` reaches
        it, that commit is on disk."""
        return self._appended

    def synced(self) -> int:
        """The WAL position through which an fdatasync has made commits durable."""
        return self._synced

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

    def trace(self, callback: Callable[[str], None] | None) -> None:
        """Observe every SQL statement (benchmarks count COMMITs with it)."""
        with self._lock:
            self._conn.set_trace_callback(callback)

    def close(self) -> None:
        """Write what is deferred and close. A commit another thread made and has not synced
        yet is synced first (`durable`): its thread then finds it synced, instead of an fsync
        of a WAL file closed, and maybe deleted, under it."""
        with self._lock:
            try:
                if self._deferred:
                    with self.write():
                        pass
            finally:
                try:
                    self.durable()
                finally:
                    with self._sync_lock:  # no other thread's fsync is using the file
                        self._closed = True
                        if self._wal is not None:
                            os.close(self._wal)  # before SQLite deletes it, closing the last
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
            position = db._end(self._durable, self._carried, exc)
            self._carried = []
            callbacks, db._after_commit = db._after_commit, []
        finally:
            db._lock.release()
        # Outside the lock (unless an enclosing `with db._lock` holds it: `close`), so other
        # threads commit while this one syncs. A failed sync raises: the commit is made, its
        # durability unknown, and its callbacks are dropped with it.
        if position:
            db._sync_through(position)
        for callback in callbacks:
            callback()


class Nested:
    """`Database.write`'s context manager inside this thread's open write transaction: part of
    it, so it only counts its depth (the thread holds the lock until the outermost ends). One
    per database: it keeps no state of its own."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db._depth += 1
        return self._db._conn

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._db._depth -= 1


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
