"""LangGraph compatibility: each behaviour of docs/langgraph-compatibility.md, through the
public API, on a real embedded store (SQLite file and payload folder in tmp_path). Every thread
a test writes must still verify (`verified`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from durable_graph.backend import Backend
from durable_graph.backends.local import local_backend
from durable_graph.runtime import CompiledGraph
from durable_graph.verification import verify_thread


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    built = local_backend(tmp_path / "home")
    try:
        yield built
    finally:
        built.close()


def on(app: CompiledGraph, backend: Backend) -> CompiledGraph:
    return app.with_backend(backend)


def verified(app: CompiledGraph, thread_id: str) -> None:
    """The thread's whole chain verifies offline (hashes, links, state, transitions...)."""
    report = verify_thread(app.backend, thread_id)
    assert report.ok, report.as_json()


def cfg(thread_id: str, **extra: object) -> dict[str, object]:
    return {"configurable": {"thread_id": thread_id}, **extra}
