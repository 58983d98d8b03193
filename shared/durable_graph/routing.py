"""Edges → next tasks. Records, for the audit trail, which edge decided and what it returned."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from durable_graph.checkpoint import RouteDecision, Task
from durable_graph.errors import InvalidInput
from durable_graph.runs import node_config
from durable_graph.spec import END, GraphSpec, Send

COMMAND = "Command.goto"  # the router name a route recorded from a node's Command carries


def route_from(
    spec: GraphSpec,
    source: str,
    state: dict[str, Any],
    *,
    origin_step: int,
    goto: Sequence[str | Send] = (),
    thread_id: str = "",
) -> tuple[list[Task], list[RouteDecision]]:
    """Tasks scheduled by `source`'s edges on `state`, and by the `goto` of the `Command` it
    returned; task ids embed `origin_step`. A router that asks for `config` gets the config
    of the caller running `thread_id` here (`durable_graph.runs`)."""
    targets: list[str | Send] = []
    decisions: list[RouteDecision] = []
    static = spec.edges.get(source, [])
    if static:
        targets.extend(static)
        decisions.append(_edge_decision(source, tuple(static)))
    if goto:
        for item in goto:
            name = item.node if isinstance(item, Send) else item
            if name != END and name not in spec.nodes:
                raise InvalidInput(
                    f"node {source!r} returned Command(goto={name!r}), which is not a node",
                    field=source,
                )
        targets.extend(goto)
        decisions.append(
            RouteDecision(source=source, kind="conditional", router=COMMAND, result=_named(goto))
        )
    for branch in spec.branches.get(source, []):
        model = spec.schema.to_state(state)
        config = (
            node_config(thread_id, step=origin_step, node=source) if branch.shape.config else None
        )
        raw = branch.shape.call(branch.router, model, None, config, None)
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
            # The id names the sending node too: two nodes of one superstep may each Send to
            # the same node, and their tasks must not collide (and be merged into one).
            task_id = f"{origin_step}:{source}>{target.node}:{sends}"
            tasks.append(Task(id=task_id, node=target.node, arg=target.arg))
            sends += 1
        elif target != END and target not in seen:
            seen.add(target)
            tasks.append(Task(id=f"{origin_step}:{target}", node=target))
    return tasks, decisions


@functools.lru_cache(maxsize=1024)
def _edge_decision(source: str, targets: tuple[str, ...]) -> RouteDecision:
    """The route a node's static edges record: one frozen part per node and targets, shared
    by every step that takes them (built for each step, it was a validation each time)."""
    return RouteDecision(source=source, kind="edge", result=list(targets))


def route_after(
    spec: GraphSpec,
    ran: Sequence[str],
    state: dict[str, Any],
    *,
    origin_step: int,
    goto: Mapping[str, Sequence[str | Send]] | None = None,
    thread_id: str = "",
) -> tuple[list[Task], list[RouteDecision]]:
    """The next tasks after the nodes `ran` in one superstep, each node's edges taken once, in
    order, on the state their updates made, plus where their `Command`s sent it (`goto`, per
    node); recomputed the same way by `replay`."""
    next_tasks: list[Task] = []
    routes: list[RouteDecision] = []
    for node in dict.fromkeys(ran):
        extra = (goto or {}).get(node, ())
        tasks, decisions = route_from(
            spec, node, state, origin_step=origin_step, goto=extra, thread_id=thread_id
        )
        next_tasks = merge_tasks(next_tasks, tasks)
        routes.extend(decisions)
    return next_tasks, routes


def merge_tasks(first: Sequence[Task], second: Sequence[Task]) -> list[Task]:
    """Union preserving order; plain tasks of the same node collapse (fan-in)."""
    merged = list(first)
    seen = {(t.node, t.id) for t in merged}
    plain_nodes = {t.node for t in merged if t.arg is None}
    for task in second:
        if task.arg is None and task.node in plain_nodes:
            continue
        if (task.node, task.id) in seen:
            continue
        merged.append(task)
        seen.add((task.node, task.id))
        if task.arg is None:
            plain_nodes.add(task.node)
    return merged


def _flatten(raw: Any) -> Iterable[Any]:
    if isinstance(raw, (list, tuple, set, frozenset)):  # a tuple: an `A | B` union is slower
        yield from raw
    elif raw is None:
        return
    else:
        yield raw


def _named(targets: Sequence[str | Send]) -> list[str]:
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
