"""Group commit: a worker's batch of leased tasks run, and every step they lead to committed in
one unit of work (one transaction: one fsync embedded, one WAL flush on PostgreSQL)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from durable_graph.backend import Backend
from durable_graph.checkpoint import Checkpoint
from durable_graph.engine import Engine, Outcome
from durable_graph.errors import TransientError
from durable_graph.ports.commit_writes import RecordWrite
from durable_graph.ports.transition_queue import Delivery
from durable_graph.signing import batch_signatures
from durable_graph.worker_settling import EngineFactory, Settler, WorkerStats, backoff, settle

log = logging.getLogger("durable_graph.worker")


class Worker(Protocol):
    """What a group commit uses of the worker that leased the batch (`worker.Worker`)."""

    backend: Backend
    engine_for: EngineFactory
    visibility_timeout: float
    stats: WorkerStats
    settler: Settler

    def handle(self, delivery: Delivery) -> Outcome | None: ...

    def guarded(
        self, delivery: Delivery, action: Callable[[Engine], Outcome | Checkpoint]
    ) -> Outcome | Checkpoint | None: ...

    def done(self, delivery: Delivery, outcome: Outcome, *, acked: bool) -> Outcome: ...


def handle_group(worker: Worker, batch: list[Delivery], pool: ThreadPoolExecutor | None) -> None:
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
    queue = worker.backend.queue
    acked: set[int] = set()

    def acknowledge(index: int) -> None:
        queue.ack(batch[index])
        acked.add(index)

    def prepare(index: int) -> Outcome | Checkpoint | None:
        delivery = batch[index]
        return worker.guarded(
            delivery,
            lambda engine: engine.prepare(
                delivery.message,
                receive_count=delivery.receive_count,
                finalize=functools.partial(acknowledge, index),
                lease_seconds=worker.visibility_timeout,
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
    signatures = _signatures(worker, batch, steps)
    while steps:
        committed, failed, error = _commit_group(worker, batch, steps, acked, signatures)
        if error is None:
            outcomes.update(committed)
            break
        acked.difference_update(steps)  # rolled back with the rest of the unit
        if failed is None or isinstance(error, TransientError):
            log.warning("group commit of %d steps failed, retrying them: %s", len(steps), error)
            worker.stats.retried += len(steps)
            for i in steps:
                release = functools.partial(queue.release, batch[i], delay=backoff(batch[i]))
                settle(release, {"thread_id": batch[i].message.thread_id}, logged=True)
            break
        del steps[failed]  # settled alone; the others commit without it, at once
        worker.settler.failed(batch[failed], error)
    for i in sorted(outcomes):
        worker.done(batch[i], outcomes[i], acked=i in acked)


def _signatures(
    worker: Worker, batch: list[Delivery], steps: dict[int, Checkpoint]
) -> dict[tuple[str, int], RecordWrite]:
    """The head signatures of the steps that settle their threads, made together: one
    signature over their tree (`signing.batch_signatures`) where one per head was a tenth of
    a group commit's instructions. The clock is the first step's engine's (one `signed_at`)."""
    if not steps:
        return {}
    first = worker.engine_for(batch[next(iter(steps))].message.graph.name)
    return batch_signatures(worker.backend.signer, steps.values(), first.clock)


def _commit_group(
    worker: Worker,
    batch: list[Delivery],
    steps: dict[int, Checkpoint],
    acked: set[int],
    signatures: dict[tuple[str, int], RecordWrite],
) -> tuple[dict[int, Outcome], int | None, Exception | None]:
    """Commit `steps` (built from `batch`, by index) in one unit of work: their outcomes,
    or, when it rolled back, the index of the step whose commit raised (None: the unit's
    COMMIT itself, or its acknowledgements, failed) and the error.

    The messages of the steps committed are acknowledged at the end of the unit, in one
    statement (`TransitionQueue.ack_many`: a DELETE per step was a statement per task), and
    marked in `acked` (the caller unmarks them if the unit rolls back)."""
    committed: dict[int, Outcome] = {}
    finalized: list[int] = []
    current: int | None = None
    try:
        with worker.backend.atomic():
            for current, checkpoint in steps.items():
                engine = worker.engine_for(batch[current].message.graph.name)
                committed[current] = engine.commit(
                    checkpoint,
                    previous_status="running",
                    finalize=functools.partial(finalized.append, current),
                    signature=signatures.get((checkpoint.thread_id, checkpoint.step)),
                )
            current = None
            worker.backend.queue.ack_many([batch[i] for i in finalized])
            acked.update(finalized)
    except Exception as exc:  # rolled back: none of these steps committed
        return {}, current, exc
    return committed, None, None


def handle_batch(worker: Worker, batch: list[Delivery], pool: ThreadPoolExecutor | None) -> None:
    """Several deliveries at once: one group commit where the backend makes a unit of work
    one transaction (`Backend.group_commit`), else each on its own, in parallel on `pool`
    (in turn without one). A message delivered again is handled alone: a step that failed a
    group commit is retried where it can only fail itself."""
    each = pool.map if pool is not None else map
    if not worker.backend.group_commit:
        list(each(worker.handle, batch))
        return
    again = [d for d in batch if d.receive_count > 1]
    first = [d for d in batch if d.receive_count == 1]
    if len(first) > 1:
        handle_group(worker, first, pool)
    else:
        again += first
    if again:
        list(each(worker.handle, again))
