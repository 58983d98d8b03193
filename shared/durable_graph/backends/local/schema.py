"""The embedded store's tables: what a new store is created with, and how an older one is
brought up to date when it is opened (`Database`, db.py). A new store's layout and the reasons
for it are beside each table; an existing store keeps its page size and its tables, read and
written by the same SQL (`docs/record-format.md`).

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

import sqlite3

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
# The columns a head write compares and carries (`upgrade_threads`), by a store that predates
# them added empty: a row without them is read from its body instead.
THREAD_COLUMNS = ("head_step INTEGER", "created_at TEXT", "origin TEXT")


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


__all__ = ["PAGE_SIZE", "QUEUE", "QUEUE_BEFORE", "SCHEMA", "THREAD_COLUMNS", "upgrade_threads"]
