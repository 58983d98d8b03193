"""Drain a transition queue: the local `durable-graph worker`, and the inline runner of `run`.

A worker leases tasks (`leases`), runs each through its graph's engine and settles its message
(`worker_settling`: the one place that maps what handling raised to an ack, a release or a
dead letter); a batch of several commits as one unit where the backend can (`worker_group`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

from durable_graph import worker_group
from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint
from durable_graph.clock import Clock, SystemClock
from durable_graph.context import default_worker_id
from durable_graph.engine import Engine, Outcome
from durable_graph.errors import TransientError
from durable_graph.leases import Leases, needs_claim
from durable_graph.ports.transition_queue import Delivery
from durable_graph.worker_settling import EngineFactory, Settler, WorkerStats, settle

log = logging.getLogger("durable_graph.worker")

IDLE_WAIT_SECONDS = 1.0


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
        threads: int | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        """`concurrency`: how many tasks one lease takes (their steps commit together where
        the backend can: `worker_group`). `threads` (default: `concurrency`): how many of
        them run at once, each on a thread of its own, so that nodes waiting on the network
        (a model, an API) overlap. 1 runs them one after another on the worker's own thread,
        what nodes that wait on nothing want: on a pool they only take turns at the
        interpreter's lock and the embedded store's connection lock (the approval flow, 100
        tasks a lease, on tmpfs: 3.2-3.7 ms CPU per thread on a pool of 100 threads, 2.1-2.6
        on the worker's own)."""
        self.backend = backend
        self.engine_for = engine_for
        self.clock = clock or SystemClock()
        self.worker_id = worker_id or default_worker_id()
        self.visibility_timeout = visibility_timeout
        self.concurrency = concurrency
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        self.threads = concurrency if threads is None else threads
        self.leases = Leases(
            backend.queue, concurrency=concurrency, visibility_timeout=visibility_timeout
        )
        self.on_outcome = on_outcome
        self.stats = WorkerStats()
        self.settler = Settler(backend, engine_for, self.stats)
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
            outcome = self.guarded(
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
        return self.done(delivery, outcome, acked=acked)

    def give_back(self) -> None:
        """Release the tasks this worker leased ahead (`handle`'s prefetch) and will not run,
        its run having stopped early (the recursion limit): the next run of the thread, or
        another worker, takes them at once instead of after `visibility_timeout`."""
        held, self._prefetched = self._prefetched, []
        for delivery in held:
            self.backend.queue.release(delivery)

    def handle_group(self, batch: list[Delivery], pool: ThreadPoolExecutor | None) -> None:
        """Group commit of `batch` (`worker_group.handle_group`)."""
        worker_group.handle_group(self, batch, pool)

    def guarded(
        self, delivery: Delivery, action: Callable[[Engine], Outcome | Checkpoint]
    ) -> Outcome | Checkpoint | None:
        """Run `action` with the engine of the delivery's graph; what it raised settles the
        message (`Settler.failed`), and None is returned."""
        try:
            return action(self.engine_for(delivery.message.graph.name))
        except Exception as exc:
            self.settler.failed(delivery, exc)
            return None

    def done(self, delivery: Delivery, outcome: Outcome, *, acked: bool) -> Outcome:
        """Settle a handled delivery (ack it unless its commit did) and count its outcome."""
        if not acked:
            context = {"thread_id": delivery.message.thread_id, "step": delivery.message.step + 1}
            settle(lambda: self.backend.queue.ack(delivery), context)
        if outcome.kind == "committed":
            self.stats.committed += 1
        elif outcome.kind == "duplicate":
            self.stats.duplicates += 1
        self.stats.last = outcome
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return outcome

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
        if thread_id is None:  # serving every thread (not the inline runner of one)
            self.leases.serve()
        pool: ThreadPoolExecutor | None = None  # made for the first batch of several, if any
        pooled = self.threads > 1  # else a batch's tasks run on this thread
        try:
            while True:
                batch = first_batch or self._prefetched or self._claim_or_wait(thread_id)
                first_batch = None
                self._prefetched = []
                self.settler.settle_poison()
                if batch:
                    if len(batch) == 1:
                        # A worker serving every thread goes on with this one only while
                        # no other message waits (`fair`).
                        only = batch[0]
                        prefetch = thread_id or only.message.thread_id
                        self.handle(only, prefetch=prefetch, fair=thread_id is None)
                    else:
                        if pool is None and pooled:
                            pool = ThreadPoolExecutor(max_workers=self.threads)
                        worker_group.handle_batch(self, batch, pool)
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
