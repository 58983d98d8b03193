"""`CompiledGraph`: the LangGraph-familiar surface (`invoke`, `update_state`, `get_state`,
`get_state_history`) over the engine and a backend."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from durable_graph.backend import Backend
from durable_graph.checkpoint import Actor, Checkpoint, ErrorInfo, InterruptInfo, ParentRef
from durable_graph.clock import Clock, SystemClock
from durable_graph.engine import Engine, Outcome
from durable_graph.errors import InvalidInput, StepNotFound, ThreadExists, ThreadFailed
from durable_graph.ports import Delivery
from durable_graph.retention_policy import Retention
from durable_graph.spec import GraphSpec
from durable_graph.worker import Worker

LEASE_ENV = "DURABLE_GRAPH_LEASE_SECONDS"  # how long a worker holds a task before others may
UNSET: Any = object()  # "no resume value given" (None is a legitimate resume value)


@dataclass(frozen=True)
class StateSnapshot:
    """One checkpoint as a user reads it: values with payloads fetched back."""

    thread_id: str
    step: int
    status: str
    values: dict[str, Any]
    next: tuple[str, ...]
    source: str
    nodes: tuple[str, ...]
    created_at: str
    interrupt: InterruptInfo | None
    error: ErrorInfo | None
    parent: ParentRef | None
    checkpoint: Checkpoint


def thread_id_of(config: Mapping[str, Any] | str | None, thread_id: str | None) -> str:
    if thread_id is not None:
        return thread_id
    if isinstance(config, str):
        return config
    if isinstance(config, Mapping):
        configurable = config.get("configurable", {})
        if isinstance(configurable, Mapping) and "thread_id" in configurable:
            return str(configurable["thread_id"])
    raise InvalidInput(
        "a thread id is required: pass thread_id=... or config={'configurable': "
        "{'thread_id': ...}}",
        field="thread_id",
    )


class CompiledGraph:
    """A frozen graph bound to a backend; cheap to create, stateless between calls."""

    def __init__(
        self,
        spec: GraphSpec,
        *,
        backend: Backend | None,
        name: str | None,
        retention: Retention | None = None,
    ) -> None:
        self.spec = spec
        self._backend = backend
        self.name = name or f"{_caller_module()}:graph"
        self.retention = retention
        self.clock: Clock = SystemClock()
        self._engine: Engine | None = None
        self.visibility_timeout = float(os.environ.get(LEASE_ENV, "60"))

    @property
    def version(self) -> str:
        return self.spec.version()

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            from durable_graph.backends.local import local_backend

            self._backend = local_backend(clock=self.clock)
        return self._backend

    def with_backend(self, backend: Backend, *, clock: Clock | None = None) -> CompiledGraph:
        """The same graph on another backend (tests, the AWS worker, a second home)."""
        other = CompiledGraph(self.spec, backend=backend, name=self.name, retention=self.retention)
        other.clock = clock or self.clock
        other.visibility_timeout = self.visibility_timeout
        return other

    def engine(self, worker_id: str | None = None) -> Engine:
        """The engine for this graph, backend and clock (kept while they stay the same)."""
        if worker_id is not None:
            return self._new_engine(worker_id)
        cached = self._engine
        if (
            cached is None
            or cached.backend is not self.backend
            or cached.clock is not self.clock
            or cached.task_lease_seconds != self.visibility_timeout
        ):
            cached = self._engine = self._new_engine(None)
        return cached

    def _new_engine(self, worker_id: str | None) -> Engine:
        """An engine whose effect claims never outlast the lease this graph's workers take."""
        return Engine(
            self.spec,
            self.name,
            self.backend,
            clock=self.clock,
            worker_id=worker_id,
            task_lease_seconds=self.visibility_timeout,
        )

    def worker(self, **kwargs: Any) -> Worker:
        """A worker that runs this graph's messages (and refuses others' as unknown graphs)."""
        engine = self.engine(kwargs.pop("worker_id", None))

        def engine_for(name: str) -> Engine:
            if name != self.name:
                # loader imports this module (it returns a CompiledGraph): the one import here
                # that stays inside a function
                from durable_graph.loader import load_graph

                return (
                    load_graph(name)
                    .with_backend(self.backend, clock=self.clock)
                    .engine(engine.worker_id)
                )
            return engine

        kwargs.setdefault("visibility_timeout", self.visibility_timeout)
        return Worker(
            self.backend, engine_for, clock=self.clock, worker_id=engine.worker_id, **kwargs
        )

    # ---------------------------------------------------------------- running

    def start(
        self, input: Mapping[str, Any] | None, *, thread_id: str, actor: Actor | None = None
    ) -> Checkpoint:
        """Commit step 0 and queue the first tasks; does not run them (`run --detach`)."""
        return self.engine().start(thread_id, input, actor=actor)

    def invoke(
        self,
        input: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        thread_id: str | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> dict[str, Any]:
        """Start (or continue) a thread and run it until it completes or suspends.

        Returns the state values at the head. `invoke(None, ...)` on a suspended thread runs
        the interrupted tasks as they are (like LangGraph after `update_state`). Raises
        `ThreadFailed` if the thread ends failed (also when it already was): the failure is
        recorded and `resume(thread_id)` retries it.
        """
        tid = thread_id_of(config, thread_id)
        engine = self.engine()
        worker = self.worker(on_outcome=on_outcome)
        head = self.backend.checkpoints.head_checkpoint(tid)
        first: list[Delivery] = []
        # Commit and lease the first task in one unit of work (one transaction when embedded).
        with self.backend.atomic():
            if head is None:
                engine.start(tid, input, actor=Actor(kind="api", id="invoke"))
            elif input is not None:
                raise ThreadExists(tid, head.status)
            elif head.status == "suspended":
                engine.resume(tid, actor=Actor(kind="api", id="invoke"))
            first = worker.claim(tid)
        return self.snapshot(self._settle(worker, tid, first)).values

    def start_and_run(
        self,
        input: Mapping[str, Any] | None,
        *,
        thread_id: str,
        actor: Actor | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> Checkpoint:
        """Commit step 0, lease its first task in the same unit of work, and run the thread
        here until it completes or suspends (`durable-graph run`); `ThreadFailed` if it fails."""
        worker = self.worker(on_outcome=on_outcome)
        with self.backend.atomic():
            self.engine().start(thread_id, input, actor=actor)
            first = worker.claim(thread_id)
        return self._settle(worker, thread_id, first)

    def _settle(self, worker: Worker, thread_id: str, first: list[Delivery]) -> Checkpoint:
        store = self.backend.checkpoints

        def settled() -> bool:
            head = store.head_checkpoint(thread_id)
            return head is None or head.status != "running"

        worker.run(thread_id=thread_id, settled=settled, first_batch=first)
        head = self.engine().head(thread_id)
        if head.status == "failed":
            raise ThreadFailed(thread_id, head.step, head.error)
        return head

    def run_until_settled(
        self, thread_id: str, *, on_outcome: Callable[[Outcome], None] | None = None
    ) -> Checkpoint:
        """Work this thread's queued tasks in this process until it is no longer running;
        `ThreadFailed` if it ends failed."""
        return self._settle(self.worker(on_outcome=on_outcome), thread_id, [])

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
    ) -> Checkpoint:
        """Inject a decision into a suspended thread (or retry a failed one) and, with `run`,
        run it here until it completes or suspends; `ThreadFailed` if it fails again."""
        worker = self.worker(on_outcome=on_outcome)
        with self.backend.atomic():
            checkpoint = self.engine().resume(
                thread_id,
                values=values,
                as_node=as_node,
                resume_value=None if resume_value is UNSET else resume_value,
                has_resume_value=resume_value is not UNSET,
                expected_step=expected_step,
                actor=actor,
            )
            first = worker.claim(thread_id) if run and checkpoint.status == "running" else []
        if run and checkpoint.status == "running":
            return self._settle(worker, thread_id, first)
        return checkpoint

    def update_state(
        self,
        config: Mapping[str, Any] | str | None,
        values: Mapping[str, Any] | None,
        as_node: str | None = None,
        *,
        expected_step: int | None = None,
        actor: Actor | None = None,
    ) -> Checkpoint:
        """Write `values` as if `as_node` had run (LangGraph's `update_state`); does not run the
        next tasks: call `invoke(None, config)` or let a worker pick them up."""
        return self.resume(
            thread_id_of(config, None),
            values=values,
            as_node=as_node,
            expected_step=expected_step,
            actor=actor,
            run=False,
        )

    # ---------------------------------------------------------------- reading

    def snapshot(self, checkpoint: Checkpoint) -> StateSnapshot:
        engine = self.engine()
        return StateSnapshot(
            thread_id=checkpoint.thread_id,
            step=checkpoint.step,
            status=checkpoint.status,
            values=engine.values_of(checkpoint),
            next=tuple(t.node for t in checkpoint.next),
            source=checkpoint.source,
            nodes=tuple(checkpoint.nodes),
            created_at=checkpoint.created_at,
            interrupt=checkpoint.interrupt,
            error=checkpoint.error,
            parent=checkpoint.parent,
            checkpoint=checkpoint,
        )

    def get_state(
        self, config: Mapping[str, Any] | str | None, step: int | None = None
    ) -> StateSnapshot:
        tid = thread_id_of(config, None)
        if step is None:
            return self.snapshot(self.engine().head(tid))
        checkpoint = self.backend.checkpoints.get_checkpoint(tid, step)
        if checkpoint is None:
            self.engine().head(tid)  # ThreadNotFound first, if that is the problem
            raise StepNotFound(tid, step)
        return self.snapshot(checkpoint)

    def get_state_history(
        self,
        config: Mapping[str, Any] | str | None,
        *,
        limit: int | None = None,
        before: int | None = None,
        node: str | None = None,
        source: str | None = None,
    ) -> list[StateSnapshot]:
        """Newest first; `before` pages back, `node`/`source` filter."""
        tid = thread_id_of(config, None)
        self.engine().head(tid)
        store = self.backend.checkpoints
        filtered = node is not None or source is not None
        page = None if limit is None else max(2 * limit, 32) if filtered else limit
        chosen: list[Checkpoint] = []
        while limit is None or len(chosen) < limit:  # pages of records, newest first
            batch = store.list_checkpoints(tid, before_step=before, limit=page)
            chosen += [
                r
                for r in batch
                if (node is None or node in r.nodes) and (source is None or r.source == source)
            ]
            if page is None or len(batch) < page:
                break
            before = batch[-1].step
        return [self.snapshot(r) for r in chosen[:limit]]


def _caller_module() -> str:
    frame = sys._getframe(3) if hasattr(sys, "_getframe") else None
    return str(frame.f_globals.get("__name__", "graph")) if frame else "graph"
