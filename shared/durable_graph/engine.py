"""The only place that decides transitions: start, resume, and execute one task.

Per transition message (DESIGN.md §3): read checkpoint `k` (or take it from the message) → if
`k+1` exists, re-send its successors and acknowledge → run the node → conditionally write `k+1`
→ send the successors. Every crash point in that list is survivable: the write is the commit
point, and everything after it is idempotent and repeated by redelivery.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from durable_graph.backend import Backend
from durable_graph.canonical import check_json, json_size_within
from durable_graph.checkpoint import (
    Actor,
    Checkpoint,
    ErrorInfo,
    GraphRef,
    InterruptInfo,
    IoRecord,
    ParentRef,
    RouteDecision,
    Status,
    Task,
)
from durable_graph.clock import Clock, SystemClock, iso
from durable_graph.context import NodeContext, bind, unbind
from durable_graph.errors import (
    GraphInterrupt,
    GraphMismatch,
    InvalidInput,
    NotSuspended,
    PermanentTaskError,
    StaleHead,
    StepConflict,
    ThreadExists,
    ThreadNotFound,
    TransientError,
    UnknownNode,
)
from durable_graph.payloads import hydrate
from durable_graph.ports import Notification, TransitionMessage
from durable_graph.routing import route_from
from durable_graph.sealing import Base, seal
from durable_graph.signing import sign_if_settled
from durable_graph.spec import END, START, GraphSpec, Send
from durable_graph.state import FieldChange, normalise_update
from durable_graph.threads import sync_thread

log = logging.getLogger("durable_graph.engine")

CARRY_LIMIT_BYTES = 48 * 1024


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


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


@dataclass(frozen=True)
class Outcome:
    """What handling one message did; the worker loop and Lambda handler log and count it."""

    kind: Literal["committed", "duplicate", "pending", "stale"]
    checkpoint: Checkpoint | None = None


class Engine:
    """Runs one graph over one backend. Stateless between calls: safe to rebuild anywhere."""

    def __init__(
        self,
        spec: GraphSpec,
        name: str,
        backend: Backend,
        *,
        clock: Clock | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.spec = spec
        self.name = name
        self.backend = backend
        self.clock = clock or SystemClock()
        self.worker_id = worker_id or default_worker_id()
        self.graph = GraphRef(name=name, version=spec.version())
        self._ids: dict[tuple[str, str], frozenset[str]] = {}

    # ------------------------------------------------------------------ reading

    def head(self, thread_id: str) -> Checkpoint:
        head = self.backend.checkpoints.head_checkpoint(thread_id)
        if head is None:
            raise ThreadNotFound(thread_id)
        return head

    def values_of(self, checkpoint: Checkpoint) -> dict[str, Any]:
        """The checkpoint's state (a format-1 record's offloaded strings fetched back)."""
        if checkpoint.format >= 2:
            return checkpoint.values
        hydrated: dict[str, Any] = hydrate(checkpoint.values, self.backend.payloads)
        return hydrated

    def check_graph(self, checkpoint: Checkpoint) -> None:
        if checkpoint.graph.version != self.graph.version:
            raise GraphMismatch(
                f"thread {checkpoint.thread_id!r} runs graph {checkpoint.graph.name} version "
                f"{checkpoint.graph.version}, but the loaded graph is version "
                f"{self.graph.version}: its nodes, edges or state schema changed. Resume it "
                "with the graph it started under, or fork it under the new graph."
            )

    # ------------------------------------------------------------------ starting

    def start(
        self, thread_id: str, values: Mapping[str, Any] | None, *, actor: Actor | None = None
    ) -> Checkpoint:
        """Commit step 0 and queue its tasks. Refuses an existing thread id."""
        _check_thread_id(thread_id)
        existing = self.backend.checkpoints.head_checkpoint(thread_id)
        if existing is not None:
            raise ThreadExists(thread_id, existing.status)
        state = self.spec.schema.initial(values)
        next_tasks, routes = route_from(self.spec, START, state, origin_step=0)
        status, interrupt = self._status_for(next_tasks, ran=[])
        checkpoint = self._seal(
            thread_id=thread_id,
            step=0,
            source="input",
            nodes=[],
            values=state,
            changed=None,
            previous=None,
            next_tasks=next_tasks,
            routes=routes,
            status=status,
            interrupt=interrupt,
            actor=actor or Actor(kind="system", id=self.worker_id),
        )
        self.commit(
            checkpoint,
            previous_status=None,
            refuse=lambda _: ThreadExists(thread_id, "running"),
        )
        return checkpoint

    # ------------------------------------------------------------------ resuming

    def resume(
        self,
        thread_id: str,
        *,
        values: Mapping[str, Any] | None = None,
        as_node: str | None = None,
        resume_value: Any = None,
        has_resume_value: bool = False,
        expected_step: int | None = None,
        actor: Actor | None = None,
    ) -> Checkpoint:
        """Inject a human decision (or retry a failed task) and continue.

        Writes step `head+1` with source `update`, conditionally: two racing resumes of one
        suspended thread cannot both land; the loser gets `StaleHead`.
        """
        head = self.head(thread_id)
        self.check_graph(head)
        if head.status not in ("suspended", "failed"):
            raise NotSuspended(thread_id, head.status)
        if expected_step is not None and expected_step != head.step:
            raise StaleHead(thread_id, expected_step, head.step)
        if as_node is not None and as_node not in self.spec.nodes:
            raise UnknownNode(as_node, list(self.spec.nodes))
        if values is not None and not isinstance(values, Mapping):
            raise InvalidInput("values must be a JSON object of state fields", field="values")
        current = self.values_of(head)
        update = dict(values or {})
        applied = self.spec.schema.fold(current, [update], where="values")
        state = applied.values
        resume = {k: list(v) for k, v in head.resume.items()}
        routes: list[RouteDecision] = []
        if as_node is not None:
            remaining = [t for t in head.next if t.node != as_node]
            routed, routes = route_from(self.spec, as_node, state, origin_step=head.step + 1)
            next_tasks = _merge_tasks(remaining, routed)
            # A human update is not a run of `as_node`: interrupt_after does not fire again
            # (or an interrupt_after node could never be approved), interrupt_before still does.
            status, interrupt = self._status_for(next_tasks, ran=[])
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
        checkpoint = self._seal(
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
        )
        self.commit(
            checkpoint,
            previous_status=head.status,
            refuse=lambda winner: StaleHead(
                thread_id, head.step, winner.step if winner is not None else head.step
            ),
        )
        return checkpoint

    # ------------------------------------------------------------------ forking

    def fork(
        self,
        origin: Checkpoint,
        new_thread_id: str,
        values: Mapping[str, Any] | None = None,
        *,
        actor: Actor | None = None,
    ) -> Checkpoint:
        """Commit step 0 of `new_thread_id` from `origin`'s state (plus `values`, through the
        reducers), linked to `origin`; it continues with `origin`'s next tasks, suspended if
        `origin` was waiting for a decision. Refuses an existing thread id."""
        _check_thread_id(new_thread_id)
        existing = self.backend.checkpoints.head_checkpoint(new_thread_id)
        if existing is not None:
            raise ThreadExists(new_thread_id, existing.status)
        if values is not None and not isinstance(values, Mapping):
            raise InvalidInput("values must be a JSON object of state fields", field="values")
        for task in origin.next:
            if task.node not in self.spec.nodes:
                raise UnknownNode(task.node, list(self.spec.nodes))
        state = self.spec.schema.apply(self.values_of(origin), [dict(values or {})], where="values")
        status: Status = "running" if origin.next else "completed"
        if origin.status == "suspended":
            status = "suspended"
        checkpoint = self._seal(
            thread_id=new_thread_id,
            step=0,
            source="fork",
            nodes=[],
            values=state,
            changed=None,
            previous=Base.of(origin, state),
            next_tasks=[t.model_copy(update={"done_at": None}) for t in origin.next],
            routes=[],
            status=status,
            interrupt=origin.interrupt if status == "suspended" else None,
            resume=dict(origin.resume),
            actor=actor or Actor(kind="api", id="fork"),
            parent=ParentRef(thread_id=origin.thread_id, step=origin.step, hash=origin.hash),
        )
        self.commit(
            checkpoint,
            previous_status=None,
            refuse=lambda _: ThreadExists(new_thread_id, "running"),
        )
        return checkpoint

    # ------------------------------------------------------------------ executing

    def execute(
        self,
        message: TransitionMessage,
        *,
        receive_count: int = 1,
        finalize: Callable[[], None] | None = None,
    ) -> Outcome:
        """Handle one transition message. Raises `PermanentTaskError` / `TransientError`.

        `finalize` (the acknowledgement) runs right after the commit and the successor sends,
        inside the backend's unit of work; it is not called when nothing was committed.
        """
        if message.graph.version != self.graph.version:
            raise PermanentTaskError(
                f"message for graph version {message.graph.version}, worker runs "
                f"{self.graph.version}"
            )
        node = self.spec.nodes.get(message.task.node)
        if node is None:
            raise PermanentTaskError(f"unknown node {message.task.node!r}")
        store = self.backend.checkpoints
        carried = message.carried if receive_count == 1 and message.parallel == 1 else None
        # A first delivery runs from what this process has at hand (the step it just
        # committed or read), else from what the message carried, else from the store.
        at_hand = store.peek(message.thread_id, message.step) if receive_count == 1 else None
        if at_hand is not None:
            if message.task.id not in self._task_ids(at_hand):
                return Outcome("stale", at_hand)
            base = Base.of(at_hand)
        elif carried is not None:
            base = Base(
                thread_id=message.thread_id,
                step=message.step,
                hash=carried["hash"],
                values=carried["values"],
                next=[message.task],
                resume={message.task.id: carried.get("resume", [])},
                digests=carried["digests"],
                anchors=carried["anchors"],
            )
        else:
            checkpoint = store.get_checkpoint(message.thread_id, message.step)
            if checkpoint is None:
                raise PermanentTaskError(
                    f"thread {message.thread_id!r} has no step {message.step} to run from"
                )
            following = store.get_checkpoint(message.thread_id, message.step + 1)
            if following is not None:
                self.resend_if_head(following)
                return Outcome("duplicate", following)
            if message.task.id not in self._task_ids(checkpoint):
                return Outcome("stale", checkpoint)
            base = Base.of(checkpoint, self.values_of(checkpoint))
        if len(base.next) > 1:
            results = self._superstep_results(base, message.task, finalize)
            if results is None:
                return Outcome("pending")
        else:
            results = [self.run_task(message.thread_id, base, base.values, message.task)]
        checkpoint = self.build(
            base, base.values, results, actor=Actor(kind="worker", id=self.worker_id)
        )
        return self.commit(checkpoint, previous_status="running", finalize=finalize)

    def _task_ids(self, checkpoint: Checkpoint) -> frozenset[str]:
        """The ids of a step's tasks, built once per step (a fan-out's list is long)."""
        key = (checkpoint.thread_id, checkpoint.hash)
        ids = self._ids.get(key)
        if ids is None:
            ids = frozenset(t.id for t in checkpoint.next)
            if len(self._ids) > 64:
                self._ids.clear()
            self._ids[key] = ids
        return ids

    def _superstep_results(
        self, base: Base, task: Task, finalize: Callable[[], None] | None
    ) -> list[TaskResult] | None:
        """Run one task of a parallel superstep and record its result; if it was the last of
        the step, every result (read in chunks), else None (and the message is acknowledged
        in the same unit of work as the completion). O(1) store operations per task: one
        completion row and a counter, never a read of the siblings."""
        store = self.backend.checkpoints
        thread_id = base.thread_id
        member = _done_key(base.step, task.id)
        counter = f"count#{base.step}"
        existing = store.get_record(thread_id, member)
        value: dict[str, Any] | None = None
        if existing is None:
            earlier = (
                store.get_record(thread_id, _done_key(task.done_at, task.id))
                if task.done_at is not None
                else None
            )
            if earlier is not None and earlier.value.get("kind") == "ok":
                value = earlier.value  # succeeded in an earlier attempt of this step: reuse
            else:  # the node runs outside any transaction: it may take minutes
                value = self.run_task(thread_id, base, base.values, task).to_record()
        with self.backend.atomic():
            if value is not None:
                _, done = store.complete_task(thread_id, counter, member, value)
            else:
                count = store.get_record(thread_id, counter)
                done = int(count.value.get("count", 0)) if count is not None else 0
            if done < len(base.next):
                if finalize is not None:
                    finalize()
                return None
        keys = [_done_key(base.step, t.id) for t in base.next]
        found = store.get_records(thread_id, keys)
        missing = [key for key in keys if key not in found]
        if missing:
            return None  # a counter ahead of its rows cannot happen; wait for redelivery
        return [
            TaskResult.from_record(t, found[k].value) for t, k in zip(base.next, keys, strict=True)
        ]

    def run_task(
        self, thread_id: str, base: Base, values: dict[str, Any], task: Task
    ) -> TaskResult:
        """Run one node with its retry policy; interrupts and failures become results."""
        node = self.spec.nodes[task.node]
        attempt = 0
        started = time.perf_counter()
        recorded: dict[str, Any] = {}  # answers of ctx.record, shared by every attempt
        while True:
            attempt += 1
            ctx = NodeContext(
                engine=self,
                thread_id=thread_id,
                step_number=base.step + 1,
                task_id=task.id,
                node=task.node,
                attempt=attempt,
                resume_values=list(base.resume.get(task.id, [])),
                recorded=recorded,
            )
            token = bind(ctx)
            try:
                writes = self.call_node(node.name, task, values, ctx)
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
                    self.clock.sleep(node.retry.wait_before(attempt))
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

    def call_node(
        self, name: str, task: Task, values: dict[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        """Call the user's function and validate its update against the state model."""
        node = self.spec.nodes[name]
        state_arg: Any = task.arg if task.arg is not None else self.spec.schema.to_model(values)
        if node.wants_ctx:
            out = node.fn(state_arg, ctx)
        elif node.wants_state:
            out = node.fn(state_arg)
        else:
            out = node.fn()
        writes = normalise_update(out, node=name)
        self.spec.schema.check(writes, where=f"node {name!r} output")
        return writes

    def build(
        self,
        base: Base,
        values: dict[str, Any],
        results: Sequence[TaskResult],
        *,
        actor: Actor,
    ) -> Checkpoint:
        """Merge a superstep's results into the next checkpoint (not yet written)."""
        io = [record for r in results for record in r.io]
        duration = sum(r.duration_ms for r in results)
        attempts = max((r.attempts for r in results), default=1)
        failed = [r for r in results if r.kind == "error"]
        interrupted = [r for r in results if r.kind == "interrupt"]
        ok = [r for r in results if r.kind == "ok"]
        common: dict[str, Any] = {
            "thread_id": base.thread_id,
            "step": base.step + 1,
            "source": "node",
            "previous": base,
            "actor": actor,
            "io": io,
            "duration_ms": duration,
            "attempt": attempts,
        }
        if failed or interrupted:
            # Nothing merges: the step is retried as a whole on resume, but the tasks that
            # already succeeded keep their recorded writes and are not run again.
            interrupt = None
            done = {r.task.id for r in ok}
            retry = [
                t.model_copy(update={"done_at": base.step}) if t.id in done else t
                for t in base.next
            ]
            if interrupted and not failed:
                first = interrupted[0]
                interrupt = InterruptInfo(
                    node=first.task.node,
                    when="during",
                    payload=first.interrupt,
                    task_id=first.task.id,
                )
            return self._seal(
                nodes=list(dict.fromkeys(r.task.node for r in ok)),
                values=values,
                changed=None,
                next_tasks=retry,
                routes=[],
                status="failed" if failed else "suspended",
                interrupt=interrupt,
                error=failed[0].error if failed else None,
                resume=base.resume,
                **common,
            )
        applied = self.spec.schema.fold(values, [r.writes for r in ok], where="superstep")
        state = applied.values
        next_tasks: list[Task] = []
        routes: list[RouteDecision] = []
        ran = [r.task.node for r in ok]
        for node in dict.fromkeys(ran):
            tasks, decisions = route_from(self.spec, node, state, origin_step=base.step + 1)
            next_tasks = _merge_tasks(next_tasks, tasks)
            routes.extend(decisions)
        status, interrupt = self._status_for(next_tasks, ran=ran)
        return self._seal(
            nodes=list(dict.fromkeys(ran)),
            values=state,
            changed=applied.changes,
            next_tasks=next_tasks,
            routes=routes,
            status=status,
            interrupt=interrupt,
            **common,
        )

    # ------------------------------------------------------------------ committing

    def commit(
        self,
        checkpoint: Checkpoint,
        *,
        previous_status: Status | None,
        finalize: Callable[[], None] | None = None,
        refuse: Callable[[Checkpoint | None], Exception] | None = None,
    ) -> Outcome:
        """The commit point, the one path every write of a step takes: one conditional
        append, then the idempotent follow-ups, in the backend's unit of work.

        When the step already exists, a worker's redelivery treats it as done (re-sends the
        winner's follow-ups); a caller that must not lose silently (start, resume, fork)
        passes `refuse`, which turns the winner into the error to raise.
        """
        with self.backend.atomic():
            try:
                self.backend.checkpoints.append_checkpoint(checkpoint)
            except StepConflict as conflict:
                winner = conflict.existing
                if refuse is not None:
                    raise refuse(winner if isinstance(winner, Checkpoint) else None) from conflict
                if isinstance(winner, Checkpoint):
                    self.resend_if_head(winner)
                if finalize is not None:
                    finalize()
                return Outcome("duplicate", winner if isinstance(winner, Checkpoint) else None)
            self.after_commit(checkpoint, previous_status=previous_status)
            if finalize is not None:
                finalize()
        log.info(
            "step committed",
            extra={
                "thread_id": checkpoint.thread_id,
                "step": checkpoint.step,
                "status": checkpoint.status,
                "nodes": checkpoint.nodes,
            },
        )
        return Outcome("committed", checkpoint)

    def after_commit(self, checkpoint: Checkpoint, *, previous_status: Status | None) -> None:
        """Everything after the commit point is idempotent: redelivery repeats it safely."""
        if checkpoint.status == "running":
            self.backend.queue.send(self.messages_for(checkpoint))
        if checkpoint.status != previous_status:
            sync_thread(self.backend.checkpoints, checkpoint, self.clock)
        sign_if_settled(self.backend.checkpoints, self.backend.signer, checkpoint, self.clock)
        if checkpoint.status == "suspended" and checkpoint.interrupt is not None:
            mint = self.backend.approval_links
            self.backend.notifier.notify(
                Notification(
                    kind="suspended",
                    thread_id=checkpoint.thread_id,
                    step=checkpoint.step,
                    node=checkpoint.interrupt.node,
                    summary=(
                        f"thread {checkpoint.thread_id} is waiting for approval at "
                        f"{checkpoint.interrupt.node!r} ({checkpoint.interrupt.when})"
                    ),
                    payload=checkpoint.interrupt.payload,
                    links=mint(checkpoint) if mint is not None else {},
                )
            )

    def resend_if_head(self, checkpoint: Checkpoint) -> None:
        """A redelivered message found its step committed: if that step is still the head,
        redo every follow-up of its commit (successors, thread record, signature, approval
        notification): the first attempt may have died after the commit, before any of them."""
        after = self.backend.checkpoints.get_checkpoint(checkpoint.thread_id, checkpoint.step + 1)
        if after is None:
            self.after_commit(checkpoint, previous_status=None)

    def messages_for(self, checkpoint: Checkpoint) -> list[TransitionMessage]:
        parallel = len(checkpoint.next)
        carried: dict[str, Any] | None = None
        if (
            parallel == 1
            and checkpoint.format >= 2
            and json_size_within(checkpoint.values, CARRY_LIMIT_BYTES)
        ):
            carried = {
                "values": checkpoint.values,
                "hash": checkpoint.hash,
                "digests": checkpoint.digests,
                "anchors": checkpoint.anchors,
            }
        messages = []
        for task in checkpoint.next:
            one = dict(carried) if carried is not None else None
            if one is not None and checkpoint.resume.get(task.id):
                one["resume"] = checkpoint.resume[task.id]
            messages.append(
                TransitionMessage(
                    thread_id=checkpoint.thread_id,
                    step=checkpoint.step,
                    task=task,
                    graph=checkpoint.graph,
                    parallel=parallel,
                    carried=one,
                )
            )
        return messages

    def fail_thread(self, thread_id: str, reason: str, *, node: str = "") -> Checkpoint | None:
        """Record a permanent failure as a checkpoint, so the thread says why it stopped."""
        head = self.backend.checkpoints.head_checkpoint(thread_id)
        if head is None or head.status in ("completed", "failed"):
            return None
        error = ErrorInfo(
            node=node or (head.next[0].node if head.next else ""),
            task_id=head.next[0].id if head.next else "",
            type="PermanentTaskError",
            message=reason,
            attempts=1,
            retryable=False,
        )
        checkpoint = self._seal(
            thread_id=thread_id,
            step=head.step + 1,
            source="node",
            nodes=[],
            values=self.values_of(head),
            changed=None,
            previous=Base.of(head, self.values_of(head)),
            next_tasks=list(head.next),
            routes=[],
            status="failed",
            error=error,
            resume=head.resume,
            actor=Actor(kind="worker", id=self.worker_id),
        )
        outcome = self.commit(checkpoint, previous_status=head.status)
        return outcome.checkpoint

    # ------------------------------------------------------------------ helpers

    def _status_for(
        self, next_tasks: Sequence[Task], *, ran: Sequence[str]
    ) -> tuple[Status, InterruptInfo | None]:
        if not next_tasks:
            return "completed", None
        for node in ran:
            if node in self.spec.interrupt_after:
                return "suspended", InterruptInfo(node=node, when="after")
        for task in next_tasks:
            if task.node in self.spec.interrupt_before:
                return "suspended", InterruptInfo(node=task.node, when="before")
        return "running", None

    def _seal(
        self,
        *,
        thread_id: str,
        step: int,
        source: Literal["input", "node", "update", "fork"],
        nodes: list[str],
        values: dict[str, Any],
        changed: Mapping[str, FieldChange] | None,
        previous: Base | None,
        next_tasks: list[Task],
        routes: list[RouteDecision],
        status: Status,
        actor: Actor,
        interrupt: InterruptInfo | None = None,
        error: ErrorInfo | None = None,
        resume: dict[str, list[Any]] | None = None,
        io: list[IoRecord] | None = None,
        duration_ms: float = 0.0,
        attempt: int = 1,
        parent: ParentRef | None = None,
    ) -> Checkpoint:
        if parent is None and previous is not None:
            parent = ParentRef(thread_id=thread_id, step=previous.step, hash=previous.hash)
        sealed = seal(
            step=step,
            values=values,
            changed=changed,
            previous=previous,
            next_tasks=next_tasks,
            io=io or [],
            payloads=self.backend.payloads,
            threshold=self.backend.offload_threshold,
            max_value_bytes=self.backend.max_value_bytes,
            fields={
                "thread_id": thread_id,
                "parent": parent,
                "source": source,
                "nodes": nodes,
                "route": routes,
                "interrupt": interrupt,
                "resume": resume or {},
                "status": status,
                "error": error,
                "graph": self.graph,
                "created_at": iso(self.clock.now()),
                "duration_ms": round(duration_ms, 3),
                "attempt": attempt,
                "actor": actor,
            },
        )
        self.backend.check_record_size(sealed)
        return sealed


def _done_key(step: int, task_id: str) -> str:
    """The completion row of a task of the superstep that runs from `step`."""
    return f"done#{step}#{task_id}"


def _merge_tasks(first: Sequence[Task], second: Sequence[Task]) -> list[Task]:
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


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _check_thread_id(thread_id: str) -> None:
    if not thread_id or len(thread_id) > 200 or any(c in thread_id for c in "\x00\n\r#/"):
        raise InvalidInput(
            "thread id must be 1-200 characters without '/', '#', or control characters",
            field="thread_id",
        )


__all__ = ["END", "START", "Engine", "Outcome", "Send", "TaskResult"]
