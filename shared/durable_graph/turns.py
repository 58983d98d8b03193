"""A thread's next turn: new input on a thread that stopped, or a turn from a past checkpoint.

LangGraph threads are multi-turn: `invoke(new_input, config)` on a thread that completed runs
again from `START` on the state it ended with (a chat's next message goes through the
`messages` reducer). Here the chain simply continues: the turn is step `head+1`, source
`input`, its state the head's with the input folded in (docs/record-format.md, §transitions).

LangGraph's `checkpoint_id` in a config resumes a *past* checkpoint, which branches the thread.
A thread here is one linear, append-only chain, so the branch is written into it: the turn
takes the state and pending tasks of the past step (`at`) and continues from there; the steps
after it stay in the history, unchanged and verifiable. Task ids are renewed (prefixed with the
new step), so a re-run does not reuse the side-effect records of the first run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from durable_graph.checkpoint import Actor, Checkpoint, InterruptInfo, RouteDecision, Task
from durable_graph.engine import Engine
from durable_graph.errors import InvalidInput, StaleHead, TurnRefused, UnknownNode
from durable_graph.routing import merge_tasks, route_from
from durable_graph.sealing import Base
from durable_graph.signoff import refuse_governed
from durable_graph.spec import START
from durable_graph.state import FieldChange
from durable_graph.superstep import status_for

__all__ = ["new_input", "next_turn", "refuse_input"]

Kind = Literal["input", "update"]


def new_input(
    engine: Engine,
    thread_id: str,
    values: Mapping[str, Any] | None,
    *,
    head: Checkpoint | None,
    answer: str,
    actor: Actor | None = None,
    expected_step: int | None = None,
) -> Checkpoint:
    """New input for a thread, as LangGraph takes it, the one path of `invoke`, `durable-graph
    run` and the HTTP start: step 0 of a thread that does not exist (`head` None), the next
    turn of one that completed or failed. Refused with `TurnRefused` for a thread that waits
    at an interrupt (`answer` says how this caller answers it: the input would otherwise drop
    the pending decision silently) and for one that is running."""
    if head is None:
        return engine.start(thread_id, values, actor=actor)
    refuse_input(head, answer=answer)
    return next_turn(engine, thread_id, values, actor=actor, expected_step=expected_step)


def refuse_input(head: Checkpoint, *, answer: str) -> None:
    """`TurnRefused` if the thread whose head this is cannot take new input now: it waits at
    an interrupt (`answer`: how the caller answers it) or has tasks in flight."""
    if head.status == "suspended":
        where = f" in node {head.interrupt.node!r}" if head.interrupt else ""
        raise TurnRefused(
            head.thread_id,
            "suspended",
            f"it waits for a decision{where}. {answer}; new input is refused rather than "
            "silently dropping the pending decision",
        )
    if head.status == "running":
        raise _in_flight(head)


def _in_flight(head: Checkpoint) -> TurnRefused:
    return TurnRefused(
        head.thread_id,
        "running",
        f"it is at step {head.step} with tasks in flight; new input waits until it "
        "completes, suspends or fails",
    )


def next_turn(
    engine: Engine,
    thread_id: str,
    values: Mapping[str, Any] | None,
    *,
    kind: Kind = "input",
    at: Checkpoint | None = None,
    as_node: str | None = None,
    actor: Actor | None = None,
    expected_step: int | None = None,
) -> Checkpoint:
    """Commit step `head+1` of a thread that is not running, from the head or from `at`.

    `kind="input"`: `values` is new input, and the turn runs from `START`. `kind="update"`:
    `values` is written as if `as_node` ran (`update_state`), and the turn continues from
    `as_node`'s edges, or (no `as_node`) with the tasks pending at `at`. `expected_step`: the
    head the caller saw; `StaleHead` if the thread has moved since (the turn is then exactly
    step `expected_step + 1`, or nothing).
    """
    head = engine.head(thread_id)
    engine.check_graph(head)
    if expected_step is not None and expected_step != head.step:
        raise StaleHead(thread_id, expected_step, head.step)
    if head.status == "running":
        raise _in_flight(head)
    if values is not None and not isinstance(values, Mapping):
        raise InvalidInput("input must be a JSON object of state fields", field="input")
    if as_node is not None and as_node not in engine.spec.nodes:
        raise UnknownNode(as_node, list(engine.spec.nodes))
    origin = at or head
    if kind == "update" and as_node is not None and origin is not head:
        refuse_governed(engine.spec.nodes, origin, engine.backend)
    step = head.step + 1
    head_values = engine.values_of(head)
    origin_values = head_values if origin is head else engine.values_of(origin)
    applied = engine.spec.schema.fold(origin_values, [dict(values or {})], where=kind)
    state = applied.values
    carried = _renamed(origin, step) if origin is not head else {t.id: t for t in origin.next}
    pending = list(carried.values())
    routes: list[RouteDecision] = []
    resume: dict[str, list[Any]] = {}
    interrupt: InterruptInfo | None = None
    if kind == "input" or as_node is not None:
        source = START if kind == "input" else str(as_node)
        routed, routes = route_from(
            engine.spec, source, state, origin_step=step, thread_id=thread_id
        )
        remaining = [t for t in pending if t.node != as_node] if as_node is not None else []
        next_tasks = merge_tasks(remaining, routed)
        status, interrupt = status_for(engine.spec, next_tasks, ran=[])
    else:  # the pending tasks of `origin`, as they were
        next_tasks = pending
        status = "running" if next_tasks else "completed"
        if origin.status == "suspended" and origin.interrupt is not None:
            status = "suspended"
            interrupt = _renamed_interrupt(origin.interrupt, origin, carried)
            resume = {
                carried[old].id: list(v) for old, v in origin.resume.items() if old in carried
            }
    changed = (
        applied.changes
        if origin is head
        else {name: FieldChange("set", value) for name, value in state.items()}
    )
    checkpoint = engine.sealer.seal(
        thread_id=thread_id,
        step=step,
        source="input",
        nodes=[as_node] if as_node else [],
        values=state,
        changed=changed,
        previous=Base.of(head, head_values),
        next_tasks=next_tasks,
        routes=routes,
        status=status,
        interrupt=interrupt,
        resume=resume,
        actor=actor or Actor(kind="api", id=kind),
    )
    engine.commit(
        checkpoint,
        previous_status=head.status,
        refuse=StaleHead.beaten(head),
    )
    return engine.backend.checkpoints.opened(checkpoint)


def _renamed(origin: Checkpoint, step: int) -> dict[str, Task]:
    """`origin`'s pending tasks under new ids (old id -> task), none marked done: the turn
    runs them afresh, not from the records of their first run."""
    return {
        t.id: t.model_copy(update={"id": f"{step}~{t.id}", "done_at": None}) for t in origin.next
    }


def _renamed_interrupt(
    interrupt: InterruptInfo, origin: Checkpoint, carried: Mapping[str, Task]
) -> InterruptInfo:
    task = carried.get(interrupt.task_id or "")
    if task is None:
        return interrupt
    return interrupt.model_copy(update={"task_id": task.id})
