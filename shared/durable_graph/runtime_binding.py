"""A compiled graph bound to a backend and a clock: the engine and the workers that run it, and
working a thread's queue in this process until the thread stops (what every running call of
`CompiledGraph` ends with). The first of the classes `runtime.CompiledGraph` is built from."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, Self

from durable_graph.backend import Backend
from durable_graph.checkpoint import Actor, Checkpoint
from durable_graph.clock import Clock, SystemClock
from durable_graph.engine import Engine, Outcome
from durable_graph.errors import ThreadFailed
from durable_graph.ports.transition_queue import Delivery
from durable_graph.retention_policy import Retention
from durable_graph.spec import GraphSpec
from durable_graph.worker import Worker

LEASE_ENV = "DURABLE_GRAPH_LEASE_SECONDS"  # how long a worker holds a task before others may


class GraphBinding:
    """The graph's spec, name, backend and clock, and the engine and workers made of them."""

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

    def with_backend(self, backend: Backend, *, clock: Clock | None = None) -> Self:
        """The same graph on another backend (tests, the AWS worker, a second home)."""
        other = type(self)(self.spec, backend=backend, name=self.name, retention=self.retention)
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

    def _settle(self, worker: Worker, thread_id: str, first: list[Delivery]) -> Checkpoint:
        store = self.backend.checkpoints
        ended: list[Checkpoint] = []

        def settled() -> bool:
            # The step this worker just committed, when it ended the run, is the head: a step
            # is written once and nothing follows a suspended, completed or failed one but a
            # resume, so no read is needed to know (a read stays for every other case).
            outcome = worker.stats.last
            last = outcome.checkpoint if outcome and outcome.kind == "committed" else None
            if last is not None and last.thread_id == thread_id and last.status != "running":
                ended.append(last)
                return True
            found = store.lazy_head(thread_id)  # its status only: one row, no state
            return found is None or found[0].status != "running"

        worker.run(thread_id=thread_id, settled=settled, first_batch=first)
        head = ended[-1] if ended else self.engine().head(thread_id)
        if head.status == "failed":
            raise ThreadFailed(thread_id, head.step, head.error)
        return head

    def run_until_settled(
        self, thread_id: str, *, on_outcome: Callable[[Outcome], None] | None = None
    ) -> Checkpoint:
        """Work this thread's queued tasks in this process until it is no longer running;
        `ThreadFailed` if it ends failed."""
        return self._settle(self.worker(on_outcome=on_outcome), thread_id, [])


def _caller_module() -> str:
    frame = sys._getframe(3) if hasattr(sys, "_getframe") else None
    return str(frame.f_globals.get("__name__", "graph")) if frame else "graph"
