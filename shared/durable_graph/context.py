"""What a node sees besides its state: recorded side effects, interrupts, payloads, identity.

Rules for node authors (also in the README): a node may run more than once (retries, crashes,
redelivery). Side effects that must happen once go through `ctx.step`, which records them; a
crash inside one means it runs again on the next delivery, so the external side is exactly-once
only when the receiver honours `ctx.idempotency_key` (stable across every re-run of the task).
Calls whose answers should be replayable (LLM, APIs) go through `ctx.record`; anything else must
be idempotent. Local variables are never saved.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from durable_graph.canonical import canonical_bytes, check_json
from durable_graph.checkpoint import IoRecord, PayloadRef, VersionedRecord
from durable_graph.clock import Clock, iso
from durable_graph.effects import TaskDelivery, judge, note_takeover
from durable_graph.errors import (
    DurableGraphError,
    EffectInProgress,
    GraphInterrupt,
    InvalidInput,
    RecordConflict,
)
from durable_graph.mail import Mailer, MailerMissing, task_key
from durable_graph.request_digests import memo_key, new_call, recorded_key
from durable_graph.runs import emit, node_config
from durable_graph.sealed_payloads import payloads_for
from durable_graph.sealed_records import open_fields, seal_fields

if TYPE_CHECKING:
    from durable_graph.backend import Backend
    from durable_graph.encryption import ThreadCipher

T = TypeVar("T")
_current: contextvars.ContextVar[NodeContext | None] = contextvars.ContextVar(
    "durable_graph_ctx", default=None
)


class NodeHost(Protocol):
    """What a context uses of the engine running its node: named here so this module does not
    import the engine, which imports it."""

    @property
    def backend(self) -> Backend: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def worker_id(self) -> str: ...


@dataclass(frozen=True)
class NodeServices:
    """The services a node's context gets, and nothing more of the engine that runs it (a node
    cannot reach past them to commit steps or read other threads' tasks)."""

    backend: Backend
    clock: Clock
    worker_id: str


