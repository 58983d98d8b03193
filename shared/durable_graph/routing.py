"""Edges → next tasks. Records, for the audit trail, which edge decided and what it returned."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from durable_graph.checkpoint import RouteDecision, Task
from durable_graph.errors import InvalidInput
from durable_graph.spec import END, GraphSpec, Send


def route_from(
    spec: GraphSpec, source: str, state: dict[str, Any], *, origin_step: int
) -> tuple[list[Task], list[RouteDecision]]:
    """Tasks scheduled by `source`'s edges on `state`; task ids embed `origin_step`."""
    targets: list[str | Send] = []
    decisions: list[RouteDecision] = []
    static = spec.edges.get(source, [])
    if static:
        targets.extend(static)
        decisions.append(RouteDecision(source=source, kind="edge", result=list(static)))
    for branch in spec.branches.get(source, []):
        model = spec.schema.to_model(state)
        raw = branch.router(model)
        chosen = list(_flatten(raw))
        resolved: list[str | Send] = []
        for item in chosen:
            if isinstance(item, Send):
                resolved.append(item)
                continue
            if branch.path_map is not None:
                if item not in branch.path_map:
                    raise InvalidInput(
                        f"router {branch.router_name} of {source!r} returned {item!r}, "
                        f"which is not in its path_map {sorted(map(str, branch.path_map))}",
                        field=source,
                    )
                resolved.append(branch.path_map[item])
            else:
                if not isinstance(item, str) or (item != END and item not in spec.nodes):
                    raise InvalidInput(
                        f"router {branch.router_name} of {source!r} returned {item!r}, "
                        "which is not a node name",
                        field=source,
                    )
                resolved.append(item)
        targets.extend(resolved)
        decisions.append(
            RouteDecision(
                source=source,
                kind="conditional",
                router=branch.router_name,
                result=_named(resolved),
            )
        )
    tasks: list[Task] = []
    seen: set[str] = set()
    sends = 0
    for target in targets:
        if isinstance(target, Send):
            if target.node not in spec.nodes:
                raise InvalidInput(f"Send to unknown node {target.node!r}", field=source)
            tasks.append(
                Task(id=f"{origin_step}:{target.node}:{sends}", node=target.node, arg=target.arg)
            )
            sends += 1
        elif target != END and target not in seen:
            seen.add(target)
            tasks.append(Task(id=f"{origin_step}:{target}", node=target))
    return tasks, decisions


def _flatten(raw: Any) -> Iterable[Any]:
    if isinstance(raw, list | tuple | set | frozenset):
        yield from raw
    elif raw is None:
        return
    else:
        yield raw


def _named(targets: list[str | Send]) -> list[str]:
    """The route as recorded: node names, and `Send(node)` once per run of sends to one node,
    with their count when there are several (a 10,000-document fan-out is one entry)."""
    out: list[str] = []
    run = 0
    for index, target in enumerate(targets):
        if not isinstance(target, Send):
            out.append(target)
            continue
        run += 1
        following = targets[index + 1] if index + 1 < len(targets) else None
        if isinstance(following, Send) and following.node == target.node:
            continue
        out.append(f"Send({target.node})" if run == 1 else f"Send({target.node}) x{run}")
        run = 0
    return out
