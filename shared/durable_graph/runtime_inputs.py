"""What a call on a compiled graph commits before anything runs: new input (step 0 or a thread's
next turn), a resume with its decision, `Command(resume=..., update=...)`, `update_state`, and a
branch from the past checkpoint a config names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Any

from durable_graph.approval_rule import Approver
from durable_graph.checkpoint import Actor, Checkpoint
from durable_graph.commands import Command, resume_map
from durable_graph.engine import Engine, Outcome
from durable_graph.errors import InvalidInput, ThreadNotFound
from durable_graph.ports.transition_queue import Delivery
from durable_graph.run_config import checkpoint_id_in, thread_id_of
from durable_graph.runtime_reads import GraphReads
from durable_graph.signoff import ApprovalPending, Decision, approver_in, decision_of
from durable_graph.state import normalise_update
from durable_graph.turns import Kind as TurnKind
from durable_graph.turns import new_input, next_turn
from durable_graph.views import config_for

UNSET: Any = object()  # "no resume value given" (None is a legitimate resume value)
INVOKE = Actor(kind="api", id="invoke")  # who commits what `invoke` asks

# How a Python caller answers a pending interrupt (said when new input is refused for it).
_ANSWER = (
    "Answer it with invoke(Command(resume=...), config), continue without one with "
    "invoke(None, config), or start over from an earlier step with its checkpoint_id in the "
    "config"
)


class GraphInputs(GraphReads):
    """The step a call commits: input, resume, update, branch."""

    def _begin(
        self,
        engine: Engine,
        input: Any,
        config: Mapping[str, Any] | None,
        tid: str,
        given: Decision | None = None,
    ) -> Checkpoint | None:
        """The step this call commits before running (None: it only runs what is queued);
        `given`: who decides, handed down by a parent graph (`subgraphs._handed_down`)."""
        actor = INVOKE
        decision = given or decision_of(approver_in(config))
        head = self.backend.checkpoints.head_checkpoint(tid)
        at = self._past(tid, config, head)
        if isinstance(input, Command):
            if head is None:
                raise ThreadNotFound(tid)
            if input.targets():
                raise InvalidInput(
                    "Command(goto=...) is for a node's return value; to send a waiting "
                    "thread elsewhere use update_state(config, values, as_node=...)",
                    field="goto",
                )
            if at is not None:  # answer the interrupt of a past step: branch, then resume
                head = next_turn(engine, tid, None, kind="update", at=at, actor=actor)
            return self._resume_command(engine, head, input, actor, decision)
        if at is not None:
            kind: TurnKind = "input" if input is not None else "update"
            return next_turn(engine, tid, input, kind=kind, at=at, actor=actor)
        if head is None or input is not None:
            return new_input(engine, tid, input, head=head, answer=_ANSWER, actor=actor)
        if head.status == "suspended":
            return engine.resume(tid, actor=actor, decision=decision)
        if head.status == "failed" and head.error and head.error.type == "GraphRecursionError":
            return engine.resume(tid, actor=actor)  # a stop at the limit, not a fault
        return None

    def _resume_command(
        self,
        engine: Engine,
        head: Checkpoint,
        command: Command,
        actor: Actor,
        decision: Decision | None,
    ) -> Checkpoint:
        """`invoke(Command(resume=..., update=...))`: one value for the one pending interrupt,
        or `{interrupt id: value}` for several; `decision`: who decides (`approver_in`)."""
        values = normalise_update(command.update, node="Command.update") or None
        resume = partial(engine.resume, head.thread_id, values=values, actor=actor,
                         decision=decision)  # fmt: skip
        if command.resume is None:
            return resume()
        pending = self._pending(head)
        by_id = {p.interrupt.id: p for p in pending}
        mapping = resume_map(command.resume)
        if mapping is not None:
            unknown = [k for k in mapping if k not in by_id]
            if unknown:
                raise InvalidInput(
                    f"Command(resume=...) names interrupt ids {unknown} that are not pending; "
                    f"pending: {sorted(by_id)}",
                    field="resume",
                )
            answers: dict[str, Any] = {}
            for key, value in mapping.items():
                found = by_id[key]
                if found.inner_id is None:
                    answers[found.task_id] = value
                else:  # a subgraph's: its task gets one map {the subgraph's id: value}
                    answers.setdefault(found.task_id, {})[found.inner_id] = value
            return resume(resume_by_task=answers)
        if len(pending) > 1:
            raise InvalidInput(
                f"{len(pending)} interrupts are pending ({', '.join(sorted(by_id))}): resume "
                "them with Command(resume={interrupt_id: value, ...})",
                field="resume",
            )
        return resume(resume_value=command.resume, has_resume_value=True)

    def _past(
        self, tid: str, config: Mapping[str, Any] | None, head: Checkpoint | None
    ) -> Checkpoint | None:
        """The past checkpoint a config's `checkpoint_id` names (None: none, or the head)."""
        wanted = checkpoint_id_in(config)
        if wanted is None:
            return None
        if head is None:
            raise ThreadNotFound(tid)
        found = self._checkpoint(tid, wanted)
        return None if found.step == head.step else found

    def give_input(
        self,
        input: Mapping[str, Any] | None,
        *,
        thread_id: str,
        answer: str,
        actor: Actor | None = None,
        run: bool = True,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> Checkpoint:
        """New input for `thread_id` (`durable-graph run`): its step 0, or the next turn of a
        thread that completed or failed (`turns.new_input`, which refuses a suspended or
        running one; `answer` says how this caller answers a pending decision). With `run`,
        the first task is leased in the same unit of work and the thread runs here until it
        completes or suspends; `ThreadFailed` if it fails."""
        worker = self.worker(on_outcome=on_outcome)
        # With `run`, the first task is leased to this worker as it is queued (no receive).
        inline = worker.inline(thread_id) if run else nullcontext([])
        with self.backend.atomic(), inline as first:
            head = self.backend.checkpoints.head_checkpoint(thread_id)
            begun = new_input(
                self.engine(), thread_id, input, head=head, answer=answer, actor=actor
            )
        return self._settle(worker, thread_id, first) if run else begun

    def resume(
        self,
        thread_id: str,
        *,
        values: Mapping[str, Any] | None = None,
        as_node: str | None = None,
        resume_value: Any = UNSET,
        expected_step: int | None = None,
        actor: Actor | None = None,
        run: bool = True,
        on_outcome: Callable[[Outcome], None] | None = None,
        approver: Approver | str | None = None,
        decision: str = "approve",
        via: str = "python",
    ) -> Checkpoint:
        """Inject a decision into a suspended thread (or retry a failed one) and, with `run`,
        run it here until it completes or suspends; `ThreadFailed` if it fails again.

        `approver`: who decides (an `Approver`, or a person's name this code vouches for),
        required where the interrupted node's `ApprovalRule` must know; the step is then
        theirs and commits every approval. An approval the rule needs more of is recorded and
        the suspended head returned (`status_document(...)["approvals"]` has the tally).
        `decision`: `approve`, or `reject` (a veto decides at once)."""
        worker = self.worker(on_outcome=on_outcome) if run else None
        written: list[Checkpoint] = []

        def runs_on() -> bool:  # only a running step is run on here
            return worker is not None and bool(written) and written[0].status == "running"

        # With `run`, the next task is leased to this worker as it is queued (no receive);
        # without, it is queued for whoever runs the thread (`invoke(None, ...)`, a worker).
        inline: AbstractContextManager[list[Delivery]] = (
            worker.inline(thread_id, runs=runs_on) if worker is not None else nullcontext([])
        )
        with self.backend.atomic(), inline as first:
            try:
                written.append(
                    self.engine().resume(
                        thread_id,
                        values=values,
                        as_node=as_node,
                        resume_value=None if resume_value is UNSET else resume_value,
                        has_resume_value=resume_value is not UNSET,
                        expected_step=expected_step,
                        actor=actor,
                        decision=decision_of(approver, decision=decision, via=via),
                    )
                )
            except ApprovalPending as pending:  # recorded (committed with this unit of work)
                return pending.head
        if worker is None or not runs_on():
            return written[0]
        return self._settle(worker, thread_id, first)

    def update_state(
        self,
        config: Mapping[str, Any] | str | None,
        values: Mapping[str, Any] | None,
        as_node: str | None = None,
        *,
        expected_step: int | None = None,
        actor: Actor | None = None,
    ) -> dict[str, Any]:
        """Write `values` as if `as_node` had run (LangGraph's `update_state`); does not run the
        next tasks: call `invoke(None, config)` with the config it returns (or the thread's
        own: the written step is the thread's head), or let a worker pick them up.

        On a completed thread, or with a `checkpoint_id` of a past step in `config`, the update
        is the thread's next turn: written on that step's state, continuing from `as_node`'s
        edges (or that step's pending tasks), as LangGraph's branch from a past checkpoint.

        Returns LangGraph's config of the written checkpoint: `{"configurable": {"thread_id",
        "checkpoint_ns", "checkpoint_id"}}` (`get_state(config).checkpoint` is the record)."""
        tid = thread_id_of(config, None)
        engine = self.engine()
        head = engine.head(tid)
        at = self._past(tid, config if isinstance(config, Mapping) else None, head)
        if at is not None or head.status == "completed":
            written = next_turn(
                engine,
                tid,
                values,
                kind="update",
                at=at,
                as_node=as_node,
                actor=actor or Actor(kind="api", id="update_state"),
                expected_step=expected_step,
            )
        else:
            written = self.resume(
                tid,
                values=values,
                as_node=as_node,
                expected_step=expected_step,
                actor=actor,
                run=False,
                approver=approver_in(config if isinstance(config, Mapping) else None),
            )
        return config_for(written, tid)
