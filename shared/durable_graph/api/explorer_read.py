"""What the explorer shows, read from the store alone (`Backend`): no graph is imported.

Every read is bounded by a page: a list of threads is one `page_threads`, a timeline one
`list_checkpoints(before_step=..., limit=...)` plus one batched read of the page's signature
records, so a 10,000-step thread opens as fast as a 10-step one. Only verification and the
audit bundle read a whole thread, and only when asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from durable_graph import reading
from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint, IoRecord, ThreadRecord
from durable_graph.drawing import mermaid, path_of, shape_from_records, stored_shape
from durable_graph.errors import InvalidInput
from durable_graph.forks import forks_of
from durable_graph.listing import ThreadPage
from durable_graph.signing import SIG_PREFIX
from durable_graph.timetravel import shown

TIMELINE_PAGE = 50
THREAD_PAGE = 50
FORKS_SHOWN = 50  # forks listed on a thread's page (the index holds them all)
MAX_DEPTH = 32  # ancestors followed before giving up (a fork of a fork of ...)


@dataclass(frozen=True)
class StepRow:
    """One line of a timeline."""

    step: int
    source: str
    nodes: list[str]
    actor: str
    created_at: str
    duration_ms: float
    routes: list[str]
    status: str
    signed: bool
    io: int
    error: str | None


@dataclass(frozen=True)
class Timeline:
    rows: list[StepRow]  # newest first
    head_step: int
    older: int | None  # `before` of the next (older) page, None at step 0
    newer: int | None  # `before` of the previous (newer) page, None at the head
    records: list[Checkpoint] = field(default_factory=list)


@dataclass(frozen=True)
class Lineage:
    ancestors: list[tuple[str, int]]  # (thread, step) this thread was forked from, nearest first
    forks: list[tuple[str, int]]  # threads forked from this one (the first FORKS_SHOWN)
    more: int  # at most this many forks beyond those listed (0: all are listed)


def list_threads(
    backend: Backend,
    *,
    status: str | None,
    query: str,
    cursor: str | None,
    limit: int = THREAD_PAGE,
) -> ThreadPage:
    return backend.checkpoints.page_threads(
        status=status or None, prefix=query.strip(), limit=limit, cursor=cursor or None
    )


def inbox(backend: Backend, cursor: str | None, limit: int = THREAD_PAGE) -> ThreadPage:
    """Suspended threads, oldest first: the longest wait at the top."""
    return backend.checkpoints.page_threads(
        status="suspended", newest_first=False, limit=limit, cursor=cursor or None
    )


def head_of(backend: Backend, thread_id: str) -> tuple[ThreadRecord | None, Checkpoint]:
    """The thread's record (status, origin) and its head step."""
    head = reading.head_of(backend, thread_id)
    return backend.checkpoints.get_thread(thread_id), head


def step_number(raw: str | None, name: str) -> int | None:
    """A query parameter that must be a step number, or absent."""
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidInput(f"{name} must be a step number", field=name)
    return int(raw)


def timeline(
    backend: Backend, thread_id: str, head_step: int, before: int | None, limit: int = TIMELINE_PAGE
) -> Timeline:
    """One page of steps, newest first, ending just before `before` (default: the head)."""
    end = head_step + 1 if before is None else min(before, head_step + 1)
    records = backend.checkpoints.list_checkpoints(
        thread_id, newest_first=True, before_step=end, limit=limit
    )
    keys = [f"{SIG_PREFIX}{r.step}" for r in records]
    signed = backend.checkpoints.get_records(thread_id, keys) if keys else {}
    rows = [_row(r, f"{SIG_PREFIX}{r.step}" in signed) for r in records]
    oldest = records[-1].step if records else 0
    return Timeline(
        rows=rows,
        head_step=head_step,
        older=oldest if oldest > 0 else None,
        newer=None if end > head_step else min(end + limit, head_step + 1),
        records=records,
    )


def _row(record: Checkpoint, signed: bool) -> StepRow:
    routes = [
        f"{r.source} → {', '.join(r.result) or '∅'}" + (f" ({r.router})" if r.router else "")
        for r in record.route
    ]
    return StepRow(
        step=record.step,
        source=record.source,
        nodes=list(record.nodes),
        actor=f"{record.actor.kind}:{record.actor.id}",
        created_at=record.created_at,
        duration_ms=record.duration_ms,
        routes=routes,
        status=record.status,
        signed=signed,
        io=len(record.io),
        error=f"{record.error.type}: {record.error.message}" if record.error else None,
    )


def state_at(backend: Backend, thread_id: str, step: int) -> tuple[Checkpoint, dict[str, Any]]:
    """The record of `step` and its state, offloaded values shown by digest and size."""
    record = reading.step_of(backend, thread_id, step).with_io_restored()
    return record, shown(reading.readable_values(backend, record), backend, False)


def io_of(backend: Backend, record: Checkpoint) -> list[tuple[IoRecord, Any]]:
    """The external inputs recorded at a step (LLM calls, API responses, effects), each with
    its response as shown (offloaded ones by digest)."""
    return [(io, shown(io.response, backend, False)) for io in record.io]


def drawing(
    backend: Backend,
    head: Checkpoint,
    records: list[Checkpoint],
    served: Mapping[tuple[str, str], Mapping[str, Any]],
) -> tuple[str, bool]:
    """Mermaid text of the thread's graph, the head's node(s) and the path over `records`
    highlighted; and whether the shape was derived from records.

    The shape comes from the graph this API serves when the thread runs that very version
    (`served`: no read), else from the store (published by `serve`), else from the routes
    the records took (`derived`: branches never taken are missing)."""
    key = (head.graph.name, head.graph.version)
    shape = dict(served[key]) if key in served else stored_shape(backend.checkpoints, *key)
    derived = shape is None
    if shape is None:
        shape = shape_from_records(head.graph.name, head.graph.version, [*records, head])
    ran, taken = path_of(records)
    if head.status == "suspended" and head.interrupt is not None:
        current = [head.interrupt.node]
    elif head.status == "failed" and head.error is not None:
        current = [head.error.node]
    else:
        current = [t.node for t in head.next] or list(head.nodes)
    if head.status == "completed":
        current = ["__end__"]
    text = mermaid(shape, current=current, ran=ran, taken=taken, failed=head.status == "failed")
    return text, derived


def lineage(backend: Backend, thread: ThreadRecord | None, head: Checkpoint) -> Lineage:
    """Where this thread was forked from (following origins up), and the forks of it: its
    fork index (`durable_graph.forks`), so exact however many threads the store holds; the
    first `FORKS_SHOWN` are listed."""
    ancestors: list[tuple[str, int]] = []
    origin = thread.origin if thread is not None else None
    seen = {head.thread_id}
    while origin is not None and origin.thread_id not in seen and len(ancestors) < MAX_DEPTH:
        ancestors.append((origin.thread_id, origin.step))
        seen.add(origin.thread_id)
        parent = backend.checkpoints.get_thread(origin.thread_id)
        origin = parent.origin if parent is not None else None
    forks, noted = forks_of(backend.checkpoints, head.thread_id, limit=FORKS_SHOWN)
    more = noted - len(forks) if len(forks) == FORKS_SHOWN else 0
    return Lineage(ancestors, sorted((f.thread_id, f.step) for f in forks), more)


__all__ = [
    "Lineage",
    "StepRow",
    "Timeline",
    "drawing",
    "head_of",
    "inbox",
    "io_of",
    "lineage",
    "list_threads",
    "state_at",
    "step_number",
    "timeline",
]
