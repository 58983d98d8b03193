"""Small builders shared by tests: checkpoints and messages with valid hashes."""

from __future__ import annotations

from typing import Any

from durable_graph.checkpoint import Actor, Checkpoint, GraphRef, Task, ThreadRecord
from durable_graph.ports import TransitionMessage

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
