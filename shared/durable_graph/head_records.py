"""The mutable records beside a thread's immutable chain: its head (`ThreadRecord`), and the
small compare-and-set records (pending writes, effects, tokens) the stores keep by key.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from durable_graph.record_parts import ErrorInfo, GraphRef, InterruptInfo, ParentRef, Status


class ThreadRecord(BaseModel):
    """Mutable head of a thread, rewritten only when its status changes (not every step)."""

    model_config = ConfigDict(extra="forbid")

    thread_id: str
    graph: GraphRef
    status: Status
    head_step: int
    created_at: str
    updated_at: str
    origin: ParentRef | None = None
    interrupt: InterruptInfo | None = None
    error: ErrorInfo | None = None
    revision: int = 0


class VersionedRecord(BaseModel):
    """A small record with compare-and-set semantics: pending writes, effects, tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    value: dict[str, Any]
    version: int
