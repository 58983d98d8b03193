"""Drain a transition queue: the local `durable-graph worker`, and the inline runner of `run`.

One place maps what handling a message raised to what happens to the message (DESIGN.md §3):
ack after a commit or a duplicate; fail the thread and ack for a permanent error; release for a
transient one (a full disk, a locked store: one log line, backoff, never a failed thread);
dead-letter after too many receives. A settlement or a failure record the store cannot take now
leaves the message to come back when its lease ends; it never escapes as an exception.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint
from durable_graph.clock import Clock, SystemClock
from durable_graph.context import default_worker_id
from durable_graph.engine import Engine, Outcome
from durable_graph.errors import DurableGraphError, PermanentTaskError, TransientError, UserError
from durable_graph.leases import Leases, needs_claim
from durable_graph.ports import Delivery, PoisonMessage

log = logging.getLogger("durable_graph.worker")

MAX_RECEIVES = 5
IDLE_WAIT_SECONDS = 1.0
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
        self.leases = Leases(
            backend.queue, concurrency=concurrency, visibility_timeout=visibility_timeout
        )
        self.on_outcome = on_outcome
        self.stats = WorkerStats()
        self._prefetched: list[Delivery] = []
        self._stalls = 0  # leases refused in a row (a full disk): the wait grows with them

    def handle(
        self, delivery: Delivery, *, prefetch: str | None = None, fair: bool = False
    ) -> Outcome | None:
        """Process one delivery and settle it (ack / release / dead-letter).

        With `prefetch` (a thread id), this worker runs that thread's next task itself: the
        commit queues it already leased to this worker (`inline`), in the unit of work (one
        transaction when embedded) that commits this task's step and acknowledges it. The
        next tasks are handed over only once that unit committed. `fair` (a worker serving
        every thread): only where the queue can lease as it sends, and only while no other
        message waits, so a long thread does not hold the worker while others queue.
        """
        message = delivery.message
        acked = False
        leases = self.leases
        lease = leases.send_lease(prefetch, settling=delivery, fair=fair) if prefetch else None
        claimed: list[Delivery] = []

        def acknowledge() -> None:
            nonlocal acked
            self.backend.queue.ack(delivery)
            acked = True
            # In the unit of work, as the lease; never `fair` (a queue that cannot lease as
            # it sends: the next receive takes whatever is oldest).
            if prefetch is not None and not fair and needs_claim(lease):
                claimed.extend(self.claim(prefetch))

        with leases.leasing(lease):
            outcome = self._guarded(
                delivery,
                lambda engine: engine.execute(  # this delivery, and our lease: its claims' own
                    message,
                    receive_count=delivery.receive_count,
                    finalize=acknowledge,
                    lease_seconds=self.visibility_timeout,
                ),
            )
        if outcome is None:  # what it queued or leased rolled back with its unit of work
            return None
        assert isinstance(outcome, Outcome)
        self._prefetched.extend([*(lease.leased if lease else ()), *claimed])
        return self._done(delivery, outcome, acked=acked)

    def give_back(self) -> None:
        """Release the tasks this worker leased ahead (`handle`'s prefetch) and will not run,
        its run having stopped early (the recursion limit): the next run of the thread, or
        another worker, takes them at once instead of after `visibility_timeout`."""
        held, self._prefetched = self._prefetched, []
        for delivery in held:
            self.backend.queue.release(delivery)

    def handle_group(self, batch: list[Delivery], pool: ThreadPoolExecutor | None) -> None:
        """Group commit: run the tasks of `batch` (on `pool`, when given: nodes that wait on
        the network overlap), then commit every step they lead to, with its successor sends
        and its acknowledgement, in one unit of work (one transaction: one fsync embedded, one
        WAL flush on PostgreSQL).

        Nothing of a step is visible or acknowledged before that unit commits, so a crash
        anywhere loses no committed step and commits none twice (each message comes back and
        is deduplicated as in `handle`). A step another worker committed first (its lease ran
        out) is a duplicate for its thread alone, as in `handle`: a lost condition is no error.

        The unit is all or nothing. A step whose commit raises (a write the database refuses:
        on PostgreSQL a failed statement aborts the whole transaction) rolls it back; that
        step's message is settled as `handle` would settle it, and the rest are committed
        again at once, from the steps already built (no task runs twice). A transient failure
        (the store unreachable, a full disk, a lock timeout) or a failed COMMIT releases every
        message of the batch to come back; one that comes back again is handled alone (`run`).
        Steps are committed in thread order, so two batches racing for the same threads (after
        lease expiries) take their row locks in one order and cannot deadlock."""
        queue = self.backend.queue
        acked: set[int] = set()

        def acknowledge(index: int) -> None:
            queue.ack(batch[index])
            acked.add(index)

        def prepare(index: int) -> Outcome | Checkpoint | None:
            delivery = batch[index]
            return self._guarded(
                delivery,
                lambda engine: engine.prepare(
                    delivery.message,
                    receive_count=delivery.receive_count,
                    finalize=functools.partial(acknowledge, index),
                    lease_seconds=self.visibility_timeout,
                ),
            )

        indexes = range(len(batch))
        prepared = list(pool.map(prepare, indexes) if pool else map(prepare, indexes))
        outcomes = {i: p for i, p in enumerate(prepared) if isinstance(p, Outcome)}
        steps = {
            i: p
            for i, p in sorted(enumerate(prepared), key=lambda ip: batch[ip[0]].message.thread_id)
            if isinstance(p, Checkpoint)
        }
        while steps:
            committed, failed, error = self._commit_group(batch, steps, acknowledge)
            if error is None:
                outcomes.update(committed)
                break
            acked.difference_update(steps)  # rolled back with the rest of the unit
            if failed is None or isinstance(error, TransientError):
                log.warning("group commit of %d steps failed, retrying them: %s", len(steps), error)
                self.stats.retried += len(steps)
                for i in steps:
                    release = functools.partial(queue.release, batch[i], delay=backoff(batch[i]))
                    self._settle(release, {"thread_id": batch[i].message.thread_id}, logged=True)
                break
            del steps[failed]  # settled alone; the others commit without it, at once
            self._failed(batch[failed], error)
        for i in sorted(outcomes):
            self._done(batch[i], outcomes[i], acked=i in acked)

    def _commit_group(
        self,
        batch: list[Delivery],
        steps: dict[int, Checkpoint],
        acknowledge: Callable[[int], None],
    ) -> tuple[dict[int, Outcome], int | None, Exception | None]:
        """Commit `steps` (built from `batch`, by index) in one unit of work: their outcomes,
        or, when it rolled back, the index of the step whose commit raised (None: the unit's
        COMMIT itself failed) and the error."""
        committed: dict[int, Outcome] = {}
        current: int | None = None
        try:
            with self.backend.atomic():
                for current, checkpoint in steps.items():
                    engine = self.engine_for(batch[current].message.graph.name)
                    committed[current] = engine.commit(
                        checkpoint,
                        previous_status="running",
                        finalize=functools.partial(acknowledge, current),
                    )
                current = None
        except Exception as exc:  # rolled back: none of these steps committed
            return {}, current, exc
        return committed, None, None

    def _guarded(
        self, delivery: Delivery, action: Callable[[Engine], Outcome | Checkpoint]
    ) -> Outcome | Checkpoint | None:
        """Run `action` with the engine of the delivery's graph; what it raised settles the
        message (`_failed`), and None is returned."""
        try:
            return action(self.engine_for(delivery.message.graph.name))
        except Exception as exc:
            self._failed(delivery, exc)
            return None

    def _failed(self, delivery: Delivery, exc: Exception) -> None:
        """The one place that maps what handling a delivery raised to what happens to its
        message: a permanent error fails the thread (ack), a transient one releases it with
        backoff, anything else (a bug, an outage) is retried, then dead-lettered."""
        message = delivery.message
        queue = self.backend.queue
        context = {"thread_id": message.thread_id, "step": message.step + 1}
        if isinstance(exc, PermanentTaskError | UserError):
            log.error("permanent failure: %s", exc, extra=context)
            if self._fail(message.graph.name, message.thread_id, str(exc), message.task.node):
                self._settle(lambda: queue.ack(delivery), context)
            else:
                self._settle(lambda: queue.release(delivery, delay=backoff(delivery)), context)
            return
        if isinstance(exc, TransientError):  # a full disk, a locked store, throttling
            log.warning("transient, retrying later: %s", exc, extra=context)
            self.stats.retried += 1
            release = functools.partial(queue.release, delivery, delay=backoff(delivery))
            self._settle(release, context, logged=True)
            return
        log.error("task raised", exc_info=exc, extra=context)
        if delivery.receive_count >= MAX_RECEIVES:
            reason = f"{type(exc).__name__}: {exc} (after {delivery.receive_count} receives)"
            if self._fail(message.graph.name, message.thread_id, reason, message.task.node):
                self._settle(lambda: self._dead_letter(delivery, reason), context)
                return
        self.stats.retried += 1
        delay = min(2.0**delivery.receive_count, 30.0)
        self._settle(lambda: queue.release(delivery, delay=delay), context)

    def _done(self, delivery: Delivery, outcome: Outcome, *, acked: bool) -> Outcome:
        """Settle a handled delivery (ack it unless its commit did) and count its outcome."""
        if not acked:
            context = {"thread_id": delivery.message.thread_id, "step": delivery.message.step + 1}
            self._settle(lambda: self.backend.queue.ack(delivery), context)
        if outcome.kind == "committed":
            self.stats.committed += 1
        elif outcome.kind == "duplicate":
            self.stats.duplicates += 1
        self.stats.last = outcome
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return outcome

    def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        dead_letter = getattr(self.backend.queue, "dead_letter", None)
        if callable(dead_letter):
            dead_letter(delivery, reason)
        else:
            self.backend.queue.ack(delivery)

    @staticmethod
    def _settle(
        action: Callable[[], None], context: dict[str, Any], *, logged: bool = False
    ) -> None:
        """Ack, release or dead-letter. If the queue cannot take the write now (a full disk),
        nothing is lost: the lease runs out and the message comes back, so log and go on
        (quietly when the condition was `logged` already: one line per occurrence)."""
        try:
            action()
        except TransientError as exc:
            level = logging.INFO if logged else logging.WARNING
            log.log(level, "message left to its lease: %s", exc, extra=context)

    def _fail(self, graph: str, thread_id: str, reason: str, node: str) -> bool:
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
        return self.leases.claim(thread_id)

    def inline(
        self, thread_id: str, *, runs: Callable[[], bool] = lambda: True
    ) -> AbstractContextManager[list[Delivery]]:
        """A unit of work committing a step of `thread_id` whose next tasks this worker runs
        (`Leases.inline`: leased as they are queued, no receive)."""
        return self.leases.inline(thread_id, runs=runs)

    def _claim_or_wait(self, thread_id: str | None) -> list[Delivery]:
        """`claim`, but a queue that cannot lease now (a full disk, a locked store) is waited
        for, with backoff and one log line per attempt, instead of ending the worker."""
        try:
            batch = self.claim(thread_id)
        except TransientError as exc:
            self._stalls += 1
            log.warning("cannot lease tasks now, retrying: %s", exc)
            time.sleep(min(0.25 * 2.0**self._stalls, 30.0))
            return []
        self._stalls = 0
        return batch

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
        pool: ThreadPoolExecutor | None = None  # made for the first batch of several, if any
        try:
            while True:
                batch = first_batch or self._prefetched or self._claim_or_wait(thread_id)
                first_batch = None
                self._prefetched = []
                self.settle_poison()
                if batch:
                    if len(batch) == 1:
                        # A worker serving every thread goes on with this one only while
                        # no other message waits (`fair`).
                        only = batch[0]
                        prefetch = thread_id or only.message.thread_id
                        self.handle(only, prefetch=prefetch, fair=thread_id is None)
                    else:
                        pool = pool or ThreadPoolExecutor(max_workers=self.concurrency)
                        self._handle_batch(batch, pool)
                    # The inline runner stops as soon as its thread settles, without another
                    # receive first (it prefetched the thread's next task if there was one).
                    if settled is None or self._prefetched:
                        continue
                try:
                    if settled is not None and settled():
                        break
                    if settled is None and until_idle and self.backend.queue.depth() == 0:
                        break
                except TransientError as exc:  # the store is unreachable: lease again, backing off
                    log.warning("cannot read the store now, retrying: %s", exc)
                    time.sleep(poll_interval)
                    continue
                if batch:  # it ran a task and its thread goes on: lease the next one at once
                    continue
                if deadline is not None and time.monotonic() > deadline:
                    break
                self._idle(poll_interval, woken_by_sends=settled is None)
        finally:
            if pool is not None:
                pool.shutdown()
        return self.stats

    def _handle_batch(self, batch: list[Delivery], pool: ThreadPoolExecutor) -> None:
        """Several deliveries at once: one group commit where the backend makes a unit of work
        one transaction (`Backend.group_commit`), else each on its own, in parallel. A message
        delivered again is handled alone: a step that failed a group commit is retried where
        it can only fail itself."""
        if not self.backend.group_commit:
            list(pool.map(self.handle, batch))
            return
        again = [d for d in batch if d.receive_count > 1]
        first = [d for d in batch if d.receive_count == 1]
        if len(first) > 1:
            self.handle_group(first, pool)
        else:
            again += first
        if again:
            list(pool.map(self.handle, again))

    def _idle(self, poll_interval: float, *, woken_by_sends: bool) -> None:
        """Wait before polling again. A queue that can announce sends (PostgreSQL's
        `LISTEN/NOTIFY`: `wait`) wakes an idle worker the moment a message is queued, so it
        waits up to `IDLE_WAIT_SECONDS` (what lease expiries and delayed releases, which
        announce nothing, may wait); others are polled every `poll_interval`. The inline
        runner (`settled` given) polls: what it waits for is a head, not a send."""
        wait = getattr(self.backend.queue, "wait", None)
        if woken_by_sends and callable(wait):
            wait(IDLE_WAIT_SECONDS)
        else:
            time.sleep(poll_interval)
