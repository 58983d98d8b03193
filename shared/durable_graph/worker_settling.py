"""What happens to a worker's message once handling it ended: the one place that maps what
handling a message raised to its settlement (DESIGN.md §3).

Ack after a commit or a duplicate; fail the thread and ack for a permanent error; release for a
transient one (a full disk, a locked store: one log line, backoff, never a failed thread);
dead-letter after too many receives. A settlement or a failure record the store cannot take now
leaves the message to come back when its lease ends; it never escapes as an exception.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from durable_graph.backend import Backend
from durable_graph.engine import Engine, Outcome
from durable_graph.errors import DurableGraphError, PermanentTaskError, TransientError, UserError
from durable_graph.ports.poison import PoisonMessage
from durable_graph.ports.transition_queue import Delivery

log = logging.getLogger("durable_graph.worker")

MAX_RECEIVES = 5
EngineFactory = Callable[[str], Engine]


def backoff(delivery: Delivery) -> float:
    """Seconds before a task retried for a transient condition comes back: 1, 2, 4 … 30."""
    return min(2.0 ** max(delivery.receive_count - 1, 0), 30.0)


@dataclass
class WorkerStats:
    committed: int = 0
    duplicates: int = 0
    failed_threads: int = 0
    retried: int = 0
    poisoned: int = 0
    # The last outcome only: every outcome kept (each record holds its whole state) grew a
    # long-running worker's memory, and the garbage collector's walks, with every step.
    last: Outcome | None = None


def settle(action: Callable[[], None], context: dict[str, Any], *, logged: bool = False) -> None:
    """Ack, release or dead-letter. If the queue cannot take the write now (a full disk),
    nothing is lost: the lease runs out and the message comes back, so log and go on
    (quietly when the condition was `logged` already: one line per occurrence)."""
    try:
        action()
    except TransientError as exc:
        level = logging.INFO if logged else logging.WARNING
        log.log(level, "message left to its lease: %s", exc, extra=context)


class Settler:
    """Settles the messages of one worker whose handling raised, and fails their threads."""

    def __init__(self, backend: Backend, engine_for: EngineFactory, stats: WorkerStats) -> None:
        self.backend = backend
        self.engine_for = engine_for
        self.stats = stats
        # Where the queue sets unparseable messages aside (`PoisonReporting`), else None:
        # looked up once, as `settle_poison` runs before every lease of the worker loop.
        take = getattr(backend.queue, "take_poisoned", None)
        self._take_poisoned: Callable[[], list[PoisonMessage]] | None = (
            take if callable(take) else None
        )

    def failed(self, delivery: Delivery, exc: Exception) -> None:
        """The one place that maps what handling a delivery raised to what happens to its
        message: a permanent error fails the thread (ack), a transient one releases it with
        backoff, anything else (a bug, an outage) is retried, then dead-lettered."""
        message = delivery.message
        queue = self.backend.queue
        context = {"thread_id": message.thread_id, "step": message.step + 1}
        if isinstance(exc, PermanentTaskError | UserError):
            log.error("permanent failure: %s", exc, extra=context)
            if self.fail(message.graph.name, message.thread_id, str(exc), message.task.node):
                settle(lambda: queue.ack(delivery), context)
            else:
                settle(lambda: queue.release(delivery, delay=backoff(delivery)), context)
            return
        if isinstance(exc, TransientError):  # a full disk, a locked store, throttling
            log.warning("transient, retrying later: %s", exc, extra=context)
            self.stats.retried += 1
            release = functools.partial(queue.release, delivery, delay=backoff(delivery))
            settle(release, context, logged=True)
            return
        log.error("task raised", exc_info=exc, extra=context)
        if delivery.receive_count >= MAX_RECEIVES:
            reason = f"{type(exc).__name__}: {exc} (after {delivery.receive_count} receives)"
            if self.fail(message.graph.name, message.thread_id, reason, message.task.node):
                settle(lambda: self._dead_letter(delivery, reason), context)
                return
        self.stats.retried += 1
        delay = min(2.0**delivery.receive_count, 30.0)
        settle(lambda: queue.release(delivery, delay=delay), context)

    def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        dead_letter = getattr(self.backend.queue, "dead_letter", None)
        if callable(dead_letter):
            dead_letter(delivery, reason)
        else:
            self.backend.queue.ack(delivery)

    def fail(self, graph: str, thread_id: str, reason: str, node: str) -> bool:
        """Record a permanent failure; False when the store cannot take the write now (a full
        disk): the thread stays running and the caller releases the message, so the failure
        is recorded by a later attempt instead of escaping as an exception."""
        try:
            engine = self.engine_for(graph)
        except DurableGraphError:
            log.error("cannot load graph %r to record the failure of %s", graph, thread_id)
            return True
        try:
            if engine.fail_thread(thread_id, reason, node=node) is not None:
                self.stats.failed_threads += 1
        except TransientError as exc:
            log.warning("cannot record the failure of %s now, retrying later: %s", thread_id, exc)
            return False
        return True

    def settle_poison(self) -> None:
        """Fail the threads named by messages the queue set aside as unparseable.

        The queue has already moved each one out of the way (dead letters); only the thread's
        failure, which needs the engine, is left to do here, outside the queue's transaction.
        """
        if self._take_poisoned is None:
            return
        for poison in self._take_poisoned():
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
                self.fail(head.graph.name, thread_id, poison.reason, "")
                return
        log.error("poison message naming no thread %s: %s", poison.thread_ids, poison.reason)
