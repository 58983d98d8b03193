"""What several commands need: the embedded backend, graphs by name, the status document."""

from __future__ import annotations

import sys
from functools import cache
from typing import Any

from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint
from durable_graph.engine import Engine, Outcome
from durable_graph.errors import ThreadNotFound
from durable_graph.loader import load_graph
from durable_graph.runtime import CompiledGraph


@cache
def backend() -> Backend:
    from durable_graph.backends.local import local_backend

    return local_backend()


@cache
def graph(name: str) -> CompiledGraph:
    return load_graph(name).with_backend(backend())


def engine_for(name: str) -> Engine:
    return graph(name).engine()


def head_of(thread_id: str) -> Checkpoint:
    head = backend().checkpoints.head_checkpoint(thread_id)
    if head is None:
        raise ThreadNotFound(thread_id)
    return head


def graph_of(thread_id: str) -> CompiledGraph:
    return graph(head_of(thread_id).graph.name)


def status_document(app: CompiledGraph, thread_id: str) -> dict[str, Any]:
    snapshot = app.get_state(thread_id)
    record = backend().checkpoints.get_thread(thread_id)
    doc: dict[str, Any] = {
        "thread_id": thread_id,
        "status": snapshot.status,
        "step": snapshot.step,
        "next": list(snapshot.next),
        "values": snapshot.values,
        "graph": snapshot.checkpoint.graph.model_dump(),
        "interrupt": snapshot.interrupt.model_dump() if snapshot.interrupt else None,
        "error": snapshot.error.model_dump() if snapshot.error else None,
        "origin": record.origin.model_dump() if record and record.origin else None,
    }
    return doc


def print_status(doc: dict[str, Any]) -> None:
    print(f"thread   {doc['thread_id']}")
    print(f"status   {doc['status']} at step {doc['step']}")
    if doc["next"]:
        print(f"next     {', '.join(doc['next'])}")
    if doc.get("interrupt"):
        interrupt = doc["interrupt"]
        print(f"waiting  {interrupt['when']} {interrupt['node']!r}")
    if doc.get("error"):
        error = doc["error"]
        print(f"error    {error['type']} in {error['node']!r}: {error['message']}")
    if doc.get("origin"):
        origin = doc["origin"]
        print(f"forked   from {origin['thread_id']} step {origin['step']}")
    print("values:")
    for key, value in doc["values"].items():
        text = repr(value)
        print(f"  {key:<18} {text if len(text) < 100 else text[:97] + '...'}")


def progress_printer(enabled: bool) -> Any:
    """A progress line per committed step, and about every 5% of a fan-out's tasks, on stderr,
    for people watching long runs."""

    def show(outcome: Outcome) -> None:
        if outcome.progress is not None:
            done, total = outcome.progress
            if done % max(1, total // 20) == 0:  # about every 5% of a fan-out
                print(
                    f"  tasks {done:>{len(str(total))}}/{total} done", file=sys.stderr, flush=True
                )
            return
        checkpoint = outcome.checkpoint
        if checkpoint is None or outcome.kind != "committed":
            return
        nodes = ", ".join(checkpoint.nodes) or "-"
        print(
            f"  step {checkpoint.step:>3}  {nodes:<24} -> {checkpoint.status:<9} "
            f"({checkpoint.duration_ms:.1f} ms)",
            file=sys.stderr,
            flush=True,
        )

    return show if enabled else None


def exit_code_for(status: str) -> int:
    return 1 if status == "failed" else 0
