"""The record a superstep ends in: its tasks' results merged, or held, into step `k+1`.

The results of every task of step `k` (one, or all of a fan-out's) become step `k+1`: the
writes fold through the reducers and routing picks the next tasks; or, if a task failed or
was interrupted, nothing merges and the step is held, to run again on resume (the tasks that
succeeded keep their recorded writes and are not run again). `Engine.build` calls this and
commits the record itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from durable_graph.checkpoint import Actor, Checkpoint, InterruptInfo, RouteDecision, Status, Task
from durable_graph.fanin import held_tasks
from durable_graph.routing import route_after
from durable_graph.sealing import Base
from durable_graph.spec import GraphSpec, Send
from durable_graph.state import FieldChange
from durable_graph.step_sealer import StepSealer
from durable_graph.tasks import TaskResult


def merge_superstep(
    spec: GraphSpec, sealer: StepSealer, worker: Actor, base: Base, results: Sequence[TaskResult]
) -> Checkpoint:
    """Merge a superstep's results into the next checkpoint (not yet written); `worker`: the
    actor the step is written by (the engine's worker)."""
    failed = [r for r in results if r.kind == "error"]
    interrupted = [r for r in results if r.kind == "interrupt"]
    ran = [r.task.node for r in results if r.kind == "ok"]
    goto: dict[str, list[str | Send]] = {}
    for r in results:
        if r.kind == "ok" and r.goto:
            goto.setdefault(r.task.node, []).extend(r.targets())
    interrupt: InterruptInfo | None = None
    changed: dict[str, FieldChange] | None = None
    routes: list[RouteDecision] = []
    held = bool(failed or interrupted)
    if held:
        # Nothing merges: the step is retried as a whole on resume, but the tasks that
        # already succeeded keep their recorded writes and are not run again.
        state = base.values
        next_tasks = held_tasks(base, {r.task.id for r in results if r.kind == "ok"})
        status: Status = "failed" if failed else "suspended"
        if interrupted and not failed:
            first = interrupted[0]
            interrupt = InterruptInfo(
                node=first.task.node,
                when="during",
                payload=first.interrupt,
                task_id=first.task.id,
            )
    else:
        writes = [r.writes for r in results]
        applied = spec.schema.fold(base.values, writes, where="superstep")
        state, changed = applied.values, applied.changes
        next_tasks, routes = route_after(
            spec,
            ran,
            state,
            origin_step=base.step + 1,
            goto=goto,
            thread_id=base.thread_id,
        )
        status, interrupt = status_for(spec, next_tasks, ran=ran)
    return sealer.seal(
        thread_id=base.thread_id,
        step=base.step + 1,
        source="node",
        nodes=list(dict.fromkeys(ran)),
        values=state,
        changed=changed,
        previous=base,
        next_tasks=next_tasks,
        routes=routes,
        status=status,
        interrupt=interrupt,
        error=failed[0].error if failed else None,
        resume=base.resume if held else None,
        io=[record for r in results for record in r.io],
        duration_ms=sum(r.duration_ms for r in results),
        attempt=max((r.attempts for r in results), default=1),
        actor=worker,
    )


def status_for(
    spec: GraphSpec, next_tasks: Sequence[Task], *, ran: Sequence[str]
) -> tuple[Status, InterruptInfo | None]:
    """A step's status from its next tasks and the graph's interrupt_before / _after."""
    if not next_tasks:
        return "completed", None
    for node in ran:
        if node in spec.interrupt_after:
            return "suspended", InterruptInfo(node=node, when="after")
    for task in next_tasks:
        if task.node in spec.interrupt_before:
            return "suspended", InterruptInfo(node=task.node, when="before")
    return "running", None


__all__ = ["merge_superstep", "status_for"]
