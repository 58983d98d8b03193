"""Small builders shared by tests: checkpoints and messages with valid hashes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from durable_graph.backends.local.row_bodies import decode_body
from durable_graph.canonical import compact_json
from durable_graph.checkpoint import Actor, Checkpoint, GraphRef, Task, ThreadRecord
from durable_graph.ports.transition_queue import TransitionMessage

GRAPH = GraphRef(name="tests:graph", version="v1")


def checkpoint(
    thread_id: str,
    step: int,
    values: dict[str, Any] | None = None,
    status: str = "running",
    prev_hash: str = "0" * 64,
) -> Checkpoint:
    record = Checkpoint(
        thread_id=thread_id,
        step=step,
        source="input" if step == 0 else "node",
        values=values if values is not None else {"n": step},
        next=[Task(id=f"{step}:a", node="a")],
        status=status,
        graph=GRAPH,
        created_at="2026-01-01T00:00:00.000000Z",
        actor=Actor(kind="system", id="test"),
        prev_hash=prev_hash,
    )
    return record.sealed()


def thread_record(thread_id: str, status: str = "running", head: int = 0) -> ThreadRecord:
    return ThreadRecord(
        thread_id=thread_id,
        graph=GRAPH,
        status=status,
        head_step=head,
        created_at="2026-01-01T00:00:00.000000Z",
        updated_at="2026-01-01T00:00:00.000000Z",
    )


def message(thread_id: str, step: int, node: str = "a", parallel: int = 1) -> TransitionMessage:
    return TransitionMessage(
        thread_id=thread_id,
        step=step,
        task=Task(id=f"{step}:{node}", node=node),
        graph=GRAPH,
        parallel=parallel,
    )


def row_text(body: str | bytes) -> str:
    """A checkpoint row's stored JSON as the embedded store returns its `body` column (text,
    or zstd of it for a big row: `row_bodies.py`)."""
    text = decode_body(body)
    return text.decode() if isinstance(text, bytes) else text


def stored_rows(db: Path, thread_id: str) -> dict[int, dict[str, Any]]:
    """Every stored row of the thread in an embedded store, by step, as JSON documents."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT step, body FROM checkpoints WHERE thread_id = ? ORDER BY step", (thread_id,)
        ).fetchall()
    return {int(step): json.loads(row_text(body)) for step, body in rows}


def edit_stored_row(
    db: Path, thread_id: str, step: int, edit: Callable[[dict[str, Any]], None]
) -> None:
    """Tamper with one stored row in place, as someone with the SQLite file would: `edit`
    changes its JSON document, which is written back as text (readers take either form)."""
    doc = stored_rows(db, thread_id)[step]
    edit(doc)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE checkpoints SET body = ? WHERE thread_id = ? AND step = ?",
            (compact_json(doc), thread_id, step),
        )
