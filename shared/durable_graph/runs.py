"""The run a caller drives in this process: its config and its stream, keyed by thread.

`invoke`/`stream` register a `RunScope` for the thread they run while their in-process worker
works it; the nodes of that thread then get the caller's `config` (LangGraph's
`RunnableConfig` shape) and may write to the caller's stream. Neither is saved in the ledger:
like LangGraph's, a config belongs to one invocation. A node run by a detached worker (another
process) gets a config with the thread's ids only, and its stream writes go nowhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "RunScope",
    "emit",
    "node_config",
    "running",
    "scope_for",
    "wants",
]

DEFAULT_RECURSION_LIMIT = 25  # LangGraph's: supersteps one invocation may run
Sink = Callable[[tuple[str, ...], str, Any], None]  # (namespace, stream mode, chunk)


@dataclass
class RunScope:
    """One caller's run of one thread. `namespace` is LangGraph's: `()` for the graph the
    caller runs, `("node:task id", ...)` for a subgraph run inside one of its tasks, whose
    chunks reach the caller's stream only when it asked for `subgraphs`."""

    config: Mapping[str, Any] = field(default_factory=dict)
    sink: Sink | None = None
    modes: frozenset[str] = frozenset()
    namespace: tuple[str, ...] = ()
    subgraphs: bool = False

    def send(self, mode: str, chunk: Any) -> None:
        """Hand `chunk` to the caller's stream if it asked for `mode`."""
        if self.sink is not None and mode in self.modes:
            self.sink(self.namespace, mode, chunk)

    def nested(self, part: str, config: Mapping[str, Any]) -> RunScope:
        """The scope of a subgraph run in one of this run's tasks (`part`: "node:task id"):
        it streams into the caller's stream, namespaced, if the caller asked for subgraphs."""
        if not self.subgraphs:
            return RunScope(config=config)
        return RunScope(
            config=config,
            sink=self.sink,
            modes=self.modes,
            namespace=(*self.namespace, part),
            subgraphs=True,
        )


_scopes: dict[str, RunScope] = {}
_lock = threading.Lock()


@contextmanager
def running(thread_id: str, scope: RunScope) -> Iterator[RunScope]:
    """Register `scope` for `thread_id` while the caller runs it here."""
    with _lock:
        previous = _scopes.get(thread_id)
        _scopes[thread_id] = scope
    try:
        yield scope
    finally:
        with _lock:
            if previous is None:
                _scopes.pop(thread_id, None)
            else:
                _scopes[thread_id] = previous


def scope_for(thread_id: str) -> RunScope | None:
    """The scope of the caller running `thread_id` here, if any."""
    return _scopes.get(thread_id)


def emit(thread_id: str, mode: str, chunk: Any) -> None:
    """Send `chunk` to the stream of the caller running `thread_id` here, if it asked for
    `mode`; nothing otherwise."""
    scope = _scopes.get(thread_id)
    if scope is not None:
        scope.send(mode, chunk)


def wants(thread_id: str, mode: str) -> bool:
    scope = _scopes.get(thread_id)
    return scope is not None and scope.sink is not None and mode in scope.modes


def node_config(thread_id: str, *, step: int, node: str, namespace: str = "") -> dict[str, Any]:
    """The `config` a node that asks for one gets: the caller's, with the thread's ids in
    `configurable` and the step and node in `metadata` (as LangGraph names them)."""
    scope = _scopes.get(thread_id)
    given: Mapping[str, Any] = scope.config if scope is not None else {}
    config = {k: v for k, v in given.items() if k not in ("configurable", "metadata")}
    configurable = dict(given.get("configurable") or {})
    configurable.update({"thread_id": thread_id, "checkpoint_ns": namespace})
    configurable.pop("checkpoint_id", None)
    metadata = dict(given.get("metadata") or {})
    metadata.update({"thread_id": thread_id, "langgraph_step": step, "langgraph_node": node})
    config.update({"configurable": configurable, "metadata": metadata})
    config.setdefault("recursion_limit", DEFAULT_RECURSION_LIMIT)
    return config
