"""The LangGraph-familiar builder: `StateGraph`, `add_node`, `add_edge`, `add_conditional_edges`,
`START`, `END`, `Send`, `compile(...)`.

`compile()` freezes the topology and computes the graph *version*: a hash of node names, edges,
routers, interrupt points and the state schema. A thread records the version it started under and
refuses to resume under another.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from durable_graph.retention_policy import Retention
from durable_graph.retry import RetryPolicy
from durable_graph.runtime import CompiledGraph
from durable_graph.spec import (
    END,
    START,
    ConditionalEdge,
    GraphSpec,
    NodeFn,
    NodeSpec,
    Router,
    Send,
)
from durable_graph.state import StateSchema

# START, END and Send are part of the builder's API (`from durable_graph.graph import START`).
__all__ = ["END", "START", "GraphSpec", "Send", "StateGraph"]


def _accepts(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    positional = [
        p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return 2
    return len(positional)


class StateGraph:
    """Build a graph over a pydantic state model.

    Example:
        >>> from pydantic import BaseModel
        >>> class S(BaseModel):
        ...     n: int = 0
        >>> g = StateGraph(S)
        >>> _ = g.add_node("inc", lambda s: {"n": s.n + 1})
        >>> _ = g.add_edge(START, "inc").add_edge("inc", END)
        >>> app = g.compile()
    """

    def __init__(self, state: type[BaseModel]) -> None:
        self.schema = StateSchema(state)
        self.nodes: dict[str, NodeSpec] = {}
        self.edges: dict[str, list[str]] = {}
        self.branches: dict[str, list[ConditionalEdge]] = {}

    def add_node(
        self, name: str, fn: NodeFn | None = None, *, retry: RetryPolicy | None = None
    ) -> StateGraph:
        if fn is None:
            raise TypeError(f"add_node({name!r}) needs a function")
        if name in (START, END) or not name or name in self.nodes:
            raise ValueError(f"node name {name!r} is reserved or already used")
        arity = _accepts(fn)
        self.nodes[name] = NodeSpec(
            name=name,
            fn=fn,
            retry=retry or RetryPolicy(),
            wants_ctx=arity >= 2,
            wants_state=arity >= 1,
        )
        return self

    def add_edge(self, source: str | Sequence[str], target: str) -> StateGraph:
        sources = [source] if isinstance(source, str) else list(source)
        for src in sources:
            if src == END:
                raise ValueError("END has no outgoing edges")
            if target == START:
                raise ValueError("no edge may lead to START")
            self.edges.setdefault(src, [])
            if target not in self.edges[src]:
                self.edges[src].append(target)
        return self

    def add_conditional_edges(
        self,
        source: str,
        path: Router,
        path_map: Mapping[Hashable, str] | Sequence[str] | None = None,
    ) -> StateGraph:
        mapping: Mapping[Hashable, str] | None
        if path_map is None or isinstance(path_map, Mapping):
            mapping = path_map
        else:
            mapping = {name: name for name in path_map}
        self.branches.setdefault(source, []).append(
            ConditionalEdge(source, path, mapping, wants_ctx=_accepts(path) >= 2)
        )
        return self

    def set_entry_point(self, node: str) -> StateGraph:
        return self.add_edge(START, node)

    def set_finish_point(self, node: str) -> StateGraph:
        return self.add_edge(node, END)

    def _validate(self, interrupts: Sequence[str]) -> None:
        known = set(self.nodes)
        if START not in self.edges and START not in self.branches:
            raise ValueError("the graph has no entry point: add_edge(START, 'first_node')")
        for src, targets in self.edges.items():
            if src != START and src not in known:
                raise ValueError(f"edge from unknown node {src!r}")
            for dst in targets:
                if dst != END and dst not in known:
                    raise ValueError(f"edge {src!r} -> {dst!r} leads to an unknown node")
        for src, branches in self.branches.items():
            if src != START and src not in known:
                raise ValueError(f"conditional edge from unknown node {src!r}")
            for branch in branches:
                for dst in (branch.path_map or {}).values():
                    if dst != END and dst not in known:
                        raise ValueError(f"path_map of {src!r} names unknown node {dst!r}")
        for name in interrupts:
            if name not in known:
                raise ValueError(f"interrupt names unknown node {name!r}")

    def compile(
        self,
        *,
        checkpointer: Any = None,
        interrupt_before: Sequence[str] | None = None,
        interrupt_after: Sequence[str] | None = None,
        name: str | None = None,
        retention: Retention | None = None,
    ) -> CompiledGraph:
        """Freeze the graph. `checkpointer` is a `Backend`; without one each call picks the
        process default (the embedded store under $DURABLE_GRAPH_HOME). `retention`: how long
        its threads' values are kept (`durable-graph retention run` erases older ones)."""
        before = list(interrupt_before or [])
        after = list(interrupt_after or [])
        self._validate(before + after)
        spec = GraphSpec(
            schema=self.schema,
            nodes=dict(self.nodes),
            edges={k: list(v) for k, v in self.edges.items()},
            branches={k: list(v) for k, v in self.branches.items()},
            interrupt_before=frozenset(before),
            interrupt_after=frozenset(after),
        )
        return CompiledGraph(spec, backend=checkpointer, name=name, retention=retention)
