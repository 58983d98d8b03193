"""Read a thread from the store alone: its status, its history, one past step.

Nothing here imports or runs application code: the records carry every value, route and actor
(`docs/record-format.md`), and the store materialises a step's full state from its deltas. So an
auditor's machine reads a store without the application installed, and reading a ledger never
executes code written by whoever wrote the ledger. The CLI's read commands, the HTTP API and
the explorer pages all go through these functions, so they show the same thing.

Example:
    >>> from durable_graph.reading import status_document  # doctest: +SKIP
    >>> status_document(open_store("aws://prod"), "t-1")["status"]  # doctest: +SKIP
    'suspended'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from durable_graph.approval_record import approvals_of
from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint
from durable_graph.errors import StepNotFound, ThreadNotFound
from durable_graph.langgraph_saver.display import readable
from durable_graph.payloads import hydrate
from durable_graph.signoff import recorded_approvals

__all__ = [
    "head_of",
    "history",
    "history_row",
    "lazy_head_of",
    "readable_values",
    "show_document",
    "status_document",
    "step_of",
    "values_of",
]


def head_of(backend: Backend, thread_id: str) -> Checkpoint:
    head = backend.checkpoints.head_checkpoint(thread_id)
    if head is None:
        raise ThreadNotFound(thread_id)
    return head


def lazy_head_of(backend: Backend, thread_id: str) -> tuple[Checkpoint, Callable[[], Checkpoint]]:
    """The head as its row says it (status, next, graph, interrupt; `values` empty) and a
    function that materialises it: for readers that need the state only sometimes (one row
    read, however long the thread; `RecordStore.lazy_head`)."""
    found = backend.checkpoints.lazy_head(thread_id)
    if found is None:
        raise ThreadNotFound(thread_id)
    return found


def step_of(backend: Backend, thread_id: str, step: int) -> Checkpoint:
    """Step `step` of the thread; `ThreadNotFound` before `StepNotFound`."""
    record = backend.checkpoints.get_checkpoint(thread_id, step)
    if record is None:
        head_of(backend, thread_id)
        raise StepNotFound(thread_id, step)
    return record


def values_of(backend: Backend, checkpoint: Checkpoint) -> dict[str, Any]:
    """The state at `checkpoint` (a format-1 record's offloaded strings fetched back)."""
    if checkpoint.format >= 2:
        return checkpoint.values
    hydrated: dict[str, Any] = hydrate(checkpoint.values, backend.payloads)
    return hydrated


def readable_values(backend: Backend, checkpoint: Checkpoint) -> dict[str, Any]:
    """The state at `checkpoint` as the reading commands show it: `values_of`, with the sealed
    values of a thread `DurableGraphSaver` wrote decoded (`langgraph_saver/display.py`)."""
    return readable(backend, checkpoint, values_of(backend, checkpoint))


def status_document(backend: Backend, thread_id: str) -> dict[str, Any]:
    """What `status --json` prints and `GET /threads/{id}` builds on."""
    head = head_of(backend, thread_id)
    record = backend.checkpoints.get_thread(thread_id)
    doc = {
        "thread_id": thread_id,
        "status": head.status,
        "step": head.step,
        "next": [t.node for t in head.next],
        "values": readable_values(backend, head),
        "graph": head.graph.model_dump(),
        "interrupt": head.interrupt.model_dump() if head.interrupt else None,
        "error": head.error.model_dump() if head.error else None,
        "origin": record.origin.model_dump() if record and record.origin else None,
    }
    approvals = recorded_approvals(backend, head)  # a two-person rule's approvals so far
    if approvals is not None:
        doc["approvals"] = approvals
    return doc


def history(
    backend: Backend,
    thread_id: str,
    *,
    limit: int | None = None,
    before: int | None = None,
    node: str | None = None,
    source: str | None = None,
) -> list[Checkpoint]:
    """Records newest first; `before` pages back, `node` / `source` filter. `ThreadNotFound`
    for an unknown thread, found from the first page (reading the head first materialised
    the whole head state once more: a cold `get_state_history` folded it twice)."""
    store = backend.checkpoints
    filtered = node is not None or source is not None
    page = None if limit is None else max(2 * limit, 32) if filtered else limit
    chosen: list[Checkpoint] = []
    while limit is None or len(chosen) < limit:  # pages of records, newest first
        batch = store.list_checkpoints(thread_id, before_step=before, limit=page)
        if not batch and not chosen and store.get_thread(thread_id) is None:
            head_of(backend, thread_id)  # ThreadNotFound, unless a head exists after all
        chosen += [
            r
            for r in batch
            if (node is None or node in r.nodes) and (source is None or r.source == source)
        ]
        if page is None or len(batch) < page:
            break
        before = batch[-1].step
    return chosen[:limit]


def history_row(checkpoint: Checkpoint) -> dict[str, Any]:
    """One line of `history --json`."""
    return {
        "step": checkpoint.step,
        "node": checkpoint.nodes[0] if checkpoint.nodes else None,
        "nodes": list(checkpoint.nodes),
        "source": checkpoint.source,
        "status": checkpoint.status,
        "actor": checkpoint.actor.model_dump(),
        "hash": checkpoint.hash,
        "prev_hash": checkpoint.prev_hash,
        "parent": checkpoint.parent.model_dump() if checkpoint.parent else None,
        "created_at": checkpoint.created_at,
    }


def show_document(backend: Backend, thread_id: str, step: int) -> dict[str, Any]:
    """What `show --json` prints: the record as stored, plus the full state at that step."""
    checkpoint = step_of(backend, thread_id, step)
    doc = checkpoint.model_dump(mode="json")
    doc["stored_values"] = doc.pop("values")
    doc["values"] = readable_values(backend, checkpoint)
    approvals = approvals_of(backend, checkpoint)  # who decided it, under an approval rule
    if approvals is not None:
        doc["approvals"] = approvals
    return doc
