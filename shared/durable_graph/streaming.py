"""What a task shows a caller's stream while it runs, in LangGraph's stream modes:

- `"updates"`: `{node: update}` when the node returns;
- `"messages"`: `(message, metadata)` for each chat message: a chat model's tokens as it
  streams them (`stream_messages`, with `langchain-core`), then each message the node writes
  that was not streamed already (nor in its input);
- `"tasks"`: the task as it starts (id, name, input, triggers) and as it ends (result, error,
  interrupts); `"debug"`: the same, wrapped as `{"type": "task" | "task_result", "step",
  "timestamp", "payload"}` (the `"checkpoints"` and debug `"checkpoint"` chunks come from the
  run, `runtime_runs`).

Nothing here is saved in the ledger: a stream belongs to the caller that runs the thread in
this process (`durable_graph.runs`). A task nobody streams costs one dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

from durable_graph.checkpoint import Task
from durable_graph.commands import Interrupt, interrupt_id
from durable_graph.runs import RunScope, scope_for
from durable_graph.spec import GraphSpec
from durable_graph.stream_messages import llm_tokens

__all__ = ["TASK_MODES", "TaskStream", "debug_event", "observe"]

TASK_MODES = frozenset({"updates", "messages", "tasks", "debug"})
_TASK_EVENTS = frozenset({"tasks", "debug"})


def observe(
    thread_id: str, task: Task, *, step: int, spec: GraphSpec, values: Mapping[str, Any]
) -> TaskStream | None:
    """The stream of a task about to run, if its caller streams a mode a task feeds."""
    scope = scope_for(thread_id)
    if scope is None or scope.sink is None or not scope.modes & TASK_MODES:
        return None
    stream = TaskStream(scope, thread_id, task, step, spec, values)
    stream.started()
    return stream


class TaskStream:
    """One task's chunks for one caller's stream."""

    def __init__(
        self,
        scope: RunScope,
        thread_id: str,
        task: Task,
        step: int,
        spec: GraphSpec,
        values: Mapping[str, Any],
    ) -> None:
        self.scope = scope
        self.task = task
        self.step = step
        self.spec = spec
        self.values = values
        namespace = "|".join((*scope.namespace, f"{task.node}:{task.id}"))
        self.metadata: dict[str, Any] = {
            **dict(scope.config.get("metadata") or {}),
            "thread_id": thread_id,
            "langgraph_step": step,
            "langgraph_node": task.node,
            "langgraph_triggers": (f"branch:to:{task.node}",),
            "langgraph_path": ("__pregel_pull", task.node),
            "langgraph_checkpoint_ns": namespace,
            "checkpoint_ns": namespace,
        }
        # Ids of messages the caller has (the node's input) or was sent (streamed tokens).
        self.seen: set[str] = set(self._input_ids()) if "messages" in scope.modes else set()

    def started(self) -> None:
        if self.scope.modes & _TASK_EVENTS:
            state = (
                self.task.arg
                if self.task.arg is not None
                else self.spec.schema.output(dict(self.values))
            )
            self._debug(
                "task",
                {
                    "id": self.task.id,
                    "name": self.task.node,
                    "input": state,
                    "triggers": (f"branch:to:{self.task.node}",),
                },
            )

    def tokens(self) -> AbstractContextManager[None]:
        """Open while the node runs: its chat models' tokens go to the stream."""
        if "messages" not in self.scope.modes:
            return nullcontext()
        return llm_tokens(self._message, self.metadata, self.seen)

    def finished(self, writes: Mapping[str, Any]) -> None:
        """The node returned `writes` (JSON, as checked against the state)."""
        typed = self.spec.schema.typed(writes)
        if "messages" in self.scope.modes:  # as the node ends: before its update (LangGraph)
            for name in self.spec.schema.message_fields:
                for message in _listed(typed.get(name)):
                    if _message_type(message) == "remove":
                        continue
                    ident = _message_id(message)
                    if ident is not None and ident in self.seen:
                        continue
                    if ident is not None:
                        self.seen.add(ident)
                    self._message(message, {**self.metadata, "ls_integration": "langgraph"})
        self.scope.send("updates", {self.task.node: typed})
        self._result(result=typed)

    def interrupted(self, payload: Any, index: int) -> None:
        """The node called `interrupt(payload)`, its `index`-th of this task."""
        self._result(interrupts=[Interrupt(value=payload, id=interrupt_id(self.task.id, index))])

    def failed(self, error: str) -> None:
        self._result(error=error)

    def _result(
        self,
        *,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        interrupts: list[Any] | None = None,
    ) -> None:
        if self.scope.modes & _TASK_EVENTS:
            payload = {
                "id": self.task.id,
                "name": self.task.node,
                "error": error,
                "result": dict(result or {}),
                "interrupts": interrupts or [],
            }
            self._debug("task_result", payload)

    def _message(self, message: Any, metadata: dict[str, Any]) -> None:
        self.scope.send("messages", (message, metadata))

    def _debug(self, kind: str, payload: dict[str, Any]) -> None:
        self.scope.send("tasks", payload)
        self.scope.send("debug", debug_event(kind, self.step, payload))

    def _input_ids(self) -> Iterator[str]:
        for name in self.spec.schema.message_fields:
            for message in _listed(self.values.get(name)):
                ident = _message_id(message)
                if ident is not None:
                    yield ident


def debug_event(kind: str, step: int, payload: dict[str, Any]) -> dict[str, Any]:
    """A `stream_mode="debug"` chunk, as LangGraph shapes it."""
    return {
        "step": step,
        "timestamp": datetime.now(UTC).isoformat(),
        "type": kind,
        "payload": payload,
    }


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _message_id(message: Any) -> str | None:
    ident = message.get("id") if isinstance(message, Mapping) else getattr(message, "id", None)
    return ident if isinstance(ident, str) else None


def _message_type(message: Any) -> str | None:
    kind = message.get("type") if isinstance(message, Mapping) else getattr(message, "type", None)
    return kind if isinstance(kind, str) else None
