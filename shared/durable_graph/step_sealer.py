"""`StepSealer` is how the engine seals a step (`sealing.seal` builds the record): it adds the
fields every record of one graph on one backend shares (graph, time, parent link), keeps big
parts whole in chunks (`part_chunks.py`), seals and salts the parts that hold the thread's
data, and refuses, before anything is written, a record the store could not hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from durable_graph.backend import Backend
from durable_graph.checkpoint import (
    Actor,
    Checkpoint,
    ErrorInfo,
    GraphRef,
    InterruptInfo,
    IoRecord,
    ParentRef,
    PayloadRef,
    RouteDecision,
    SignOffRecord,
    Status,
    Task,
)
from durable_graph.clock import Clock, iso
from durable_graph.encryption import ThreadCipher
from durable_graph.part_chunks import chunked_arg, chunked_part
from durable_graph.part_salts import resume_salts, salt_error, salt_interrupt, salt_task
from durable_graph.sealed_fields import seal_error, seal_interrupt, seal_resume, seal_task
from durable_graph.sealed_payloads import payloads_for
from durable_graph.sealing import Base, seal
from durable_graph.state import FieldChange


class StepSealer:
    """Seals the steps of one graph's threads on one backend."""

    def __init__(self, backend: Backend, graph: GraphRef, clock: Clock) -> None:
        self.backend = backend
        self.graph = graph
        self.clock = clock

    def seal(
        self,
        *,
        thread_id: str,
        step: int,
        source: Literal["input", "node", "update", "fork"],
        values: dict[str, Any],
        next_tasks: list[Task],
        status: Status,
        actor: Actor,
        nodes: Sequence[str] = (),
        changed: Mapping[str, FieldChange] | None = None,
        previous: Base | None = None,
        routes: Sequence[RouteDecision] = (),
        interrupt: InterruptInfo | None = None,
        error: ErrorInfo | None = None,
        resume: dict[str, list[Any]] | None = None,
        io: list[IoRecord] | None = None,
        duration_ms: float = 0.0,
        attempt: int = 1,
        parent: ParentRef | None = None,
        signoff: SignOffRecord | None = None,
    ) -> Checkpoint:
        """The sealed record of `step`, checked against the store's size limit. `changed`
        None: the state did not change; `parent` defaults to `previous` (a fork's step 0 names
        its origin instead); `signoff`: a decision's approvals (`approval_record.py`)."""
        if parent is None and previous is not None:
            parent = ParentRef(thread_id=thread_id, step=previous.step, hash=previous.hash)
        backend = self.backend
        payloads = backend.payloads
        most = backend.max_value_bytes
        cipher: ThreadCipher | None = None
        keys = backend.checkpoints.keys
        if keys is not None:  # encryption on: this thread's data key (cached after its first)
            cipher = keys.ensure(thread_id)
            payloads = payloads_for(payloads, thread_id, cipher)
        fresh: list[PayloadRef] = []  # the whole-part chunks written here (`orphans.py`)
        if interrupt is not None and interrupt.payload is not None:
            part = chunked_part(interrupt.payload, payloads, most, "interrupt.payload", fresh)
            if part is not interrupt.payload:
                interrupt = interrupt.copied(payload=part)
        next_tasks = [chunked_arg(task, payloads, most, fresh) for task in next_tasks]
        if resume:
            resume = {
                task: [chunked_part(v, payloads, most, f"resume[{task!r}]", fresh) for v in values]
                for task, values in resume.items()
            }
        if cipher is not None:
            # Task arguments, the interrupt payload, resume values and the error message are
            # sealed too, and hashed sealed (`sealed_fields.py`).
            next_tasks = [seal_task(task, cipher) for task in next_tasks]
            interrupt = seal_interrupt(interrupt, cipher)
            resume = seal_resume(resume or {}, cipher)
            error = seal_error(error, cipher)
        # Each part gets its salt last, over what the record keeps (`salted_parts.py`): the
        # record hashes its salted digest, so erasing it later leaves nothing to guess at.
        next_tasks = [salt_task(task) for task in next_tasks]
        interrupt = salt_interrupt(interrupt)
        error = salt_error(error)
        sealed = seal(
            step=step,
            values=values,
            changed=changed,
            previous=previous,
            next_tasks=next_tasks,
            io=io or [],
            payloads=payloads,
            cipher=cipher,
            fresh=fresh,
            threshold=backend.offload_threshold,
            max_value_bytes=most,
            fields={
                "thread_id": thread_id,
                "parent": parent,
                "source": source,
                "nodes": list(nodes),
                "route": list(routes),
                "interrupt": interrupt,
                "resume": resume or {},
                "resume_s": resume_salts(resume or {}),
                "status": status,
                "error": error,
                "graph": self.graph,
                "created_at": iso(self.clock.now()),
                "duration_ms": round(duration_ms, 3),
                "attempt": attempt,
                "actor": actor,
                "signoff": signoff,
            },
        )
        backend.check_record_size(sealed)
        return sealed.with_fresh(fresh)


__all__ = ["StepSealer"]
