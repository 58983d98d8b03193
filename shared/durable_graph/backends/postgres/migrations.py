"""The PostgreSQL schema, as numbered migrations the project applies itself (never by hand).

`upgrade` brings a database to `LATEST` in one transaction under an advisory lock, so many
workers starting at once against a fresh database apply each migration exactly once, and a
failed migration leaves the schema as it was. Applied versions are rows of
`durable_graph_schema`. A release only appends migrations: an applied one is never edited.
Tables live in the connection's current schema (the first of its `search_path`), so one
database can hold several stores (`?options=-csearch_path%3Dname` in the URI).

Columns mirror the embedded store (`backends/local/schema.py`); bodies hold exactly the JSON the
other stores keep (`Checkpoint.to_stored_json()`: docs/record-format.md), never `jsonb`, which
would reorder keys: as text, except checkpoint and record bodies, which since migration 2 are
`bytea` holding that JSON with its sealed values as bytes (`backends/packed_bodies.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from durable_graph.errors import SchemaMismatch


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


_INITIAL = """
CREATE TABLE checkpoints (
    thread_id text NOT NULL,
    step bigint NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (thread_id, step)  -- the commit condition: a second writer of a step conflicts
);
CREATE TABLE threads (
    thread_id text PRIMARY KEY,
    status text NOT NULL,
    updated_at text NOT NULL,
    revision bigint NOT NULL,
    body text NOT NULL
);
CREATE INDEX threads_by_status ON threads (status, updated_at);
CREATE TABLE records (
    thread_id text NOT NULL,
    key text NOT NULL,
    version bigint NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (thread_id, key)
);
CREATE TABLE payloads (
    sha256 text PRIMARY KEY,  -- content-addressed: identical bytes are one row
    content_type text NOT NULL,
    size bigint NOT NULL,
    data bytea NOT NULL
);
CREATE TABLE queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedup_id text NOT NULL UNIQUE,
    group_id text NOT NULL,
    thread_id text NOT NULL,
    body text NOT NULL,
    visible_at double precision NOT NULL DEFAULT 0,
    receipt text,
    receive_count integer NOT NULL DEFAULT 0
);
CREATE INDEX queue_by_group ON queue (group_id, id);
CREATE INDEX queue_by_visible ON queue (visible_at);
CREATE TABLE dead_letters (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedup_id text NOT NULL,
    body text NOT NULL,
    reason text NOT NULL,
    failed_at text NOT NULL
);
CREATE TABLE notifications (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    thread_id text NOT NULL,
    kind text NOT NULL,
    body text NOT NULL,
    created_at text NOT NULL
);
"""

# Checkpoint and record bodies as bytes: their sealed values kept as binary, not base64
# (`backends/packed_bodies.py`). Rows already there become their UTF-8 JSON, which is read as
# it always was; nothing is rewritten.
_PACKED_BODIES = """
ALTER TABLE checkpoints ALTER COLUMN body TYPE bytea USING convert_to(body, 'UTF8');
ALTER TABLE records ALTER COLUMN body TYPE bytea USING convert_to(body, 'UTF8');
"""

# Each payload's stamp: the store's clock (epoch seconds) at its last put, so erasure can delete
# a shared object only if no step stored it again since (`ports.payload_store`). Rows already
# there get 0: stored long ago.
_PAYLOAD_STAMPS = """
ALTER TABLE payloads ADD COLUMN stored_at double precision NOT NULL DEFAULT 0;
"""

# Payload objects left by a process that may not delete them, for one that may
# (`backends/sql_leftovers.py`, `ports.leftovers`): oldest first by `at`, ISO text in byte order.
_LEFTOVERS = """
CREATE TABLE leftovers (
    id bigserial PRIMARY KEY,
    at text NOT NULL,
    body text NOT NULL
);
CREATE INDEX leftovers_by_at ON leftovers (at COLLATE "C", id);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _INITIAL),
    Migration(2, "checkpoint and record bodies as bytea (sealed values binary)", _PACKED_BODIES),
    Migration(3, "payloads stamped at each put", _PAYLOAD_STAMPS),
    Migration(4, "leftovers: payload objects left for a process that may delete them", _LEFTOVERS),
)
LATEST = MIGRATIONS[-1].version

_VERSIONS = """
CREATE TABLE IF NOT EXISTS durable_graph_schema (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
# One lock per schema of the database: concurrent upgrades of one store queue behind it.
_LOCK = "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '/durable-graph'))"


def current_version(conn: psycopg.Connection) -> int:
    """The highest applied migration, 0 for a database the project never touched."""
    row = conn.execute("SELECT to_regclass('durable_graph_schema') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return 0
    found = conn.execute("SELECT coalesce(max(version), 0) FROM durable_graph_schema").fetchone()
    return int(found[0]) if found else 0


def upgrade(conn: psycopg.Connection) -> tuple[int, int]:
    """Apply every pending migration; return (version before, version after)."""
    with conn.transaction():
        conn.execute(_LOCK)
        conn.execute(_VERSIONS)
        before = current_version(conn)
        if before > LATEST:
            raise SchemaMismatch(before, LATEST)
        for migration in MIGRATIONS:
            if migration.version > before:
                conn.execute(migration.sql.encode())  # bytes: several statements, no params
                conn.execute(
                    "INSERT INTO durable_graph_schema (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
    return before, LATEST


def check_current(conn: psycopg.Connection) -> None:
    """Refuse a store whose schema is not `LATEST` (the caller chose not to migrate)."""
    found = current_version(conn)
    if found != LATEST:
        raise SchemaMismatch(found, LATEST)


__all__ = ["LATEST", "MIGRATIONS", "Migration", "check_current", "current_version", "upgrade"]