def default_worker_id() -> str:
    """A host's id when none is given: its node's effect claims (`ctx.step`) and the steps it
    writes name it, so it is unique per process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class NodeContext:
    """Passed as the second argument to nodes that accept two parameters."""

    engine: NodeHost
    thread_id: str
    step_number: int
    task_id: str
    node: str
    attempt: int
    resume_values: list[Any] = field(default_factory=list)
    replay_io: dict[str, Any] | None = None
    replay_calls: list[IoRecord] = field(default_factory=list)  # the task's io, under replay
    recorded: dict[str, Any] = field(default_factory=dict)
    io: list[IoRecord] = field(default_factory=list)
    delivery: TaskDelivery = field(default_factory=TaskDelivery)
    goto: list[Any] = field(default_factory=list)  # a returned Command's goto (JSON form)
    _interrupts_seen: int = 0

    @property
    def idempotency_key(self) -> str:
        """Stable across retries, crashes and resumes of this task: pass it to external APIs."""
        return task_key(self.thread_id, self.task_id)

    @property
    def mailer(self) -> Mailer:
        """The backend's mailer (the store's outbox embedded, SES on AWS). Send inside
        `ctx.step` with `ctx.idempotency_key`, so a re-run of the task does not send again."""
        mailer = self.engine.backend.mailer
        if mailer is None:
            raise MailerMissing(
                f"node {self.node!r} sends mail but this backend has no mailer (on AWS, deploy "
                "with -c mail_from=<an address of a verified SES identity>)"
            )
        keys = self.engine.backend.checkpoints.keys
        bind = getattr(mailer, "for_thread", None)
        if keys is not None and callable(bind):  # a mailer that stores: sealed at rest
            bound: Mailer = bind(self.thread_id, keys.ensure(self.thread_id))
            return bound
        return mailer

    def step_key(self, name: str) -> str:
        return f"fx#{self.task_id}#{name}"

    def step(self, name: str, fn: Callable[[], T]) -> T:
        """Run a side effect at most once per delivery of this task: its result is recorded
        before it is returned, and returned from the record on every later run.

        If the process dies inside `fn`, the next delivery of the task takes the claim over
        and runs `fn` again (`durable_graph.effects`): exactly-once on the receiver's side
        comes only from passing `ctx.idempotency_key` to it, and the receiver dropping a key
        it has already seen."""
        result: T = self._effect(name, fn)
        return result

    def record(self, name: str, fn: Callable[[Any], T], request: Any) -> T:
        """Call an external system (LLM, API) and record request and response, so `replay`
        can feed the recorded response back and check the node reproduces its update. The
        answer is committed with the step (its io, no extra write); retries of the node within
        this run get the same answer. The request is kept only as a salted digest."""
        check_json(request, f"{name}.request")
        canonical = canonical_bytes(request)
        if self.replay_io is not None:
            key = recorded_key(name, canonical, self.replay_calls, self._replay_cipher)
            if key is None:
                raise InvalidInput(
                    f"replay: no recorded response for {name!r} with this request", field=name
                )
            replayed: T = self._replayed(self.replay_io, key)
            return replayed
        # The call's name and request digest are salted (`request_digests.py`); a retry of the
        # task makes the same call again and gets the first attempt's answer and salt.
        memo = memo_key(name, canonical)
        known = self.recorded.get(memo)
        if known is None:
            keys = self.engine.backend.checkpoints.keys
            call = new_call(name, canonical, None if keys is None else keys.ensure(self.thread_id))
            answer = fn(request)
            check_json(answer, f"{name}.result")
            known = self.recorded[memo] = (call, answer)
        call, result = known
        io = _io_record(self.task_id, call.key, "record", result, call.request_sha256, call.salt)
        self.io.append(io)
        return cast(T, result)

    def interrupt(self, payload: Any = None) -> Any:
        """Suspend the thread for a human; on resume the node re-runs and this returns the
        resume value given to `resume(..., resume_value=...)`."""
        index = self._interrupts_seen
        self._interrupts_seen += 1
        if index < len(self.resume_values):
            return self.resume_values[index]
        check_json(payload, "interrupt.payload")
        raise GraphInterrupt(payload)

    def load(self, ref: PayloadRef | dict[str, Any]) -> bytes:
        """Fetch payload bytes (digest-checked) for a state field holding a PayloadRef."""
        parsed = ref if isinstance(ref, PayloadRef) else PayloadRef.model_validate(ref)
        return self.engine.backend.payloads.get(parsed)

    def save(self, data: bytes, content_type: str = "application/octet-stream") -> PayloadRef:
        """Store bytes in the payload store and return the ref to keep in state (or to pass in
        a `Send`), so heavy data never enters a checkpoint. Content-addressed: a re-run of the
        node stores nothing new and gets the same ref. With encryption at rest on, the bytes
        are sealed under this thread's data key, deterministically (the same bytes, the same
        ref; another thread's key, another object), so destroying the key (erasure of the
        thread) makes them unreadable wherever the ref went."""
        backend = self.engine.backend
        keys = backend.checkpoints.keys
        if keys is None:
            return backend.payloads.put(data, content_type)
        own = payloads_for(backend.payloads, self.thread_id, keys.ensure(self.thread_id))
        return own.save(data, content_type)

    @staticmethod
    def _replayed(replay_io: dict[str, Any], name: str) -> Any:
        """Under `replay`, the recorded response stands in for the call."""
        if name not in replay_io:
            raise InvalidInput(f"replay: no recorded response for {name!r}", field=name)
        return replay_io[name]

    def _replay_cipher(self) -> ThreadCipher:
        """The thread's cipher, to match a request recorded on an encrypted thread (read only:
        a replay writes nothing, so no key is created)."""
        keys = self.engine.backend.checkpoints.keys
        if keys is None:
            raise InvalidInput(
                f"replay: thread {self.thread_id!r} recorded its calls encrypted, and the store "
                "was opened without its key-encryption key",
                field="thread_id",
            )
        return keys.cipher(self.thread_id)

    def _effect(self, name: str, fn: Callable[[], Any]) -> Any:
        """Claim, run, record (see `durable_graph.effects` for who may take a claim over)."""
        if self.replay_io is not None:
            return self._replayed(self.replay_io, name)
        store = self.engine.backend.checkpoints
        relaxed = self.engine.backend.relaxed  # a lost claim or result is a crash before it
        key = self.step_key(name)
        # No read first: creating the claim fails with the record that is there (done: its
        # result is replayed; a claim: judged), so the common first run costs one write.
        record: VersionedRecord | None = None
        first = True
        while first or record is None or record.value.get("status") != "done":
            first = False
            try:
                with relaxed():
                    record = self._claim(name, key, record)
            except RecordConflict as conflict:
                record = conflict.current
                continue
            result = self._run_claimed(key, record, fn)
            check_json(result, f"{name}.result")
            worker = self.engine.worker_id
            done = {"status": "done", "owner": worker, "result": result, "kind": "step"}
            done = seal_fields(done, ("result",), store.keys, self.thread_id, key)
            try:
                # Publish the result iff our claim still stands (a zombie's late write loses).
                with relaxed():
                    record = store.put_record(
                        self.thread_id, key, done, expected_version=record.version
                    )
            except RecordConflict as conflict:
                record = conflict.current
        result = open_fields(record.value, store.keys, self.thread_id, key)["result"]
        self.io.append(_io_record(self.task_id, name, "step", result))
        return result

    def _claim(self, name: str, key: str, found: VersionedRecord | None) -> VersionedRecord:
        """Write our claim: create it iff absent (two racing runs cannot both start), or
        replace a claim we may take over with a CAS on the version we read."""
        store = self.engine.backend.checkpoints
        now = self.engine.clock.now()
        claim: dict[str, Any] = {
            "status": "started",
            "owner": self.engine.worker_id,
            "delivery": self.delivery.receive_count,
            "lease_until": iso(now + timedelta(seconds=self.delivery.claim_seconds)),
        }
        if found is None:
            return store.put_record(self.thread_id, key, claim, expected_version=None)
        verdict = judge(found.value, self.engine.worker_id, self.delivery, now)
        if verdict == "busy":
            raise EffectInProgress(
                f"side effect {name!r} of task {self.task_id} is claimed by "
                f"{found.value.get('owner')} (delivery {found.value.get('delivery', '?')}, this "
                f"is delivery {self.delivery.receive_count}) until "
                f"{found.value.get('lease_until')}"
            )
        if verdict in ("later_delivery", "expired"):
            note_takeover(name, self.task_id, found.value, self.delivery, verdict)
            claim["took_over"] = {
                "from_owner": found.value.get("owner"),
                "from_delivery": found.value.get("delivery"),
                "at": iso(now),
                "why": verdict,
            }
        return store.put_record(self.thread_id, key, claim, expected_version=found.version)

    def _run_claimed(self, key: str, claim: VersionedRecord, fn: Callable[[], Any]) -> Any:
        """Run `fn` under our claim; if it raises, release the claim (best effort) so the next
        run of the task starts at once instead of waiting for a lease: `fn` is known to have
        ended. A `BaseException` (the process is going down) leaves the claim, as a crash
        does, for the next delivery to take over."""
        try:
            return fn()
        except Exception:
            released = {**claim.value, "status": "released"}
            with contextlib.suppress(DurableGraphError), self.engine.backend.relaxed():
                self.engine.backend.checkpoints.put_record(
                    self.thread_id, key, released, expected_version=claim.version
                )
            raise


def _io_record(
    task_id: str,
    name: str,
    kind: str,
    result: Any,
    request_sha256: str | None = None,
    salt: str | None = None,
) -> IoRecord:
    """The record of one call: a `ctx.record` call's carries its request's salted digest and
    the salt (`request_digests.py`), which sealing keeps as the response's salt too. Its
    `response_sha256` is left empty: sealing salts every io record and derives the salted
    digest then (`part_salts.salt_io`), so a plain digest made here was never kept."""
    return IoRecord(
        task_id=task_id,
        name=name,
        kind="record" if kind == "record" else "step",
        request_sha256=request_sha256,
        response=result,
        s=salt,
    )


def current_context() -> NodeContext:
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError(
            "interrupt(), get_config() and get_stream_writer() work only inside a running node"
        )
    return ctx


def interrupt(payload: Any = None) -> Any:
    """LangGraph-style dynamic interrupt, usable without taking `ctx` as a parameter."""
    return current_context().interrupt(payload)


def get_config() -> dict[str, Any]:
    """The config of the node running now (LangGraph's `get_config`): the caller's, with the
    thread's ids (`durable_graph.runs.node_config`)."""
    ctx = current_context()
    return node_config(ctx.thread_id, step=ctx.step_number, node=ctx.node)


def get_stream_writer() -> Callable[[Any], None]:
    """A writer for the node running now: each call sends a chunk to
    `stream(..., stream_mode="custom")` (LangGraph's `get_stream_writer`)."""
    thread_id = current_context().thread_id
    return lambda chunk: emit(thread_id, "custom", chunk)


def bind(ctx: NodeContext) -> contextvars.Token[NodeContext | None]:
    return _current.set(ctx)


def unbind(token: contextvars.Token[NodeContext | None]) -> None:
    _current.reset(token)
