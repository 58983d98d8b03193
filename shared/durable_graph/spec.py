"""The frozen graph the engine runs: `START`, `END`, `Send`, and `GraphSpec` with its node and
conditional-edge specs.

`StateGraph.compile()` (graph.py) builds a `GraphSpec`; the engine, routing, runtime and worker
read one. This module imports none of them, so the runtime depends on the spec and the builder
depends on the runtime without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from durable_graph.approval_rule import ApprovalRule
from durable_graph.canonical import digest
from durable_graph.retry import RetryPolicy
from durable_graph.signatures import CallShape
from durable_graph.state import StateSchema

START = "__start__"
END = "__end__"

NodeFn = Callable[..., Any]
Router = Callable[..., Any]


@dataclass(frozen=True)
class Send:
    """Schedule `node` with `arg` as its input: one task per item of a map (fan-out)."""

    node: str
    arg: Any


@dataclass(frozen=True)
class NodeSpec:
    name: str
    fn: NodeFn
    retry: RetryPolicy
    shape: CallShape = field(default_factory=CallShape)
    approval: ApprovalRule | None = None  # who may decide an interrupt of this node

    @property
    def wants_ctx(self) -> bool:
        return self.shape.ctx

    @property
    def wants_state(self) -> bool:
        return self.shape.state


@dataclass(frozen=True)
class ConditionalEdge:
    source: str
    router: Router
    path_map: Mapping[Hashable, str] | None
    shape: CallShape = field(default_factory=CallShape)

    @property
    def router_name(self) -> str:
        return getattr(self.router, "__qualname__", repr(self.router))


@dataclass
class GraphSpec:
    """The frozen topology the engine runs; shared by every backend and host."""

    schema: StateSchema
    nodes: dict[str, NodeSpec]
    edges: dict[str, list[str]]
    branches: dict[str, list[ConditionalEdge]]
    interrupt_before: frozenset[str] = field(default_factory=frozenset)
    interrupt_after: frozenset[str] = field(default_factory=frozenset)
    _version: str | None = field(default=None, repr=False, compare=False)

    def version(self) -> str:
        """Computed once: the spec is frozen after compile(), and this runs on every step."""
        if self._version is None:
            self._version = self._compute_version()
        return self._version

    def _compute_version(self) -> str:
        shape = {
            "nodes": sorted(self.nodes),
            "edges": {k: sorted(v) for k, v in sorted(self.edges.items())},
            "branches": {
                k: [
                    {
                        "router": b.router_name,
                        "path_map": (
                            {str(key): dst for key, dst in b.path_map.items()}
                            if b.path_map is not None
                            else None
                        ),
                    }
                    for b in v
                ]
                for k, v in sorted(self.branches.items())
            },
            "interrupt_before": sorted(self.interrupt_before),
            "interrupt_after": sorted(self.interrupt_after),
            "state": self.schema.json_schema(),
        }
        rules = {n: s.approval.describe() for n, s in sorted(self.nodes.items()) if s.approval}
        if rules:  # only then: graphs without rules keep the versions they always had
            shape["approvals"] = rules
        return digest(shape)[:16]
