"""The fan-in of a parallel superstep: how its tasks, each run by its own message (maybe on
another worker), learn which of them is the last, in O(1) store operations per task.

Rows of a thread, for the superstep that runs from step `k`:

- `done#<k>#<task id>`: the task's recorded result (`TaskResult.to_record`): its writes, io,
  interrupt or error. Created once (a redelivered task finds it and does not run again). Each
  of its writes, io, interrupt and goto whose JSON is over 64 KiB is kept whole in a salted
  chunk in the payload store, the row holding `{"$payload": ref}` (`part_chunks.chunked_part`,
  as a record keeps a big io response), so the row stays a few KB (a DynamoDB item takes
  400 KB) whatever the task returned; `opened_result` brings the parts back.
- `count#<k>`: how many `done` rows exist, kept by `CheckpointStore.complete_task`, which
  creates a `done` row and counts it in one atomic operation. No task reads its siblings'
  rows: only the task whose completion brings the count to the number of tasks reads them all
  (in chunks) and builds the next checkpoint.

A superstep that failed or was interrupted is retried as a whole on resume, from a later step;
its tasks that had succeeded carry `Task.done_at = k`, and their `done#<k>#…` result is reused
instead of running them again.

The node itself runs outside any transaction (it may take minutes); its completion and the
acknowledgement of its message are one `backend.atomic()` unit, so an embedded backend never
counts a task whose message will be delivered again, nor acknowledges one it did not count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from typing import Any

from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint, PayloadRef, Task
from durable_graph.effects import TaskDelivery
from durable_graph.orphans import let_go, may_let_go
from durable_graph.part_chunks import chunked_part
from durable_graph.payloads import MARKER, is_ref, loaded
from durable_graph.ports.payload_store import PayloadStore
from durable_graph.sealed_payloads import payloads_for
from durable_graph.sealed_records import open_fields, seal_fields
from durable_graph.sealing import Base
from durable_graph.tasks import TaskResult, TaskRunner

TASK_ID_CACHE = 64  # steps whose task ids are kept (a fan-out's list is long)
SHORT_TASK_LIST = 8  # tasks a step may have for `has_task` to look through them


def done_key(step: int, task_id: str) -> str:
    """The completion row of a task of the superstep that runs from `step`."""
    return f"done#{step}#{task_id}"


def count_key(step: int) -> str:
    """The counter of completed tasks of the superstep that runs from `step`."""
    return f"count#{step}"


def held_tasks(base: Base, succeeded: Set[str]) -> list[Task]:
    """The tasks of a superstep held by a failure or an interrupt, to run again on resume:
    those in `succeeded` marked `done_at`, so that their recorded results are reused."""
    return [
        t.model_copy(update={"done_at": base.step}) if t.id in succeeded else t for t in base.next
    ]


@dataclass(frozen=True)
class Pending:
    """A superstep still waiting for some of its tasks: `done` of `total` have completed."""

    done: int
    total: int


# What a `done#` row seals (sealed_records.py): every part of the task's result that holds the
# thread's data (rows written before the interrupt, error and goto were sealed open alike).
DONE_SEALED = ("writes", "io", "interrupt", "error", "goto")
DONE_PARTS = ("writes", "io", "interrupt", "goto")  # each kept whole in a chunk when big


def thread_payloads(backend: Backend, thread_id: str) -> PayloadStore:
    """Where the thread's chunks go: sealed with its data key when encryption is on."""
    keys = backend.checkpoints.keys
    if keys is None:
        return backend.payloads
    return payloads_for(backend.payloads, thread_id, keys.ensure(thread_id))


def stored_result(backend: Backend, thread_id: str, key: str, result: TaskResult) -> dict[str, Any]:
    """The value of a `done#` row `key`: the result with its big parts in chunks, its parts
    (`DONE_SEALED`) sealed when encryption is on (a chunk is sealed too: `thread_payloads`)."""
    value = result.to_record()
    payloads = thread_payloads(backend, thread_id)
    most = backend.max_value_bytes
    for name in DONE_PARTS:
        if value.get(name) is not None:
            value[name] = chunked_part(value[name], payloads, most, f"{key} {name}")
    return seal_fields(value, DONE_SEALED, backend.checkpoints.keys, thread_id, key)


def opened_result(
    backend: Backend, thread_id: str, key: str, value: Mapping[str, Any]
) -> dict[str, Any]:
    """A stored `done#` row's value as `TaskResult.from_record` takes it: opened, its parts
    read back from their chunks."""
    opened = open_fields(value, backend.checkpoints.keys, thread_id, key)
    for name in DONE_PARTS:
        if is_ref(opened.get(name)):
            opened[name] = loaded(opened[name], backend.payloads)
    return opened


def result_chunks(value: Mapping[str, Any]) -> list[PayloadRef]:
    """The chunks an opened `done#` row's value names (its parts kept whole in chunks)."""
    return [
        PayloadRef.model_validate(value[name][MARKER])
        for name in DONE_PARTS
        if is_ref(value.get(name))
    ]


