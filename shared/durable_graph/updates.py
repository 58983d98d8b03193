"""The records written from outside a node run: a human update (resume), a fork's step 0,
and a recorded permanent failure.

`Engine.resume`, `Engine.fork` and `Engine.fail_thread` check what they are asked (the
thread's status, the head the caller saw, the names) and commit; what the record holds is
composed here: the update folded through the reducers, the tasks that follow (`as_node`'s
routes, or the head's own tasks with resume values for their interrupts), and the status
they give.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from durable_graph.approval_record import problems
from durable_graph.approval_rule import ApprovalRefused
from durable_graph.canonical import check_json
from durable_graph.checkpoint import (
    Actor,
    Checkpoint,
    ErrorInfo,
    ParentRef,
    RouteDecision,
    SignOffRecord,
    Status,
)
from durable_graph.errors import InvalidInput
from durable_graph.routing import merge_tasks, route_from
from durable_graph.sealing import Base
from durable_graph.spec import GraphSpec
from durable_graph.step_sealer import StepSealer
from durable_graph.superstep import status_for


def seal_update(
    spec: GraphSpec,
    sealer: StepSealer,
    head: Checkpoint,
    current: dict[str, Any],
    *,
    values: Mapping[str, Any] | None,
    as_node: str | None,
    resume_value: Any,
    has_resume_value: bool,
    resume_by_task: Mapping[str, Any] | None,
    actor: Actor | None,
    signoff: SignOffRecord | None = None,
) -> Checkpoint:
    """Step `head+1` of a resume (source `update`), sealed, not yet written: `values` folded
    into `current` (the head's state), then `as_node`'s routes, or the head's tasks with the
    resume values for their interrupts; `signoff`: who approved it (`approval_record.py`),
    refused unless it is a list its rule accepts with the step's actor last."""
    thread_id = head.thread_id
    update = dict(values or {})
    applied = spec.schema.fold(current, [update], where="values")
    state = applied.values
    resume = {k: list(v) for k, v in head.resume.items()}
    routes: list[RouteDecision] = []
    if as_node is not None:
        remaining = [t for t in head.next if t.node != as_node]
        routed, routes = route_from(
            spec, as_node, state, origin_step=head.step + 1, thread_id=thread_id
        )
        next_tasks = merge_tasks(remaining, routed)
        # A human update is not a run of `as_node`: interrupt_after does not fire again
        # (or an interrupt_after node could never be approved), interrupt_before still does.
        status, interrupt = status_for(spec, next_tasks, ran=[])
    else:
        next_tasks = list(head.next)
        status, interrupt = ("running" if next_tasks else "completed"), None
        if has_resume_value:
            if head.interrupt is None or head.interrupt.task_id is None:
                raise InvalidInput(
                    "resume_value answers an interrupt() inside a node, but this thread "
                    "is not suspended inside a node",
                    field="resume_value",
                )
            check_json(resume_value, "resume_value")
            resume.setdefault(head.interrupt.task_id, []).append(resume_value)
        waiting = {t.id for t in head.next if t.done_at is None}
        for task_id, value in (resume_by_task or {}).items():
            if task_id not in waiting or head.status != "suspended":
                raise InvalidInput(
                    f"resume names task {task_id!r}, which is not waiting at an interrupt",
                    field="resume",
                )
            check_json(value, "resume")
            resume.setdefault(task_id, []).append(value)
    sealed = sealer.seal(
        thread_id=thread_id,
        step=head.step + 1,
        source="update",
        nodes=[as_node] if as_node else [],
        values=state,
        changed=applied.changes,
        previous=Base.of(head, current),
        next_tasks=next_tasks,
        routes=routes,
        status=status,
        interrupt=interrupt,
        resume=resume if as_node is None else {},
        actor=actor or Actor(kind="human", id="unknown"),
        signoff=signoff,
    )
    unsound = problems(sealed)
    if unsound:
        raise ApprovalRefused(f"the approvals given cannot resume this step: {unsound[0]}")
    return sealed


def seal_fork(
    spec: GraphSpec,
    sealer: StepSealer,
    origin: Checkpoint,
    origin_values: dict[str, Any],
    new_thread_id: str,
    values: Mapping[str, Any] | None,
    actor: Actor | None,
) -> Checkpoint:
    """Step 0 of `new_thread_id` from `origin` (whose state is `origin_values`) plus `values`,
    sealed, not yet written: `origin`'s next tasks, suspended if `origin` was waiting."""
    state = spec.schema.apply(origin_values, [dict(values or {})], where="values")
    status: Status = "running" if origin.next else "completed"
    if origin.status == "suspended":
        status = "suspended"
    return sealer.seal(
        thread_id=new_thread_id,
        step=0,
        source="fork",
        values=state,
        previous=Base.of(origin, state),
        next_tasks=[t.model_copy(update={"done_at": None}) for t in origin.next],
        status=status,
        interrupt=origin.interrupt if status == "suspended" else None,
        resume=dict(origin.resume),
        actor=actor or Actor(kind="api", id="fork"),
        parent=ParentRef(thread_id=origin.thread_id, step=origin.step, hash=origin.hash),
    )


def seal_failure(
    sealer: StepSealer,
    worker_id: str,
    head: Checkpoint,
    values: dict[str, Any],
    reason: str,
    *,
    node: str,
    kind: str,
) -> Checkpoint:
    """Step `head+1` recording a permanent failure (`Engine.fail_thread`), sealed, not yet
    written: the head's state (`values`) and tasks kept, status `failed`, `kind: reason`."""
    thread_id = head.thread_id
    error = ErrorInfo(
        node=node or (head.next[0].node if head.next else ""),
        task_id=head.next[0].id if head.next else "",
        type=kind,
        message=reason,
        attempts=1,
        retryable=False,
    )
    return sealer.seal(
        thread_id=thread_id,
        step=head.step + 1,
        source="node",
        values=values,
        previous=Base.of(head, values),
        next_tasks=list(head.next),
        status="failed",
        error=error,
        resume=head.resume,
        actor=Actor(kind="worker", id=worker_id),
    )


__all__ = ["seal_failure", "seal_fork", "seal_update"]
