"""The LangGraph-familiar builder: `StateGraph`, `add_node`, `add_edge`, `add_conditional_edges`,
`START`, `END`, `Send`, `compile(...)`.

`compile()` freezes the topology and computes the graph *version*: a hash of node names, edges,
routers, interrupt points and the state schema. A thread records the version it started under and
refuses to resume under another.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import replace
from itertools import pairwise
from typing import Any

from durable_graph.approval_rule import ApprovalRule
from durable_graph.backend import Backend
from durable_graph.retention_policy import Retention
from durable_graph.retry import RetryPolicy
from durable_graph.runtime import CompiledGraph
from durable_graph.signatures import node_shape, router_shape
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
from durable_graph.subgraphs import subgraph_node

# START, END and Send are part of the builder's API (`from durable_graph.graph import START`).
__all__ = ["END", "START", "GraphSpec", "Send", "StateGraph"]


NO_RETRY = RetryPolicy(max_attempts=1)  # LangGraph retries nothing unless asked


def _checked_backend(checkpointer: Any) -> Backend | None:
    """`compile(checkpointer=...)` takes our `Backend`; a LangGraph saver is refused with
    what to pass instead (it would otherwise fail on first use, far from the cause)."""
    if checkpointer is None or isinstance(checkpointer, Backend):
        return checkpointer
    kind = type(checkpointer).__name__
    if hasattr(checkpointer, "get_tuple") or hasattr(checkpointer, "aget_tuple"):
        raise TypeError(
            f"compile(checkpointer=...) got LangGraph's {kind}: this StateGraph is "
            "durable_graph's and keeps its own hash-chained ledger, so it takes no LangGraph "
            "saver. Pass nothing (the embedded store under $DURABLE_GRAPH_HOME) or a "
            "durable_graph Backend (durable_graph.backends.local.local_backend(path)). To keep "
            "LangGraph's own StateGraph instead, give it durable_graph.langgraph_saver."
            "DurableGraphSaver() as its checkpointer. See docs/langgraph-compatibility.md."
        )
    raise TypeError(f"compile(checkpointer=...) takes a durable_graph Backend or None, not {kind}")


class StateGraph:
    """Build a graph over a state declared as a `TypedDict`, a dataclass or a pydantic model.

    Example:
        >>> from pydantic import BaseModel
        >>> class S(BaseModel):
        ...     n: int = 0
        >>> g = StateGraph(S)
        >>> _ = g.add_node("inc", lambda s: {"n": s.n + 1})
        >>> _ = g.add_edge(START, "inc").add_edge("inc", END)
        >>> app = g.compile()
    """

    def __init__(self, state: Any) -> None:
        self.schema = StateSchema(state)
        self.nodes: dict[str, NodeSpec] = {}
        self.edges: dict[str, list[str]] = {}
        self.branches: dict[str, list[ConditionalEdge]] = {}

    def add_node(
        self,
        name: str | NodeFn,
        fn: NodeFn | CompiledGraph | None = None,
        *,
        retry: RetryPolicy | None = None,
        retry_policy: RetryPolicy | None = None,
        approval: ApprovalRule | None = None,
    ) -> StateGraph:
        """Add a node: `add_node("name", fn)` or `add_node(fn)` (named after the function).

        `fn` may be a compiled graph: a subgraph (`durable_graph.subgraphs`). A failing node
        is not retried unless given a `retry_policy` (LangGraph's default);
        `retry` is the same argument under its older name. Its signature is checked at
        `compile()` (see `durable_graph.signatures`). `approval`: who may decide an interrupt
        of this node, and how many (`durable_graph.approval_rule`), e.g.
        `approval=ApprovalRule(approvals_required=2, requester_may_approve=False)`."""
        if fn is None and callable(name):
            fn, name = name, getattr(name, "__name__", "")
        if fn is None:
            raise TypeError(f"add_node({name!r}) needs a function")
        if not isinstance(name, str) or name in (START, END) or not name or name in self.nodes:
            raise ValueError(f"node name {name!r} is reserved or already used")
        if isinstance(fn, CompiledGraph):
            fn = subgraph_node(fn, name, self.schema)
        policy = retry_policy or retry or NO_RETRY
        self.nodes[name] = NodeSpec(name=name, fn=fn, retry=policy, approval=approval)
        return self

    def add_sequence(self, nodes: Sequence[NodeFn | tuple[str, NodeFn]]) -> StateGraph:
        """Add nodes and the edges that run them one after the other (LangGraph's)."""
        names: list[str] = []
        for item in nodes:
            if isinstance(item, tuple):
                self.add_node(item[0], item[1])
                names.append(item[0])
            else:
                self.add_node(item)
                names.append(getattr(item, "__name__", ""))
        for first, second in pairwise(names):
            self.add_edge(first, second)
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
        self.branches.setdefault(source, []).append(ConditionalEdge(source, path, mapping))
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

    def _shaped(self) -> tuple[dict[str, NodeSpec], dict[str, list[ConditionalEdge]]]:
        """Nodes and routers with their call shapes: a signature we could not call is
        refused here, at compile(), not after its node ran."""
        nodes = {
            name: replace(node, shape=node_shape(node.fn, node=name))
            for name, node in self.nodes.items()
        }
        branches = {
            source: [replace(b, shape=router_shape(b.router, source=source)) for b in edges]
            for source, edges in self.branches.items()
        }
        return nodes, branches

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
        backend = _checked_backend(checkpointer)
        before = list(interrupt_before or [])
        after = list(interrupt_after or [])
        self._validate(before + after)
        nodes, branches = self._shaped()
        spec = GraphSpec(
            schema=self.schema,
            nodes=nodes,
            edges={k: list(v) for k, v in self.edges.items()},
            branches=branches,
            interrupt_before=frozenset(before),
            interrupt_after=frozenset(after),
        )
        return CompiledGraph(spec, backend=backend, name=name, retention=retention)
