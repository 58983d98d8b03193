"""A graph's shape as data, and as Mermaid flowchart text (laid out by Mermaid, never by us).

The shape (`shape_of`) is what the explorer and `durable-graph graph` draw: nodes, fixed edges,
conditional edges with their possible targets, and interrupts. The explorer draws a thread's
graph from the shape of the graph its API serves (`Api.shapes`), else from the store, where
`serve` publishes the shape of each graph it loads (`publish_shape`), so that a reader without
the graph's code draws it too; else from the route decisions its records hold
(`shape_from_records`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from durable_graph.checkpoint import Checkpoint
from durable_graph.errors import RecordConflict
from durable_graph.spec import END, START, GraphSpec

SHAPES_THREAD = "graph-shapes"  # the records' partition: one record per graph name and version
_SAFE = re.compile(r"[^A-Za-z0-9_]")


def shape_key(name: str, version: str) -> str:
    return f"shape#{name}#{version}"


def shape_of(spec: GraphSpec, name: str) -> dict[str, Any]:
    """The drawable shape of a compiled graph (JSON-ready; `publish_shape` stores it)."""
    nodes = sorted(spec.nodes)
    branches: dict[str, list[dict[str, Any]]] = {}
    for source, conditions in sorted(spec.branches.items()):
        for condition in conditions:
            targets = (
                sorted({str(t) for t in condition.path_map.values()})
                if condition.path_map is not None
                else [*nodes, END]  # an open router may go anywhere (LangGraph draws it so)
            )
            branches.setdefault(source, []).append(
                {"router": condition.router_name, "targets": targets}
            )
    return {
        "name": name,
        "version": spec.version(),
        "nodes": nodes,
        "edges": {k: sorted(v) for k, v in sorted(spec.edges.items())},
        "branches": branches,
        "interrupt_before": sorted(spec.interrupt_before),
        "interrupt_after": sorted(spec.interrupt_after),
        "derived": False,
    }


def publish_shape(store: Any, shape: Mapping[str, Any]) -> None:
    """Store a graph's shape (`shape_of`) once per graph version (create-if-absent; a second
    publisher loses harmlessly). `store` is the backend's `CheckpointStore`."""
    key = shape_key(shape["name"], shape["version"])
    if store.get_record(SHAPES_THREAD, key) is not None:
        return
    with contextlib.suppress(RecordConflict):  # another process published it meanwhile
        store.put_record(SHAPES_THREAD, key, dict(shape), expected_version=None)


def stored_shape(store: Any, name: str, version: str) -> dict[str, Any] | None:
    record = store.get_record(SHAPES_THREAD, shape_key(name, version))
    return dict(record.value) if record is not None else None


def shape_from_records(name: str, version: str, records: Iterable[Checkpoint]) -> dict[str, Any]:
    """A shape made of what the records show: nodes that ran or were scheduled, and the routes
    they took. Unvisited branches are missing; the drawing says so (`derived`)."""
    nodes: set[str] = set()
    edges: dict[str, set[str]] = {}
    for record in records:
        nodes.update(record.nodes)
        nodes.update(task.node for task in record.next)
        if record.step == 0:
            for task in record.next:
                edges.setdefault(START, set()).add(task.node)
        for route in record.route:
            for target in route.result:
                edges.setdefault(route.source, set()).add(target)
                if target != END:
                    nodes.add(target)
    nodes.discard(START)
    nodes.discard(END)
    return {
        "name": name,
        "version": version,
        "nodes": sorted(nodes),
        "edges": {k: sorted(v) for k, v in sorted(edges.items())},
        "branches": {},
        "interrupt_before": [],
        "interrupt_after": [],
        "derived": True,
    }


def path_of(records: Iterable[Checkpoint]) -> tuple[set[str], set[tuple[str, str]]]:
    """The nodes that ran and the edges taken (`source -> target`) in these records."""
    ran: set[str] = set()
    taken: set[tuple[str, str]] = set()
    for record in records:
        ran.update(record.nodes)
        if record.step == 0 and record.source == "input":
            taken.update((START, task.node) for task in record.next)
        for route in record.route:
            taken.update((route.source, target) for target in route.result)
    return ran, taken


def _id(node: str) -> str:
    """A Mermaid-safe node id (labels keep the real name)."""
    if node == START:
        return "start_"
    if node == END:
        return "end_"
    return "n_" + _SAFE.sub("_", node)


def _label(node: str) -> str:
    text = {START: "start", END: "end"}.get(node, node)
    return text.replace('"', "#quot;")


def mermaid(
    shape: Mapping[str, Any],
    *,
    current: Iterable[str] = (),
    ran: Iterable[str] = (),
    taken: Iterable[tuple[str, str]] = (),
    failed: bool = False,
) -> str:
    """Mermaid flowchart text: fixed edges solid, conditional ones dotted and labelled with
    their router; the current node(s), the nodes that ran and the edges taken highlighted."""
    lines = ["flowchart TD"]
    nodes = [START, *shape["nodes"], END]
    before = set(shape.get("interrupt_before", ()))
    after = set(shape.get("interrupt_after", ()))
    for node in nodes:
        if node in (START, END):
            lines.append(f'    {_id(node)}(["{_label(node)}"])')
            continue
        mark = (
            " · pauses before" if node in before else (" · pauses after" if node in after else "")
        )
        lines.append(f'    {_id(node)}["{_label(node)}{mark}"]')
    taken_set = set(taken)
    highlighted: list[int] = []
    count = 0
    for source, targets in shape["edges"].items():
        for target in targets:
            lines.append(f"    {_id(source)} --> {_id(target)}")
            if (source, target) in taken_set:
                highlighted.append(count)
            count += 1
    for source, conditions in shape.get("branches", {}).items():
        for condition in conditions:
            router = _SAFE.sub("_", str(condition["router"]).rsplit(".", 1)[-1])[:40]
            for target in condition["targets"]:
                lines.append(f'    {_id(source)} -.->|"{router}"| {_id(target)}')
                if (source, target) in taken_set:
                    highlighted.append(count)
                count += 1
    ran_ids = [_id(n) for n in sorted(set(ran)) if n in shape["nodes"]]
    current_ids = [_id(n) for n in sorted(set(current)) if n in nodes]
    if ran_ids:
        lines.append("    classDef ran fill:#e3f0e6,stroke:#2f7d4a,stroke-width:2px,color:#10301c")
        lines.append(f"    class {','.join(ran_ids)} ran")
    if current_ids:
        tone = "#fbe3e3,stroke:#b42318" if failed else "#fff2cc,stroke:#b7791f"
        lines.append(f"    classDef current fill:{tone},stroke-width:3px,color:#1f2328")
        lines.append(f"    class {','.join(current_ids)} current")
    if highlighted:
        indexes = ",".join(str(i) for i in highlighted)
        lines.append(f"    linkStyle {indexes} stroke:#2f7d4a,stroke-width:3px")
    return "\n".join(lines) + "\n"


__all__ = [
    "SHAPES_THREAD",
    "mermaid",
    "path_of",
    "publish_shape",
    "shape_from_records",
    "shape_key",
    "shape_of",
    "stored_shape",
]
