"""Everything a conformance backend stores, read from its storage itself (rows of every table,
every item, every payload object or file), so a test can assert that a refused request changed
nothing at all, not only what the store's own reads show."""

from __future__ import annotations

import json
from typing import Any

from durable_graph.backend import Backend
from durable_graph.backends.aws.dynamodb_store import DynamoDBCheckpointStore
from durable_graph.backends.aws.s3_payloads import S3PayloadStore
from durable_graph.backends.local.folder_payloads import FolderPayloadStore
from durable_graph.backends.local.sqlite_store import SqliteCheckpointStore
from durable_graph.backends.memory import MemoryCheckpointStore, MemoryPayloadStore
from durable_graph.backends.postgres.store import PostgresCheckpointStore
from durable_graph.sealed_payloads import raw_payloads


def contents(backend: Backend) -> dict[str, list[str]]:
    """Rows (or items) and payload objects, each as sorted text."""
    return {"rows": sorted(_rows(backend.checkpoints.inner)), "objects": _objects(backend)}


def _rows(store: Any) -> list[str]:
    if isinstance(store, MemoryCheckpointStore):
        steps = [c.to_stored_json() for t in store._checkpoints.values() for c in t.values()]
        heads = [r.model_dump_json() for r in store._threads.values()]
        records = [f"{k}={v.model_dump_json()}" for k, v in store._records.items()]
        return steps + heads + records
    if isinstance(store, SqliteCheckpointStore):
        with store.db.read() as conn:
            listed = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            tables = [t for (t,) in listed.fetchall()]
            return [repr((t, row)) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"')]
    if isinstance(store, PostgresCheckpointStore):
        with store.db.connection("reading every table") as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            ).fetchall()
            return [
                f"{table}:{row[0]}"
                for (table,) in tables
                for row in conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()
            ]
    if isinstance(store, DynamoDBCheckpointStore):
        items = store.client.scan(TableName=store.table)["Items"]
        return [json.dumps(item, sort_keys=True, default=str) for item in items]
    raise AssertionError(f"no reader of {type(store).__name__}'s storage")


def _objects(backend: Backend) -> list[str]:
    payloads: Any = raw_payloads(backend.payloads)
    if isinstance(payloads, MemoryPayloadStore):
        return sorted(payloads._blobs)
    if isinstance(payloads, FolderPayloadStore):
        files = [p for p in payloads.root.rglob("*") if p.is_file()]
        return sorted(str(p.relative_to(payloads.root)) for p in files)
    if isinstance(payloads, S3PayloadStore):
        listed = payloads.client.list_object_versions(Bucket=payloads.bucket)
        return sorted(
            f"{v['Key']}@{v.get('VersionId')}"
            for v in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]
        )
    if type(payloads).__name__ == "PostgresPayloadStore":
        return []  # its objects are rows of its table: in `_rows`
    raise AssertionError(f"no reader of {type(payloads).__name__}'s objects")
