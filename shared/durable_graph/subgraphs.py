"""A compiled graph used as a node of another graph (a subgraph), as LangGraph runs one.

The subgraph runs as a thread of its own, namespaced under the parent's: its id is
`<parent thread>|<parent task id>`, so every run of the subgraph node (each task) has its own
chain, found again when the task re-runs, and each verifies like any thread. It runs inline,
inside the parent's task, on the parent's backend: its input is the parent state's fields it
shares, its output (the fields it shares with the parent) is the node's update.

An `interrupt()` inside the subgraph suspends the subgraph's thread, and the parent's task
suspends with the same payload, so the interrupt surfaces to the parent (`__interrupt__`).
Resuming the parent (`Command(resume=...)`) re-runs the task, which hands the value to the
subgraph's thread and continues it; each resume value is handed over once (`ctx.step`). A
node of the subgraph under an `ApprovalRule` governs the parent's decision
(`signoff.rule_of`): the parent's resume is checked and tallied under it and commits the
approvals, and the subgraph's resume step commits the same approvals (`_handed_down`).

Several interrupts pending inside the subgraph (its parallel branches, or its own subgraphs)
surface to the parent together: the parent lists them (`SubgraphNode.pending`) under ids of its
own (`commands.nested_interrupt_id`), and `Command(resume={id: value, ...})` on the parent
hands the subgraph one map `{its interrupt id: value}` for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import BaseModel

from durable_graph import reading
from durable_graph.backend import Backend
from durable_graph.canonical import digest
from durable_graph.checkpoint import Checkpoint
from durable_graph.clock import Clock
from durable_graph.commands import Command, Interrupt
from durable_graph.context import NodeContext
from durable_graph.errors import GraphInterrupt
from durable_graph.runs import RunScope, node_config, scope_for
from durable_graph.signoff import Decision, subgraph_decision
from durable_graph.spec import GraphSpec
from durable_graph.state import StateSchema

__all__ = ["Subgraph", "SubgraphNode", "subgraph_node", "subgraph_thread_id"]


def subgraph_thread_id(parent_thread: str, task_id: str) -> str:
    """The subgraph thread of one task of the parent (a thread id is at most 200 chars)."""
    full = f"{parent_thread}|{task_id}"
    return full if len(full) <= 200 else f"{parent_thread[:150]}|{digest(full)[:40]}"


class Subgraph(Protocol):
    """What a subgraph node uses of the compiled graph it runs (`runtime.CompiledGraph`, which
    imports this module: the protocol keeps the import one way)."""

    spec: GraphSpec

    @property
    def backend(self) -> Backend: ...

    def with_backend(self, backend: Backend, *, clock: Clock | None = None) -> Subgraph: ...

    def run_scoped(
        self,
        input: Any,
        config: Mapping[str, Any] | None,
        *,
        thread_id: str,
        scope: RunScope,
        decision: Decision | None = None,
    ) -> Checkpoint: ...

    def resume(self, thread_id: str) -> Checkpoint: ...

    def pending_interrupts(self, head: Checkpoint) -> tuple[Interrupt, ...]: ...

    def snapshot(self, checkpoint: Checkpoint, *, subgraphs: bool = False) -> Any: ...


class SubgraphNode:
    """The node function that runs `graph` as the subgraph of node `name` (what `add_node`
    makes of a compiled graph); the parent asks it which interrupts its thread waits on."""

    def __init__(self, graph: Subgraph, name: str, parent: StateSchema) -> None:
        self.graph = graph
        self.name = name
        self.shared = [field for field in graph.spec.schema.fields if field in parent.fields]
        self.parent = parent
        self.__qualname__ = f"subgraph:{name}"

    def __call__(self, state: Any, ctx: NodeContext) -> dict[str, Any]:
        graph, name, shared = self.graph, self.name, self.shared
        child = graph.with_backend(ctx.engine.backend, clock=ctx.engine.clock)
        thread_id = subgraph_thread_id(ctx.thread_id, ctx.task_id)
        namespace = f"{name}:{ctx.task_id}"
        config = node_config(ctx.thread_id, step=ctx.step_number, node=name)
        config["configurable"]["checkpoint_ns"] = namespace
        # The caller's stream, if it asked for subgraphs, gets the subgraph's chunks too.
        caller = scope_for(ctx.thread_id)
        scope = caller.nested(namespace, config) if caller is not None else RunScope(config)

        def run(value: Any, decision: Decision | None = None) -> None:
            child.run_scoped(value, config, thread_id=thread_id, scope=scope, decision=decision)

        head = child.backend.checkpoints.head_checkpoint(thread_id)
        answers = ctx.resume_values
        if head is None:
            values = _json_state(state, self.parent)
            run({k: values[k] for k in shared if k in values})
        elif head.status == "suspended" and answers:
            # Hand the newest answer over once: a re-run of this task after a crash must not
            # answer the subgraph's next interrupt with it again. It is one value, or a map
            # {the subgraph's interrupt id: value} answering several (`pending`).
            # Deciding the parent decided the subgraph's node: its approvers go down with it.
            decision = _handed_down(ctx)
            ctx.step(
                f"subgraph-resume#{len(answers)}",
                lambda: run(Command(resume=answers[-1]), decision),
            )
        elif head.status == "failed":
            child.resume(thread_id)
        elif head.status != "completed":
            run(None)
        head = reading.head_of(child.backend, thread_id)
        if head.status == "suspended":
            pending = child.pending_interrupts(head)
            info = head.interrupt
            payload = (
                pending[0].value
                if pending
                else {"subgraph": name, "node": info.node if info else "", "when": "before"}
            )
            raise GraphInterrupt(payload)
        values = reading.values_of(child.backend, head)
        return {k: values[k] for k in shared if k in values}

    def pending(self, backend: Backend, parent_thread: str, task_id: str) -> tuple[Interrupt, ...]:
        """The `interrupt()`s the subgraph thread of the parent's task `task_id` waits on,
        with the subgraph's ids (its own subgraphs' included): all of them surface to the
        parent together, as in LangGraph."""
        head = backend.checkpoints.head_checkpoint(subgraph_thread_id(parent_thread, task_id))
        if head is None or head.status != "suspended":
            return ()
        return self.graph.with_backend(backend).pending_interrupts(head)

    def waiting(
        self, backend: Backend, parent_thread: str, task_id: str
    ) -> tuple[Mapping[str, Any], Checkpoint] | None:
        """The subgraph's nodes and its thread's head, when that thread (of the parent's task
        `task_id`) is suspended: where `signoff.rule_of` finds the rule deciding it."""
        head = backend.checkpoints.head_checkpoint(subgraph_thread_id(parent_thread, task_id))
        if head is None or head.status != "suspended":
            return None
        return self.graph.spec.nodes, head

    def state(self, backend: Backend, parent_thread: str, task_id: str, full: bool) -> Any:
        """What a parent's snapshot shows for the subgraph of its task `task_id`: the
        subgraph thread's config, or (`full`) its head's `StateSnapshot` (None before it
        started)."""
        thread_id = subgraph_thread_id(parent_thread, task_id)
        if not full:
            namespace = f"{self.name}:{task_id}"
            return {"configurable": {"thread_id": thread_id, "checkpoint_ns": namespace}}
        head = backend.checkpoints.head_checkpoint(thread_id)
        if head is None:
            return None
        return self.graph.with_backend(backend).snapshot(head, subgraphs=True)


def subgraph_node(graph: Subgraph, name: str, parent: StateSchema) -> SubgraphNode:
    """The node function that runs `graph` as the subgraph of node `name`."""
    return SubgraphNode(graph, name, parent)


def _handed_down(ctx: NodeContext) -> Decision | None:
    """The approvals the parent's resume step (the step this task runs from) committed, as
    the decision its subgraph's resume commits (`signoff.subgraph_decision`)."""
    step = ctx.engine.backend.checkpoints.get_checkpoint(ctx.thread_id, ctx.step_number - 1)
    return subgraph_decision(step.signoff if step is not None else None)


def _json_state(state: Any, schema: StateSchema) -> dict[str, Any]:
    """The parent's state as JSON (a node gets it typed: a model, or a dict of values)."""
    if isinstance(state, BaseModel):
        return state.model_dump(mode="json")
    return schema.check(dict(state), where="subgraph input")
