"""The only place that decides transitions: start, resume, fork, and execute one task; and
replay, which re-runs a recorded step without writing one.

Per transition message (DESIGN.md §3): read checkpoint `k` (or take it from the message) → if
`k+1` exists, re-send its successors and acknowledge → run the node → conditionally write `k+1`
→ send the successors. Every crash point in that list is survivable: the write is the commit
point, and everything after it is idempotent and repeated by redelivery.

What a decision needs done is done beside it: running a task (tasks.py), the fan-in of a
parallel superstep (fanin.py), the record a superstep ends in (superstep.py), the record of a
resume, a fork or a recorded failure (updates.py), sealing a record (sealing.py), the commit
point (commits.py) and its follow-ups (followups.py), a replay's re-run and comparison
(replay.py). This module decides which step comes next and commits it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from durable_graph import reading
from durable_graph.backend import Backend
from durable_graph.checkpoint import Actor, Checkpoint, GraphRef, Status
from durable_graph.clock import Clock, SystemClock
from durable_graph.commits import Committer, Outcome
from durable_graph.context import NodeServices, default_worker_id
from durable_graph.effects import (
    DEFAULT_TASK_LEASE_SECONDS,
    TaskDelivery,
    claim_seconds,
    configured_effect_lease,
)
from durable_graph.errors import (
    GraphMismatch,
    InvalidInput,
    NotSuspended,
    PermanentTaskError,
    StaleHead,
    ThreadExists,
    UnknownNode,
)
from durable_graph.fanin import FanIn, Pending
from durable_graph.followups import FollowUps, carried_base, opened_message
from durable_graph.forks import note_fork
from durable_graph.ports.commit_writes import RecordWrite
from durable_graph.ports.transition_queue import TransitionMessage
from durable_graph.replay import ReplayReport, replay_step
from durable_graph.routing import route_from
from durable_graph.sealing import Base
from durable_graph.signoff import Decision, governed
from durable_graph.spec import END, START, GraphSpec, Send
from durable_graph.step_sealer import StepSealer
from durable_graph.superstep import merge_superstep, status_for
from durable_graph.tasks import TaskResult, TaskRunner
from durable_graph.threads import check_thread_id
from durable_graph.updates import seal_failure, seal_fork, seal_update


class Engine:
    """Runs one graph over one backend. Stateless between calls: safe to rebuild anywhere.

    It is also the host of the nodes it runs: their contexts hold it typed as `NodeHost`
    (backend, clock, worker id), the only parts of it they use."""

    def __init__(
        self,
        spec: GraphSpec,
        name: str,
        backend: Backend,
        *,
        clock: Clock | None = None,
        worker_id: str | None = None,
        task_lease_seconds: float = DEFAULT_TASK_LEASE_SECONDS,
        effect_lease_seconds: float | None = None,
    ) -> None:
        """`task_lease_seconds`: how long the queue leases a task to a worker (its visibility
        timeout) when `execute` is not told; `effect_lease_seconds` (else
        `$DURABLE_GRAPH_EFFECT_LEASE_SECONDS`): how long a `ctx.step` claim stands against
        another message of the task, capped at the task's lease (`durable_graph.effects`)."""
        self.spec = spec
        self.name = name
        self.backend = backend
        self.clock = clock or SystemClock()
        self.worker_id = worker_id or default_worker_id()
        self.task_lease_seconds = task_lease_seconds
        self.effect_lease_seconds = configured_effect_lease(effect_lease_seconds)
        self.graph = GraphRef(name=name, version=spec.version())
        self.actor = Actor(kind="worker", id=self.worker_id)  # who writes the steps it runs
        self.sealer = StepSealer(backend, self.graph, self.clock)
        self.tasks = TaskRunner(spec, NodeServices(backend, self.clock, self.worker_id))
        self.fanin = FanIn(backend, self.tasks)
        self.followups = FollowUps(backend, self.clock)
        self.committer = Committer(backend, self.followups)

    # ------------------------------------------------------------------ reading

    def head(self, thread_id: str) -> Checkpoint:
        return reading.head_of(self.backend, thread_id)

    def values_of(self, checkpoint: Checkpoint) -> dict[str, Any]:
        """The checkpoint's state (a format-1 record's offloaded strings fetched back)."""
        return reading.values_of(self.backend, checkpoint)

    def check_graph(self, checkpoint: Checkpoint) -> None:
        if checkpoint.graph.version != self.graph.version:
            raise GraphMismatch(
                f"thread {checkpoint.thread_id!r} runs graph {checkpoint.graph.name} version "
                f"{checkpoint.graph.version}, but the loaded graph is version "
                f"{self.graph.version}: its nodes, edges or state schema changed. Resume it "
                "with the graph it started under, or fork it under the new graph."
            )

    # ------------------------------------------------- writing a step: start, resume, fork

    def start(
        self, thread_id: str, values: Mapping[str, Any] | None, *, actor: Actor | None = None
    ) -> Checkpoint:
        """Commit step 0 and queue its tasks. Refuses an existing thread id."""
        self._check_new(thread_id)
        state = self.spec.schema.initial(values)
        next_tasks, routes = route_from(self.spec, START, state, origin_step=0, thread_id=thread_id)
        status, interrupt = status_for(self.spec, next_tasks, ran=[])
        checkpoint = self.sealer.seal(
            thread_id=thread_id,
            step=0,
            source="input",
            values=state,
            next_tasks=next_tasks,
            routes=routes,
            status=status,
            interrupt=interrupt,
            actor=actor or Actor(kind="system", id=self.worker_id),
        )
        return self._committed(
            checkpoint,
            previous_status=None,
            refuse=lambda winner: ThreadExists(thread_id, winner.status if winner else "running"),
        )

    def resume(
        self,
        thread_id: str,
        *,
        values: Mapping[str, Any] | None = None,
        as_node: str | None = None,
        resume_value: Any = None,
        has_resume_value: bool = False,
        resume_by_task: Mapping[str, Any] | None = None,
        expected_step: int | None = None,
        actor: Actor | None = None,
        head: Checkpoint | None = None,
        decision: Decision | None = None,
    ) -> Checkpoint:
        """Inject a human decision (or retry a failed task) and continue.

        `resume_value` answers the interrupt the head names; `resume_by_task` answers several
        pending interrupts at once, by the id of the task that raised each. Writes step
        `head+1` with source `update`, conditionally: two racing resumes of one suspended
        thread cannot both land; the loser gets `StaleHead`. `head`: the thread's head as the
        caller just read it (saves reading it again; if it is no longer the head, the
        conditional append loses as in any race). `decision`: who decides, required where
        the interrupted node's `ApprovalRule` must know (`signoff.governed`: its refusals, or
        `ApprovalPending` when the rule needs more approvers, raised before anything is
        written); the step is then theirs and commits every approval.
        """
        if head is None or head.thread_id != thread_id:
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
        signoff = governed(self.backend, self.spec.nodes, head, current, decision, self.clock)
        if signoff is not None and decision is not None:
            actor = decision.approver.actor
        checkpoint = seal_update(
            self.spec,
            self.sealer,
            head,
            current,
            values=values,
            as_node=as_node,
            resume_value=resume_value,
            has_resume_value=has_resume_value,
            resume_by_task=resume_by_task,
            actor=actor,
            signoff=signoff,
        )
        return self._committed(
            checkpoint, previous_status=head.status, refuse=StaleHead.beaten(head)
        )

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
        self._check_new(new_thread_id)
        if values is not None and not isinstance(values, Mapping):
            raise InvalidInput("values must be a JSON object of state fields", field="values")
        for task in origin.next:
            if task.node not in self.spec.nodes:
                raise UnknownNode(task.node, list(self.spec.nodes))
        # A taken id is refused before anything is written (sealing writes the big values'
        # chunks). A race of two forks to one id can leave the loser's index entry, which
        # readers filter out; its chunks go with its refusal (`commit`).
        store = self.backend.checkpoints
        taken = store.get_checkpoint(new_thread_id, 0)
        if taken is not None:
            raise ThreadExists(new_thread_id, taken.status)
        checkpoint = seal_fork(
            self.spec, self.sealer, origin, self.values_of(origin), new_thread_id, values, actor
        )
        # Indexed before it commits, so no committed fork is missing from its origin's lineage
        # (an entry whose fork never commits is filtered out on read: `forks.py`).
        note_fork(store, origin.thread_id, origin.step, new_thread_id)
        return self._committed(
            checkpoint,
            previous_status=None,
            refuse=lambda winner: ThreadExists(
                new_thread_id, winner.status if winner else "running"
            ),
        )

    def replay(self, thread_id: str, step: int) -> ReplayReport:
        """Re-run the node(s) that wrote `step` from the state of `step - 1`, fed the external
        inputs recorded with it, and compare with the record (`replay.py`); writes nothing."""
        return replay_step(self, thread_id, step)

    # ---------------------------------------------- executing: the step a message runs

    def execute(
        self,
        message: TransitionMessage,
        *,
        receive_count: int = 1,
        finalize: Callable[[], None] | None = None,
        lease_seconds: float | None = None,
    ) -> Outcome:
        """Handle one transition message. Raises `PermanentTaskError` / `TransientError`.

        `finalize` (the acknowledgement) runs right after the commit and the successor sends,
        inside the backend's unit of work; it is not called when nothing was committed.
        `receive_count` and `lease_seconds` (the delivery's lease, default the engine's) name
        the delivery the task's effect claims belong to.
        """
        prepared = self.prepare(
            message, receive_count=receive_count, finalize=finalize, lease_seconds=lease_seconds
        )
        if isinstance(prepared, Outcome):
            return prepared
        return self.commit(prepared, previous_status="running", finalize=finalize)

    def prepare(
        self,
        message: TransitionMessage,
        *,
        receive_count: int = 1,
        finalize: Callable[[], None] | None = None,
        lease_seconds: float | None = None,
    ) -> Outcome | Checkpoint:
        """Everything `execute` does before its commit: run the task and build the step it
        leads to (returned, sealed, not written), or the outcome when there is nothing to
        commit (a duplicate, a stale message, a fan-out task whose siblings still run: that
        one is recorded, and `finalize`d, here). A group commit (worker_group.py) prepares many
        messages, then commits their steps in one unit of work."""
        if message.graph.version != self.graph.version:
            raise PermanentTaskError(
                f"message for graph version {message.graph.version}, worker runs "
                f"{self.graph.version}"
            )
        node = self.spec.nodes.get(message.task.node)
        if node is None:
            raise PermanentTaskError(f"unknown node {message.task.node!r}")
        store = self.backend.checkpoints
        keys = store.keys
        message = opened_message(message, keys)  # a task's argument travels sealed
        # A first delivery runs from what this process has at hand (the step it just
        # committed or read), else from what the message carried, else from the store.
        first = receive_count == 1
        at_hand = store.peek(message.thread_id, message.step) if first else None
        carried = carried_base(message, keys=keys) if first and at_hand is None else None
        if at_hand is not None:
            if not self.fanin.has_task(at_hand, message.task.id):
                return Outcome("stale", at_hand)
            base = Base.of(at_hand)
        elif carried is not None:
            base = carried
        else:
            checkpoint = store.get_checkpoint(message.thread_id, message.step)
            if checkpoint is None:
                raise PermanentTaskError(
                    f"thread {message.thread_id!r} has no step {message.step} to run from"
                )
            following = store.get_checkpoint(message.thread_id, message.step + 1)
            if following is not None:
                self.followups.resend_if_head(following)
                return Outcome("duplicate", following)
            if not self.fanin.has_task(checkpoint, message.task.id):
                return Outcome("stale", checkpoint)
            base = Base.of(checkpoint, self.values_of(checkpoint))
        delivery = self.delivery(receive_count, lease_seconds)
        if len(base.next) > 1:
            results = self.fanin.complete(base, message.task, finalize, delivery)
            if isinstance(results, Pending):
                return Outcome("pending", progress=(results.done, results.total))
        else:
            results = [self.fanin.run_or_reuse(base, message.task, delivery)]
        return self.build(base, results)

    def delivery(self, receive_count: int, lease_seconds: float | None) -> TaskDelivery:
        """The delivery a task runs under; its claims stand no longer than its lease."""
        lease = self.task_lease_seconds if lease_seconds is None else lease_seconds
        return TaskDelivery(receive_count, claim_seconds(lease, self.effect_lease_seconds))

    def build(self, base: Base, results: Sequence[TaskResult]) -> Checkpoint:
        """Merge a superstep's results into the next checkpoint (not yet written)."""
        return merge_superstep(self.spec, self.sealer, self.actor, base, results)

    # ------------------------------------------------------------------ committing

    def commit(
        self,
        checkpoint: Checkpoint,
        *,
        previous_status: Status | None,
        finalize: Callable[[], None] | None = None,
        refuse: Callable[[Checkpoint | None], Exception] | None = None,
        signature: RecordWrite | None = None,
    ) -> Outcome:
        """The commit point (`commits.py`): append `checkpoint` conditionally, with its
        follow-ups; a step that exists already is a duplicate, or `refuse(winner)` raised.
        `signature`: its head signature, made beforehand with a batch's."""
        return self.committer.commit(
            checkpoint,
            previous_status=previous_status,
            finalize=finalize,
            refuse=refuse,
            signature=signature,
        )

    def _committed(
        self,
        checkpoint: Checkpoint,
        *,
        previous_status: Status | None,
        refuse: Callable[[Checkpoint | None], Exception],
    ) -> Checkpoint:
        """Commit a step that must not lose silently (start, resume, fork): the record as
        committed, its sealed parts opened (`refuse` raised when another writer won)."""
        outcome = self.commit(checkpoint, previous_status=previous_status, refuse=refuse)
        assert outcome.checkpoint is not None  # committed: with `refuse`, never a duplicate
        return outcome.checkpoint

    def fail_thread(
        self, thread_id: str, reason: str, *, node: str = "", kind: str = "PermanentTaskError"
    ) -> Checkpoint | None:
        """Record a permanent failure as a checkpoint, so the thread says why it stopped;
        `kind` is the error type it records (e.g. `GraphRecursionError`)."""
        head = self.backend.checkpoints.head_checkpoint(thread_id)
        if head is None or head.status in ("completed", "failed"):
            return None
        values = self.values_of(head)
        checkpoint = seal_failure(
            self.sealer, self.worker_id, head, values, reason, node=node, kind=kind
        )
        outcome = self.commit(checkpoint, previous_status=head.status)
        return outcome.checkpoint

    def _check_new(self, thread_id: str) -> None:
        """A thread id start or fork may take: well formed. Whether a thread has it already is
        decided by the conditional append of step 0 (every thread has a step 0), whose lost
        condition carries the existing record: no read first."""
        check_thread_id(thread_id)


__all__ = ["END", "START", "Engine", "Outcome", "Send", "TaskResult"]
