"""Drain a transition queue: the local `durable-graph worker`, and the inline runner of `run`.

One place maps what handling a message raised to what happens to the message (DESIGN.md §3):
ack after a commit or a duplicate; fail the thread and ack for a permanent error; release for a
transient one; dead-letter after too many receives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from durable_graph.backend import Backend
from durable_graph.clock import Clock, SystemClock
from durable_graph.context import default_worker_id
from durable_graph.engine import Engine, Outcome
from durable_graph.errors import DurableGraphError, PermanentTaskError, TransientError, UserError
from durable_graph.ports import Delivery, PoisonMessage

log = logging.getLogger("durable_graph.worker")

MAX_RECEIVES = 5
EngineFactory = Callable[[str], Engine]


@dataclass
class WorkerStats:
    committed: int = 0
    duplicates: int = 0
    failed_threads: int = 0
    retried: int = 0
    poisoned: int = 0
    outcomes: list[Outcome] = field(default_factory=list)


class Worker:
    def __init__(
        self,
        backend: Backend,
        engine_for: EngineFactory,
        *,
        clock: Clock | None = None,
        worker_id: str | None = None,
        visibility_timeout: float = 60.0,
        concurrency: int = 4,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.backend = backend
        self.engine_for = engine_for
        self.clock = clock or SystemClock()
        self.worker_id = worker_id or default_worker_id()
        self.visibility_timeout = visibility_timeout
        self.concurrency = concurrency
        self.on_outcome = on_outcome
        self.stats = WorkerStats()
        self._prefetched: list[Delivery] = []

    def handle(self, delivery: Delivery, *, prefetch: str | None = None) -> Outcome | None:
        """Process one delivery and settle it (ack / release / dead-letter).

        With `prefetch` (a thread id), the next task of that thread is leased inside the same
        unit of work as this task's commit and acknowledgement (one transaction when embedded).
        """
        message = delivery.message
        queue = self.backend.queue
        context = {"thread_id": message.thread_id, "step": message.step + 1}
        acked = False

        def acknowledge() -> None:
            nonlocal acked
            queue.ack(delivery)
            acked = True
            if prefetch is not None:
                self._prefetched.extend(self.claim(prefetch))

        try:
            engine = self.engine_for(message.graph.name)
            outcome = engine.execute(  # this delivery, and our lease: its effect claims' own
                message,
                receive_count=delivery.receive_count,
                finalize=acknowledge,
                lease_seconds=self.visibility_timeout,
            )
        except (PermanentTaskError, UserError) as exc:
            log.error("permanent failure: %s", exc, extra=context)
            self._fail(message.graph.name, message.thread_id, str(exc), message.task.node)
            queue.ack(delivery)
            return None
        except TransientError as exc:
            log.info("transient: %s", exc, extra=context)
            self.stats.retried += 1
            queue.release(delivery, delay=1.0)
            return None
        except Exception as exc:  # a bug or an outage: retry, then dead-letter with the reason
            log.exception("task raised", extra=context)
            if delivery.receive_count >= MAX_RECEIVES:
                reason = f"{type(exc).__name__}: {exc} (after {delivery.receive_count} receives)"
                self._fail(message.graph.name, message.thread_id, reason, message.task.node)
                dead_letter = getattr(queue, "dead_letter", None)
                if callable(dead_letter):
                    dead_letter(delivery, reason)
                else:
                    queue.ack(delivery)
            else:
                self.stats.retried += 1
                queue.release(delivery, delay=min(2.0**delivery.receive_count, 30.0))
            return None
        if not acked:
            queue.ack(delivery)
        if outcome.kind == "committed":
            self.stats.committed += 1
        elif outcome.kind == "duplicate":
            self.stats.duplicates += 1
        self.stats.outcomes.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return outcome

    def _fail(self, graph: str, thread_id: str, reason: str, node: str) -> None:
        try:
            engine = self.engine_for(graph)
        except DurableGraphError:
            log.error("cannot load graph %r to record the failure of %s", graph, thread_id)
            return
        if engine.fail_thread(thread_id, reason, node=node) is not None:
            self.stats.failed_threads += 1

    def settle_poison(self) -> None:
        """Fail the threads named by messages the queue set aside as unparseable.

        The queue has already moved each one out of the way (dead letters); only the thread's
        failure, which needs the engine, is left to do here, outside the queue's transaction.
        """
        take = getattr(self.backend.queue, "take_poisoned", None)
        if not callable(take):
            return
        for poison in take():
            self.stats.poisoned += 1
            self._fail_poisoned(poison)

    def _fail_poisoned(self, poison: PoisonMessage) -> None:
        for thread_id in poison.thread_ids:
            try:
                head = self.backend.checkpoints.head_checkpoint(thread_id)
            except DurableGraphError as exc:
                log.error("cannot read thread %r to record a poison message: %s", thread_id, exc)
                continue
            if head is not None:
                self._fail(head.graph.name, thread_id, poison.reason, "")
                return
        log.error("poison message naming no thread %s: %s", poison.thread_ids, poison.reason)

    def claim(self, thread_id: str | None) -> list[Delivery]:
        """Lease the next tasks (of one thread, where the queue can filter)."""
        try:
            return self.backend.queue.receive(
                max_messages=self.concurrency,
                visibility_timeout=self.visibility_timeout,
                thread_id=thread_id,
            )
        except NotImplementedError:  # SQS cannot filter by thread: take whatever is next
            return self.backend.queue.receive(
                max_messages=self.concurrency, visibility_timeout=self.visibility_timeout
            )

    def run(
        self,
        *,
        until_idle: bool = True,
        thread_id: str | None = None,
        settled: Callable[[], bool] | None = None,
        poll_interval: float = 0.05,
        max_seconds: float | None = None,
        first_batch: list[Delivery] | None = None,
    ) -> WorkerStats:
        """Process messages until idle (nothing queued or in flight), or `settled()` is true."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            while True:
                batch = first_batch or self._prefetched or self.claim(thread_id)
                first_batch = None
                self._prefetched = []
                self.settle_poison()
                if batch:
                    if len(batch) == 1:
                        self.handle(batch[0], prefetch=thread_id)
                    else:
                        list(pool.map(self.handle, batch))
                    continue
                if settled is not None and settled():
                    break
                if settled is None and until_idle and self.backend.queue.depth() == 0:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    break
                time.sleep(poll_interval)
        return self.stats
