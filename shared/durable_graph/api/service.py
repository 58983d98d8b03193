"""What the thread routes do, apart from HTTP: start (idempotent per webhook id), read, resume,
and audit (verify, diff, export, fork) with the same functions as the CLI.

Reading and auditing use the store alone (`durable_graph.reading`, `verification`, `bundle`):
only start, resume and fork import the thread's graph.

Webhook ids are remembered as small CAS records in a reserved namespace (`__webhooks__`, a
thread id no real thread can have because the engine refuses ids starting with it), keyed by a
hash of the id: one conditional create decides which delivery starts the run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from durable_graph.api.errors import ExportTooLarge, WebhookConflict
from durable_graph.api.models import (
    ActorView,
    ApprovalsView,
    DiffQuery,
    DiffView,
    EraseRequest,
    EraseResponse,
    ErrorInfoView,
    ForkRequest,
    GraphView,
    HistoryItem,
    HistoryPage,
    HistoryQuery,
    InterruptView,
    ResumeRequest,
    StartThreadRequest,
    StepView,
    ThreadView,
    VerifyView,
    approvals_view,
)
from durable_graph.approval_record import approvals_of
from durable_graph.approval_rule import Approver
from durable_graph.backend import Backend
from durable_graph.bundle import Bundle, build_bundle
from durable_graph.checkpoint import Actor, Checkpoint, VersionedRecord
from durable_graph.clock import Clock, iso
from durable_graph.erasure import erase
from durable_graph.errors import (
    InvalidInput,
    RecordConflict,
    StepNotFound,
    ThreadExists,
    ThreadNotFound,
)
from durable_graph.langgraph_saver.display import readable
from durable_graph.payloads import hydrate, loaded
from durable_graph.ports.payload_store import PayloadStore
from durable_graph.reading import step_of
from durable_graph.runtime import CompiledGraph
from durable_graph.signoff import ApprovalPending, Decision, SignOff, recorded_approvals
from durable_graph.timetravel import diff, fork
from durable_graph.turns import new_input, refuse_input
from durable_graph.verification import verify_thread

WEBHOOK_NAMESPACE = "__webhooks__"
# A Lambda response carries at most 6 MB; base64 and JSON framing take their share.
MAX_EXPORT_BYTES = 5 * 1024 * 1024


def _answer(thread_id: str) -> str:
    """How an HTTP client answers the decision a thread waits for (said when a start with
    new input for it is refused)."""
    return (
        f"Answer it with POST /threads/{thread_id}/resume (or its approval link), or branch "
        f"from an earlier step with POST /threads/{thread_id}/fork"
    )


class Threads:
    def __init__(
        self,
        backend: Backend,
        *,
        clock: Clock,
        allowed_graphs: tuple[str, ...],
        graph_for: Callable[[str], CompiledGraph],
    ) -> None:
        self.backend = backend
        self.store = backend.checkpoints
        self.clock = clock
        self.allowed_graphs = allowed_graphs
        self.graph_for = graph_for

    # ------------------------------------------------------------------ start

    def start(
        self, webhook_id: str, body_sha256: str, request: StartThreadRequest
    ) -> tuple[Checkpoint, bool]:
        """Start a run for this webhook delivery, once: `(head, replayed)`. An existing
        thread that completed or failed takes the input as its next turn (LangGraph's
        multi-turn threads); one that waits for a decision or is running refuses it (409
        `turn_refused`, saying why and how to answer it)."""
        key = f"webhook#{hashlib.sha256(webhook_id.encode()).hexdigest()}"
        name = request.graph or self.allowed_graphs[0]
        if name not in self.allowed_graphs:
            raise InvalidInput(
                f"graph {name!r} is not served here; allowed: {', '.join(self.allowed_graphs)}",
                field="graph",
            )
        app = self.graph_for(name)
        thread_id = (
            request.thread_id or f"wh-{hashlib.sha256(webhook_id.encode()).hexdigest()[:32]}"
        )
        if thread_id.startswith("__"):
            raise InvalidInput("thread ids starting with __ are reserved", field="thread_id")
        head = self.store.head_checkpoint(thread_id)
        # Bad input, and input a thread cannot take now, are refused before anything is written.
        if head is None:
            app.spec.schema.initial(request.input)
        else:
            # A repeated delivery finds the run it started (a new thread's delivery reads no
            # reservation: its create below says it all).
            existing = self.store.get_record(WEBHOOK_NAMESPACE, key)
            if existing is not None:
                return self._replay(existing, body_sha256, request)
            refuse_input(head, answer=_answer(thread_id))
            app.spec.schema.check(request.input, where="input")
        reservation = {
            "webhook_id": webhook_id,
            "thread_id": thread_id,
            "graph": name,
            "body_sha256": body_sha256,
            "received_at": iso(self.clock.now()),
            # A new thread, or the next turn of the one that completed or failed at this step.
            "after_step": head.step if head is not None else None,
        }
        try:
            # Create-only: of two deliveries of one webhook, exactly one starts the run.
            record = self.store.put_record(
                WEBHOOK_NAMESPACE, key, reservation, expected_version=None
            )
        except RecordConflict as conflict:
            if isinstance(conflict.current, VersionedRecord):
                return self._replay(conflict.current, body_sha256, request)
            raise
        return self._start(app, record, request, webhook_id), False

    def _start(
        self,
        app: CompiledGraph,
        record: VersionedRecord,
        request: StartThreadRequest,
        webhook_id: str,
    ) -> Checkpoint:
        thread_id = str(record.value["thread_id"])
        actor = Actor(kind="webhook", id=webhook_id)
        after = record.value.get("after_step")
        if after is not None:  # exactly the step after the one seen, or StaleHead (409)
            head = self.store.head_checkpoint(thread_id)
            return new_input(
                app.engine(),
                thread_id,
                request.input,
                head=head,
                answer=_answer(thread_id),
                actor=actor,
                expected_step=after,
            )
        try:
            return app.engine().start(thread_id, request.input, actor=actor)
        except ThreadExists:
            first = self.store.get_checkpoint(thread_id, 0)
            if first is not None and first.actor == actor:
                return self.store.head_checkpoint(thread_id) or first
            raise

    def _replay(
        self, record: VersionedRecord, body_sha256: str, request: StartThreadRequest
    ) -> tuple[Checkpoint, bool]:
        if record.value.get("body_sha256") != body_sha256:
            raise WebhookConflict(
                "this webhook id was already used with a different body", field="webhook-id"
            )
        thread_id = str(record.value["thread_id"])
        head = self.store.head_checkpoint(thread_id)
        if head is None or not self._turn_written(record):
            # The first delivery reserved the id and died before starting: finish its work.
            app = self.graph_for(str(record.value["graph"]))
            head = self._start(app, record, request, str(record.value["webhook_id"]))
        return head, True

    def _turn_written(self, record: VersionedRecord) -> bool:
        """Whether the turn a webhook reserved (if it was one) was committed: the step after
        the one it saw, written by this webhook."""
        after = record.value.get("after_step")
        if after is None:
            return True
        turn = self.store.get_checkpoint(str(record.value["thread_id"]), int(after) + 1)
        webhook = Actor(kind="webhook", id=str(record.value["webhook_id"]))
        return turn is not None and turn.actor == webhook

    # ------------------------------------------------------------------ read

    def head(self, thread_id: str) -> Checkpoint:
        head = self.store.head_checkpoint(thread_id)
        if head is None or thread_id.startswith(WEBHOOK_NAMESPACE):
            raise ThreadNotFound(thread_id)
        return head

    def known(self, thread_id: str) -> None:
        """`ThreadNotFound` unless the thread exists: its head row alone is read (the state
        of a long thread is not built to answer 404 or not)."""
        if self.store.lazy_head(thread_id) is None or thread_id.startswith(WEBHOOK_NAMESPACE):
            raise ThreadNotFound(thread_id)

    def view(self, head: Checkpoint) -> ThreadView:
        # A thread was created with its step 0 (the head record takes that step's time), so a
        # thread just started is answered without reading its record.
        record = self.store.get_thread(head.thread_id) if head.step > 0 else None
        return ThreadView(
            thread_id=head.thread_id,
            status=head.status,
            step=head.step,
            graph=GraphView(name=head.graph.name, version=head.graph.version),
            next=[t.node for t in head.next],
            interrupt=_interrupt(head, self.backend.payloads),
            error=_error(head),
            values=self._values(head),
            created_at=record.created_at if record else head.created_at,
            updated_at=head.created_at,
            approvals=_approvals(recorded_approvals(self.backend, head)),
        )

    def history(self, thread_id: str, query: HistoryQuery) -> HistoryPage:
        self.known(thread_id)
        records = self.store.list_checkpoints(
            thread_id, before_step=query.before, limit=query.limit
        )
        items = [
            HistoryItem(
                step=c.step,
                source=c.source,
                nodes=list(c.nodes),
                status=c.status,
                actor=ActorView(kind=c.actor.kind, id=c.actor.id),
                hash=c.hash,
                prev_hash=c.prev_hash,
                created_at=c.created_at,
            )
            for c in records
        ]
        more = len(items) == query.limit and items[-1].step > 0
        return HistoryPage(
            thread_id=thread_id, items=items, next_before=items[-1].step if more else None
        )

    def step(self, thread_id: str, step: int) -> StepView:
        checkpoint = self.store.get_checkpoint(thread_id, step)
        if checkpoint is None or thread_id.startswith(WEBHOOK_NAMESPACE):
            self.known(thread_id)
            raise StepNotFound(thread_id, step)
        dump = checkpoint.model_dump(mode="json")
        return StepView(
            thread_id=checkpoint.thread_id,
            step=checkpoint.step,
            source=checkpoint.source,
            status=checkpoint.status,
            nodes=list(checkpoint.nodes),
            next=[t.node for t in checkpoint.next],
            values=self._values(checkpoint),
            interrupt=_interrupt(checkpoint, self.backend.payloads),
            error=_error(checkpoint),
            actor=ActorView(kind=checkpoint.actor.kind, id=checkpoint.actor.id),
            route=dump["route"],
            io=dump["io"],
            parent=dump["parent"],
            graph=GraphView(name=checkpoint.graph.name, version=checkpoint.graph.version),
            created_at=checkpoint.created_at,
            duration_ms=checkpoint.duration_ms,
            hash=checkpoint.hash,
            prev_hash=checkpoint.prev_hash,
            approvals=_decided(approvals_of(self.backend, checkpoint)),
        )

    # ------------------------------------------------------------------ resume

    def resume(
        self, thread_id: str, request: ResumeRequest, approver: Approver
    ) -> tuple[Checkpoint, SignOff]:
        """Decide as a node, as `approver`. Under the interrupted node's `ApprovalRule` the
        caller is one approver (`signoff.governed`): an approval that does not complete the
        rule is recorded and the suspended head returned with the tally (`complete` false)."""
        self.backend.check_writable()
        head = self.head(thread_id)
        engine = self.graph_for(head.graph.name).engine()
        try:
            resumed = engine.resume(
                thread_id,
                values=request.values,
                as_node=request.as_node,
                resume_value=request.resume_value,
                has_resume_value="resume_value" in request.model_fields_set,
                expected_step=request.expected_step,
                actor=approver.actor,
                head=head,
                decision=Decision(approver=approver, decision="resume", via="api resume"),
            )
        except ApprovalPending as pending:
            return pending.head, pending.signed
        return resumed, SignOff(complete=True)

    # ------------------------------------------------------------------ audit

    def verify(self, thread_id: str) -> VerifyView:
        self.known(thread_id)
        return VerifyView.model_validate(verify_thread(self.backend, thread_id).as_json())

    def diff(self, thread_id: str, query: DiffQuery) -> DiffView:
        self.known(thread_id)
        if query.thread_b is not None:
            self.known(query.thread_b)
        doc = diff(self.backend, thread_id, query.a, query.b, thread_b=query.thread_b)
        return DiffView.model_validate(doc)

    def export(self, thread_id: str) -> Bundle:
        self.known(thread_id)
        bundle = build_bundle(self.backend, thread_id)
        size = sum(len(p) for p in bundle.payloads.values()) + len(str(bundle.records))
        if size > MAX_EXPORT_BYTES:
            raise ExportTooLarge(
                f"the bundle of {thread_id!r} is about {size} bytes, over the "
                f"{MAX_EXPORT_BYTES} an API response carries: export it with the CLI "
                "(durable-graph export ID --out FILE --store URI)"
            )
        return bundle

    def fork(self, thread_id: str, request: ForkRequest, actor: Actor) -> Checkpoint:
        """Commit the fork's step 0 and queue its tasks; the workers run it."""
        if request.new_thread_id.startswith("__"):
            raise InvalidInput("thread ids starting with __ are reserved", field="new_thread_id")
        self.backend.check_writable()
        self.known(thread_id)
        origin = step_of(self.backend, thread_id, request.step)
        app = self.graph_for(origin.graph.name)
        return fork(
            app, thread_id, request.step, request.new_thread_id, request.values, actor=actor
        )

    def erase(self, thread_id: str, request: EraseRequest, actor: Actor) -> EraseResponse:
        self.known(thread_id)
        record = erase(
            self.backend,
            thread_id,
            fields=request.fields,
            parts=request.parts,
            reason=request.reason,
            actor=actor,
        )
        scheduled = record.scheduled if record is not None else []
        return EraseResponse(erased=record is not None, record=record, scheduled=scheduled)

    def _values(self, checkpoint: Checkpoint) -> dict[str, Any]:
        values: dict[str, Any] = hydrate(checkpoint.values, self.backend.payloads)
        return readable(self.backend, checkpoint, values)


def _approvals(record: dict[str, Any] | None) -> ApprovalsView | None:
    """The approvals recorded toward the suspended head's decision (`signoff`), if any."""
    if record is None:
        return None
    return approvals_view(int(record.get("required", 1)), record.get("approvals", []))


def _decided(found: dict[str, Any] | None) -> ApprovalsView | None:
    """Who decided a step under a rule (`approval_record.approvals_of`), if anyone."""
    if found is None:
        return None
    return approvals_view(found["required"], found["approvals"], chained=found["chained"])


def _interrupt(checkpoint: Checkpoint, payloads: PayloadStore) -> InterruptView | None:
    i = checkpoint.interrupt
    if i is None:
        return None
    return InterruptView(node=i.node, when=i.when, payload=loaded(i.payload, payloads))


def _error(checkpoint: Checkpoint) -> ErrorInfoView | None:
    e = checkpoint.error
    if e is None:
        return None
    return ErrorInfoView(
        node=e.node,
        task_id=e.task_id,
        type=e.type,
        message=e.message,
        attempts=e.attempts,
        retryable=e.retryable,
    )
