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

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from durable_graph.checkpoint import ErrorInfo, IoRecord, Task
from durable_graph.context import NodeContext, NodeHost, bind, unbind
from durable_graph.effects import TaskDelivery
from durable_graph.errors import GraphInterrupt, TransientError
from durable_graph.sealing import Base
from durable_graph.spec import GraphSpec
from durable_graph.state import normalise_update

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

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "writes": self.writes,
            "io": [r.model_dump(mode="json") for r in self.io],
            "interrupt": self.interrupt,
            "error": self.error.model_dump(mode="json") if self.error else None,
            "attempts": self.attempts,
            "duration_ms": self.duration_ms,
        }

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
        while True:
            attempt += 1
            ctx = NodeContext(
                engine=self.host,
                thread_id=thread_id,
                step_number=base.step + 1,
                task_id=task.id,
                node=task.node,
                attempt=attempt,
                resume_values=list(base.resume.get(task.id, [])),
                recorded=recorded,
                delivery=delivery or TaskDelivery(),
            )
            token = bind(ctx)
            try:
                writes = self.call_node(task, base.values, ctx)
                return TaskResult(
                    task,
                    "ok",
                    writes=writes,
                    io=ctx.io,
                    attempts=attempt,
                    duration_ms=_ms_since(started),
                )
            except GraphInterrupt as signal:
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
        """Call the user's function once and validate its update against the state model."""
        node = self.spec.nodes[task.node]
        state_arg: Any = task.arg if task.arg is not None else self.spec.schema.to_model(values)
        if node.wants_ctx:
            out = node.fn(state_arg, ctx)
        elif node.wants_state:
            out = node.fn(state_arg)
        else:
            out = node.fn()
        writes = normalise_update(out, node=task.node)
        self.spec.schema.check(writes, where=f"node {task.node!r} output")
        return writes


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


__all__ = ["TaskResult", "TaskRunner"]