class FanIn:
    """Completes the tasks of parallel supersteps on one backend."""

    def __init__(self, backend: Backend, tasks: TaskRunner) -> None:
        self.backend = backend
        self.tasks = tasks
        self._ids: dict[tuple[str, str], frozenset[str]] = {}

    def has_task(self, checkpoint: Checkpoint, task_id: str) -> bool:
        """Whether `task_id` is one of the step's tasks: a short list is looked through (a
        step of one task: the set, built and kept, cost more than the look), a fan-out's
        long one through its ids, built once per step (`task_ids`)."""
        tasks = checkpoint.next
        if len(tasks) <= SHORT_TASK_LIST:
            return any(task.id == task_id for task in tasks)
        return task_id in self.task_ids(checkpoint)

    def task_ids(self, checkpoint: Checkpoint) -> frozenset[str]:
        """The ids of a step's tasks, built once per step (a fan-out's list is long)."""
        key = (checkpoint.thread_id, checkpoint.hash)
        ids = self._ids.get(key)
        if ids is None:
            ids = frozenset(t.id for t in checkpoint.next)
            if len(self._ids) > TASK_ID_CACHE:
                self._ids.clear()
            self._ids[key] = ids
        return ids

    def run_or_reuse(
        self, base: Base, task: Task, delivery: TaskDelivery | None = None
    ) -> TaskResult:
        """The task's result: the success it recorded in an earlier attempt of its step
        (`done_at`), whether it now runs alone or beside others, or else a new run."""
        if task.done_at is not None:
            key = done_key(task.done_at, task.id)
            earlier = self.backend.checkpoints.get_record(base.thread_id, key)
            if earlier is not None and earlier.value.get("kind") == "ok":
                opened = opened_result(self.backend, base.thread_id, key, earlier.value)
                return TaskResult.from_record(task, opened)
        return self.tasks.run_task(base, task, delivery)

    def complete(
        self,
        base: Base,
        task: Task,
        finalize: Callable[[], None] | None,
        delivery: TaskDelivery | None = None,
    ) -> list[TaskResult] | Pending:
        """Run one task of a parallel superstep and record its result; if it was the last of
        the step, every result (read in chunks), else how many are done (and the message is
        acknowledged in the same unit of work as the completion). O(1) store operations per
        task: one completion row and a counter, never a read of the siblings."""
        store = self.backend.checkpoints
        thread_id = base.thread_id
        member = done_key(base.step, task.id)
        existing = store.get_record(thread_id, member)
        value: dict[str, Any] | None = None
        if existing is None:  # the node runs outside any transaction: it may take minutes
            result = self.run_or_reuse(base, task, delivery)
            value = stored_result(self.backend, thread_id, member, result)
        created = True
        pending: Pending | None = None
        with self.backend.atomic():
            if value is not None:
                created, done = store.complete_task(thread_id, count_key(base.step), member, value)
            else:
                count = store.get_record(thread_id, count_key(base.step))
                done = int(count.value.get("count", 0)) if count is not None else 0
            if done < len(base.next):
                if finalize is not None:
                    finalize()
                pending = Pending(done, len(base.next))
        if value is not None and not created:  # a racing duplicate created the row first
            self._discard(thread_id, member, value)
        if pending is not None:
            return pending
        keys = [done_key(base.step, t.id) for t in base.next]
        found = store.get_records(thread_id, keys)
        missing = [key for key in keys if key not in found]
        if missing:  # a counter ahead of its rows cannot happen; wait for redelivery
            return Pending(len(keys) - len(missing), len(keys))
        return [
            TaskResult.from_record(t, opened_result(self.backend, thread_id, k, found[k].value))
            for t, k in zip(base.next, keys, strict=True)
        ]

    def _discard(self, thread_id: str, key: str, value: Mapping[str, Any]) -> None:
        """Delete the chunks of a result whose `done#` row another run of the task created
        first: the row names that run's chunks (salted anew), or ours when it was our own
        write retried; none but ours are deleted, or left to the sweeper (`orphans.let_go`)."""
        if not may_let_go(self.backend):
            return
        keys = self.backend.checkpoints.keys
        mine = result_chunks(open_fields(value, keys, thread_id, key))
        if not mine:
            return
        won = self.backend.checkpoints.get_record(thread_id, key)
        theirs = result_chunks(open_fields(won.value, keys, thread_id, key)) if won else mine
        lost = [ref for ref in mine if ref not in theirs]
        what = f"a duplicate result of {key!r} of {thread_id!r}"
        let_go(self.backend, lost, what, thread_id=thread_id, row=key)


__all__ = [
    "DONE_PARTS",
    "DONE_SEALED",
    "FanIn",
    "Pending",
    "count_key",
    "done_key",
    "held_tasks",
    "opened_result",
    "result_chunks",
    "stored_result",
    "thread_payloads",
]
