"""Running one task: the user's node function in a `NodeContext`, with its retry policy.

A task's run ends in a `TaskResult` (an update, an interrupt or a recorded failure), never in
an exception, except `TransientError`, which means "not now": the message is released and the
task runs again later. The engine turns results into the next checkpoint; a parallel
superstep also stores each result until its siblings are done (`fanin.py`), hence
`to_record` / `from_record`.

`call_node` is the one way a node is called: the engine's runs and `replay` go through it, so
a replayed node gets its state argument and has its update checked exactly as it did when it
ran.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from durable_graph.checkpoint import ErrorInfo, IoRecord, Task
from durable_graph.commands import Command
from durable_graph.context import NodeContext, NodeHost, bind, unbind
from durable_graph.effects import TaskDelivery
from durable_graph.errors import GraphInterrupt, TransientError
from durable_graph.payloads import is_ref, loaded
from durable_graph.ports.payload_store import PayloadStore
from durable_graph.runs import emit, node_config
from durable_graph.sealing import Base
from durable_graph.signatures import run_sync
from durable_graph.spec import GraphSpec, Send
from durable_graph.state import normalise_update
from durable_graph.streaming import observe

# The retry warning keeps the logger name it had when the engine ran tasks itself: log
# configurations filter on it.
log = logging.getLogger("durable_graph.engine")


@dataclass
class TaskResult:
    task: Task
    kind: Literal["ok", "interrupt", "error"]
    writes: dict[str, Any] = field(default_factory=dict)
    io: list[IoRecord] = field(default_factory=list)
    interrupt: Any = None
    error: ErrorInfo | None = None
    attempts: int = 1
    duration_ms: float = 0.0
    # Where a node's `Command(goto=...)` sends the thread next, besides its edges: node names
    # and `{"node": ..., "arg": ...}` for a `Send` (JSON, as a fan-in row keeps it).
    goto: list[Any] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        record = {
            "kind": self.kind,
            "writes": self.writes,
            "io": [r.model_dump(mode="json") for r in self.io],
            "interrupt": self.interrupt,
            "error": self.error.model_dump(mode="json") if self.error else None,
            "attempts": self.attempts,
            "duration_ms": self.duration_ms,
        }
        if self.goto:
            record["goto"] = self.goto
        return record

    def targets(self) -> list[str | Send]:
        """`goto` as node names and `Send`s."""
        return goto_targets(self.goto)

    @classmethod
    def from_record(cls, task: Task, value: Mapping[str, Any]) -> TaskResult:
        return cls(
            task=task,
            kind=value["kind"],
            writes=dict(value["writes"]),
            io=[IoRecord.model_validate(r) for r in value["io"]],
            interrupt=value.get("interrupt"),
            error=ErrorInfo.model_validate(value["error"]) if value.get("error") else None,
            attempts=value.get("attempts", 1),
            duration_ms=value.get("duration_ms", 0.0),
            goto=list(value.get("goto", [])),
        )


class TaskRunner:
    """Runs the tasks of one graph. `host` is what a node's context may use (backend, clock,
    worker id), not the engine's decisions."""

    def __init__(self, spec: GraphSpec, host: NodeHost) -> None:
        self.spec = spec
        self.host = host

    def run_task(self, base: Base, task: Task, delivery: TaskDelivery | None = None) -> TaskResult:
        """Run one task of the step after `base` with its node's retry policy; interrupts and
        failures become results. `delivery` is the queue's delivery the task runs under
        (its effect claims belong to it)."""
        node = self.spec.nodes[task.node]
        thread_id = base.thread_id
        attempt = 0
        started = time.perf_counter()
        recorded: dict[str, Any] = {}  # answers of ctx.record, shared by every attempt
        # A big resume value is kept in a chunk, the record naming it (`sealing._part`).
        payloads = self.host.backend.payloads
        resumed = [loaded(v, payloads) for v in base.resume.get(task.id, [])]
        runnable = with_argument(task, payloads)  # a big `Send` argument: its chunk, read once
        stream = observe(
            thread_id, runnable, step=base.step + 1, spec=self.spec, values=base.values
        )
        while True:
            attempt += 1
            ctx = NodeContext(
                engine=self.host,
                thread_id=thread_id,
                step_number=base.step + 1,
                task_id=task.id,
                node=task.node,
                attempt=attempt,
                resume_values=list(resumed),
                recorded=recorded,
                delivery=delivery or TaskDelivery(),
            )
            token = bind(ctx)
            try:
                if stream is None:
                    writes = self.call_node(runnable, base.values, ctx)
                else:
                    with stream.tokens():
                        writes = self.call_node(runnable, base.values, ctx)
                    stream.finished(writes)
                return TaskResult(
                    task,
                    "ok",
                    writes=writes,
                    io=ctx.io,
                    attempts=attempt,
                    duration_ms=_ms_since(started),
                    goto=ctx.goto,
                )
            except GraphInterrupt as signal:
                if stream is not None:
                    stream.interrupted(signal.payload, len(ctx.resume_values))
                return TaskResult(
                    task,
                    "interrupt",
                    io=ctx.io,
                    interrupt=signal.payload,
                    attempts=attempt,
                    duration_ms=_ms_since(started),
                )
            except TransientError:
                raise
            except Exception as exc:  # a node failure: retry per policy, then record it
                if node.retry.should_retry(exc, attempt):
                    log.warning(
                        "node failed, retrying",
                        extra={"thread_id": thread_id, "node": task.node, "attempt": attempt},
                    )
                    self.host.clock.sleep(node.retry.wait_before(attempt))
                    continue
                error = ErrorInfo(
                    node=task.node,
                    task_id=task.id,
                    type=type(exc).__name__,
                    message=str(exc) or type(exc).__name__,
                    attempts=attempt,
                )
                if stream is not None:
                    stream.failed(f"{error.type}: {error.message}")
                return TaskResult(
                    task,
                    "error",
                    io=ctx.io,
                    error=error,
                    attempts=attempt,
                    duration_ms=_ms_since(started),
                )
            finally:
                unbind(token)

    def call_node(self, task: Task, values: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        """Call the user's function once (awaited here if it is `async def`) and validate
        its update against the state model; a returned `Command`'s `goto` is kept on `ctx`."""
        node = self.spec.nodes[task.node]
        shape = node.shape
        task = with_argument(task, self.host.backend.payloads)  # replay passes a stored task
        state_arg: Any = task.arg if task.arg is not None else self.spec.schema.to_state(values)
        config = (
            node_config(ctx.thread_id, step=ctx.step_number, node=task.node)
            if shape.config
            else None
        )
        thread_id = ctx.thread_id
        writer = (lambda chunk: emit(thread_id, "custom", chunk)) if shape.writer else None
        out = shape.call(node.fn, state_arg, ctx, config, writer)
        if type(out) is not dict and inspect.isawaitable(out):  # a dict: the common answer
            out = run_sync(out)
        if isinstance(out, Command):
            if out.resume is not None:
                raise TypeError(
                    f"node {task.node!r} returned Command(resume=...): resume answers an "
                    "interrupt from outside the graph (invoke(Command(resume=...), config))"
                )
            ctx.goto = [
                t if isinstance(t, str) else {"node": t.node, "arg": t.arg} for t in out.targets()
            ]
            out = out.update
        writes = normalise_update(out, node=task.node)
        where = f"node {task.node!r} output"
        return self.spec.schema.check(
            writes, where=where, seed=f"{ctx.thread_id}/{task.id}", current=values
        )


def with_argument(task: Task, payloads: PayloadStore) -> Task:
    """`task` with its `Send` argument as it was sent: a big one is kept whole in a chunk
    (`part_chunks.chunked_part`), the record and the queue message holding `{"$payload": ref}`."""
    if not is_ref(task.arg):
        return task
    return task.model_copy(update={"arg": loaded(task.arg, payloads)})


def goto_targets(goto: Sequence[Any]) -> list[str | Send]:
    """A recorded `goto` (node names and `{"node", "arg"}` for a `Send`) as names and `Send`s;
    the engine and `replay` route a node's `Command` through it alike."""
    return [g if isinstance(g, str) else Send(g["node"], g.get("arg")) for g in goto]


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


__all__ = ["TaskResult", "TaskRunner", "goto_targets", "with_argument"]
